#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# Interop checks, in the test VM (vm.sh --run): third-party binder userspace, rsbinder's
# tools and library, against the loaded driver, and interchangeable with our own programs.
#
#   binderfs: rsbinder's rsb_device mounts the driver's binderfs on /dev/binderfs (the C boot
#   has it mounted already) and makes a device there with binder-control; every check below
#   then runs on /dev/binderfs/binder, which /dev/binder links to. The kernel's own binderfs
#   selftest runs too (scripts/vm/binderfs-selftest.sh).
#
#   with rsb_hub as the service manager: rsbinder's service registers and rsb_service lists
#   it; rsbinder's client calls it; our rb-calculator registers and rsbinder's client calls
#   it; our rb-calc-client calls rsbinder's service; rsb_service dumps rsb_hub and our
#   rb-calculator (DUMP_TRANSACTION: an fd, with TF_CLEAR_BUF); files go both ways between
#   rsbinder's client and our service, and between our client and rsbinder's service
#   (sumFile: a ParcelFileDescriptor, a pipe or a memfd, each way); rsbinder's client, on its
#   thread pool, sends new local objects to rsbinder's service in calls from several threads
#   while another thread looks the service up and calls it (rsb-calc-client --stress)
#
#   with our rb-servicemanager: rsbinder's service registers, rsb_service lists it, and
#   rsbinder's client and ours call it; files both ways as with rsb_hub (the other kind of
#   file each way); rsbinder's blocking lookup, which registers for notifications, gets a
#   service registered after it started waiting; the same stress as with rsb_hub
#
#   the demo's story (scripts/vm/demo.sh, in /bin as demo.sh)
#
# Prints one "ok NAME" or "FAIL NAME: why" line per check; lines starting with "#" are the
# programs' logs after a failure.
#
#   interop.sh --list    prints the name of every check, one a line, and does nothing else
#                        (also on the host: check.sh gives them to vm.sh --expect, so that a
#                        check the guest never got to counts as failed)
#
# Needs in /bin: rsb_hub, rsb_service, rsb_device, rsb-calc-service, rsb-calc-client,
# rb-servicemanager, rb-calculator, rb-calc-client, demo.sh, binderfs_test and
# binderfs-selftest.sh.

# Every check, in the order they run. A check run under a name missing here fails as
# interop_checks_listed, so that the list cannot silently fall behind the checks.
checks="
    interop_rsb_device_mounts_binderfs
    interop_rsb_device_adds_a_device
    binderfs_test/binderfs_stress
    binderfs_test/binderfs_test_privileged
    binderfs_test/binderfs_test_unprivileged
    interop_rsb_hub_serves
    interop_rsb_service_registers_with_rsb_hub
    interop_rsb_service_list_on_rsb_hub
    interop_rsb_client_calls_rsb_service_via_rsb_hub
    interop_our_service_registers_with_rsb_hub
    interop_rsb_client_calls_our_service_via_rsb_hub
    interop_our_client_calls_rsb_service_via_rsb_hub
    interop_our_client_lists_rsb_hub
    interop_rsb_service_dumps_rsb_hub
    interop_rsb_service_dumps_our_service_via_rsb_hub
    interop_rsb_client_our_service_fds_both_ways_via_rsb_hub
    interop_our_client_rsb_service_fds_both_ways_via_rsb_hub
    interop_rsb_object_stress_via_rsb_hub
    interop_our_servicemanager_serves
    interop_rsb_service_registers_with_our_servicemanager
    interop_rsb_service_list_on_our_servicemanager
    interop_rsb_client_via_our_servicemanager
    interop_our_client_calls_rsb_service
    interop_rsb_client_our_service_fds_both_ways
    interop_our_client_rsb_service_fds_both_ways
    interop_rsb_wait_for_service_on_our_servicemanager
    interop_rsb_object_stress_via_our_servicemanager
    demo_story
"
# shellcheck disable=SC2086,SC2116 # on one line, the names between single spaces
checks=$(echo $checks)
if [ "${1:-}" = --list ]; then
    for c in $checks; do echo "$c"; done
    exit 0
fi

logs=/tmp/interop
rm -rf "$logs"
mkdir -p "$logs"
pids=

# rsb_hub logs at warn and above by default; info shows what it serves.
export RUST_LOG=info

