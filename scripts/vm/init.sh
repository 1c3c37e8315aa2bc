#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test VM. Loads one binder driver, runs the conformance suite, scans for leaks
# and hands the results to the host on the second serial port (ttyS1), then powers off.
#
# Kernel command line: rb.driver=c|rust [rb.selftest=leak]

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
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    rb.driver=*) driver=${arg#rb.driver=} ;;
    rb.selftest=*) selftest=${arg#rb.selftest=} ;;
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
else
    say "=== results"
    /bin/conformance --driver "$driver" --module /lib/modules/rust_binder.ko >"$out" 2>&1 || rc=$?
fi

# kmemleak reports an object once it is old enough and a scan after its first one finds it
# unreferenced; a leak made just before needs two or three scans some seconds apart. Scan up
# to five times, stopping early once something is reported.
if [ -w "$kmemleak" ]; then
    for i in 1 2 3 4 5; do
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
