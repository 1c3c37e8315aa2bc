// SPDX-License-Identifier: GPL-2.0
//! The binder benchmark: rust_binder against the C driver, the same way every time.
//!
//! ```text
//! bench run [--scale F]      in the guest: every workload against the loaded driver
//! bench report DIR           on the host: DIR/raw.csv summed up into tables and plot data
//! ```
//!
//! `run` prints one line per row, `bench,WORKLOAD,PAYLOAD,PAIRS,ITERATIONS,MEDIAN_NS,P99_NS,
//! OPS_PER_S,STEADY_OPS_PER_S,ERROR`, with ERROR empty when the row was measured and the figures empty when
//! it was not (a driver that lacks a feature gets "n/a", and the run goes on).
//! `scripts/bench.sh` (`make bench`) boots each driver, collects these lines into
//! `raw.csv` and calls `report`.

mod proc;
mod report;
mod run;
mod server;
mod workloads;

use std::{io::Write, path::Path, process::ExitCode};

use proc::Shared;
use workloads::Plan;

fn usage() -> ExitCode {
    eprintln!("usage: bench run [--scale F] | bench report DIR");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["run"] => run(1.0),
        ["run", "--scale", scale] => match scale.parse() {
            Ok(scale) if scale > 0.0 => run(scale),
            _ => return usage(),
        },
        ["report", dir] => report::report(Path::new(dir)),
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

fn run(scale: f64) -> Result<(), String> {
    let shared = Shared::new()?;
    let mut stdout = std::io::stdout();
    Plan::new(scale).run_all(shared.counters(), &mut |row, result| {
        let line = match result {
            Ok(f) => format!(
                "bench,{},{},{},{},{},{},{:.1},{:.1},",
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
                "bench,{},{},{},,,,,,{}",
                row.workload,
                row.payload,
                row.pairs,
                e.replace([',', '\n', '\r'], ";")
            ),
        };
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    });
    Ok(())
}
