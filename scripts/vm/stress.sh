#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# The stress run, in the test VM (vm.sh --run, through the wrapper scripts/stress.sh writes,
# which sets the environment below): binder-stress on /dev/binder, then, on rust_binder, the
# module's unload, whose census reports anything still alive, then the count of reports in the
# whole kernel log. The kmemleak scans and the console check are vm.sh's, after this.
#
#   STRESS_SECONDS (default 180), STRESS_SEED, STRESS_WORKERS, STRESS_THREADS
#
# Prints one "ok NAME" or "FAIL NAME: why" line per result:
#   stress/traffic      the run itself: every reply as sent, no call unanswered, nothing died
#                       that should not have
#   stress/unload       (rust_binder) rmmod succeeds once every process is gone
#   stress/kernel_log   no KASAN, lockdep, BUG, WARNING, hung task, RCU stall or census report
#
#   stress.sh --list DRIVER    prints the names of the results for DRIVER, one a line

if [ "${1:-}" = --list ]; then
    echo stress/traffic
    [ "${2:-}" != rust ] || echo stress/unload
    echo stress/kernel_log
    exit 0
fi
driver=${1:-${RB_DRIVER:-}}

args="run --seconds ${STRESS_SECONDS:-180}"
[ -z "${STRESS_SEED:-}" ] || args="$args --seed $STRESS_SEED"
[ -z "${STRESS_WORKERS:-}" ] || args="$args --workers $STRESS_WORKERS"
[ -z "${STRESS_THREADS:-}" ] || args="$args --threads $STRESS_THREADS"

# The hung-task detector reports a task blocked in D state for this long; binder waits are
# interruptible, so it only fires on a real hang.
[ ! -w /proc/sys/kernel/hung_task_timeout_secs ] || echo 60 >/proc/sys/kernel/hung_task_timeout_secs

errors=/tmp/stress.err
# shellcheck disable=SC2086 # $args is a list of arguments
/bin/binder-stress $args 2>"$errors"
rc=$?
if [ -s "$errors" ]; then
    echo "# binder-stress's complaints (the first 40 lines):"
    head -n 40 "$errors" | sed 's/^/#   /'
fi
if [ "$rc" = 0 ]; then
    echo "ok   stress/traffic"
else
    echo "FAIL stress/traffic: binder-stress exited with $rc; see the lines above"
fi

if [ "$driver" = rust ]; then
    # Every process is gone, but their files may still be being released: retry for a while.
    tries=0
    until rmmod rust_binder 2>/tmp/rmmod.err; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || break
        sleep 0.5
    done
    if [ "$tries" -lt 60 ]; then
        echo "ok   stress/unload"
    else
        echo "FAIL stress/unload: rmmod rust_binder: $(cat /tmp/rmmod.err)"
    fi
fi

# The census is printed by the unload just above: scan the whole log once more.
sleep 1
if /bin/binder-stress scan-log; then
    echo "ok   stress/kernel_log"
else
    echo "FAIL stress/kernel_log: the kernel logged reports (listed above)"
fi
exit 0
