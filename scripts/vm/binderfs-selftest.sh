#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the kernel's binderfs selftest (/bin/binderfs_test, built by
# scripts/build-binderfs-selftest.sh) against the loaded driver, in the test VM, and prints one
# "ok binderfs_test/CASE (TIME)" or "FAIL binderfs_test/CASE: why (TIME)" line per case of its
# TAP output, TIME being how long the case took. A skipped case fails: each must run (the
# unprivileged ones need CONFIG_USER_NS). After a failure, the selftest's own output follows as
# "#" lines.
#
#   binderfs-selftest.sh --list    prints the names of the cases, one a line

cases="binderfs_stress binderfs_test_privileged binderfs_test_unprivileged"
if [ "${1:-}" = --list ]; then
    for c in $cases; do echo "binderfs_test/$c"; done
    exit 0
fi

failed=
for c in $cases; do
    log=/tmp/binderfs_test.$c.log
    start=$(cut -d' ' -f1 /proc/uptime)
    # A watchdog, never reached by a working driver (the stress case makes 1000 devices).
    timeout 600 /bin/binderfs_test -t "$c" >"$log" 2>&1
    status=$?
    end=$(cut -d' ' -f1 /proc/uptime)
    # How long the case took, to compare the drivers by (the harness's own limit, 30 s, is
    # raised for the VM: see scripts/build-binderfs-selftest.sh).
    took="($(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s)"
    line=$(grep -E "^(not )?ok [0-9]+ global\.$c( |$)" "$log" | head -n 1)
    case "$line" in
    "ok "*"# SKIP"*) echo "FAIL binderfs_test/$c: skipped (${line#*# SKIP })"; failed="$failed $c" ;;
    "ok "*) echo "ok   binderfs_test/$c $took" ;;
    "not ok "*) echo "FAIL binderfs_test/$c: the selftest says: $line $took"; failed="$failed $c" ;;
    *) echo "FAIL binderfs_test/$c: no result (binderfs_test exited with status $status) $took"; failed="$failed $c" ;;
    esac
done
for c in $failed; do sed 's/^/#   /' "/tmp/binderfs_test.$c.log"; done
exit 0
