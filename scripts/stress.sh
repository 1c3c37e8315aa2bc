#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make stress`: binder-stress (tests/stress) on each driver in the debug test kernel (KASAN,
# lockdep, kmemleak, the census): many processes and threads on one device for a bounded time,
# every reply checked, processes killed and respawned, a watchdog on every call. See
# scripts/vm/stress.sh for what runs in the guest and the results it prints.
#
#   scripts/stress.sh [--no-build] [--out-prefix PREFIX]
#
# Environment:
#   STRESS_SECONDS=N     how long the traffic lasts in each guest (default 180)
#   DRIVER=c|rust|both   which drivers (default both)
#   STRESS_SEED=N        the run's seed (default binder-stress's fixed one, printed)
#   STRESS_WORKERS=N, STRESS_THREADS=N   processes, and client threads in each
#
# --no-build skips building rust_binder.ko and binder-stress (check.sh has built them).
# Each driver's boot goes to PREFIX-<driver> (default tests/target/vm/stress-<driver>).
# Prints every result, the run's figures, and ends with "N passed, N failed".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
kernel=$(kernel_out debug)

build=1
prefix=$top/tests/target/vm/stress
while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) build=0; shift ;;
    --out-prefix) prefix=$2; shift 2 ;;
    *) echo "stress.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
seconds=${STRESS_SECONDS:-180}
case "$seconds" in '' | *[!0-9]* | 0) echo "stress: STRESS_SECONDS must be a positive number" >&2; exit 2 ;; esac
case "${DRIVER:-both}" in
both) drivers="c rust" ;;
c | rust) drivers=$DRIVER ;;
*) echo "stress: DRIVER=c|rust|both" >&2; exit 2 ;;
esac

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$build" = 1 ]; then
    step "building rust_binder.ko and binder-stress"
    kmake -C "$kernel" M="$top" W=e modules
    (cd "$top/tests" && BINDER_UAPI_INCLUDE=$kernel/usr/include \
        cargo build --release --locked --target "$MUSL_TARGET" -p stress)
fi
bin=$top/tests/target/$MUSL_TARGET/release/binder-stress

passed=0
failed=0
for driver in $drivers; do
    out=$prefix-$driver
    name=$([ "$driver" = c ] && echo "C driver (binder_linux.ko)" || echo "rust_binder")
    step "VM: binder-stress for ${seconds}s on the $name"
    # The guest gets its settings through a wrapper around scripts/vm/stress.sh.
    wrapper=$(mktemp)
    {
        echo '#!/bin/sh'
        echo "export STRESS_SECONDS=$seconds"
        for v in STRESS_SEED STRESS_WORKERS STRESS_THREADS; do
            [ -z "${!v:-}" ] || echo "export $v=${!v}"
        done
        echo 'exec sh /bin/stress.sh "$@"'
    } >"$wrapper"
    # The boot, the run, the 70 s grace of the run's end, the unload and kmemleak's scans.
    bash "$here/vm.sh" --driver "$driver" --out "$out" --kernel "$kernel" --timeout $((seconds + 900)) \
        --bin "$bin" --bin "$here/vm/stress.sh" --run "$wrapper" \
        --expect "$(sh "$here/vm/stress.sh" --list "$driver")" || true
    rm -f "$wrapper"
    tr -d '\r' <"$out/guest.log" | grep -E '^stress: ' | grep -v '^stress: [0-9]* s:' || true
    cat "$out/results"
    [ ! -f "$out/log-excerpt" ] || cat "$out/log-excerpt"
    passed=$((passed + $(grep -c '^ok ' "$out/results" || true)))
    failed=$((failed + $(grep -c '^FAIL ' "$out/results" || true)))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
