#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the test kernel in QEMU with one binder driver, runs the conformance suite in it and
# checks the guest's kernel log.
#
#   scripts/vm.sh --driver c|rust --out DIR [--kernel DIR] [--selftest leak] [--timeout SECONDS]
#                 [--filter NAME[,NAME...]]   (run only the cases whose names contain one of these)
#                 [--bin FILE]... [--run SCRIPT [--expect NAMES]] [--module FILE] [--mem MIB]
#
# --bin copies a program into the guest's /bin (repeatable). --run runs SCRIPT (a busybox sh
# script, copied to /etc/rb-run) in place of the conformance suite; what it prints lands in
# DIR/guest.log between the "=== results" and "=== end" markers, and its "ok"/"FAIL" lines
# count as results like the suite's. --expect names the results SCRIPT must print (separated
# by spaces, commas or newlines). --module boots another build of rust_binder.ko than the
# repository's (one built for the --kernel tree, as the benchmark's is). --mem gives the guest
# MIB MiB of memory instead of 2048 (the memory pressure cases in a smaller guest).
# LIFECYCLE_CYCLES=N in the environment sets how many load/unload cycles the case
# module_lifecycle_cycles_with_traffic runs (rb.lifecycle_cycles=N on the guest's command line).
#
# The guest's console (the kernel log) goes to DIR/console.log and what the suite prints to
# DIR/guest.log. DIR/results gets one line per case, "ok NAME" or "FAIL NAME: why", plus the
# harness's own items: the guest finished, and its kernel log is clean. A case the suite lists
# (`conformance --list`, run on the host with the same filter), or a name given to --expect,
# that has no line of its own is "FAIL NAME: no result (the guest did not run it)": a guest
# that stopped early must not look nearly green. The exit status is 0 when every line is "ok".
#
# DIR is deleted and made again, so it must be one vm.sh made (it leaves a stamp file,
# .rb-vm-out, in it), an empty directory, or one holding only vm.sh's files from before the
# stamp; never /, $HOME, the repository or a directory above one of them.
#
# QEMU runs with KVM where /dev/kvm is usable (and again with TCG if QEMU fails with KVM before
# the kernel starts), else with TCG; vm.sh prints which ("vm: accelerator kvm|tcg") and writes
# it to DIR/accel. RB_VM_ACCEL=kvm|tcg forces one. With TCG, RB_VM_ICOUNT=SHIFT runs the guest
# in QEMU's instruction-counting mode (`-icount shift=SHIFT,sleep=off`; accel says
# tcg-icount): its clock advances by 2^SHIFT ns per instruction executed, whatever the host's
# load, so times measured in the guest count instructions (the benchmark's BENCH_ICOUNT; both
# vCPUs then share one host thread). RB_VM_PLUGIN=ARGS loads a TCG plugin (`-plugin ARGS`, as
# the benchmark's instruction count does, scripts/insn-count).
# Boots are serialised: while QEMU runs, vm.sh holds a lock on $RB_CACHE/vm.lock, and another
# vm.sh waits for it (saying so), so that two shells never run two VMs at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"

driver=
out=
kernel=$(kernel_out debug)
selftest=
filter=
timeout=900
bins=()
run=
expect=
rust_module=$top/rust_binder.ko
mem=2048
while [ $# -gt 0 ]; do
    case "$1" in
    --driver) driver=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --selftest) selftest=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --run) run=$2; shift 2 ;;
    --expect) expect=$2; shift 2 ;;
    --module) rust_module=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    *) echo "vm.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$driver" in c | rust) ;; *) echo "vm.sh: --driver c|rust" >&2; exit 2 ;; esac
case "$mem" in '' | *[!0-9]*) echo "vm.sh: --mem MIB (a number)" >&2; exit 2 ;; esac
case "${LIFECYCLE_CYCLES:-0}" in *[!0-9]*) echo "vm.sh: LIFECYCLE_CYCLES=N (a number)" >&2; exit 2 ;; esac
[ -n "$out" ] || { echo "vm.sh: --out DIR" >&2; exit 2; }
[ -z "$expect" ] || [ -n "$run" ] || { echo "vm.sh: --expect goes with --run (the suite lists its own cases)" >&2; exit 2; }

