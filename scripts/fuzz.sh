#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make fuzz`: the structured fuzzer of the binder interface (tests/fuzz, binder-fuzz), in
# the debug test kernel, on one driver or on both with their outcomes compared.
#
#   SEED=N              the run's seed (default: a new one, printed); the same seed and
#                       FUZZ_ITERATIONS replay the same operations
#   FUZZ_SECONDS=S      how long each driver's run lasts (default 120)
#   FUZZ_ITERATIONS=N   stop after N operations instead (0: no limit but the time)
#   DRIVER=c|rust|both  (default both: the C driver first, then rust_binder for exactly as many
#                       operations, and the two logs compared operation by operation)
#   FAULTS=1            allocation failures injected into the driver's paths (failslab,
#                       fail_page_alloc); no comparison then
#   FUZZ_PROCS=P FUZZ_THREADS=T  processes and threads per process (default 3 and 2)
#   FUZZ_OUT=DIR        where the boots' directories go (default tests/target/vm)
#   FUZZ_BUILD=0        do not build binder-fuzz (make check has built it)
#   FUZZ_DUMP=FROM-TO:P before each operation FROM to TO, process P's debugfs file
#                       (binder/proc/PID, or the whole binder/state where C has none) and
#                       the failed-transaction log go to the boot's guest.log as
#                       "#dump I: ..." lines (binder-fuzz --dump): compare the drivers'
#                       states there (dumping slows the run; an outcome that depends on
#                       timing may then differ)
#
# Each boot is scripts/vm.sh --run scripts/vm/fuzz.sh, in DIR/fuzz-DRIVER (fuzz-DRIVER-faults
# with FAULTS=1): results, console.log, guest.log, and ops.log, the log of every operation and
# its outcome. A kernel report (KASAN, lockdep, WARNING, BUG, hung task, RCU stall), a stuck or
# dead fuzz process, or rust_binder's census finding something alive at rmmod fails the run,
# which prints how to replay it and its last operations. With both drivers, DIR/fuzz-diff
# lists where their outcomes differ (scripts/fuzz-diff.awk); a difference that is neither one
# the README documents as deliberate nor a consequence of one fails.
#
# All result lines go to DIR/fuzz-results too. Exit status 0 when every line is "ok".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
kernel=$(kernel_out debug)
runs=${FUZZ_OUT:-$top/tests/target/vm}
bin=$top/tests/target/$MUSL_TARGET/release/binder-fuzz
seconds=${FUZZ_SECONDS:-120}
iterations=${FUZZ_ITERATIONS:-0}
drivers=${DRIVER:-both}
faults=${FAULTS:-0}
seed=${SEED:-$(($(date +%s%N) % 1000000000))}
case "$drivers" in
both) drivers="c rust" ;;
c | rust) ;;
*) echo "fuzz: DRIVER=c|rust|both" >&2; exit 2 ;;
esac

# Both drivers without faults: their logs are compared, and the inputs on which they
# deliberately differ are left out (one would make every later outcome differ too).
differential=0
[ "$drivers" != "c rust" ] || [ "$faults" = 1 ] || differential=1

mkdir -p "$runs"
results=$runs/fuzz-results
: >"$results"

if [ "${FUZZ_BUILD:-1}" = 1 ]; then
    export BINDER_UAPI_INCLUDE=$kernel/usr/include
    (cd "$top/tests" && nice cargo build --release --locked --target "$MUSL_TARGET" -p fuzz) ||
        { echo "FAIL fuzz/build: binder-fuzz did not build" | tee -a "$results"; exit 1; }
fi
[ -x "$bin" ] || { echo "FAIL fuzz/build: no $bin" | tee -a "$results"; exit 1; }

echo "fuzz: seed $seed, drivers: $drivers, ${seconds} s per run$([ "$iterations" = 0 ] || echo ", at most $iterations operations")$([ "$faults" != 1 ] || echo ", fault injection")"

