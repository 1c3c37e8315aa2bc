#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# The fuzzer in the test VM (vm.sh --run): runs binder-fuzz against the loaded driver with
# the settings in /bin/fuzz.conf (written by scripts/fuzz.sh), and for rust_binder then
# unloads the module, whose census must find nothing left alive.
#
# With FUZZ_FAULTS=1 the kernel's failslab and fail_page_alloc fault injection is set up for
# the tasks that ask for it (task-filter), and binder-fuzz --faults makes its threads ask
# around each driver call: allocations on the driver's paths fail now and then, and the driver
# must answer with errors, crash nowhere and leak nothing.
#
# Prints "ok   fuzz/NAME" or "FAIL fuzz/NAME: why" lines (and "#" lines about the run), then
# the run's log of operations, gzipped and in base64, between "=== fuzz-log" and
# "=== fuzz-log end", which scripts/fuzz.sh unpacks on the host.

driver=${1:-${RB_DRIVER:-?}}
FUZZ_SEED=1
FUZZ_SECONDS=60
FUZZ_ITERATIONS=0
FUZZ_PROCS=3
FUZZ_THREADS=2
FUZZ_FAULTS=0
FUZZ_FAULT_PROBABILITY=2
FUZZ_DIFFERENTIAL=0
FUZZ_DUMP=
# shellcheck disable=SC1091 # written by scripts/fuzz.sh
[ ! -f /bin/fuzz.conf ] || . /bin/fuzz.conf

log=/tmp/fuzz.log
args="--driver $driver --seed $FUZZ_SEED --seconds $FUZZ_SECONDS --iterations $FUZZ_ITERATIONS"
args="$args --procs $FUZZ_PROCS --threads $FUZZ_THREADS --log $log"

# faults_on: failslab and fail_page_alloc for the tasks with make-it-fail set, at
# FUZZ_FAULT_PROBABILITY percent, without end, and silently (a verbose injection prints a
# stack trace, which the kernel log check would take for a report).
faults_on() {
    dbg=/sys/kernel/debug
    for f in failslab fail_page_alloc; do
        if [ ! -d "$dbg/$f" ]; then
            echo "FAIL fuzz/faults ($driver): no $dbg/$f: the kernel lacks CONFIG_FAILSLAB," \
                "CONFIG_FAIL_PAGE_ALLOC or CONFIG_FAULT_INJECTION_DEBUG_FS"
            return 1
        fi
        echo Y >"$dbg/$f/task-filter"
        echo "$FUZZ_FAULT_PROBABILITY" >"$dbg/$f/probability"
        echo 1 >"$dbg/$f/interval"
        echo -1 >"$dbg/$f/times"
        echo 0 >"$dbg/$f/space"
        echo 0 >"$dbg/$f/verbose"
        echo N >"$dbg/$f/ignore-gfp-wait"
    done
    echo N >"$dbg/fail_page_alloc/ignore-gfp-highmem"
    echo 0 >"$dbg/fail_page_alloc/min-order"
    echo "ok   fuzz/faults ($driver): failslab and fail_page_alloc at $FUZZ_FAULT_PROBABILITY%," \
        "for the fuzzer's driver calls"
}

[ "$FUZZ_DIFFERENTIAL" != 1 ] || args="$args --differential"
[ -z "$FUZZ_DUMP" ] || args="$args --dump $FUZZ_DUMP"
if [ "$FUZZ_FAULTS" = 1 ]; then
    faults_on || exit 0
    args="$args --faults"
fi

# shellcheck disable=SC2086 # $args is a list of arguments
binder-fuzz $args
status=$?
[ "$status" -le 1 ] || echo "FAIL fuzz/run ($driver): binder-fuzz ended with status $status"

if [ "$FUZZ_FAULTS" = 1 ]; then
    echo 0 >/sys/kernel/debug/failslab/probability
    echo 0 >/sys/kernel/debug/fail_page_alloc/probability
fi

# rust_binder's census: unloading it reports whatever is still alive. The C driver releases
# a closed file from a workqueue, and rust_binder may too: retry for a while.
if [ "$driver" = rust ]; then
    i=0
    while ! rmmod rust_binder 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge 40 ]; then
            echo "FAIL fuzz/census ($driver): rmmod rust_binder still refused after 20 s" \
                "(a file or mapping of the driver is still held)"
            break
        fi
        sleep 0.5
    done
    if [ "$i" -lt 40 ]; then
        leaked=$(dmesg | grep 'rust_binder: leaked' | head -n 5 | tr '\n' ';')
        if [ -n "$leaked" ]; then
            echo "FAIL fuzz/census ($driver): $leaked"
        else
            echo "ok   fuzz/census ($driver): rmmod rust_binder, nothing left alive"
        fi
    fi
fi

echo "=== fuzz-log"
[ ! -f "$log" ] || gzip -c "$log" | base64
echo "=== fuzz-log end"
exit 0
