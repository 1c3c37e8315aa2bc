#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: rust_binder against the C driver, side by side. Builds the non-debug "bench"
# kernel (base.config plus bench.config: no sanitizers; in its own build directory), builds
# rust_binder.ko for it in a scratch copy (the repository's rust_binder.ko stays the debug
# kernel's, for `make check`), then measures with the benchmark binary (tests/bench) in one of
# two modes:
#
# interleaved (the default): ONE boot with both drivers loaded (binder_linux.ko first, its
#   devices in a binderfs mount at /dev/binderfs; rust_binder's misc devices at /dev/binder),
#   every workload run in short alternating blocks, C then rust, rust then C, ..., and the ratio
#   taken per adjacent block pair, so that both sides of a ratio see the same host. The report
#   gives the median of those ratios with a bootstrap 95% confidence interval, and marks a row
#   whose interval spans its target (issue 14) "not decided".
# separate (BENCH_MODE=separate, the cross-check): boots the kernel once per driver and runs the
#   same workloads in each; the boot pair is repeated BENCH_ROUNDS times, the order of the two
#   drivers alternating, and the ratio is taken per boot pair.
#
# Both modes also measure memory (pages of a receive buffer through a burst and memory
# pressure, slab bytes per binder object: memory.csv) and the teardown row (kill to death
# notice of a process with a full buffer and 16 threads).
#
# Results go to bench/results/<UTC time>/: raw.csv (every boot), summary.md and summary.csv
# (the tables: C, rust_binder, rust/C with its spread, each driver over the floor),
# latency.png (latency against payload size), accel (QEMU's accelerator, kvm or tcg: vm.sh
# uses KVM where it can, and times under KVM and TCG are not comparable; summary.md says
# which), and each boot's logs under boots/.
#
# Environment:
#   BENCH_MODE=M      interleaved (default) or separate
#   BENCH_BLOCKS=N    interleaved: block pairs per row (default 10)
#   BENCH_ROUNDS=N    separate: boot pairs (default 5)
#   BENCH_SCALE=F     multiplies every iteration count (default 1: separate mode, about 30
#                     seconds of measuring a boot under TCG on 2 cores, plus the boot itself;
#                     interleaved, a block is a quarter of that row's iterations)
#   BENCH_OUT=DIR     where the results go instead
#   BENCH_KERNEL_READY=1  the bench kernel is built as it should be: do not run setup.sh
#   PROFILE=1         also profile the gap workloads on both drivers (at the end of the
#                     interleaved boot, or one more boot in separate mode; see
#                     tests/bench/src/profile.rs): profile/profile.txt in the results
#   PROFILE_CALLERS=F the profile also counts the call chains above the function F (part of
#                     its name, e.g. smp_call_function_many_cond)
#   PROFILE_ONLY=W    the profile runs only workload W (call, call-4k, call-1m, parallel, oneway,
#                     objects, fd, sg-chain, teardown)
#   PROFILE_SECONDS=S the profile runs each workload S seconds per driver (default 12)
#   PROFILE_OFFSETS=F the profile also counts the samples of the function F (part of its name)
#                     by offset from its start, to read against `objdump -d` of the module
#   INSN_COUNT=1      instead of measuring, one boot that runs the profile of PROFILE_ONLY
#                     (default call) under QEMU's instruction counting and the insn_count
#                     plugin (scripts/insn-count): the exact kernel instructions per operation
#                     of every function, both drivers side by side, in insn-count.txt in the
#                     results; INSN_DETAIL=F,... adds functions F's (part of a name) by offset;
#                     PROFILE_WINDOWS=N counts only the timed windows of the first N operations
#                     of each run, for a workload that marks them (teardown: kill to death
#                     notice; N of 30 keeps the counts file under 100 MB)
#   BENCH_ICOUNT=1    the guest runs in QEMU's instruction-counting mode (vm.sh's
#                     RB_VM_ICOUNT=0, TCG only): its clock advances 1 ns per instruction
#                     executed, so a busy host changes no figure. Times are then instruction
#                     counts, not a real CPU's speed (no caches, no pipeline): a cross-check of
#                     the timed run, and a profile that the host's load does not blur
#
#   scripts/bench.sh                   build, boot, measure, sum up (what `make bench` runs)
#   scripts/bench.sh --report DIR      only the tables and plot again, from DIR/raw.csv
#
# Never a pass/fail test: it fails only when something could not be built or booted.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"

