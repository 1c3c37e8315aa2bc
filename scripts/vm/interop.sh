#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# Interop checks, in the test VM (vm.sh --run): third-party binder userspace, rsbinder's
# tools and library, against the loaded driver, and interchangeable with our own programs.
#
#   with rsb_hub as the service manager: rsbinder's service registers and rsb_service lists
#   it; rsbinder's client calls it; our rb-calculator registers and rsbinder's client calls
#   it; our rb-calc-client calls rsbinder's service
#
#   with our rb-servicemanager: rsbinder's service registers, rsb_service lists it, and
#   rsbinder's client and ours call it; rsbinder's blocking lookup, which registers for
#   notifications, gets a service registered after it started waiting
#
#   the demo's story (scripts/vm/demo.sh, in /bin as demo.sh)
#
# Prints one "ok NAME" or "FAIL NAME: why" line per check; lines starting with "#" are the
# programs' logs after a failure.
#
# Needs in /bin: rsb_hub, rsb_service, rsb-calc-service, rsb-calc-client, rb-servicemanager,
# rb-calculator, rb-calc-client and demo.sh.

logs=/tmp/interop
rm -rf "$logs"
mkdir -p "$logs"
pids=

# rsbinder opens /dev/binderfs/binder. The C driver's binderfs mount has it; rust_binder's
# misc device is /dev/binder, so it gets a link in the same place.
if [ ! -e /dev/binderfs/binder ]; then
    mkdir -p /dev/binderfs
    ln -s /dev/binder /dev/binderfs/binder
fi
# rsb_hub logs at warn and above by default; info shows what it serves.
export RUST_LOG=info

ok() { echo "ok   $1"; }
fail() { # fail NAME WHY: the result line, then every program's log
    echo "FAIL $1: $2"
    for f in "$logs"/*; do
        [ -s "$f" ] || continue
        echo "# ---- $(basename "$f")"
        tail -n 15 "$f" | sed 's/^/#   /'
    done
}
check() { # check NAME WHY COMMAND...: ok when COMMAND succeeds
    name=$1 why=$2
    shift 2
    if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}

# start NAME COMMAND...: runs COMMAND in the background, its output in $logs/NAME.
start() {
    name=$1
    shift
    "$@" >"$logs/$name" 2>&1 &
    pids="$pids $!"
}

# stop_all: kills everything started, and waits until it is gone.
stop_all() {
    for pid in $pids; do kill -9 "$pid" 2>/dev/null; done
    for pid in $pids; do wait "$pid" 2>/dev/null; done
    pids=
}

# until_ok COMMAND...: retries COMMAND until it succeeds (a watchdog of 30 s in all, and of
# 10 s for each try, never reached by a working driver; not a timing assertion).
until_ok() {
    deadline=$(($(date +%s) + 30))
    while ! timeout 10 "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# run NAME COMMAND...: runs COMMAND with a watchdog, its output in $logs/NAME.
run() {
    name=$1
    shift
    timeout 20 "$@" >"$logs/$name" 2>&1
}

lists() { timeout 10 rsb_service list 2>/dev/null | grep -qx "$1"; }
has() { grep -q "$2" "$logs/$1"; }

# ---- rsb_hub as the service manager
start rsb_hub rsb_hub --insecure-allow-all
check interop_rsb_hub_serves "rsb_hub did not become the service manager" \
    until_ok rsb_service check manager

start rsb-calc-service rsb-calc-service rsb.calculator
check interop_rsb_service_registers_with_rsb_hub "rsb_service check never found rsb.calculator" \
    until_ok rsb_service check rsb.calculator
check interop_rsb_service_list_on_rsb_hub "rsb_service list does not show rsb.calculator" \
    lists rsb.calculator
run rsb-client rsb-calc-client rsb.calculator 2 3
check interop_rsb_client_calls_rsb_service_via_rsb_hub "rsbinder's add(2, 3) was not 5" \
    has rsb-client "add(2, 3) = 5"

start rb-calculator rb-calculator --name calculator
check interop_our_service_registers_with_rsb_hub "rsb_service list never showed calculator" \
    until_ok sh -c "rsb_service list | grep -qx calculator"
run rsb-client-ours rsb-calc-client calculator 6 7
check interop_rsb_client_calls_our_service_via_rsb_hub "rsbinder's add(6, 7) on ours was not 13" \
    has rsb-client-ours "add(6, 7) = 13"
run rb-client rb-calc-client --name rsb.calculator 4 5
check interop_our_client_calls_rsb_service_via_rsb_hub "our add(4, 5) on rsbinder's was not 9" \
    has rb-client "reply 9$"
run rb-list rb-calc-client --list
check interop_our_client_lists_rsb_hub "our listServices on rsb_hub misses a service" \
    sh -c "grep -qx manager $logs/rb-list && grep -qx calculator $logs/rb-list &&
        grep -qx rsb.calculator $logs/rb-list"
stop_all
rm -f "$logs"/*

# ---- our rb-servicemanager as the service manager
start rb-servicemanager rb-servicemanager
# rsbinder gives up on handle 0 for good if the first call to it fails: start it only once
# the service manager answers.
check interop_our_servicemanager_serves "rb-servicemanager did not answer listServices" \
    until_ok rb-calc-client --list
start rsb-calc-service rsb-calc-service rsb.calculator
check interop_rsb_service_registers_with_our_servicemanager \
    "rsb_service check never found rsb.calculator" \
    until_ok rsb_service check rsb.calculator
check interop_rsb_service_list_on_our_servicemanager "rsb_service list does not show rsb.calculator" \
    lists rsb.calculator
run rsb-client rsb-calc-client rsb.calculator 2 3
check interop_rsb_client_via_our_servicemanager "rsbinder's add(2, 3) was not 5" \
    has rsb-client "add(2, 3) = 5"
run rb-client rb-calc-client --name rsb.calculator 4 5
check interop_our_client_calls_rsb_service "our add(4, 5) on rsbinder's was not 9" \
    has rb-client "reply 9$"
# rsbinder's blocking lookup registers a callback (registerForNotifications) and is told of the
# service when it registers (onRegistration), in addition to polling once a second.
start rsb-waiter rsb-calc-client --wait rsb.later 20 22
until_ok sh -c "grep -q registerForNotifications $logs/rb-servicemanager"
start rsb-later rsb-calc-service rsb.later
i=0
while ! has rsb-waiter "= 42" && [ "$i" -lt 300 ]; do
    i=$((i + 1))
    sleep 0.1
done
check interop_rsb_wait_for_service_on_our_servicemanager "rsbinder's wait_for_interface never got rsb.later" \
    has rsb-waiter "add(20, 22) = 42"
stop_all
rm -f "$logs"/*

# ---- the demo's story
echo "# ---- the demo's story"
demo.sh "${RB_DRIVER:-?}" >"$logs/demo" 2>&1
while IFS= read -r line; do
    case "$line" in
    "ok "* | "FAIL "*) echo "$line" ;;
    *) echo "#   $line" ;;
    esac
done <"$logs/demo"
grep -q -E '^(ok|FAIL) +demo_story' "$logs/demo" ||
    echo "FAIL demo_story: the demo script ended without a verdict"
stop_all
exit 0
