#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs everything rust_binder needs and builds the test kernel. Idempotent: every step
# checks first and skips what is already done, so the other make targets call it freely.
#
#   scripts/setup.sh [debug|bench] [check]     (default: debug)
#
# "check" adds what only `make check` uses: dkms and kmod (depmod, modinfo, modprobe), for its
# install and DKMS tests (scripts/test-install.sh, scripts/test-dkms.sh).
#
# Environment:
#   KDIR=<dir>       use an already built Rust-enabled 7.3 kernel tree; no kernel is built.
#   RB_CACHE=<dir>   where the kernel source and build trees live (default ~/.cache/rust_binder).
#   RB_SKIP_PACKAGES=1  skip installing (for machines set up by hand); the tools are still
#                       checked.
#   RB_SETUP_DRY_RUN=1  print the apt-get commands a machine with nothing installed would run
#                       (and, as "#" lines, the package list and the program each tool check
#                       looks for), then check the tools as after installing and stop: exit
#                       status 1, naming each, if one is missing. Installs nothing, needs no
#                       root (scripts/test-setup.sh checks it). For the bench variant, whether
#                       Debian has the clang of rustc's LLVM is asked of this machine's apt
#                       lists, as the real run asks them (see bench_llvm_packages).
set -euo pipefail

variant=${1:-debug}
case "$variant" in
debug | bench) ;;
*)
    echo "setup: unknown kernel variant '$variant' (want debug or bench)" >&2
    exit 2
    ;;
esac
for_check=${2:-}
case "$for_check" in
"" | check) ;;
*)
    echo "setup: unknown second argument '$for_check' (want check, or nothing)" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

kernel_series=7.3
apt_packages=(clang-19 lld-19 llvm-19 libclang-19-dev bc flex bison libelf-dev libssl-dev cpio
    busybox-static xz-utils python3 make rsync)
# `make bench` draws its latency plot with gnuplot.
[ "$variant" = debug ] || apt_packages+=(gnuplot-nox)
[ -z "$for_check" ] || apt_packages+=(dkms kmod)
backports_suite=bookworm-backports
kernel_suite=trixie-backports

step() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

# The extra suites are added as sources entries of their own, pinned low so that they never
# replace anything of the base system; only the packages named below come from them.
add_extra_suites() {
    local src=/etc/apt/sources.list.d/rust-binder-extra.sources
    local pref=/etc/apt/preferences.d/rust-binder-extra
    if [ ! -f "$src" ]; then
        step "adding Debian suites $backports_suite and $kernel_suite (pinned low)"
        as_root tee "$src" >/dev/null <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $backports_suite $kernel_suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        as_root tee "$pref" >/dev/null <<EOF
Package: *
Pin: release n=$kernel_suite
Pin-Priority: 50

Package: *
Pin: release n=$backports_suite
Pin-Priority: 50
EOF
        return 0
    fi
    return 1
}

# The programs the pipeline runs, each with the package that provides it. After installing,
# every one is looked for; a missing one stops setup at once, naming it and its package.
required_programs=(
    "qemu-system-x86_64 qemu-system-x86"
    "clang-19 clang-19"
    "ld.lld-19 lld-19"
    "busybox busybox-static"
    "cpio cpio"
    "rsync rsync"
    "bc bc"
    "flex flex"
    "bison bison"
)
[ -z "$for_check" ] || required_programs+=(
    "dkms dkms"
    "depmod kmod"
    "modinfo kmod"
    "modprobe kmod"
)

