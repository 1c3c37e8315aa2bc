// SPDX-License-Identifier: GPL-2.0
//! The binder benchmark: rust_binder against the C driver, the same way every time.
//!
//! ```text
//! bench run [--scale F]      in the guest: every workload against the loaded driver
//! bench interleave [--scale F] [--blocks N]
//!                            in the guest, both drivers loaded: every workload in alternating
//!                            blocks, C and rust_binder, so both see the same host
//! bench memory DRIVER...     in the guest: pages held through a burst and pressure, slab
//!                            bytes per object
//! bench report DIR           on the host: DIR/raw.csv summed up into tables and plot data
//! bench insn-report COUNTS SYSTEM_MAP LOG [FUNCTION]
//!                            on the host: the instruction counts of `profile` under QEMU's
//!                            insn_count plugin, by function (see [`insn_count`])
//! ```
//!
//! `run` prints one line per row, `bench,WORKLOAD,PAYLOAD,PAIRS,ITERATIONS,MEDIAN_NS,P99_NS,
//! OPS_PER_S,STEADY_OPS_PER_S,ERROR`, with ERROR empty when the row was measured and the figures empty when
//! it was not (a driver that lacks a feature gets "n/a", and the run goes on).
//! `scripts/bench.sh` (`make bench`) boots each driver, collects these lines into
//! `raw.csv` and calls `report`.

mod insn_count;
mod memory;
mod proc;
mod profile;
mod report;
mod run;
mod server;
mod teardown;
mod workloads;

use std::{io::Write, path::Path, process::ExitCode};

use proc::{Outcome, Shared};
use run::Figures;
use workloads::{Plan, Row};

/// How long `memory` and `profile` may take before their watchdog ends them.
const WATCHDOG_SECONDS: u32 = 1200;

/// The two drivers, by the names raw.csv uses.
const DRIVERS: [&str; 2] = ["c", "rust"];

/// In interleaved mode each block runs this fraction of a row's iterations at scale 1, so
/// that a block is short and its pair sees the same host.
const BLOCK_FRACTION: f64 = 0.25;

