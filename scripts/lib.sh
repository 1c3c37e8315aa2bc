# SPDX-License-Identifier: GPL-2.0
# Shared settings of the rust_binder scripts; sourced, not run.

RB_CACHE=${RB_CACHE:-$HOME/.cache/rust_binder}
KSRC=${KSRC:-$RB_CACHE/linux-source-7.3}
MUSL_TARGET=x86_64-unknown-linux-musl
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
# depmod, modinfo, modprobe and dkms are in sbin, which a user's PATH may lack.
export PATH="$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin"

# A user's own kernel tree, if KDIR was given; empty means "the project's test kernel".
KDIR_GIVEN=${KDIR:-}

# The build tree of one kernel variant (debug or bench).
kernel_out() {
    if [ -n "$KDIR_GIVEN" ]; then echo "$KDIR_GIVEN"; else echo "$RB_CACHE/build-$1"; fi
}

# make for the kernel, with the toolchain it must be built (and its modules built) with: clang
# 19, or the LLVM version use_llvm chose.
kmake() {
    make ARCH=x86_64 LLVM=-"${RB_LLVM:-19}" "$@"
}

# use_llvm N: kmake and bindgen use LLVM N from now on.
use_llvm() {
    RB_LLVM=$1
    export LIBCLANG_PATH=/usr/lib/llvm-$1/lib
}

# The LLVM major version of rustc (rustup's rustc carries its own LLVM).
rustc_llvm() {
    rustc --version --verbose 2>/dev/null | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p'
}

# The LLVM major version a configured kernel tree was built with (its clang's).
kernel_llvm() {
    local version
    version=$(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$1/.config" 2>/dev/null)
    echo $((${version:-190000} / 10000))
}

# rsbinder's tools (rsb_hub, rsb_service), for the interop checks: a pinned version, built
# static so they run in the test VM.
RSBINDER_TOOLS_VERSION=0.12.0
RSBINDER_TOOLS=$RB_CACHE/rsbinder-tools-$RSBINDER_TOOLS_VERSION

# Builds them into $RSBINDER_TOOLS/bin unless they are there already.
install_rsbinder_tools() {
    [ -x "$RSBINDER_TOOLS/bin/rsb_hub" ] && [ -x "$RSBINDER_TOOLS/bin/rsb_service" ] && return 0
    echo "building rsbinder-tools $RSBINDER_TOOLS_VERSION (static, $MUSL_TARGET; once)"
    nice -n 10 cargo install --locked --quiet --target "$MUSL_TARGET" --root "$RSBINDER_TOOLS" \
        rsbinder-tools --version "=$RSBINDER_TOOLS_VERSION"
}

# result NAME [WHY...]: prints one result line for the check scripts (scripts/test-*.sh),
# "ok   NAME", or "FAIL NAME: WHY; ..." and then sets failed=1 for the script's exit status.
result() {
    local name=$1 why
    shift
    if [ $# -eq 0 ]; then
        echo "ok   $name"
    else
        why=$(printf '%s; ' "$@")
        echo "FAIL $name: ${why%; }"
        failed=1
    fi
}
