#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks what scripts/setup.sh would install on a fresh machine, without installing anything
# and without root: setup's dry run (RB_SETUP_DRY_RUN=1) treats every package as missing and
# prints its apt-get commands. Guards against the bug of issue 8, where QEMU was listed as
# missing and never installed, so that the first VM boot failed with status 127.
#
#   setup_installs_every_package        each package of setup's list (for both kernel
#                                       variants, and for make check's "debug check"),
#                                       qemu-system-x86, linux-source-7.3 and the
#                                       package of every program setup checks for is named
#                                       exactly once across the apt-get commands
#   setup_installs_qemu_from_backports  qemu-system-x86 is installed with -t bookworm-backports
#                                       (it must match the preinstalled qemu-utils), and
#                                       nothing else is (-t applies to a whole command)
#   setup_installs_the_bench_llvm       the bench kernel's clang, lld and llvm of rustc's
#                                       LLVM (a stand-in rustc says LLVM 42) are named once,
#                                       in a command of their own suite's kind (no -t), when
#                                       the apt lists have clang-42 (a stand-in apt-cache
#                                       says); when they have not, nothing of LLVM 42 is named
#                                       and the dry run says clang 19 would be used; nothing
#                                       of it for the debug kernel, for KDIR, or when rustc's
#                                       LLVM is 19
#   setup_names_a_missing_tool          with no qemu-system-x86_64 in PATH, the dry run's
#                                       tool check fails and names it and its package
#
# Prints one "ok   NAME" or "FAIL NAME: why" line per check (scripts/check.sh counts them) and
# exits 1 if any failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
setup=$here/setup.sh
backports=bookworm-backports

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0

# dry_run "VARIANT [check]": setup's dry run output; the tool check's verdict does not
# matter here.
dry_run() {
    # shellcheck disable=SC2086 # the variant and its "check" are two arguments
    env -u KDIR RB_SETUP_DRY_RUN=1 bash "$setup" $1 2>/dev/null || true
}

# dry_run_kdir: the bench dry run with the kernel tree $KDIR given (no kernel to build).
dry_run_kdir() {
    RB_SETUP_DRY_RUN=1 bash "$setup" bench 2>/dev/null || true
}

