#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: checks that setup installs every package it needs (scripts/test-setup.sh)
# and the fuzz-log comparison's rules (scripts/test-fuzz-diff.sh),
# checks modinfo, make install/uninstall and DKMS against the test kernel, staged in temporary
# directories (scripts/test-install.sh, scripts/test-dkms.sh), builds everything, runs the
# userspace library's host tests, then boots the debug kernel once with the C driver and once
# with rust_binder and runs the same conformance suite on both, then once more per driver for
# the interop checks with rsbinder's userspace and the demo's story (scripts/vm/interop.sh), and
# once more per driver for a minute of binder-stress (scripts/stress.sh). It also proves once
# per run that the kernel log check catches a leak.
# Prints every result and ends with one "N passed, N failed" line.
#
# RB_CHECK_SKIP_SELFTEST=1 leaves out the leak self-test boot; RB_CHECK_STRESS_SECONDS=N sets
# the stress run's length in each guest (default 60).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
kernel=$(kernel_out debug)
runs=$top/tests/target/vm
kmake_m() { kmake -C "$kernel" M="$1" W=e "${@:2}"; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "check: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
count() { # count FILE: tallies its "ok"/"FAIL" lines
    local p f
    p=$(grep -c '^ok ' "$1" || true)
    f=$(grep -c '^FAIL ' "$1" || true)
    passed=$((passed + p))
    failed=$((failed + f))
}

mkdir -p "$runs"

# First, before anything is built: what setup would install on a fresh machine (a dry run).
step "setup installs every package it needs (scripts/test-setup.sh)"
setup_results=$runs/setup-results
bash "$here/test-setup.sh" >"$setup_results" 2>&1 ||
    grep -q '^FAIL ' "$setup_results" || echo "FAIL setup_test: scripts/test-setup.sh failed" >>"$setup_results"
cat "$setup_results"
count "$setup_results"

step "the fuzz-log comparison on made-up logs (scripts/test-fuzz-diff.sh)"
fuzz_diff_results=$runs/fuzz-diff-results
bash "$here/test-fuzz-diff.sh" >"$fuzz_diff_results" 2>&1 ||
    grep -q '^FAIL ' "$fuzz_diff_results" || echo "FAIL fuzz_diff_test: scripts/test-fuzz-diff.sh failed" >>"$fuzz_diff_results"
cat "$fuzz_diff_results"
count "$fuzz_diff_results"

step "formatting (rustfmt defaults, as the kernel's coding guidelines ask)"
fmt=$runs/fmt-result
if rustfmt --edition 2021 --check "$top/binder.rs" "$top/tests/leak-selftest/rb_leak_selftest.rs" &&
    (cd "$top/tests" && cargo fmt --check); then
    echo "ok   formatting" >"$fmt"
else
    echo "FAIL formatting: run make fmt" >"$fmt"
fi
cat "$fmt"
count "$fmt"

step "building rust_binder.ko (Clippy, then the real build; warnings are errors)"
kmake_m "$top" clean >/dev/null
kmake_m "$top" CLIPPY=1 modules || die "the Clippy build of rust_binder failed"
kmake_m "$top" clean >/dev/null
kmake_m "$top" modules || die "rust_binder did not build"

# The installation paths, on the module just built (modinfo reads it). make install builds
# without -Werror; the code is the same, and the -Werror build above has passed.
step "modinfo, make install, install-compat and uninstall, staged (scripts/test-install.sh)"
install_results=$runs/install-results
bash "$here/test-install.sh" "$kernel" >"$install_results" 2>&1 ||
    grep -q '^FAIL ' "$install_results" || echo "FAIL install_test: scripts/test-install.sh failed" >>"$install_results"
cat "$install_results"
count "$install_results"

step "DKMS builds rust_binder for the test kernel (scripts/test-dkms.sh)"
dkms_results=$runs/dkms-results
bash "$here/test-dkms.sh" "$kernel" >"$dkms_results" 2>&1 ||
    grep -q '^FAIL ' "$dkms_results" || echo "FAIL dkms_test: scripts/test-dkms.sh failed" >>"$dkms_results"
cat "$dkms_results"
count "$dkms_results"

step "building the leak self-test module"
kmake_m "$top/tests/leak-selftest" modules >/dev/null || die "the leak self-test module did not build"

export BINDER_UAPI_INCLUDE=$kernel/usr/include
step "building the userspace tests (static, $MUSL_TARGET)"
(cd "$top/tests" && cargo build --release --locked --target "$MUSL_TARGET") ||
    die "the userspace tests did not build"

step "host tests of the userspace library (cargo test)"
host=$runs/host-results
(cd "$top/tests" && cargo test --locked --workspace 2>&1) | tee "$runs/host.log" |
    grep -E '^test .* \.\.\. |^test result' || true
sed -n 's/^test \(.*\) \.\.\. ok$/ok   host: \1/p; s/^test \(.*\) \.\.\. FAILED$/FAIL host: \1/p' \
    "$runs/host.log" >"$host"
grep -q '^test result: ok' "$runs/host.log" || echo "FAIL host: cargo test did not pass" >>"$host"
count "$host"

for driver in c rust; do
    name=$([ "$driver" = c ] && echo "C driver (binder_linux.ko)" || echo "rust_binder")
    step "VM: conformance suite on the $name"
    bash "$here/vm.sh" --driver "$driver" --out "$runs/$driver" --kernel "$kernel"
    cat "$runs/$driver/results"
    [ ! -f "$runs/$driver/log-excerpt" ] || cat "$runs/$driver/log-excerpt"
    count "$runs/$driver/results"
done

# Reliability (issue 13): the suite above runs the memory cases (a hog, the shrinkers in a
# loop, injected allocation failures) on both drivers, and on rust_binder 100 module
# load/unload cycles with traffic (LIFECYCLE_CYCLES=N to change). Here rust_binder runs the
# memory cases once more in a 512 MiB guest, where the kernel itself has little room, then
# the load/unload cycles, whose unloads check its census. One boot, about two minutes (TCG).
reliability_mem=512
step "VM: reliability on rust_binder: memory pressure in a $reliability_mem MiB guest, load/unload cycles"
bash "$here/vm.sh" --driver rust --out "$runs/reliability-rust" --kernel "$kernel" \
    --mem "$reliability_mem" --filter memory_,module_lifecycle
sed 's/^\(ok  *\|FAIL \)/\1reliability: /' "$runs/reliability-rust/results" >"$runs/reliability-rust/results-named"
cat "$runs/reliability-rust/results-named"
[ ! -f "$runs/reliability-rust/log-excerpt" ] || cat "$runs/reliability-rust/log-excerpt"
count "$runs/reliability-rust/results-named"
tr -d '\r' <"$runs/reliability-rust/guest.log" | grep '^figures: ' || true

# Third-party userspace (rsbinder's tools and library) and the demo's programs, one boot per
# driver: scripts/vm/interop.sh.
step "rsbinder-tools $RSBINDER_TOOLS_VERSION for the interop checks"
interop=1
if ! install_rsbinder_tools; then
    echo "FAIL interop_tools: cargo install rsbinder-tools $RSBINDER_TOOLS_VERSION failed" >"$runs/interop-tools"
    cat "$runs/interop-tools"
    count "$runs/interop-tools"
    interop=0
fi
release=$top/tests/target/$MUSL_TARGET/release
interop_bins=()
for f in "$RSBINDER_TOOLS/bin/rsb_hub" "$RSBINDER_TOOLS/bin/rsb_service" \
    "$RSBINDER_TOOLS/bin/rsb_device" "$release/rsb-calc-service" "$release/rsb-calc-client" \
    "$release/rb-servicemanager" "$release/rb-calculator" "$release/rb-calc-client" \
    "$here/vm/demo.sh" "$here/vm/binderfs-selftest.sh"; do
    interop_bins+=(--bin "$f")
done
# The kernel's binderfs selftest runs in the interop boots (scripts/vm/binderfs-selftest.sh);
# built from the kernel source, not kept in the repository. Without it, its cases fail there.
step "the kernel's binderfs selftest (static, from the kernel source)"
if bash "$here/build-binderfs-selftest.sh" "$top/tests/target/binderfs_test"; then
    interop_bins+=(--bin "$top/tests/target/binderfs_test")
else
    echo "check: the binderfs selftest did not build" >&2
fi
# Every check interop.sh has: one the guest never got to (a run that ended early) fails by name.
interop_checks=
if [ "$interop" = 1 ]; then
    interop_checks=$(sh "$here/vm/interop.sh" --list) || interop_checks=
    if [ -z "$interop_checks" ]; then
        echo "FAIL interop_list: scripts/vm/interop.sh --list failed" >"$runs/interop-list"
        cat "$runs/interop-list"
        count "$runs/interop-list"
    fi
fi
for driver in c rust; do
    [ "$interop" = 1 ] || break
    name=$([ "$driver" = c ] && echo "C driver (binder_linux.ko)" || echo "rust_binder")
    step "VM: interop with rsbinder, and the demo's story, on the $name"
    bash "$here/vm.sh" --driver "$driver" --out "$runs/interop-$driver" --kernel "$kernel" \
        "${interop_bins[@]}" --run "$here/vm/interop.sh" --expect "$interop_checks"
    cat "$runs/interop-$driver/results"
    [ ! -f "$runs/interop-$driver/log-excerpt" ] || cat "$runs/interop-$driver/log-excerpt"
    count "$runs/interop-$driver/results"
    # The side-by-side table reads each driver's results as one file.
    cat "$runs/$driver/results" "$runs/interop-$driver/results" >"$runs/all-$driver"
done
[ "$interop" = 1 ] || for driver in c rust; do cp "$runs/$driver/results" "$runs/all-$driver"; done

# binder-stress for about a minute per driver, one boot each (scripts/stress.sh; `make stress`
# runs it longer): kills, thread exits, every reply checked, the watchdog, and on rust_binder
# the unload's census.
for driver in c rust; do
    rm -f "$runs/stress-$driver/results"
    STRESS_SECONDS=${RB_CHECK_STRESS_SECONDS:-60} DRIVER=$driver \
        bash "$here/stress.sh" --no-build --out-prefix "$runs/stress" | grep -v '^[0-9]* passed, [0-9]* failed$' || true
    if [ ! -f "$runs/stress-$driver/results" ]; then
        mkdir -p "$runs/stress-$driver"
        echo "FAIL stress/traffic: scripts/stress.sh did not boot" >"$runs/stress-$driver/results"
    fi
    count "$runs/stress-$driver/results"
    cat "$runs/stress-$driver/results" >>"$runs/all-$driver"
done

# ---- The fuzzer (issue 13): binder-fuzz with a fixed seed, a minute on each driver (rust_binder
# for as many operations as the C driver got through), their outcomes compared operation by
# operation; any kernel report, census leak or real difference fails (scripts/fuzz.sh).
step "VM: the fuzzer, seed 1, on both drivers, compared (scripts/fuzz.sh)"
FUZZ_BUILD=0 FUZZ_OUT=$runs SEED=1 FUZZ_SECONDS=60 FUZZ_ITERATIONS=0 DRIVER=both FAULTS=0 \
    bash "$here/fuzz.sh"
[ -s "$runs/fuzz-results" ] || echo "FAIL fuzz/run: scripts/fuzz.sh gave no result" >"$runs/fuzz-results"
# A real difference seed 1 is known to meet, open, is printed above and kept in the results
# as a note, not counted as a failure here (`make fuzz` still fails on it): set
# fuzz_known_open to its operation number and fuzz_known_outcomes to the two outcome lines
# fuzz-diff printed for it (C's, then rust_binder's), so that another difference at the same
# operation is not taken for it (README, "The fuzzer"); fuzz_known_outcomes is the two lines'
# outcomes as fuzz-diff prints them, each starting "=> " and ending "|", e.g.
# "=> EAGAIN w=0 r=0|=> ok w=0 r=4 NOOP|". None is open: seed 1 matches C for its first 100000
# operations, far beyond the ~24600 a minute gives the C driver here (the differences at 1643,
# 1702, 1713, 1826, 3511, 5711, 6947, 11611, 13559, 19855, 21549 and 28649 are fixed). A real
# difference fails the run, as do kernel reports, leaks and census failures.
fuzz_known_open=
fuzz_known_outcomes=
if [ -n "$fuzz_known_open" ] &&
    grep -A2 "^# real difference at operation $fuzz_known_open " "$runs/fuzz-diff" 2>/dev/null |
    sed -n '2,3s/^#     [A-Za-z]*: *//p' | tr '\n' '|' | grep -qxF "$fuzz_known_outcomes"; then
    sed -i "s/^FAIL fuzz\/differential:/note fuzz\/differential (open, operation $fuzz_known_open, not counted):/" \
        "$runs/fuzz-results"
fi
count "$runs/fuzz-results"

step "side by side (a case must pass on both drivers)"
awk '
    FNR == 1 { file++ }
    /^(ok|FAIL) / {
        name = $2; sub(/:$/, "", name)
        if (name ~ /^(guest_finished|kernel_log_clean|case_list)$/) next
        if (!(name in seen)) { seen[name] = 1; order[++n] = name }
        res[file, name] = $1
    }
    END {
        printf "%-48s %-6s %-6s\n", "case", "C", "rust"
        for (i = 1; i <= n; i++) {
            c = res[1, order[i]]; r = res[2, order[i]]
            printf "%-48s %-6s %-6s\n", order[i], c ? c : "-", r ? r : "-"
        }
    }' "$runs/all-c" "$runs/all-rust"

if [ "${RB_CHECK_SKIP_SELFTEST:-0}" != 1 ]; then
    step "self-test: the kernel log check must catch a deliberate leak"
    selftest=$runs/leak-selftest-result
    bash "$here/vm.sh" --driver rust --out "$runs/leak-selftest" --kernel "$kernel" --selftest leak >/dev/null
    if grep -q '^FAIL kernel_log_clean' "$runs/leak-selftest/results" &&
        grep -q 'unreferenced object' "$runs/leak-selftest/log-excerpt"; then
        echo "ok   leak_check_catches_a_leak" >"$selftest"
    else
        echo "FAIL leak_check_catches_a_leak: a leaking module went unnoticed" >"$selftest"
    fi
    cat "$selftest"
    count "$selftest"
fi

step "summary"
printf 'host tests:   %s passed, %s failed\n' "$(grep -c '^ok' "$host")" "$(grep -c '^FAIL' "$host")"
for driver in c rust; do
    printf '%-13s %s passed, %s failed\n' "$driver driver:" \
        "$(grep -c '^ok' "$runs/all-$driver")" "$(grep -c '^FAIL' "$runs/all-$driver")"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
