#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks dkms.conf with the real dkms, without touching the machine's DKMS state or module
# tree: dkms runs with its source, DKMS and install trees in a temporary directory
# (--sourcetree, --dkmstree, --installtree), as an unprivileged user may, and builds only.
#
#   scripts/test-dkms.sh [KERNEL_BUILD_DIR]     (default: the debug test kernel)
#
#   dkms_build                          `dkms build` against the test kernel's O= build tree
#                                       (--kernelsourcedir) makes a rust_binder.ko whose
#                                       modinfo has the VERSION file's version and the
#                                       kernel's release in its vermagic
#   dkms_names_missing_rust_metadata    against a tree that is like Debian's linux-headers
#                                       (a .config with CONFIG_RUST=y, Module.symvers, no
#                                       rust/*.rmeta), `dkms build` fails and says that the
#                                       Rust metadata, rust/libkernel.rmeta, is missing
#
# The sources dkms gets are what `dkms add .` copies from a clean checkout: the files git
# knows, or would (untracked, not ignored), not the build output or tests/target.
# Prints one "ok   NAME" or "FAIL NAME: why" line per check (scripts/check.sh counts them) and
# exits 1 if any failed. The build takes as long as the module's (well under a minute).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
kernel=${1:-$(kernel_out debug)}

failed=0

if ! command -v dkms >/dev/null; then
    result dkms_build "dkms is not installed (Debian package dkms; scripts/setup.sh debug check installs it)"
    result dkms_names_missing_rust_metadata "dkms is not installed"
    exit 1
fi

version=$(head -n 1 "$top/VERSION")
release=$(cat "$kernel/include/config/kernel.release" 2>/dev/null) || release=
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src/rust_binder-$version
mkdir -p "$src" "$tmp/dkms" "$tmp/installed"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$top" && git ls-files --cached --others --exclude-standard -z |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null)
else
    tar -C "$top" --exclude=./tests/target --exclude='*.o' --exclude='*.ko' -cf - .
fi | tar -C "$src" -xf -

# dkms ACTION rust_binder/VERSION -k RELEASE --kernelsourcedir DIR: with every tree in $tmp.
dkms_tmp() {
    dkms "$@" --sourcetree "$tmp/src" --dkmstree "$tmp/dkms" --installtree "$tmp/installed"
}

why=()
out=$tmp/dkms-build.log
if [ -z "$release" ]; then
    why+=("$kernel has no include/config/kernel.release: build the test kernel first")
elif ! dkms_tmp build "rust_binder/$version" -k "$release" --kernelsourcedir "$kernel" >"$out" 2>&1; then
    why+=("dkms build failed: $(tail -n 5 "$out" | tr '\n' ' ')")
    log=$(ls "$tmp"/dkms/rust_binder/"$version"/build/make.log 2>/dev/null) &&
        why+=("make.log: $(tail -n 8 "$log" | tr '\n' ' ')")
else
    ko=$tmp/dkms/rust_binder/$version/$release/x86_64/module/rust_binder.ko
    if [ ! -f "$ko" ]; then
        why+=("dkms build passed but left no $ko")
    else
        info() { modinfo -F "$1" "$ko" 2>/dev/null; }
        [ "$(info version)" = "$version" ] ||
            why+=("modinfo version is '$(info version)', VERSION says '$version'")
        case "$(info vermagic)" in
        "$release "*) ;;
        *) why+=("vermagic '$(info vermagic)' is not for $release") ;;
        esac
        [ "$(info license)" = GPL ] || why+=("license '$(info license)'")
        info parm | grep -q '^devices:' || why+=("no devices parameter in modinfo")
    fi
fi
result dkms_build "${why[@]}"

# A kernel tree like Debian's linux-headers-*: configured with Rust, with Module.symvers and
# headers, but no Rust metadata. Its Makefile stops any make that gets as far as running it.
fake=$tmp/headers-without-rust
mkdir -p "$fake/include/config"
grep -v '^CONFIG_RUST=' "$kernel/.config" >"$fake/.config" 2>/dev/null
echo 'CONFIG_RUST=y' >>"$fake/.config"
: >"$fake/Module.symvers"
echo "${release:-7.3.0}-norust" >"$fake/include/config/kernel.release"
printf '$(error this stands for headers without Rust metadata; nothing may build with it)\n' >"$fake/Makefile"
why=()
out=$tmp/dkms-norust.log
if dkms_tmp build "rust_binder/$version" -k "${release:-7.3.0}-norust" --kernelsourcedir "$fake" >"$out" 2>&1; then
    why+=("dkms build passed against a tree without Rust metadata")
else
    grep -q 'rust/libkernel.rmeta' "$out" ||
        why+=("dkms's output does not name rust/libkernel.rmeta: $(tail -n 6 "$out" | tr '\n' ' ')")
    grep -q "Debian's linux-headers" "$out" || why+=("dkms's output does not say that Debian's headers lack it")
fi
result dkms_names_missing_rust_metadata "${why[@]}"

exit "$failed"