mode=${BENCH_MODE:-interleaved}
rounds=${BENCH_ROUNDS:-5}
blocks=${BENCH_BLOCKS:-10}
# vm.sh reads it: every boot of the run counts instructions.
[ "${BENCH_ICOUNT:-}" != 1 ] || export RB_VM_ICOUNT=0
scale=${BENCH_SCALE:-1}
out=${BENCH_OUT:-$top/bench/results/$(date -u +%Y-%m-%dT%H%M)}
kernel=$(kernel_out bench)
module_dir=$RB_CACHE/bench-module
target_dir=$top/tests/target/bench-build
bench_bin=$target_dir/$MUSL_TARGET/release/bench

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "bench: $*" >&2; exit 1; }

case "$rounds" in '' | *[!0-9]* | 0) die "BENCH_ROUNDS must be a positive number" ;; esac
case "$blocks" in '' | *[!0-9]* | 0) die "BENCH_BLOCKS must be a positive number" ;; esac
case "$mode" in interleaved | separate) ;; *) die "BENCH_MODE must be interleaved or separate" ;; esac

# Builds the bench kernel, rust_binder.ko for it, and the benchmark.
build() {
    [ "${BENCH_KERNEL_READY:-}" = 1 ] || bash "$here/setup.sh" bench

    # The module is built by the kernel's own clang (clang 22 when it matched rustc's LLVM).
    use_llvm "$(kernel_llvm "$kernel")"
    step "building rust_binder.ko for the bench kernel (in $module_dir, LLVM $RB_LLVM)"
    # A copy of the sources, so that the build for the bench tree never touches the repository's
    # rust_binder.ko, which `make check` loads into the debug kernel.
    mkdir -p "$module_dir"
    rsync -a --delete --include='/*.rs' --include='/*.c' --include='/*.h' --include='/Kbuild' --include='/VERSION' --exclude='*' "$top/" "$module_dir/src/"
    kmake -C "$kernel" M="$module_dir/src" modules >"$module_dir/build.log" 2>&1 ||
        { tail -n 40 "$module_dir/build.log" >&2; die "rust_binder did not build for $kernel"; }

    step "building the benchmark (static, $MUSL_TARGET)"
    (cd "$top/tests" && BINDER_UAPI_INCLUDE=$kernel/usr/include CARGO_TARGET_DIR=$target_dir \
        cargo build --release --locked --target "$MUSL_TARGET" -p bench) ||
        die "the benchmark did not build"
}

# The guest script of a boot with both drivers: runs after the init loaded the C driver (its
# devices in the binderfs mount /dev/binderfs, symlinked as /dev/binder...); the symlinks go,
# and rust_binder's misc devices take their names. Then runs "/bin/bench ARGS...".
both_drivers_script() { # both_drivers_script FILE COMMAND...
    local file=$1
    shift
    # shellcheck disable=SC2016 # the lines are for the guest's shell to expand
    {
        echo '#!/bin/sh'
        echo 'for d in binder hwbinder vndbinder; do rm -f /dev/$d; done'
        echo 'insmod /lib/modules/rust_binder.ko || { echo "bench: rust_binder did not load next to the C driver"; exit 1; }'
        echo 'echo "bench: both drivers, kernel $(uname -r), clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"'
        echo 'ls -l /dev/binder /dev/binderfs/binder'
        printf '%s\n' "$@"
    } >"$file"
}

# The profiler's settings for the guest's command line (see PROFILE_CALLERS, PROFILE_ONLY).
profile_env() {
    printf 'BENCH_PROFILE_CALLERS=%q BENCH_PROFILE_ONLY=%q BENCH_PROFILE_SECONDS=%q BENCH_PROFILE_OFFSETS=%q ' \
        "${PROFILE_CALLERS:-}" "${PROFILE_ONLY:-}" "${PROFILE_SECONDS:-}" "${PROFILE_OFFSETS:-}"
}

