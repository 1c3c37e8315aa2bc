#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# The demo's story, told in the test VM (`make demo`; also one of the interop checks):
#
#   1. rb-servicemanager becomes the context manager (handle 0)
#   2. rb-calculator registers "calculator" with it and serves on a thread pool
#   3. rb-calc-client lists the services, looks "calculator" up, calls add(2, 3), asks for a
#      death notification
#   4. another rb-calc-client sends the calculator a file, a memfd of numbers (sumFile); the
#      calculator reads it and answers with a memfd of its own, which the client reads
#   5. the calculator is killed; the client and the service manager hear of its death
#
# Each program writes its own log; after each step the script shows what the programs said,
# so the story reads in order. Ends with one result line, "ok demo_story" or
# "FAIL demo_story: why", and exits non-zero on failure.
#
# Runs as /etc/rb-run (vm.sh --run) or as /bin/demo.sh (the interop checks); its first
# argument (the driver's name, from the guest init) is only printed.

driver=${1:-${RB_DRIVER:-?}}
logs=/tmp/demo
rm -rf "$logs"
mkdir -p "$logs"
pids=

# show: prints the lines each program wrote since the last show.
show() {
    for f in sm calc client file list; do
        [ -f "$logs/$f" ] || continue
        n=$(cat "$logs/$f.shown" 2>/dev/null || echo 0)
        total=$(wc -l <"$logs/$f")
        [ "$total" -gt "$n" ] && tail -n +$((n + 1)) "$logs/$f" | head -n $((total - n))
        echo "$total" >"$logs/$f.shown"
    done
}

step() {
    show
    echo
    echo "--- $*"
}

finish() { # finish ok|FAIL [why]
    show
    for pid in $pids; do kill -9 "$pid" 2>/dev/null; done
    echo
    if [ "$1" = ok ]; then
        echo "ok   demo_story"
        exit 0
    fi
    echo "FAIL demo_story: $2"
    exit 1
}

# wait_for FILE PATTERN: until FILE has a line matching PATTERN (a watchdog of 30 s, which
# a working driver never comes near, not a timing assertion).
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le 300 ] || return 1
        sleep 0.1
    done
}

# wait_exit PID: until the process is gone (watchdog 30 s).
wait_exit() {
    i=0
    while kill -0 "$1" 2>/dev/null && ! grep -q ') Z ' "/proc/$1/stat" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le 300 ] || return 1
        sleep 0.1
    done
}

echo "rust_binder demo on the $driver driver: $(ls -l /dev/binder | sed 's/.* \/dev/\/dev/')"

step "1. the service manager opens /dev/binder and becomes the context manager (handle 0)"
rb-servicemanager >"$logs/sm" 2>&1 &
sm=$!
pids="$pids $sm"
wait_for "$logs/sm" "serving" || finish FAIL "rb-servicemanager did not start"

step "2. the calculator registers \"calculator\" (addService, code 5, to handle 0) and serves"
rb-calculator --name calculator >"$logs/calc" 2>&1 &
calc=$!
pids="$pids $calc"
wait_for "$logs/calc" "serving calls" || finish FAIL "rb-calculator did not register"

step "3. a client lists the services (listServices, code 6)"
timeout 30 rb-calc-client --list >"$logs/list" 2>&1
grep -qx calculator "$logs/list" || finish FAIL "listServices does not show calculator"

step "4. the client looks the calculator up, calls add(2, 3) and asks for its death notice"
rb-calc-client --name calculator --wait-death 2 3 >"$logs/client" 2>&1 &
client=$!
pids="$pids $client"
wait_for "$logs/client" "waiting" || finish FAIL "the client did not get to wait for the death"
grep -q "reply 5$" "$logs/client" || finish FAIL "add(2, 3) did not answer 5"

step "5. a second client sends the calculator a file to add up, a memfd (sumFile, code 3); the answer comes back in a memfd"
timeout 30 rb-calc-client --name calculator --sum 1 2 3 4 5 6 7 8 9 10 >"$logs/file" 2>&1
grep -q '/memfd:sum.*says "1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 = 55"$' "$logs/file" ||
    finish FAIL "sumFile did not answer 55 in a memfd of the calculator's"

step "6. the calculator (pid $calc) is killed"
kill -9 "$calc"
wait_for "$logs/client" "died" || finish FAIL "the client heard of no death"
wait_exit "$client" || finish FAIL "the client did not exit"
wait "$client" || finish FAIL "the client failed"
wait_for "$logs/sm" "died" || finish FAIL "the service manager kept the dead service"

step "7. the service list is empty again"
rm -f "$logs/list" "$logs/list.shown"
timeout 30 rb-calc-client --list >"$logs/list" 2>&1
if grep -qx calculator "$logs/list"; then
    finish FAIL "the dead calculator is still listed"
fi
finish ok