# Prints the apt-get commands that install the missing packages given as arguments, one
# command a line. The packages from the pinned suites get their own commands (`-t SUITE`, or
# `PKG/SUITE`), every package is named exactly once, and nothing is printed for no package.
apt_commands() {
    local p base=() qemu=() source=()
    for p in "$@"; do
        case "$p" in
        qemu-system-x86) qemu+=("$p") ;;
        linux-source-*) source+=("$p/$kernel_suite") ;;
        *) base+=("$p") ;;
        esac
    done
    local install="apt-get install -y -q --no-install-recommends"
    [ ${#base[@]} -eq 0 ] || echo "$install ${base[*]}"
    # qemu-system-x86 must match the preinstalled qemu-utils, which come from backports.
    [ ${#qemu[@]} -eq 0 ] || echo "$install -t $backports_suite ${qemu[*]}"
    [ ${#source[@]} -eq 0 ] || echo "$install ${source[*]}"
}

# The bench kernel's own toolchain (see bench_llvm): clang, lld and llvm of rustc's LLVM
# version, one package a line. Nothing for the debug kernel, for a kernel tree of one's own
# (KDIR: no kernel is built), nor when rustc's LLVM is 19 (apt_packages has it) or unknown.
bench_llvm_packages() {
    [ "$variant" = bench ] && [ -z "$KDIR_GIVEN" ] || return 0
    local v
    v=$(rustc_llvm)
    [ -n "$v" ] && [ "$v" != 19 ] || return 0
    printf '%s\n' "clang-$v" "lld-$v" "llvm-$v"
}

# Whether Debian (this machine's apt lists) has the bench packages given as arguments; only
# clang is asked about, as lld and llvm come from the same source package. When it has not,
# bench_llvm says so and the bench kernel is built with clang 19.
bench_llvm_available() {
    [ $# -eq 0 ] || apt-cache show "$1" >/dev/null 2>&1
}

install_packages() {
    local need_update=0
    local missing=() bench=()
    mapfile -t bench < <(bench_llvm_packages)
    if [ -n "${RB_SETUP_DRY_RUN:-}" ]; then
        # Test mode (scripts/test-setup.sh): every package counts as missing, and the commands
        # are printed instead of run.
        missing=("${apt_packages[@]}" qemu-system-x86 "linux-source-$kernel_series")
        if bench_llvm_available "${bench[@]}"; then
            missing+=("${bench[@]}")
        else
            echo "# no ${bench[0]} in the apt lists: the bench kernel would be built with clang 19"
        fi
        echo "# packages: ${missing[*]}"
        local entry
        for entry in "${required_programs[@]}"; do
            echo "# program ${entry%% *} from ${entry#* }"
        done
        apt_commands "${missing[@]}"
        return 0
    fi
    add_extra_suites && need_update=1
    mapfile -t missing < <(missing_packages "${apt_packages[@]}" qemu-system-x86)
    if [ -z "$KDIR_GIVEN" ] && [ ! -f "/usr/src/linux-source-$kernel_series.tar.xz" ]; then
        missing+=("linux-source-$kernel_series")
    fi
    mapfile -t bench < <(missing_packages "${bench[@]}")
    [ $((${#missing[@]} + ${#bench[@]})) -gt 0 ] || return 0
    export DEBIAN_FRONTEND=noninteractive
    if [ "$need_update" = 1 ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] ||
        ! apt-cache show clang-19 >/dev/null 2>&1; then
        as_root apt-get update -q
    fi
    # Asked after the update, which may be what brings it in.
    bench_llvm_available "${bench[@]}" && missing+=("${bench[@]}")
    [ ${#missing[@]} -gt 0 ] || return 0
    step "installing packages: ${missing[*]}"
    case " ${missing[*]} " in
    *" linux-source-$kernel_series "*)
        if ! apt-cache show "linux-source-$kernel_series" 2>/dev/null | grep -q '^Version:'; then
            echo "setup: the package linux-source-$kernel_series is no longer in the Debian archive." >&2
            echo "setup: build a Rust-enabled $kernel_series kernel yourself (with the options in" >&2
            echo "setup: scripts/kernel/*.config) and pass its build tree: make check KDIR=/path/to/it" >&2
            exit 1
        fi
        ;;
    esac
    local cmd
    while IFS= read -r cmd; do
        # shellcheck disable=SC2086 # a command line made by apt_commands
        as_root $cmd
    done < <(apt_commands "${missing[@]}")
}

# Fails at once, naming the program and its package, when something the pipeline runs is not
# there after installing: better now than as a VM that exits with status 127 much later.
verify_tools() {
    local entry prog pkg bad=0
    for entry in "${required_programs[@]}"; do
        prog=${entry%% *}
        pkg=${entry#* }
        if ! command -v "$prog" >/dev/null 2>&1; then
            echo "setup: $prog is missing (Debian package $pkg)" >&2
            bad=1
        fi
    done
    command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is missing (install Rust with rustup)" >&2; bad=1; }
    command -v bindgen >/dev/null 2>&1 || { echo "setup: bindgen is missing (cargo install bindgen-cli)" >&2; bad=1; }
    if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
        echo "setup: the rust-src component is missing (rustup component add rust-src)" >&2
        bad=1
    fi
    if ! rustup target list --installed 2>/dev/null | grep -q "^$MUSL_TARGET\$"; then
        echo "setup: the $MUSL_TARGET target is missing (rustup target add $MUSL_TARGET)" >&2
        bad=1
    fi
    if [ -z "$KDIR_GIVEN" ] && [ ! -f "/usr/src/linux-source-$kernel_series.tar.xz" ]; then
        echo "setup: /usr/src/linux-source-$kernel_series.tar.xz is missing (Debian package linux-source-$kernel_series from $kernel_suite)" >&2
        bad=1
    fi
    [ "$bad" = 0 ] || exit 1
}

install_rust_bits() {
    if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
        step "rustup component add rust-src"
        rustup component add rust-src
    fi
    if ! rustup target list --installed 2>/dev/null | grep -q "^$MUSL_TARGET\$"; then
        step "rustup target add $MUSL_TARGET (static test binaries)"
        rustup target add "$MUSL_TARGET"
    fi
    if ! command -v bindgen >/dev/null 2>&1; then
        step "cargo install --locked bindgen-cli (a few minutes, once)"
        cargo install --locked bindgen-cli
    fi
}

# Unpacks Debian's kernel source once.
unpack_source() {
    local tarball="/usr/src/linux-source-$kernel_series.tar.xz"
    if [ ! -f "$KSRC/Makefile" ]; then
        step "unpacking $tarball into $RB_CACHE"
        mkdir -p "$RB_CACHE"
        rm -rf "$KSRC.partial"
        mkdir -p "$KSRC.partial"
        tar -xJf "$tarball" -C "$KSRC.partial" --strip-components=1
        mv "$KSRC.partial" "$KSRC"
    fi
}

# Prints one line every 20 seconds while the kernel builds, instead of thousands of lines.
progress() {
    local log=$1 start=$SECONDS last=0 n
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$log"
        if [ $((SECONDS - last)) -ge 20 ]; then
            last=$SECONDS
            n=$(grep -c -E '^  (CC|RUSTC|LD|AR|AS)' "$log" || true)
            printf 'setup:   ... %4ds, %5d objects built (last: %s)\n' $((SECONDS - start)) "$n" "${line:0:60}"
        fi
    done
}

# The bench kernel is built with the clang of rustc's own LLVM when Debian has it (the debug
# kernel keeps clang 19): only with matching LLVMs can CONFIG_RUST_INLINE_HELPERS inline the
# kernel's small C helpers (spin locks, reference counts, atomics) into Rust code, as they are
# inlined into C code. Without it each is an out-of-line call C never pays, which issue 14's
# profile counted. install_packages installs that clang (bench_llvm_packages) when Debian has
# it; prints the LLVM version to build with.
bench_llvm() {
    local v
    v=$(rustc_llvm)
    [ -n "$v" ] || { echo 19; return 0; }
    if command -v "clang-$v" >/dev/null && command -v "ld.lld-$v" >/dev/null &&
        command -v "llvm-ar-$v" >/dev/null; then
        echo "$v"
    else
        step "no clang-$v to match rustc's LLVM: the bench kernel calls C helpers out of line" >&2
        echo 19
    fi
}

build_kernel() {
    local out=$1
    local fragments=("$here/kernel/base.config")
    fragments+=("$here/kernel/$variant.config")
    # Inlining the helpers needs clang and rustc on one LLVM (see bench_llvm).
    [ "$variant" != bench ] || [ "${RB_LLVM:-19}" != "$(rustc_llvm)" ] ||
        fragments+=("$here/kernel/bench-inline.config")
    # The stamp covers what decides the kernel: its source version, the fragments and the
    # compilers. A change to any of them reconfigures and rebuilds (incrementally).
    local stamp
    stamp=$( (
        head -n 5 "$KSRC/Makefile"
        cat "${fragments[@]}"
        rustc --version
        "clang-${RB_LLVM:-19}" --version | head -n 1
        bindgen --version
    ) | sha256sum | cut -d' ' -f1)
    if [ -f "$out/.rb-stamp" ] && [ "$(cat "$out/.rb-stamp")" = "$stamp" ] &&
        [ -f "$out/arch/x86/boot/bzImage" ] && [ -f "$out/drivers/android/binder_linux.ko" ] &&
        [ -d "$out/usr/include/linux/android" ]; then
        return 0
    fi
    mkdir -p "$out"
    rm -f "$out/.rb-stamp"
    local log="$out/build.log"
    : >"$log"
    step "configuring the $variant kernel in $out"
    kmake -C "$KSRC" O="$out" tinyconfig >>"$log" 2>&1
    "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >>"$log" 2>&1
    kmake -C "$KSRC" O="$out" olddefconfig >>"$log" 2>&1
    check_config "$out" "${fragments[@]}"
    step "building the $variant kernel with -j$(nproc) (about 6-15 minutes; log: $log)"
    if ! kmake -C "$KSRC" O="$out" -j"$(nproc)" bzImage modules 2>&1 | progress "$log"; then
        tail -n 40 "$log" >&2
        echo "setup: kernel build failed; full log in $log" >&2
        exit 1
    fi
    kmake -C "$KSRC" O="$out" headers_install >>"$log" 2>&1
    echo "$stamp" >"$out/.rb-stamp"
    step "kernel ready: $out"
}

# Kconfig drops options whose dependencies are not met without a word; fail loudly instead.
check_config() {
    local out=$1
    shift
    local line opt want bad=0
    while IFS= read -r line; do
        case "$line" in
        CONFIG_*=*)
            opt=${line%%=*}
            want=$line
            ;;
        "# CONFIG_"*" is not set")
            opt=${line#\# }
            opt=${opt%% *}
            want="# $opt is not set"
            ;;
        *) continue ;;
        esac
        if ! grep -qxF "$want" "$out/.config"; then
            # An unset option may simply be absent from .config.
            if [ "${want:0:1}" = "#" ] && ! grep -q "^$opt=" "$out/.config"; then continue; fi
            echo "setup: kernel option not applied: $want (have: $(grep -E "^(# )?$opt[= ]" "$out/.config" || echo absent))" >&2
            bad=1
        fi
    done < <(cat "$@")
    if [ "$bad" = 1 ]; then
        echo "setup: the kernel configuration does not match scripts/kernel/*.config" >&2
        exit 1
    fi
}

main() {
    if [ -n "${RB_SETUP_DRY_RUN:-}" ]; then
        install_packages
        verify_tools
        return 0
    fi
    if [ "${RB_SKIP_PACKAGES:-0}" != 1 ]; then
        install_packages
        install_rust_bits
    fi
    verify_tools
    if [ -n "$KDIR_GIVEN" ]; then
        bash "$here/kdir-check.sh" "$KDIR" || exit 1
        return 0
    fi
    unpack_source
    [ "$variant" != bench ] || use_llvm "$(bench_llvm)"
    build_kernel "$(kernel_out "$variant")"
}

# bash reads a script as it runs it. The kernel build takes minutes, and an edit to this file
# meanwhile (a git checkout, say) was read after main returned, failing a finished setup with
# a syntax error; `exit` on main's own line means nothing after it is ever read.
main; exit