# Interleaved mode: one boot, both drivers; every figure in raw.csv (the block pair as the
# round), the memory figures in memory.csv.
measure_interleaved() {
    mkdir -p "$out/boots"
    local profile=
    # The profile rides in the same boot (one boot less to wait for the VM lock).
    [ "${PROFILE:-}" != 1 ] || profile="echo '--- profile'; $(profile_env)/bin/bench profile --scale $scale; echo '--- profile end'"
    both_drivers_script "$out/boots/guest.sh" \
        "/bin/bench interleave --scale $scale --blocks $blocks" "/bin/bench memory c rust" "$profile"
    echo "round,driver,workload,payload,pairs,iterations,median_ns,p99_ns,ops_per_s,steady_ops_per_s,error" >"$out/raw.csv"
    start=$SECONDS
    step "one boot, both drivers, $blocks block pair(s) per row"
    boot=$out/boots/interleaved
    bash "$here/vm.sh" --kernel "$kernel" --driver c --module "$module_dir/src/rust_binder.ko" \
        --bin "$bench_bin" --run "$out/boots/guest.sh" --out "$boot" --timeout 7200 >/dev/null || true
    rm -f "$boot/initramfs.cpio"
    rm -rf "$boot/root"
    cp "$boot/accel" "$out/accel" 2>/dev/null || echo unknown >"$out/accel"
    tr -d '\r' <"$boot/guest.log" | grep '^ibench,' | sed 's/^ibench,//' >>"$out/raw.csv" || true
    tr -d '\r' <"$boot/guest.log" | grep -E '^(mem|slab),' >"$out/memory.csv" || true
    if [ "${PROFILE:-}" = 1 ]; then
        mkdir -p "$out/profile"
        tr -d '\r' <"$boot/guest.log" | sed -n '/^--- profile$/,/^--- profile end$/p' | grep -v '^--- profile' >"$out/profile/profile.txt" || true
        echo "profile: $out/profile/profile.txt"
    fi
    [ "$(wc -l <"$out/raw.csv")" -gt 1 ] ||
        echo "bench: no results from the boot; see $boot/guest.log and $boot/console.log" >&2
    grep -h '^FAIL' "$boot/results" 2>/dev/null | sed 's/^/  /' || true
    [ ! -f "$boot/log-excerpt" ] || head -n 30 "$boot/log-excerpt"
    elapsed=$((SECONDS - start))
}

# PROFILE=1 in separate mode: one more boot with both drivers, profiling the gap workloads on
# each. (In interleaved mode the profile runs at the end of the one boot.)
measure_profile() {
    mkdir -p "$out/profile"
    both_drivers_script "$out/profile/guest.sh" "$(profile_env)/bin/bench profile --scale $scale"
    step "profiling the gap workloads on both drivers"
    bash "$here/vm.sh" --kernel "$kernel" --driver c --module "$module_dir/src/rust_binder.ko" \
        --bin "$bench_bin" --run "$out/profile/guest.sh" --out "$out/profile/boot" --timeout 3600 >/dev/null || true
    rm -f "$out/profile/boot/initramfs.cpio"
    rm -rf "$out/profile/boot/root"
    sed -n '/^=== results/,/^=== end/p' "$out/profile/boot/guest.log" | tr -d '\r' |
        grep -v '^===' >"$out/profile/profile.txt" || true
    echo "profile: $out/profile/profile.txt"
}

# INSN_COUNT=1: one boot with both drivers, the profile of one workload under the insn_count
# plugin, and the counts by function. The plugin ends a phase when a translated block starts at
# `__x64_sys_ni_syscall`, found in System.map: this holds for the bench kernel (no KASLR, no
# call padding); the report checks that it saw two marks per run.
measure_insn_count() {
    mkdir -p "$out/boots"
    local plugin=$out/boots/insn_count.so mark
    gcc -O2 -shared -fPIC -fvisibility=hidden -Wall -o "$plugin" "$here/insn-count/insn_count.c" ||
        die "the insn_count plugin did not build"
    mark=$(awk '$3 == "__x64_sys_ni_syscall" { print "0x" $1 }' "$kernel/System.map")
    [ -n "$mark" ] || die "no __x64_sys_ni_syscall in $kernel/System.map"
    # shellcheck disable=SC2016 # the lines are for the guest's shell to expand
    both_drivers_script "$out/boots/guest.sh" \
        "BENCH_INSN_MARK=1 BENCH_PROFILE_WINDOWS=${PROFILE_WINDOWS:-0} BENCH_PROFILE_ONLY=${PROFILE_ONLY:-call} BENCH_PROFILE_SECONDS=${PROFILE_SECONDS:-4} /bin/bench profile --scale $scale | grep '^insn-run'" \
        "grep -E '\[(rust_binder|binder_linux)\]' /proc/kallsyms | sed 's/^/ksym /'"
    step "one boot, both drivers, counting the instructions of ${PROFILE_ONLY:-call}"
    boot=$out/boots/insn-count
    RB_VM_ICOUNT=0 RB_VM_PLUGIN="$plugin,mark=$mark,out=$out/boots/insn-counts" \
        bash "$here/vm.sh" --kernel "$kernel" --driver c --module "$module_dir/src/rust_binder.ko" \
        --bin "$bench_bin" --run "$out/boots/guest.sh" --out "$boot" --timeout 7200 >/dev/null || true
    "$bench_bin" insn-report "$out/boots/insn-counts" "$kernel/System.map" "$boot/guest.log" \
        ${INSN_DETAIL:+"$INSN_DETAIL"} >"$out/insn-count.txt" ||
        die "no counts; see $boot/guest.log and $boot/console.log"
    rm -f "$out/boots/insn-counts" "$boot/initramfs.cpio"
    rm -rf "$boot/root"
    echo "counts: $out/insn-count.txt"
}