bzimage=$kernel/arch/x86/boot/bzImage
c_module=$kernel/drivers/android/binder_linux.ko
conformance=$top/tests/target/$MUSL_TARGET/release/conformance
leak_module=$top/tests/leak-selftest/rb_leak_selftest.ko
busybox=$(command -v busybox || echo /bin/busybox)
required=("$bzimage" "$c_module" "$rust_module" "$busybox")
# With --run the conformance suite is not needed (the benchmark builds only its own binary).
[ -n "$run" ] || required+=("$conformance")
for f in "${required[@]}"; do
    [ -f "$f" ] || { echo "vm.sh: missing $f (run make check)" >&2; exit 2; }
done

# --out is deleted and made again on every boot, and it is a path from the command line: vm.sh
# deletes only a directory it made itself (the stamp), an empty one, or one from before the
# stamp that holds nothing but vm.sh's own files (tests/target/vm/* of an older checkout).
out_stamp=.rb-vm-out
refuse_out() { echo "vm.sh: refusing --out $out: $*" >&2; exit 2; }
only_vm_files() { # only_vm_files DIR: DIR holds vm.sh's output files and nothing else
    local f seen=0
    for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        case "${f##*/}" in
        console.log) seen=1 ;;
        root | initramfs.cpio | guest.log | results | log-excerpt | accel) ;;
        *) return 1 ;;
        esac
    done
    [ "$seen" = 1 ]
}
prepare_out() {
    local real home repo
    real=$(realpath -m -- "$out")
    home=$(realpath -m -- "$HOME")
    repo=$(cd "$top" && pwd -P)
    [ "$real" != / ] || refuse_out "it is /"
    case "$home/" in "$real"/*) refuse_out "it is \$HOME ($home) or a directory above it" ;; esac
    case "$repo/" in "$real"/*) refuse_out "it is the repository ($repo) or a directory above it" ;; esac
    if [ -e "$real" ] || [ -L "$real" ]; then
        [ -d "$real" ] || refuse_out "it exists and is not a directory"
        if [ ! -f "$real/$out_stamp" ] && [ -n "$(ls -A -- "$real" 2>/dev/null || echo unreadable)" ] &&
            ! only_vm_files "$real"; then
            refuse_out "it is a directory vm.sh did not make (no $out_stamp in it) and not empty; delete it yourself or choose another"
        fi
    fi
    rm -rf -- "$real"
    mkdir -p "$real"
    echo "made by scripts/vm.sh, which deletes this directory and makes it again on every boot" >"$real/$out_stamp"
    out=$real
}
# One VM at a time on this machine: two boots at once on 2 cores make both slow enough to hit
# timeouts and make benchmark figures meaningless. The lock is held by an open file that
# QEMU inherits, so it lasts exactly as long as QEMU (even if this script is killed first).
# It is taken before anything is copied into the guest: a kernel rebuilt while this boot
# waited (under the same lock) must not get the modules of the kernel before.
mkdir -p "$RB_CACHE"
vm_lock=$RB_CACHE/vm.lock
exec {lock_fd}>>"$vm_lock"
if ! flock -n "$lock_fd"; then
    echo "vm: another VM is running (lock $vm_lock); waiting for it to finish" >&2
    flock "$lock_fd"
fi

prepare_out
mkdir -p "$out/root/bin" "$out/root/lib/modules" "$out/root/dev" "$out/root/proc" \
    "$out/root/sys" "$out/root/tmp" "$out/root/etc"
root=$out/root
cp "$busybox" "$root/bin/busybox"
[ ! -f "$conformance" ] || cp "$conformance" "$root/bin/conformance"
for f in "${bins[@]}"; do
    [ -f "$f" ] || { echo "vm.sh: missing $f" >&2; exit 2; }
    cp "$f" "$root/bin/"
done
if [ -n "$run" ]; then
    [ -f "$run" ] || { echo "vm.sh: missing $run" >&2; exit 2; }
    install -m 0755 "$run" "$root/etc/rb-run"
fi
cp "$c_module" "$root/lib/modules/"
# Under the name the guest loads, whatever --module's file is called.
cp "$rust_module" "$root/lib/modules/rust_binder.ko"
if [ "$selftest" = leak ]; then
    [ -f "$leak_module" ] || { echo "vm.sh: missing $leak_module" >&2; exit 2; }
    cp "$leak_module" "$root/lib/modules/"
fi
install -m 0755 "$here/vm/init.sh" "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out/initramfs.cpio"

cmdline="console=ttyS0 panic=-1 rb.driver=$driver"
[ -z "$selftest" ] || cmdline="$cmdline rb.selftest=$selftest"
[ -z "$filter" ] || cmdline="$cmdline rb.filter=$filter"
[ -z "${LIFECYCLE_CYCLES:-}" ] || cmdline="$cmdline rb.lifecycle_cycles=$LIFECYCLE_CYCLES"

# KVM only where it can boot this kernel: /dev/kvm must open read-write (access(2) tells root
# yes whatever the mode, so it is opened) and the CPU must have hardware virtualisation. Some
# sandboxes offer a /dev/kvm backed by a paravirtual hypervisor (PVM: kvm_pvm, no vmx or svm)
# that boots only kernels built as its guests; an ordinary kernel would not boot there.
# Prints why not when it is not.
kvm_usable() {
    if [ ! -e /dev/kvm ]; then
        echo "no /dev/kvm"
    elif ! { : <>/dev/kvm; } 2>/dev/null; then
        echo "/dev/kvm cannot be opened read-write by $(id -un)"
    elif ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
        local m mods=
        for m in /sys/module/kvm*; do [ ! -e "$m" ] || mods="$mods ${m##*/}"; done
        echo "/dev/kvm is there, but the CPU has no vmx or svm flag (KVM modules:${mods:- none}); a KVM" \
            "without hardware virtualisation, such as PVM, boots only kernels built for it"
    else
        return 0
    fi
    return 1
}
accel=${RB_VM_ACCEL:-auto}
accel_chosen=$accel
case "$accel" in
auto)
    if why_not=$(kvm_usable); then
        accel=kvm
    else
        accel=tcg
        echo "vm: not using KVM: $why_not"
    fi
    ;;
