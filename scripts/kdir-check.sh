#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks that a kernel build tree can build rust_binder, and when it cannot, says which part is
# missing and what to do, instead of kbuild's or rustc's obscure failure much later.
#
#   scripts/kdir-check.sh KDIR
#
# `make KDIR=...`, `make install` and DKMS (dkms.conf's PRE_BUILD, and the build itself) run it.
# A Rust module is compiled against the kernel's own build tree: a .config with CONFIG_RUST=y,
# the Module.symvers of a finished build, and the Rust metadata of the kernel's crates
# (rust/libkernel.rmeta and its siblings), all made by the same rustc and clang as the module.
# Prints nothing and exits 0 when the tree has all of it; else one "rust_binder: ..." message
# on stderr, and exit status 1.
set -uo pipefail

kdir=${1:-}
fail() {
    printf 'rust_binder: cannot build against the kernel tree %s:\n' "$kdir" >&2
    printf 'rust_binder:   %s\n' "$@" >&2
    exit 1
}

[ -n "$kdir" ] || { echo "usage: scripts/kdir-check.sh KDIR" >&2; exit 2; }
if [ ! -f "$kdir/Makefile" ]; then
    fail "there is no kernel build tree there (no Makefile)." \
        "For the running kernel, install its headers; or pass KDIR=/path/to/its/build/tree."
fi
config=$kdir/.config
[ -f "$config" ] || fail "it has no .config: it is not a configured kernel build tree."
if ! grep -qx 'CONFIG_RUST=y' "$config"; then
    fail "the kernel was built without Rust support (CONFIG_RUST is not set)." \
        "rust_binder can only be built for a kernel with CONFIG_RUST=y."
fi
if [ ! -f "$kdir/Module.symvers" ]; then
    fail "it has no Module.symvers: the tree is configured but its kernel is not built." \
        "Build the kernel in it first (make, or at least make modules_prepare and modules)."
fi
if [ ! -f "$kdir/rust/libkernel.rmeta" ]; then
    fail "it has no Rust metadata (rust/libkernel.rmeta): a Rust module is compiled against" \
        "the kernel's own Rust crates, and only a full kernel build makes their metadata." \
        "Debian's linux-headers-* packages leave it out, so rust_binder cannot be built, by hand" \
        "or by DKMS, against them. Build it against the kernel's full build tree instead" \
        "(make KDIR=/path/to/it, or dkms build ... --kernelsourcedir /path/to/it)."
fi

# The kernel's crates only link with the rustc that compiled them, and the C side of the
# module must be compiled by the kernel's clang (the Makefile uses LLVM=-19). The Makefile
# looks for rustc in ~/.cargo/bin first, as rustup installs it, and so does this check.
PATH=${HOME:+$HOME/.cargo/bin:}$PATH
want_rustc=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$config")
have_rustc=$(rustc --version 2>/dev/null || true)
if [ -z "$have_rustc" ]; then
    fail "there is no rustc in PATH ($PATH); the kernel was built with $want_rustc." \
        "(Under sudo and DKMS, that is root's PATH and root's ~/.cargo/bin.)"
fi
if [ -n "$want_rustc" ] && [ "$have_rustc" != "$want_rustc" ]; then
    fail "the kernel was built with $want_rustc, but rustc in PATH is $have_rustc." \
        "Its Rust metadata can only be used by the same rustc."
fi
clang=$(sed -n 's/^CONFIG_CLANG_VERSION=\([0-9]*\)$/\1/p' "$config")
if [ -z "$clang" ] || [ $((clang / 10000)) != 19 ]; then
    fail "the kernel was built with $(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/p' "$config")," \
        "but rust_binder's build uses clang 19 (LLVM=-19), which must be the kernel's compiler" \
        "too: kernels built with another compiler (Debian's are built with gcc) are not supported."
fi
exit 0