# Separate mode: boots each driver BENCH_ROUNDS times and collects every figure in raw.csv.
measure() {
    mkdir -p "$out/boots"
    cat >"$out/boots/guest.sh" <<EOF
#!/bin/sh
# Runs in the guest (vm.sh --run): the benchmark against the driver the init loaded.
echo "bench: driver \$1, kernel \$(uname -r), clocksource \$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
/bin/bench run --scale $scale
/bin/bench memory \$1
EOF

    echo "round,driver,workload,payload,pairs,iterations,median_ns,p99_ns,ops_per_s,steady_ops_per_s,error" >"$out/raw.csv"
    accels=
    start=$SECONDS
    for round in $(seq 1 "$rounds"); do
        # Alternate which driver boots first, so that a machine getting busier or quieter over
        # the run does not favour one of them.
        if [ $((round % 2)) = 1 ]; then order="c rust"; else order="rust c"; fi
        for driver in $order; do
            step "round $round of $rounds: $driver driver ($((SECONDS - start)) s so far)"
            boot=$out/boots/$round-$driver
            bash "$here/vm.sh" --kernel "$kernel" --driver "$driver" --module "$module_dir/src/rust_binder.ko" \
                --bin "$bench_bin" --run "$out/boots/guest.sh" --out "$boot" --timeout 900 >/dev/null || true
            rm -f "$boot/initramfs.cpio"
            rm -rf "$boot/root"
            # Every boot of a run should have the same accelerator; if not, accel says so.
            boot_accel=$(cat "$boot/accel" 2>/dev/null || echo unknown)
            case " $accels " in
            *" $boot_accel "*) ;;
            *) accels="$accels $boot_accel"; echo "  accelerator: $boot_accel" ;;
            esac
            lines=$(tr -d '\r' <"$boot/guest.log" | grep '^bench,' || true)
            if [ -z "$lines" ]; then
                echo "bench: no results from this boot; see $boot/guest.log and $boot/console.log" >&2
            else
                printf '%s\n' "$lines" | sed "s/^bench,/$round,$driver,/" >>"$out/raw.csv"
                tr -d '\r' <"$boot/guest.log" | grep -E '^(mem|slab),' >>"$out/memory.csv" || true
                printf '%s\n' "$lines" | awk -F, '{
                    printf "  %-18s %8s B %2s pair(s): ", $2, $3, $4
                    if ($10 != "") print "n/a: " $10
                    else printf "median %9.1f us  p99 %9.1f us  %8.0f /s (steady %8.0f /s)\n", $6 / 1e3, $7 / 1e3, $8, $9 }'
            fi
            # A driver that oopses or warns under load is worth knowing about.
            grep -h '^FAIL' "$boot/results" 2>/dev/null | sed 's/^/  /' || true
            [ ! -f "$boot/log-excerpt" ] || head -n 30 "$boot/log-excerpt"
        done
    done
    elapsed=$((SECONDS - start))
    # raw.csv's columns are fixed (tests/bench reads them), so the run's accelerator has a file
    # of its own: "kvm", "tcg", or e.g. "kvm+tcg" if it changed during the run.
    accel=${accels# }
    accel=${accel// /+}
    echo "${accel:-unknown}" >"$out/accel"
}

# The run's accelerator, from DIR/accel. A run without that file is from before vm.sh could
# use KVM: TCG.
run_accel() {
    cat "$out/accel" 2>/dev/null || echo tcg
}

# The tables (summary.md, summary.csv) and the plot, from raw.csv.
summarise() {
    "$bench_bin" report "$out"
    # The report writes summary.md afresh; the accelerator goes first, as it decides what the
    # times mean.
    local accel accel_note pairs_label
    accel=$(run_accel)
    # Runs from before the interleaved mode have no mode file: separate boots.
    if [ "$(cat "$out/mode" 2>/dev/null)" = interleaved ]; then
        pairs_label="$(tail -n +2 "$out/raw.csv" | cut -d, -f1 | sort -u | wc -l) block pair(s) in one boot"
    else
        pairs_label="$rounds boot pair(s)"
    fi
    case "$accel" in
    tcg) accel_note="QEMU's TCG (emulated CPU: times are not hardware times; compare the ratios)" ;;
    tcg-icount) accel_note="QEMU's TCG counting instructions (BENCH_ICOUNT=1: every time is an instruction count at 1 ns each, the same however busy the host; compare the ratios)" ;;
    kvm) accel_note="KVM (hardware virtualisation: times are not comparable with TCG runs)" ;;
    *+*) accel_note="$accel (not the same for every boot: compare the ratios with care)" ;;
    *) accel_note="$accel (vm.sh did not say which)" ;;
    esac
    { echo "Accelerator: $accel_note."; echo; cat "$out/summary.md"; } >"$out/summary.md.new"
    mv "$out/summary.md.new" "$out/summary.md"

    if command -v gnuplot >/dev/null 2>&1; then
        gnuplot <<EOF