# packages_of COMMAND: the packages an apt-get install line names, one a line, without their
# /suite or =version (options, and the argument of -t, are left out).
packages_of() {
    local word skip=0
    for word in $1; do
        if [ "$skip" = 1 ]; then skip=0; continue; fi
        case "$word" in
        apt-get | install) ;;
        -t | --target-release) skip=1 ;;
        -*) ;;
        *) word=${word%%/*}; echo "${word%%=*}" ;;
        esac
    done
}

every=()
qemu=()
for variant in debug bench "debug check"; do
    out=$(dry_run "$variant")
    mapfile -t commands < <(printf '%s\n' "$out" | grep -E '^apt-get install ')
    if [ ${#commands[@]} -eq 0 ]; then
        every+=("the $variant dry run printed no apt-get install command")
        qemu+=("the $variant dry run printed no apt-get install command")
        continue
    fi
    named=$(for c in "${commands[@]}"; do packages_of "$c"; done)
    # What must be installed: setup's own list, what issue 8 was about, and every package a
    # program that setup's tool check looks for comes from.
    list=$(printf '%s\n' "$out" | sed -n 's/^# packages: //p')
    [ -n "$list" ] || every+=("the $variant dry run printed no '# packages:' line")
    programs=$(printf '%s\n' "$out" | sed -n 's/^# program .* from //p')
    [ -n "$programs" ] || every+=("the $variant dry run printed no '# program' line")
    [ "$variant" != bench ] || list="$list gnuplot-nox"
    # shellcheck disable=SC2086 # lists of names
    for p in $(printf '%s\n' $list qemu-system-x86 linux-source-7.3 $programs | sort -u); do
        n=$(printf '%s\n' "$named" | grep -cxF -- "$p" || true)
        [ "$n" = 1 ] || every+=("$variant: $p is named $n times in the apt-get commands")
    done

    qemu_cmd=$(printf '%s\n' "${commands[@]}" | grep -E '(^| )qemu-system-x86( |$)' || true)
    case " $qemu_cmd " in
    *" -t $backports "*) ;;
    *) qemu+=("$variant: qemu-system-x86 is not installed with -t $backports (${qemu_cmd:-no command names it})") ;;
    esac
    for c in "${commands[@]}"; do
        case " $c " in *" -t "*) ;; *) continue ;; esac
        others=$(packages_of "$c" | grep -vx qemu-system-x86 | tr '\n' ' ' || true)
        [ -z "$others" ] || qemu+=("$variant: installed with -t, as if from backports: ${others% }")
    done
done
result setup_installs_every_package "${every[@]}"
result setup_installs_qemu_from_backports "${qemu[@]}"

# fake_home NAME LLVM APT_STATUS: a home whose rustup rustc (first in setup's PATH, see lib.sh)
# says it is on LLVM version LLVM, next to an apt-cache that answers with APT_STATUS.
fake_home() {
    local home=$tmp/$1
    mkdir -p "$home/.cargo/bin"
    printf '#!/bin/sh\necho "LLVM version: %s.1.0"\n' "$2" >"$home/.cargo/bin/rustc"
    printf '#!/bin/sh\nexit %s\n' "$3" >"$home/.cargo/bin/apt-cache"
    chmod +x "$home/.cargo/bin/rustc" "$home/.cargo/bin/apt-cache"
    echo "$home"
}

# named_in "DRY RUN OUTPUT" PACKAGE: how many times its apt-get commands name PACKAGE.
named_in() {
    local c
    printf '%s\n' "$1" | grep -E '^apt-get install ' | while IFS= read -r c; do
        packages_of "$c"
    done | grep -cxF -- "$2" || true
}

bench_llvm=()
has=$(fake_home has 42 0)
lacks=$(fake_home lacks 42 100)
on19=$(fake_home on19 19 0)
out=$(HOME=$has dry_run bench)
for p in clang-42 lld-42 llvm-42; do
    n=$(named_in "$out" "$p")
    [ "$n" = 1 ] || bench_llvm+=("bench, Debian has clang-42: $p is named $n times")
done
printf '%s\n' "$out" | grep -E '^apt-get install .* -t ' | grep -qE ' (clang|lld|llvm)-42( |$)' &&
    bench_llvm+=("bench: LLVM 42 is installed with -t, as if from backports")
printf '%s\n' "$out" | grep -q '^# packages: .* clang-42 lld-42 llvm-42' ||
    bench_llvm+=("bench: the '# packages:' line lacks clang-42 lld-42 llvm-42")
out=$(HOME=$lacks dry_run bench)
for p in clang-42 lld-42 llvm-42; do
    n=$(named_in "$out" "$p")
    [ "$n" = 0 ] || bench_llvm+=("bench, Debian lacks clang-42: $p is named $n times")
done
printf '%s\n' "$out" | grep -q '^# no clang-42 .*clang 19' ||
    bench_llvm+=("bench, Debian lacks clang-42: the dry run does not say clang 19 would be used")
for run in "debug" "debug check" "bench KDIR"; do
    if [ "$run" = "bench KDIR" ]; then
        out=$(HOME=$has KDIR=$tmp dry_run_kdir)
    else
        out=$(HOME=$has dry_run "$run")
    fi
    for p in clang-42 lld-42 llvm-42; do
        n=$(named_in "$out" "$p")
        [ "$n" = 0 ] || bench_llvm+=("$run: $p is named $n times")
    done
done
out=$(HOME=$on19 dry_run bench)
for p in clang-19 lld-19 llvm-19; do
    n=$(named_in "$out" "$p")
    [ "$n" = 1 ] || bench_llvm+=("bench, rustc on LLVM 19: $p is named $n times")
done
result setup_installs_the_bench_llvm "${bench_llvm[@]}"

# A PATH with everything but qemu-system-x86_64: a link to every program of the real PATH
# (earlier directories win, as in a lookup), less that one.
bin=$tmp/bin
mkdir "$bin"
IFS=: read -ra dirs <<<"$PATH"
for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
    d=${dirs[i]}
    [ -d "$d" ] || continue
    files=("$d"/*)
    [ -e "${files[0]}" ] || continue
    ln -sf "${files[@]}" "$bin/"
done
rm -f "$bin/qemu-system-x86_64"
status=0
PATH=$bin env -u KDIR RB_SETUP_DRY_RUN=1 bash "$setup" debug >/dev/null 2>"$tmp/stderr" || status=$?
want="setup: qemu-system-x86_64 is missing (Debian package qemu-system-x86)"
if [ "$status" = 0 ]; then
    result setup_names_a_missing_tool "the dry run passed its tool check with no qemu-system-x86_64 in PATH"
elif ! grep -qxF "$want" "$tmp/stderr"; then
    result setup_names_a_missing_tool "no line '$want' (status $status; it said: $(head -c 300 "$tmp/stderr" | tr '\n' ' '))"
else
    result setup_names_a_missing_tool
fi

exit "$failed"