# listed NAME: a result line of its own when NAME is not in $checks.
listed() {
    case " $checks " in
    *" $1 "*) ;;
    *) echo "FAIL interop_checks_listed: $1 is not in interop.sh's list of checks" ;;
    esac
}
ok() { listed "$1"; echo "ok   $1"; }
fail() { # fail NAME WHY: the result line, then every program's log
    listed "$1"
    echo "FAIL $1: $2"
    for f in "$logs"/*; do
        [ -s "$f" ] || continue
        echo "# ---- $(basename "$f")"
        tail -n 15 "$f" | sed 's/^/#   /'
    done
}
failed=
check() { # check NAME WHY COMMAND...: ok when COMMAND succeeds
    # Names of their own: the command may be one of the functions below.
    check_name=$1 check_why=$2
    shift 2
    if "$@"; then
        ok "$check_name"
    else
        fail "$check_name" "$check_why"
        failed="$failed $check_name "
    fi
}
# after PREREQ check NAME WHY COMMAND...: the check, unless PREREQ failed (then it fails at
# once, saying so, rather than waiting out its watchdog for nothing).
after() {
    case "$failed" in
    *" $1 "*)
        listed "$3"
        echo "FAIL $3: skipped, as $1 failed"
        failed="$failed $3 "
        ;;
    *)
        shift
        "$@"
        ;;
    esac
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
# answers LOG PATTERN COMMAND...: runs COMMAND (a call) and looks for PATTERN in its output.
answers() {
    log=$1 pattern=$2
    shift 2
    run "$log" "$@"
    has "$log" "$pattern"
}

# dumps LOG PATTERN NAME: rsb_service dump NAME (rsbinder sends a dup of its stdout, the log,
# in a DUMP_TRANSACTION with TF_CLEAR_BUF; the service writes into it), then looks for PATTERN.
dumps() {
    answers "$1" "$2" rsb_service dump "$3"
}

# rsbinder's blocking lookup registers a callback (registerForNotifications) and is told of
# the service when it registers (onRegistration), besides polling once a second.
waits_for_later_service() {
    start rsb-waiter rsb-calc-client --wait rsb.later 20 22
    until_ok sh -c "grep -q registerForNotifications $logs/rb-servicemanager" || return 1
    start rsb-later rsb-calc-service rsb.later
    deadline=$(($(date +%s) + 30))
    while ! has rsb-waiter "add(20, 22) = 42"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# stresses NAME: rsbinder's client sends rsbinder's service (registered as NAME) new local
# objects in synchronous calls from several threads, 100 each, while one more thread looks
# NAME up and calls add (rsb-calc-client --stress): first one sender (two threads at once, as
# when two of rsbinder's own integration tests run together), then three. The client fails
# itself, naming what each thread waits for, when one got no answer for 60 s; the timeout is
# a watchdog of its own, in case the client cannot even do that. Each run's summary (how many
# calls, how long) is a "#" line.
stresses() {
    for senders in 1 3; do
        timeout 300 rsb-calc-client --stress "$1" "$senders" 100 >"$logs/rsb-stress-$senders" 2>&1 ||
            return 1
        has "rsb-stress-$senders" "stress passed" || return 1
        sed -n 's/^\[rsb-calc-client [0-9]*\] stress passed: \(.*\):$/#   \1/p' \
            "$logs/rsb-stress-$senders"
    done
}

# ---- binderfs
# rsbinder opens /dev/binderfs/binder. The C boot mounted binderfs there and linked /dev/binder
# to it; with rust_binder, /dev/binder is its misc device, another context than the binderfs
# device: it goes, so that rsb_device links /dev/binder to /dev/binderfs/binder, and our
# programs (which open /dev/binder) meet rsbinder's on the same device.
[ "${RB_DRIVER:-}" != rust ] || rm -f /dev/binder
mounts_binderfs() {
    rsb_device binder >"$logs/rsb_device-binder" 2>&1 &&
        grep -q '^[^ ]* /dev/binderfs binder ' /proc/mounts &&
        [ -c /dev/binderfs/binder ] && [ "$(readlink -f /dev/binder)" = /dev/binderfs/binder ]
}
check interop_rsb_device_mounts_binderfs \
    "rsb_device did not mount binderfs on /dev/binderfs with binder in it, /dev/binder its link" \
    mounts_binderfs
adds_device() {
    rsb_device rsbdev >"$logs/rsb_device-rsbdev" 2>&1 && [ -c /dev/binderfs/rsbdev ] &&
        grep -q "New binder device allocated" "$logs/rsb_device-rsbdev"
}
check interop_rsb_device_adds_a_device "rsb_device rsbdev made no /dev/binderfs/rsbdev" adds_device
rm -f "$logs"/*
binderfs-selftest.sh

# ---- rsb_hub as the service manager
hub=interop_rsb_hub_serves
rsb=interop_rsb_service_registers_with_rsb_hub
ours=interop_our_service_registers_with_rsb_hub
start rsb_hub rsb_hub --insecure-allow-all
check $hub "rsb_hub did not become the service manager" \
    until_ok rsb_service check manager
start rsb-calc-service rsb-calc-service rsb.calculator
after $hub check $rsb "rsb_service check never found rsb.calculator" \
    until_ok rsb_service check rsb.calculator
after $rsb check interop_rsb_service_list_on_rsb_hub "rsb_service list misses rsb.calculator" \
    lists rsb.calculator
after $rsb check interop_rsb_client_calls_rsb_service_via_rsb_hub "rsbinder's add(2, 3) not 5" \
    answers rsb-client "add(2, 3) = 5" rsb-calc-client rsb.calculator 2 3
start rb-calculator rb-calculator --name calculator
after $hub check $ours "rsb_service list never showed calculator" \
    until_ok sh -c "rsb_service list | grep -qx calculator"
after $ours check interop_rsb_client_calls_our_service_via_rsb_hub "rsbinder's add(6, 7) not 13" \
    answers rsb-client-ours "add(6, 7) = 13" rsb-calc-client calculator 6 7
after $rsb check interop_our_client_calls_rsb_service_via_rsb_hub "our add(4, 5) not 9" \
    answers rb-client "reply 9$" rb-calc-client --name rsb.calculator 4 5
after $hub check interop_our_client_lists_rsb_hub "our listServices misses a service" \
    sh -c "timeout 20 rb-calc-client --list >$logs/rb-list 2>&1 &&
        grep -qx manager $logs/rb-list && grep -qx calculator $logs/rb-list &&
        grep -qx rsb.calculator $logs/rb-list"
after $rsb check interop_rsb_service_dumps_rsb_hub \
    "rsb_service dump manager does not list rsb.calculator" \
    dumps rsb-dump-hub "^  rsb.calculator$" manager
after $ours check interop_rsb_service_dumps_our_service_via_rsb_hub \
    "rsb_service dump calculator did not get our service's line" \
    dumps rsb-dump-ours 'rb.demo.ICalculator registered as "calculator"' calculator
# sumFile: the client's file (a pipe from rsbinder's, a memfd from ours) goes to the service,
# which reads it and answers in a new memfd of its own, which the client reads.
after $ours check interop_rsb_client_our_service_fds_both_ways_via_rsb_hub \
    "rsbinder's pipe to our sumFile did not come back as a memfd saying 6" \
    answers rsb-sum-ours "answered .*/memfd:sum.*: 1 + 2 + 3 = 6$" \
    rsb-calc-client --sum --pipe calculator 1 2 3
after $rsb check interop_our_client_rsb_service_fds_both_ways_via_rsb_hub \
    "our memfd to rsbinder's sumFile did not come back as a memfd saying 15" \
    answers rb-sum-rsb '/memfd:sum.*says "4 + 5 + 6 = 15"$' \
    rb-calc-client --name rsb.calculator --sum 4 5 6
after $rsb check interop_rsb_object_stress_via_rsb_hub \
    "rsbinder's calls carrying new objects, on several threads, did not all finish" \
    stresses rsb.calculator
stop_all
rm -f "$logs"/*

# ---- our rb-servicemanager as the service manager
sm=interop_our_servicemanager_serves
rsb=interop_rsb_service_registers_with_our_servicemanager
start rb-servicemanager rb-servicemanager
# rsbinder gives up on handle 0 for good if the first call to it fails: start it only once
# the service manager answers.
check $sm "rb-servicemanager did not answer listServices" \
    until_ok rb-calc-client --list
start rsb-calc-service rsb-calc-service rsb.calculator
after $sm check $rsb "rsb_service check never found rsb.calculator" \
    until_ok rsb_service check rsb.calculator
after $rsb check interop_rsb_service_list_on_our_servicemanager "rsb_service list misses it" \
    lists rsb.calculator
after $rsb check interop_rsb_client_via_our_servicemanager "rsbinder's add(2, 3) not 5" \
    answers rsb-client "add(2, 3) = 5" rsb-calc-client rsb.calculator 2 3
after $rsb check interop_our_client_calls_rsb_service "our add(4, 5) on rsbinder's not 9" \
    answers rb-client "reply 9$" rb-calc-client --name rsb.calculator 4 5
start rb-calculator rb-calculator --name calculator
after $sm check interop_rsb_client_our_service_fds_both_ways \
    "rsbinder's memfd to our sumFile did not come back as a memfd saying 24" \
    answers rsb-sum-ours "answered .*/memfd:sum.*: 7 + 8 + 9 = 24$" \
    rsb-calc-client --sum calculator 7 8 9
after $rsb check interop_our_client_rsb_service_fds_both_ways \
    "our pipe to rsbinder's sumFile did not come back as a memfd saying 60" \
    answers rb-sum-rsb '/memfd:sum.*says "10 + 20 + 30 = 60"$' \
    rb-calc-client --name rsb.calculator --sum --pipe 10 20 30
after $rsb check interop_rsb_wait_for_service_on_our_servicemanager \
    "rsbinder's wait_for_interface never got rsb.later" waits_for_later_service
after $rsb check interop_rsb_object_stress_via_our_servicemanager \
    "rsbinder's calls carrying new objects, on several threads, did not all finish" \
    stresses rsb.calculator
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
