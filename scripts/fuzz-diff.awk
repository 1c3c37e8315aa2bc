# SPDX-License-Identifier: GPL-2.0
#
# Compares two binder-fuzz logs of the same seed and length, the C driver's and
# rust_binder's, operation by operation (scripts/fuzz.sh):  awk -f fuzz-diff.awk C.log RUST.log
#
# A log line is: index, process.thread, tags, operation, "=> outcome", separated by tabs.
# Where the outcomes of the same operation differ, the difference is
#   known     the operation used an input on which rust_binder deliberately differs (tag K;
#             README, "Where rust_binder deliberately differs from the C driver");
#   async     it is, or follows within 30 operations, a close of the device (tag A), whose
#             release the C driver finishes asynchronously;
#   follows   an earlier difference came first, or the operation streams diverged: the
#             processes' states differ from then on;
#   real      none of these: a difference of behaviour to look at.
# Operations whose text differs (the streams diverged, after an earlier difference) are
# counted apart. The fuzzer chooses an operation from earlier outcomes, so a divergence means
# the states differ, even where the difference that caused it was only async: the outcome of
# a later operation that happens to be the same on both sides is no longer comparable.
# Prints the counts, the first real differences in full, and one result line: "FAIL
# fuzz/differential" if there is a real difference, else "ok   fuzz/differential", which
# says up to which operation the outcomes were comparable if the streams diverged.

BEGIN { FS = "\t"; shown = 0; async_until = -1 }
FNR == NR {
    who[$1] = $2; tags[$1] = $3; op[$1] = $4; out[$1] = $5
    next
}
{
    i = $1
    if (!(i in op)) next
    compared++
    if ($2 != who[i] || $4 != op[i]) {
        diverged++
        if (first_diverged == "") first_diverged = i
        if (first_any == "") first_any = i
        next
    }
    t = tags[i]
    if (t ~ /A/) async_until = i + 30
    if ($5 == out[i]) { same++; next }
    if (t ~ /K/) {
        known++
        if (first_any == "") first_any = i
    } else if (i <= async_until) {
        async++
    } else if (first_any != "") {
        follows++
        if (shown_follows < 5) {
            shown_follows++
            printf "# following difference at operation %s (%s): %s\n", i, who[i], op[i]
            printf "#     C:    %s\n", out[i]
            printf "#     rust: %s\n", $5
        }
    } else {
        real++
        first_any = i
        if (shown < 20) {
            shown++
            printf "# real difference at operation %s (%s): %s\n", i, who[i], op[i]
            printf "#     C:    %s\n", out[i]
            printf "#     rust: %s\n", $5
        }
    }
}
END {
    printf "# compared %d operations: %d same; differing: %d real, %d known, %d async, %d following an earlier difference; %d diverged%s\n",
        compared, same, real, known, async, follows, diverged,
        first_diverged == "" ? "" : " (from operation " first_diverged ")"
    if (compared == 0)
        print "FAIL fuzz/differential: no operation to compare (a run ended early?)"
    else if (real > 0)
        printf "FAIL fuzz/differential: %d real differences between the drivers (see above)\n", real
    else if (first_diverged != "") {
        printf "ok   fuzz/differential: no real difference before operation %s, ", first_diverged
        printf "where the streams diverged (the %d operations from there are not comparable)\n",
            compared - first_diverged
    } else
        printf "ok   fuzz/differential: %d operations compared, no real difference\n", compared
}
