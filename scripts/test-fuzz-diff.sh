#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks scripts/fuzz-diff.awk, which compares the C driver's and rust_binder's fuzz logs, on
# small made-up logs, without a VM:
#
#   fuzz_diff_same_logs           the same outcomes everywhere: ok
#   fuzz_diff_real_difference     one operation's outcome differs: a real difference
#   fuzz_diff_known_input         the differing operation is tagged K: known, not real
#   fuzz_diff_after_close         a difference within 30 operations of a close (tag A): async
#   fuzz_diff_after_divergence    once the operation streams diverged (the fuzzer chose other
#                                 operations, after an async difference), a later difference
#                                 follows it and is not real (seed 7 at operation 55050)
#
# Prints one "ok" or "FAIL" line per case.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# line INDEX WHO TAGS OPERATION OUTCOME: one log line
line() { printf '%s\t%s\t%s\t%s\t%s\n' "$@"; }

# check NAME WANT: runs fuzz-diff on $tmp/c.log and $tmp/rust.log; WANT is a pattern of its
# counts line ("1 real", ...) and of its verdict ("ok" or "FAIL").
check() {
    local name=$1 want_counts=$2 want_verdict=$3 out
    out=$(awk -f "$here/fuzz-diff.awk" "$tmp/c.log" "$tmp/rust.log")
    if grep -q "^# compared .*$want_counts" <<<"$out" &&
        tail -n1 <<<"$out" | grep -q "^$want_verdict  *fuzz/differential"; then
        echo "ok   $name"
    else
        echo "FAIL $name: wanted \"$want_counts\" and $want_verdict, fuzz-diff said:"
        sed 's/^/    /' <<<"$out"
    fi
}

# common N: operations 0..N-1, the same in both logs
common() {
    local i
    for ((i = 0; i < $1; i++)); do
        line "$i" "p0.0" - "WR [] ws=0 rs=256" "=> EAGAIN w=0 r=0"
    done
}

common 50 >"$tmp/c.log"
cp "$tmp/c.log" "$tmp/rust.log"
check fuzz_diff_same_logs "50 same; differing: 0 real" ok

{ common 10; line 10 p1.0 - "WR [INCREFS h0] ws=8 rs=256" "=> ok w=8 r=4 NOOP"; } >"$tmp/c.log"
sed '$s/r=4 NOOP$/r=16 NOOP DEAD_BINDER(0xdead)/' "$tmp/c.log" >"$tmp/rust.log"
check fuzz_diff_real_difference "differing: 1 real" FAIL

{ common 10; line 10 p1.0 K "VERSION arg=unmapped" "=> EFAULT"; } >"$tmp/c.log"
sed '$s/EFAULT$/EINVAL/' "$tmp/c.log" >"$tmp/rust.log"
check fuzz_diff_known_input "differing: 0 real, 1 known" ok

{
    common 10
    line 10 p0.0 A REOPEN "=> ok mgr=ok"
    line 11 p1.0 - "WR [FREE_BUFFER buf-1] ws=12 rs=4096" "=> ok w=12 r=16 NOOP DEAD_BINDER(0xdead)"
    common 20 | awk -F'\t' -v OFS='\t' '{ $1 += 12; print }'
} >"$tmp/c.log"
sed 's/=> ok w=12 r=16 NOOP DEAD_BINDER(0xdead)$/=> EAGAIN w=12 r=0/' "$tmp/c.log" >"$tmp/rust.log"
check fuzz_diff_after_close "differing: 0 real, 0 known, 1 async" ok

# As seed 7 met it: the async difference at 11 made the fuzzer choose another operation at
# 12; at 100, long after the close, the same operation has other outcomes (the notification
# the C driver returned at 11 comes to rust_binder at 100).
# seed7 OUTCOME11 OPERATION12 OUTCOME12 OUTCOME100: one side's log
seed7() {
    common 10
    line 10 p0.0 A REOPEN "=> ok mgr=ok"
    line 11 p1.0 - "WR [FREE_BUFFER buf-1] ws=12 rs=4096" "$1"
    line 12 p1.0 - "$2" "$3"
    common 87 | awk -F'\t' -v OFS='\t' '{ $1 += 13; print }'
    line 100 p1.1 - "WR [FREE_BUFFER buf-1] ws=12 rs=4096" "$4"
}
seed7 "=> ok w=12 r=16 NOOP DEAD_BINDER(0xdead)" "WR [DEAD_BINDER_DONE 0xdead] ws=12 rs=256" \
    "=> ok w=12 r=4 NOOP" "=> ok w=12 r=28 NOOP RELEASE(0x1/0x2)" >"$tmp/c.log"
seed7 "=> EAGAIN w=12 r=0" "WR [INCREFS h3] ws=8 rs=256" \
    "=> ok w=8 r=16 NOOP DEAD_BINDER(0xdead)" "=> ok w=12 r=16 NOOP DEAD_BINDER(0xdead)" >"$tmp/rust.log"
check fuzz_diff_after_divergence \
    "differing: 0 real, 0 known, 1 async, 1 following an earlier difference; 1 diverged" ok