fn usage() -> ExitCode {
    eprintln!(
        "usage: bench run [--scale F] | bench interleave [--scale F] [--blocks N] | \
         bench memory DRIVER... | bench profile [--scale F] | bench report DIR | \
         bench insn-report COUNTS SYSTEM_MAP LOG [FUNCTION]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let number = |s: &str| s.parse::<f64>().ok().filter(|v| *v > 0.0);
    let result = match args[..] {
        ["run"] => run(1.0),
        ["run", "--scale", scale] => match number(scale) {
            Some(scale) => run(scale),
            None => return usage(),
        },
        ["interleave", ref rest @ ..] => {
            let (mut scale, mut blocks) = (1.0, 10);
            for pair in rest.chunks(2) {
                match *pair {
                    ["--scale", v] if number(v).is_some() => scale = number(v).unwrap_or(1.0),
                    ["--blocks", v] if number(v).is_some() => {
                        blocks = number(v).unwrap_or(1.0) as usize
                    }
                    _ => return usage(),
                }
            }
            interleave(scale, blocks)
        }
        ["memory", ref drivers @ ..] if !drivers.is_empty() => memory(drivers),
        ["profile"] => profile(1.0),
        ["profile", "--scale", scale] => match number(scale) {
            Some(scale) => profile(scale),
            None => return usage(),
        },
        ["report", dir] => report::report(Path::new(dir)),
        ["insn-report", counts, system_map, log, ref detail @ ..] if detail.len() <= 1 => {
            insn_count::report(
                Path::new(counts),
                Path::new(system_map),
                Path::new(log),
                detail.first().copied(),
            )
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A row's result as the fields after `bench,` (separate mode) or `ibench,ROUND,DRIVER,`.
fn fields(row: Row, result: Outcome<Figures>) -> String {
    match result {
        Ok(f) => format!(
            "{},{},{},{},{},{},{:.1},{:.1},",
            row.workload,
            row.payload,
            row.pairs,
            f.iterations,
            f.median_ns,
            f.p99_ns,
            f.ops_per_s,
            f.steady_ops_per_s
        ),
        Err(e) => format!(
            "{},{},{},,,,,,{}",
            row.workload,
            row.payload,
            row.pairs,
            e.replace([',', '\n', '\r'], ";")
        ),
    }
}

fn say(line: &str) {
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Separate mode: every workload against the one driver the guest loaded (as /dev/binder).
fn run(scale: f64) -> Outcome {
    let shared = Shared::new()?;
    Plan::new(scale).run_all("/dev/binder", shared.counters(), &mut |row, result| {
        say(&format!("bench,{}", fields(row, result)))
    });
    Ok(())
}

/// Interleaved mode: both drivers loaded, every row measured in `blocks` pairs of short
/// blocks, one per driver, the order alternating; a line per block, `ibench,PAIR,DRIVER,` and
/// the row's fields.
fn interleave(scale: f64, blocks: usize) -> Outcome {
    let shared = Shared::new()?;
    let plan = Plan::new(scale * BLOCK_FRACTION);
    let jobs = Plan::jobs();
    for pair in 1..=blocks {
        for (index, job) in jobs.iter().enumerate() {
            let mut order = DRIVERS;
            if (pair + index) % 2 == 0 {
                order.reverse();
            }
            for driver in order {
                let result = plan.measure(job, server::device(driver), shared.counters());
                say(&format!(
                    "ibench,{pair},{driver},{}",
                    fields(job.row, result)
                ));
            }
        }
    }
    Ok(())
}

/// The memory figures of each driver: `mem,DRIVER,PHASE,PAGES` for the pages of a receive
/// buffer through a burst and memory pressure, `slab,DRIVER,OBJECT,BYTES` per object.
fn memory(drivers: &[&str]) -> Outcome {
    // SAFETY: `alarm` only arms a timer: a measurement that hangs ends the run, not the boot.
    unsafe { libc::alarm(WATCHDOG_SECONDS) };
    let shared = Shared::new()?;
    // Every driver's pages under the same pressure (see the `memory` module).
    let devices: Vec<&'static str> = drivers.iter().map(|d| server::device(d)).collect();
    match memory::pages(&devices, shared.counters()) {
        Ok(all) => {
            for (driver, pages) in drivers.iter().zip(all) {
                for (phase, pages) in memory::PHASES.iter().zip(pages) {
                    say(&format!("mem,{driver},{phase},{pages}"));
                }
            }
        }
        Err(e) => {
            for driver in drivers {
                say(&format!("mem,{driver},error,{}", e.replace(',', ";")));
            }
        }
    }
    for &driver in drivers {
        match memory::objects(server::device(driver), shared.counters()) {
            Ok(objects) => {
                for (object, bytes) in objects {
                    say(&format!("slab,{driver},{object},{bytes:.0}"));
                }
            }
            Err(e) => say(&format!("slab,{driver},error,{}", e.replace(',', ";"))),
        }
    }
    Ok(())
}

/// The workloads `bench profile` profiles: where rust_binder is behind C.
/// (name for [`PROFILE_ONLY_ENV`], workload, payload, pairs)
const PROFILED: [(&str, &str, usize, usize); 9] = [
    ("call", "call", 0, 1),
    ("call-4k", "call", 4096, 1),
    ("call-1m", "call", 1 << 20, 1),
    ("parallel", "parallel", 0, 4),
    ("oneway", "oneway", 0, 1),
    ("objects", "objects", 384, 1),
    ("fd", "fd", binder_client::object::FD_OBJECT_SIZE, 1),
    (
        "sg-chain",
        "sg-chain",
        workloads::SG_LEVELS * workloads::SG_BUFFER,
        1,
    ),
    (
        "teardown",
        "teardown",
        teardown::FILL_BYTES,
        teardown::THREADS,
    ),
];

/// Names the one row of [`PROFILED`] to profile (its first column), instead of all.
const PROFILE_ONLY_ENV: &str = "BENCH_PROFILE_ONLY";

/// Functions shown per list.
const PROFILE_TOP: usize = 30;

/// How long each workload runs on each driver under the profiler (repeated until then), in
/// the guest's seconds, unless [`PROFILE_SECONDS_ENV`] says otherwise. The kernels have no
/// high-resolution timers (tinyconfig), so the cpu-clock samples come at the tick, 250 a
/// second per busy CPU, not every [`profile::PERIOD_NS`]: the length of the run is what makes
/// enough samples.
const PROFILE_SECONDS: u64 = 12;

/// Seconds per workload and driver instead of [`PROFILE_SECONDS`].
const PROFILE_SECONDS_ENV: &str = "BENCH_PROFILE_SECONDS";

/// Both drivers loaded: each workload of [`PROFILED`] run on each driver under the profiler;
/// prints, per run, the kernel samples per 1000 operations (comparable between the drivers:
/// same kernel, same sampling), the driver module's own share, the context switches per 1000
/// operations (every CPU's, from `/proc/stat`: a wake-up that finds nothing to do shows here),
/// and the top functions by self and by inclusive samples.
fn profile(scale: f64) -> Outcome {
    // SAFETY: As in `memory`.
    unsafe { libc::alarm(WATCHDOG_SECONDS) };
    let shared = Shared::new()?;
    let plan = Plan::new(scale);
    let only = std::env::var(PROFILE_ONLY_ENV)
        .ok()
        .filter(|w| !w.is_empty());
    let seconds = std::env::var(PROFILE_SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(PROFILE_SECONDS);
    for (name, workload, payload, pairs) in PROFILED {
        if only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        let job = Plan::jobs()
            .into_iter()
            .find(|j| {
                j.row.workload == workload && j.row.payload == payload && j.row.pairs == pairs
            })
            .ok_or_else(|| format!("no row {workload} {payload} {pairs}"))?;
        for driver in DRIVERS {
            let module = if driver == "c" {
                "[binder_linux]"
            } else {
                "[rust_binder]"
            };
            let running = profile::Profile::start()?;
            let switches = proc::context_switches()?;
            insn_count::mark();
            let start = proc::now_ns();
            let mut ops = 0;
            let mut failure = None;
            while proc::now_ns() - start < seconds * 1_000_000_000 {
                match plan.measure(&job, server::device(driver), shared.counters()) {
                    Ok(f) => ops += f.iterations,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            insn_count::mark();
            insn_count::say_run(driver, ops);
            let switches = proc::context_switches()?.saturating_sub(switches);
            let found = running.finish()?;
            let ops = ops.max(1) as f64;
            let per_kop = |samples: u64| samples as f64 * 1000.0 / ops;
            let in_module: u64 = found
                .functions
                .iter()
                .filter(|f| f.0.ends_with(module))
                .map(|f| f.1)
                .sum();
            say(&format!(
                "\n### {workload} {payload} B{} on {driver}: {} kernel samples ({} lost) over {ops} \
                 operations{}: {:.1} samples per 1000 operations, {:.1} of them in {module}'s own \
                 functions; {:.0} context switches per 1000 operations\n",
                if workload == "parallel" {
                    format!(", {pairs} pairs")
                } else {
                    String::new()
                },
                found.samples,
                found.lost,
                failure.map_or(String::new(), |e| format!(" (failed: {e})")),
                per_kop(found.samples),
                per_kop(in_module),
                per_kop(switches),
            ));
            let total = found.samples.max(1) as f64;
            for (title, inclusive) in [("self", false), ("inclusive", true)] {
                say(&format!(
                    "top {PROFILE_TOP} by {title}: self% incl% samples/1000 ops, function"
                ));
                let mut functions: Vec<&(String, u64, u64)> = found.functions.iter().collect();
                if inclusive {
                    functions.sort_by_key(|f| std::cmp::Reverse(f.2));
                }
                for (name, own, all) in functions.into_iter().take(PROFILE_TOP) {
                    let key = if inclusive { *all } else { *own };
                    say(&format!(
                        "{:6.2} {:6.2} {:7.2} {name}",
                        *own as f64 * 100.0 / total,
                        *all as f64 * 100.0 / total,
                        per_kop(key)
                    ));
                }
            }
            say(&format!(
                "{module}'s own functions by self: self% samples/1000 ops, function"
            ));
            for (name, own, _) in found.functions.iter().filter(|f| f.0.ends_with(module)) {
                if *own > 0 {
                    say(&format!(
                        "{:6.2} {:7.3} {name}",
                        *own as f64 * 100.0 / total,
                        per_kop(*own)
                    ));
                }
            }
            if !found.offsets.is_empty() {
                say(&format!(
                    "self samples by offset ({}): samples/1000 ops, where",
                    profile::OFFSETS_ENV
                ));
                for (at, count) in &found.offsets {
                    say(&format!("{:7.3} {at}", per_kop(*count)));
                }
            }
            if !found.chains.is_empty() {
                say(&format!(
                    "callers ({}): samples/1000 ops, chain",
                    profile::CALLERS_ENV
                ));
                for (chain, count) in found.chains.iter().take(PROFILE_TOP) {
                    say(&format!("{:7.2} {chain}", per_kop(*count)));
                }
            }
        }
    }
    Ok(())
}
