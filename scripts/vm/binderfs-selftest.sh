#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the kernel's binderfs selftest (/bin/binderfs_test, built by
# scripts/build-binderfs-selftest.sh) against the loaded driver, in the test VM, and prints one
# "ok binderfs_test/CASE" or "FAIL binderfs_test/CASE: why" line per case of its TAP output.
# A skipped case fails: each must run (the unprivileged ones need CONFIG_USER_NS). After a
# failure, the selftest's own output follows as "#" lines.
#
#   binderfs-selftest.sh --list    prints the names of the cases, one a line

cases="binderfs_stress binderfs_test_privileged binderfs_test_unprivileged"
if [ "${1:-}" = --list ]; then
    for c in $cases; do echo "binderfs_test/$c"; done
    exit 0
fi

log=/tmp/binderfs_test.log
# A watchdog, never reached by a working driver (the stress case makes 1000 devices).
timeout 600 /bin/binderfs_test >"$log" 2>&1
status=$?
failed=
for c in $cases; do
    line=$(grep -E "^(not )?ok [0-9]+ global\.$c( |$)" "$log" | head -n 1)
    case "$line" in
    "ok "*"# SKIP"*) echo "FAIL binderfs_test/$c: skipped (${line#*# SKIP })"; failed=1 ;;
    "ok "*) echo "ok   binderfs_test/$c" ;;
    "not ok "*) echo "FAIL binderfs_test/$c: the selftest says: $line"; failed=1 ;;
    *) echo "FAIL binderfs_test/$c: no result (binderfs_test exited with status $status)"; failed=1 ;;
    esac
done
[ -z "$failed" ] || sed 's/^/#   /' "$log"
exit 0
