#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks the built rust_binder.ko's modinfo, that its version is the one the VERSION file,
# dkms.conf and the README give, and `make install`, `make install-compat` and
# `make uninstall`, staged under a temporary DESTDIR (no root needed, nothing on the machine
# changes) with kmod's own depmod and modprobe.
#
#   scripts/test-install.sh [KERNEL_BUILD_DIR]     (default: the debug test kernel)
#
#   modinfo_complete        description, author, license GPL, and every parameter with a
#                           description that gives its default
#   version_agrees          VERSION, dkms.conf's PACKAGE_VERSION, every rust_binder/X.Y.Z of
#                           dkms.conf and the README, and modinfo's version are one version
#   make_install            the module lands in lib/modules/RELEASE/updates/, depmod lists
#                           it, and the udev rule is in etc/udev/rules.d/
#   install_compat_alias    with install-compat, `modprobe binder_linux devices=...` (dry
#                           run) loads rust_binder with those devices, although the C
#                           driver's binder_linux.ko is installed too
#   make_uninstall          uninstall leaves neither module nor rule nor alias, and modprobe
#                           binder_linux means the C driver again
#
# Run it after the module is built for KERNEL_BUILD_DIR (make install builds it if it is not).
# Prints one "ok   NAME" or "FAIL NAME: why" line per check (scripts/check.sh counts them) and
# exits 1 if any failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
kernel=${1:-$(kernel_out debug)}

failed=0

ko=$top/rust_binder.ko
info() { modinfo -F "$1" "$ko" 2>/dev/null; }

why=()
if [ ! -f "$ko" ]; then
    why+=("no $ko: build it first")
else
    [ -n "$(info description)" ] || why+=("no description")
    [ -n "$(info author)" ] || why+=("no author")
    [ "$(info license)" = GPL ] || why+=("license is '$(info license)', not GPL")
    parms=$(info parm)
    [ -n "$parms" ] || why+=("no parameter described")
    while IFS= read -r parm; do
        [ -n "$parm" ] || continue
        case "$parm" in
        *:*default*) ;;
        *) why+=("parameter without a description giving its default: $parm") ;;
        esac
    done <<<"$parms"
    # Every parameter the module has (__param section) must be described (modinfo's parm).
    for p in $(info parmtype | cut -d: -f1); do
        grep -q "^$p:" <<<"$parms" || why+=("parameter $p has no description")
    done
fi
result modinfo_complete "${why[@]}"

why=()
version=$(head -n 1 "$top/VERSION" 2>/dev/null)
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    why+=("VERSION holds '$version', not X.Y.Z")
fi
dkms_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
[ "$dkms_version" = "$version" ] || why+=("dkms.conf's PACKAGE_VERSION is '$dkms_version'")
# Every "rust_binder X.Y.Z", "rust_binder/X.Y.Z" (dkms) and "rust_binder-X.Y.Z" (/usr/src).
pattern='rust_binder[ /-][0-9]+\.[0-9]+\.[0-9]+'
grep -qE "$pattern" "$top/README.md" || why+=("the README names no version (rust_binder/X.Y.Z)")
for m in $(grep -hoE "$pattern" "$top/README.md" "$top/dkms.conf" | tr ' ' '~' | sort -u); do
    [ "${m:12}" = "$version" ] || why+=("${m//\~/ } in the README or dkms.conf")
done
[ ! -f "$ko" ] || [ "$(info version)" = "$version" ] ||
    why+=("modinfo's version is '$(info version)'")
result version_agrees "${why[@]}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/root
release=$(cat "$kernel/include/config/kernel.release" 2>/dev/null) || release=unknown
mods=$stage/lib/modules/$release
rule=$stage/etc/udev/rules.d/60-rust-binder.rules
alias=$stage/etc/modprobe.d/rust_binder-binder_linux.conf
mk() { make -C "$top" --no-print-directory KDIR="$kernel" DESTDIR="$stage" "$@" >>"$tmp/make.log" 2>&1; }
# modprobe's dry run on the staged tree and configuration: prints the insmod it would run.
probe() {
    mkdir -p "$stage/etc/modprobe.d"
    modprobe -d "$stage" -S "$release" -C "$stage/etc/modprobe.d" -n -v "$@" 2>&1
}

why=()
if ! mk install; then
    why+=("make install failed: $(tail -n 5 "$tmp/make.log" | tr '\n' ' ')")
else
    [ -f "$mods/updates/rust_binder.ko" ] || why+=("no lib/modules/$release/updates/rust_binder.ko")
    grep -q '^updates/rust_binder.ko:' "$mods/modules.dep" 2>/dev/null ||
        why+=("modules.dep does not list updates/rust_binder.ko")
    [ -f "$rule" ] || why+=("no udev rule in etc/udev/rules.d")
    grep -q '^SUBSYSTEM=="misc", KERNEL=="\*binder", MODE="0666"$' "$rule" 2>/dev/null ||
        why+=("the udev rule does not open *binder misc devices to all")
fi
result make_install "${why[@]}"

# The C driver installed as the kernel installs it, for the alias to win over.
c_module=$kernel/drivers/android/binder_linux.ko
why=()
if [ ! -f "$c_module" ]; then
    why+=("no $c_module")
elif ! mk install-compat; then
    why+=("make install-compat failed: $(tail -n 5 "$tmp/make.log" | tr '\n' ' ')")
else
    install -D -m 0644 "$c_module" "$mods/kernel/drivers/android/binder_linux.ko"
    depmod -b "$stage" -a "$release" 2>/dev/null
    got=$(probe binder_linux 'devices=binder,hwbinder,vndbinder')
    want="insmod $mods/updates/rust_binder.ko devices=binder,hwbinder,vndbinder"
    [ "$(echo "$got" | sed 's/ *$//')" = "$want" ] ||
        why+=("modprobe binder_linux would run '$got', not '$want'")
fi
result install_compat_alias "${why[@]}"

why=()
if ! mk uninstall; then
    why+=("make uninstall failed: $(tail -n 5 "$tmp/make.log" | tr '\n' ' ')")
else
    [ ! -e "$mods/updates/rust_binder.ko" ] || why+=("updates/rust_binder.ko is still there")
    ! grep -q rust_binder "$mods/modules.dep" 2>/dev/null || why+=("modules.dep still lists rust_binder")
    [ ! -e "$rule" ] || why+=("the udev rule is still there")
    [ ! -e "$alias" ] || why+=("the modprobe.d alias is still there")
    got=$(probe binder_linux devices=binder)
    case "$got" in
    "insmod $mods/kernel/drivers/android/binder_linux.ko devices=binder"*) ;;
    *) why+=("modprobe binder_linux would now run '$got'") ;;
    esac
fi
result make_uninstall "${why[@]}"

exit "$failed"
