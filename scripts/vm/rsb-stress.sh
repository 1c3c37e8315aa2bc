#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# A reproduction, not part of `make check`: rsbinder's client, on its own thread pool, sends
# rsbinder's service new local objects in synchronous calls (rsb-calc-client --stress), one
# sender and then three, 100 calls each, while another thread looks the service up through
# rsb_hub and calls add. It passes on the C driver (1-3 s a run under TCG) and hangs on
# rust_binder (issue 9, item 1: a sender waits for a reply that never comes while every
# thread of every process is idle). Run it in the VM with
#
#   scripts/vm.sh --driver c|rust --out DIR --run scripts/vm/rsb-stress.sh \
#       --bin ~/.cache/rust_binder/rsbinder-tools-0.12.0/bin/rsb_hub \
#       --bin ~/.cache/rust_binder/rsbinder-tools-0.12.0/bin/rsb_service \
#       --bin tests/target/x86_64-unknown-linux-musl/release/rsb-calc-service \
#       --bin tests/target/x86_64-unknown-linux-musl/release/rsb-calc-client
#
# It prints "ok   rsb_object_stress" or "FAIL rsb_object_stress: ..." with the client's
# account of which thread waits for what.

if [ ! -e /dev/binderfs/binder ]; then
    mkdir -p /dev/binderfs
    ln -s /dev/binder /dev/binderfs/binder
fi
logs=/tmp/rsb-stress
mkdir -p "$logs"

# up COMMAND...: retries COMMAND for up to 30 s (a watchdog, not a timing assertion).
up() {
    i=0
    until timeout 10 "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 60 ] || return 1
        sleep 0.5
    done
}

rsb_hub --insecure-allow-all >"$logs/hub" 2>&1 &
up rsb_service check manager || { echo "FAIL rsb_object_stress: rsb_hub did not start"; exit 0; }
rsb-calc-service rsb.calculator >"$logs/service" 2>&1 &
up rsb_service check rsb.calculator ||
    { echo "FAIL rsb_object_stress: the service did not register"; exit 0; }
for senders in 1 3; do
    if ! timeout 300 rsb-calc-client --stress rsb.calculator "$senders" 100 >"$logs/client" 2>&1; then
        echo "FAIL rsb_object_stress: $senders sender(s):"
        sed 's/^/#   /' "$logs/client" | tail -n 30
        exit 0
    fi
    sed -n 's/^\[rsb-calc-client [0-9]*\] stress passed: \(.*\):$/#   \1/p' "$logs/client"
done
echo "ok   rsb_object_stress"
