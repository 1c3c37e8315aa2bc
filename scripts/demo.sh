#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo [DRIVER=rust|c]`: the demo's story in the test VM on one driver (rust_binder by
# default). A service manager, a calculator service and its client, built on tests/
# binder-client (tests/demo), do their work while each step prints what happened; see
# scripts/vm/demo.sh. Exits 0 when the story went as told.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
kernel=$(kernel_out debug)
driver=${DRIVER:-rust}
case "$driver" in c | rust) ;; *) echo "demo: DRIVER=rust or DRIVER=c" >&2; exit 2 ;; esac

echo "demo: building the programs (static, $MUSL_TARGET)"
(cd "$top/tests" && BINDER_UAPI_INCLUDE=$kernel/usr/include \
    cargo build --release --locked --quiet --target "$MUSL_TARGET")
bin=$top/tests/target/$MUSL_TARGET/release
out=$top/tests/target/vm/demo-$driver

echo "demo: booting the test kernel with the $driver driver (a minute or two under QEMU)"
status=0
bash "$here/vm.sh" --driver "$driver" --out "$out" --kernel "$kernel" \
    --bin "$bin/rb-servicemanager" --bin "$bin/rb-calculator" --bin "$bin/rb-calc-client" \
    --run "$here/vm/demo.sh" --expect demo_story || status=$?
echo
sed -n '/^=== results/,/^=== /p' "$out/guest.log" | tr -d '\r' | grep -v -e '^=== ' -e '^kmemleak scan'
echo
[ ! -f "$out/log-excerpt" ] || cat "$out/log-excerpt"
grep -v '^ok' "$out/results" || true
if [ "$status" = 0 ]; then
    echo "demo: done; the guest's output is in $out/guest.log"
else
    echo "demo: something went wrong; see $out/guest.log and $out/console.log" >&2
fi
exit "$status"
