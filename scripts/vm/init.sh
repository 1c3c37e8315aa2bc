#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test VM. Loads one binder driver, runs the conformance suite, scans for leaks
# and hands the results to the host on the second serial port (ttyS1), then powers off.
#
# Kernel command line: rb.driver=c|rust [rb.selftest=leak] [rb.filter=NAME[,NAME...]]
# With /etc/rb-run present (vm.sh --run), that script runs instead of the suite.

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmp /tmp

out=/dev/ttyS1
say() { echo "$*" >"$out"; }

driver=
selftest=
filter=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    rb.driver=*) driver=${arg#rb.driver=} ;;
    rb.selftest=*) selftest=${arg#rb.selftest=} ;;
    rb.filter=*) filter=$(echo "${arg#rb.filter=}" | tr ',' ' ') ;;
    esac
done

finish() {
    say "RB_EXIT $1"
    sync
    reboot -f
}

# kmemleak silently abandons a scan when the task that asked for it has a signal pending, and
# this shell gets SIGCHLD from every finished child: scans are requested from a child shell.
kmemleak=/sys/kernel/debug/kmemleak
kmemleak_scan() { sh -c "echo scan >$kmemleak"; }

# Leaks from booting are no concern of ours: mark everything found so far as reported.
if [ -w "$kmemleak" ]; then
    kmemleak_scan
    echo clear >"$kmemleak"
fi

case "$driver" in
c)
    # With binderfs built in, the C driver only creates devices inside binderfs mounts.
    insmod /lib/modules/binder_linux.ko devices=binder,hwbinder,vndbinder || finish 90
    mkdir -p /dev/binderfs
    mount -t binder binder /dev/binderfs || finish 91
    for d in binder hwbinder vndbinder; do ln -s "binderfs/$d" "/dev/$d"; done
    ;;
rust)
    insmod /lib/modules/rust_binder.ko || finish 92
    ;;
*)
    say "init: no rb.driver= on the kernel command line"
    finish 93
    ;;
esac

rc=0
if [ "$selftest" = leak ]; then
    # Proves that the leak check can fail: this module leaks on purpose.
    insmod /lib/modules/rb_leak_selftest.ko || rc=94
elif [ -x /etc/rb-run ]; then
    # A program of the host's choosing (vm.sh --run): the demo, interop checks, the benchmark.
    say "=== results"
    RB_DRIVER=$driver /etc/rb-run "$driver" >"$out" 2>&1 || rc=$?
else
    say "=== results"
    # shellcheck disable=SC2086 # $filter is a list of case name filters.
    /bin/conformance --driver "$driver" --module /lib/modules/rust_binder.ko $filter >"$out" 2>&1 || rc=$?
fi

# kmemleak reports an object once it is old enough and a scan after its first one finds it
# unreferenced; under TCG a leak made just before took three to five scans some seconds apart
# in practice. Scan up to eight times, stopping at the first report. (Turning off the scan of
# task stacks, which can hold stale pointers, made detection worse, not better.)
if [ -w "$kmemleak" ]; then
    for i in 1 2 3 4 5 6 7 8; do
        sleep 5
        kmemleak_scan
        say "kmemleak scan $i done at $(cut -d' ' -f1 /proc/uptime) s"
        [ -z "$(head -c 1 "$kmemleak")" ] || break
    done
    say "=== kmemleak"
    cat "$kmemleak" >"$out"
fi
say "=== end"
finish "$rc"