# boot DRIVER ITERATIONS: one run in the VM; its directory is $runs/fuzz-DRIVER[-faults].
boot() {
    local driver=$1 its=$2 out conf expect
    out=$runs/fuzz-$driver$([ "$faults" != 1 ] || echo -faults)
    conf=$(mktemp -d)/fuzz.conf
    cat >"$conf" <<EOF
FUZZ_SEED=$seed
FUZZ_SECONDS=$seconds
FUZZ_ITERATIONS=$its
FUZZ_PROCS=${FUZZ_PROCS:-3}
FUZZ_THREADS=${FUZZ_THREADS:-2}
FUZZ_FAULTS=$faults
FUZZ_FAULT_PROBABILITY=${FUZZ_FAULT_PROBABILITY:-2}
FUZZ_DIFFERENTIAL=$differential
FUZZ_DUMP=${FUZZ_DUMP:-}
EOF
    expect=fuzz/run
    [ "$driver" != rust ] || expect="$expect fuzz/census"
    [ "$faults" != 1 ] || expect="$expect fuzz/faults"
    # The run, the boot, the kmemleak scans and the log's way out through the serial port.
    bash "$here/vm.sh" --driver "$driver" --out "$out" --kernel "$kernel" --bin "$bin" \
        --bin "$conf" --run "$here/vm/fuzz.sh" --expect "$expect" --timeout $((seconds * 2 + 900))
    rm -rf "$(dirname "$conf")"
    tr -d '\r' <"$out/guest.log" | sed -n '/^=== fuzz-log$/,/^=== fuzz-log end$/p' |
        grep -v '^===' | base64 -d 2>/dev/null | gunzip >"$out/ops.log" 2>/dev/null || true
    # The guest's account of the run, and a failed run's replay line and last operations.
    sed -n '/^=== results/,/^=== /p' "$out/guest.log" | tr -d '\r' | grep '^# ' | head -n 200
    if [ "$faults" = 1 ] && grep -q '^FAIL kernel_log_clean' "$out/results"; then
        allocation_warnings_only "$out" && sed -i "s|^FAIL kernel_log_clean.*|ok   kernel_log_clean ($driver): only the page allocation failures fault injection causes|" "$out/results"
    fi
    cat "$out/results"
    [ ! -f "$out/log-excerpt" ] || cat "$out/log-excerpt"
    cat "$out/results" >>"$results"
    echo "fuzz: $driver: the log of operations is $out/ops.log ($(wc -l <"$out/ops.log" 2>/dev/null || echo 0) lines)"
}

# allocation_warnings_only DIR: the console log has nothing bad once the warnings of failed
# page allocations (the line "page allocation failure" to the end of its stack trace) are
# taken out: with fault injection they are expected.
allocation_warnings_only() {
    local bad
    bad='BUG:|WARNING:|Oops|KASAN:|UBSAN:|general protection fault|Kernel panic|INFO: task .* blocked'
    bad+='|detected stall|possible circular locking|possible recursive locking|inconsistent lock state'
    bad+='|suspicious RCU usage|bad unlock balance|held lock freed|DEBUG_LOCKS_WARN_ON|Call Trace:'
    bad+='|unreferenced object|suspected memory leak|rust_binder: leaked'
    ! { tr -d '\r' <"$1/console.log" | awk '
            /page allocation failure/ { skip = 1 }
            skip { if (/<\/TASK>/) skip = 0; next }
            { print }'
        sed -n '/^=== kmemleak/,/^=== end/p' "$1/guest.log" | tr -d '\r'
    } | grep -q -E "$bad"
}

c_ops=
for driver in $drivers; do
    its=$iterations
    # rust_binder after the C driver: exactly as many operations, so that the logs compare.
    if [ "$driver" = rust ] && [ -n "$c_ops" ] && [ "$c_ops" -gt 0 ]; then
        its=$c_ops
    fi
    echo
    echo "== fuzz: $driver$([ "$faults" != 1 ] || echo ", fault injection"), seed $seed"
    boot "$driver" "$its"
    if [ "$driver" = c ]; then
        c_ops=$(tr -d '\r' <"$runs/fuzz-c/guest.log" | sed -n 's/^# fuzz-operations \([0-9]*\)$/\1/p' | tail -n 1)
    fi
done

if [ "$drivers" = "c rust" ] && [ "$faults" != 1 ]; then
    echo
    echo "== fuzz: the two drivers' outcomes, operation by operation"
    awk -f "$here/fuzz-diff.awk" "$runs/fuzz-c/ops.log" "$runs/fuzz-rust/ops.log" >"$runs/fuzz-diff"
    cat "$runs/fuzz-diff"
    grep -E '^(ok|FAIL) ' "$runs/fuzz-diff" >>"$results"
fi

echo
echo "fuzz: seed $seed: $(grep -c '^ok' "$results") passed, $(grep -c '^FAIL' "$results") failed"
! grep -q '^FAIL' "$results"