kvm | tcg) ;; # forced: QEMU says so if KVM does not work
*) echo "vm.sh: RB_VM_ACCEL=$accel (want kvm or tcg)" >&2; exit 2 ;;
esac
use_accel() { # use_accel kvm|tcg
    accel=$1
    if [ "$accel" = kvm ]; then
        # The host's CPU as it is: nothing to emulate, and no CPUID feature QEMU has to fake.
        accel_args=(-accel kvm -cpu host)
    else
        # QEMU's default, spelt out; the default CPU model, as every earlier run (and benchmark)
        # had.
        accel_args=(-accel tcg)
    fi
    local shown=$accel
    if [ "$accel" = tcg ] && [ -n "${RB_VM_ICOUNT:-}" ]; then
        accel_args+=(-icount "shift=$RB_VM_ICOUNT,sleep=off")
        shown=tcg-icount
    fi
    echo "vm: accelerator $shown"
    echo "$shown" >"$out/accel"
}
use_accel "$accel"

run_qemu() {
    qemu_status=0
    timeout --kill-after=10 "$timeout" qemu-system-x86_64 "${accel_args[@]}" \
        -nodefaults -no-user-config -machine pc -smp 2 -m "$mem" \
        -kernel "$bzimage" -initrd "$out/initramfs.cpio" -append "$cmdline" \
        -display none -monitor none -no-reboot \
        -serial "file:$out/console.log" -serial "file:$out/guest.log" \
        ${RB_VM_PLUGIN:+-plugin "$RB_VM_PLUGIN"} || qemu_status=$?
}
run_qemu
# A KVM that passed the checks above can still fail QEMU at once (a CPU feature or MSR that it
# will not set up): when QEMU failed before the kernel printed a line, boot again with TCG
# rather than fail the run, unless KVM was asked for.
if [ "$accel_chosen" = auto ] && [ "$accel" = kvm ] && [ ! -s "$out/console.log" ] &&
    [ "$qemu_status" != 0 ] && [ "$qemu_status" != 124 ] && [ "$qemu_status" != 137 ]; then
    echo "vm: QEMU failed with KVM (status $qemu_status) before the kernel started; booting with TCG"
    use_accel tcg
    run_qemu