set terminal pngcairo size 1000,800 font ",11" noenhanced
set output "$out/latency.png"
set multiplot title "Synchronous round trip under QEMU ${accel^^}, both ends on one vCPU (medians over $pairs_label)"
set lmargin 12
set rmargin 4
set grid ytics mytics xtics
set offsets 0.2, 0.2, 0, 0
set xtics scale 0
# Top: latency against payload size, both drivers, with the pipe round trip for scale.
set origin 0, 0.34
set size 1, 0.62
set logscale y
set ylabel "µs per round trip (log)"
set key below maxcols 2 box
plot "$out/latency.dat" using 0:2:xtic(1) with linespoints lw 2 pt 7 ps 1.3 lc rgb "#1f5fbf" title "C driver, median", \\
     "" using 0:4 with linespoints lw 2 pt 5 ps 1.3 lc rgb "#d9480f" title "rust_binder, median", \\
     "" using 0:3 with linespoints lw 1 dt 2 pt 6 lc rgb "#1f5fbf" title "C driver, p99", \\
     "" using 0:5 with linespoints lw 1 dt 2 pt 4 lc rgb "#d9480f" title "rust_binder, p99", \\
     "" using 0:7 with lines lw 1 dt 3 lc rgb "#555555" title "floor: pipe round trip, no binder"
# Bottom: the ratio, the figure that counts.
set origin 0, 0
set size 1, 0.36
unset logscale y
set yrange [0:*]
set ylabel "rust_binder / C"
set xlabel "payload of the call (the reply is empty)"
set key inside bottom right box opaque
plot "$out/latency.dat" using 0:6:8:9:xtic(1) with yerrorlines lw 2 pt 7 ps 1.3 lc rgb "#2b8a3e" title "rust/C: median of the per-boot-pair ratios, bars their range", \\
     1 with lines lw 1 dt 2 lc rgb "#000000" title "parity"
unset multiplot
EOF
        echo "plot: $out/latency.png"
    else
        echo "bench: gnuplot not found, no plot (scripts/setup.sh bench installs gnuplot-nox)" >&2
    fi
    echo "results: $out"
}

if [ "${1:-}" = --report ]; then
    # Only the summary and plot again, from the raw.csv of an earlier run.
    out=$(cd "${2:?bench.sh --report DIR}" && pwd)
    rounds=$(tail -n +2 "$out/raw.csv" | cut -d, -f1 | sort -u | wc -l)
    (cd "$top/tests" && BINDER_UAPI_INCLUDE=$kernel/usr/include CARGO_TARGET_DIR=$target_dir \
        cargo build --release --locked --target "$MUSL_TARGET" -p bench) ||
        die "the benchmark did not build"
    step "summary of $out ($rounds boot pair(s))"
elif [ "${INSN_COUNT:-}" = 1 ]; then
    build
    measure_insn_count
    exit 0
else
    build
    if [ "$mode" = interleaved ]; then
        measure_interleaved
        echo interleaved >"$out/mode"
        step "summary (interleaved, $blocks block pair(s), scale $scale, $((elapsed / 60)) min $((elapsed % 60)) s of booting and measuring)"
    else
        measure
        echo separate >"$out/mode"
        step "summary ($rounds boot pair(s), scale $scale, $((elapsed / 60)) min $((elapsed % 60)) s of booting and measuring)"
    fi
    [ "${PROFILE:-}" != 1 ] || [ "$mode" = interleaved ] || measure_profile
fi
summarise
