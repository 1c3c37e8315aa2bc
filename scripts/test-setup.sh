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