fi
exec {lock_fd}>&-

results=$out/results
# The suite's own lines, between the markers the guest init writes.
sed -n '/^=== results/,/^=== /p' "$out/guest.log" | tr -d '\r' | grep -E '^(ok|FAIL) ' >"$results" || true
ran=$(grep -c . "$results" || true)

# What should have a line: the suite's cases for this driver and filter (the suite is a static
# binary, so it lists them on the host), or what --expect names.
expected=
if [ -n "$run" ]; then
    expected=$(printf '%s\n' "$expect" | tr -s ', ' '\n')
elif [ "$selftest" != leak ]; then
    # shellcheck disable=SC2046 # the filter's words are the suite's NAME_FILTER arguments
    if ! expected=$("$conformance" --driver "$driver" --list $(printf '%s' "$filter" | tr ',' ' ')) ||
        [ -z "$expected" ]; then
        echo "FAIL case_list ($driver): conformance --list failed on the host, so cases the guest did not run cannot be told" >>"$results"
        expected=
    fi
fi
# One FAIL line for every expected name with no ok/FAIL line of its own.
missing=$(printf '%s\n' "$expected" | awk -v results="$results" '
    FILENAME == results { name = $2; sub(/:$/, "", name); have[name] = 1; next }
    NF && !($1 in have) { have[$1] = 1; print "FAIL " $1 ": no result (the guest did not run it)" }
' "$results" -)
[ -z "$missing" ] || printf '%s\n' "$missing" >>"$results"

exit_line=$(tr -d '\r' <"$out/guest.log" | grep -E '^RB_EXIT ' | tail -n 1 || true)
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    echo "FAIL guest_finished ($driver): no result within ${timeout}s (see $out/console.log)" >>"$results"
elif [ -z "$exit_line" ]; then
    hint=
    [ "$accel" != kvm ] || [ -s "$out/console.log" ] || hint="; with KVM, which RB_VM_ACCEL=tcg turns off"
    echo "FAIL guest_finished ($driver): guest stopped without a result (qemu status $qemu_status$hint)" >>"$results"
elif [ "$selftest" != leak ] && [ -z "$run" ] && [ "$ran" = 0 ]; then
    echo "FAIL guest_finished ($driver): the suite ran no case (${exit_line})" >>"$results"
else
    echo "ok   guest_finished ($driver)" >>"$results"
fi

# Anything in the kernel log that a correct driver never causes. kmemleak's findings are in
# guest.log (the contents of /sys/kernel/debug/kmemleak after the final scans).
bad='BUG:|WARNING:|Oops|KASAN:|UBSAN:|general protection fault|Kernel panic|INFO: task .* blocked'
bad+='|detected stall|possible circular locking|possible recursive locking|inconsistent lock state'
bad+='|suspicious RCU usage|bad unlock balance|held lock freed|DEBUG_LOCKS_WARN_ON|Call Trace:'
bad+='|unreferenced object|suspected memory leak|rust_binder: leaked'
excerpt=$( (
    tr -d '\r' <"$out/console.log"
    sed -n '/^=== kmemleak/,/^=== end/p' "$out/guest.log" | tr -d '\r'
) | grep -E -n -m 40 -A 12 "$bad" || true)
if [ -n "$excerpt" ]; then
    echo "FAIL kernel_log_clean ($driver): see the excerpt above, or $out/console.log" >>"$results"
    {
        echo "---- kernel log excerpt ($driver) ----"
        printf '%s\n' "$excerpt" | head -n 120
        echo "---- end of excerpt ----"
    } >"$out/log-excerpt"
else
    echo "ok   kernel_log_clean ($driver)" >>"$results"
fi

! grep -q '^FAIL' "$results"
