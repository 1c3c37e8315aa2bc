//! The binder conformance suite.
//!
//! Runs named cases against whichever binder driver the machine has loaded, one forked child
//! per case, and prints one line per case and a closing `N passed, N failed`. The VM runner
//! runs it once against the C driver and once against rust_binder; a case must pass on both.
//!
//! ```text
//! conformance --driver c|rust [--module PATH] [--list] [NAME_FILTER...]
//! ```

mod cases;
mod harness;
mod kmod;

use std::{path::PathBuf, process::ExitCode};

use harness::{Driver, Env};

fn usage() -> ExitCode {
    eprintln!("usage: conformance --driver c|rust [--module PATH] [--list] [NAME_FILTER...]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut driver = None;
    let mut module = None;
    let mut list = false;
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--driver" => {
                driver = match args.next().as_deref() {
                    Some("c") => Some(Driver::C),
                    Some("rust") => Some(Driver::Rust),
                    _ => return usage(),
                }
            }
            "--module" => match args.next() {
                Some(path) => module = Some(PathBuf::from(path)),
                None => return usage(),
            },
            "--list" => list = true,
            _ if arg.starts_with('-') => return usage(),
            _ => filters.push(arg),
        }
    }
    let Some(driver) = driver else {
        return usage();
    };
    let env = Env { module };

    let selected: Vec<_> = cases::all()
        .filter(|case| filters.is_empty() || filters.iter().any(|f| case.name.contains(f.as_str())))
        .filter(|case| case.only.is_none_or(|only| only == driver))
        .collect();
    if list {
        for case in &selected {
            println!("{}", case.name);
        }
        return ExitCode::SUCCESS;
    }

    let (mut passed, mut failed) = (0, 0);
    for case in selected {
        match harness::run_case(case, &env) {
            Ok(()) => {
                passed += 1;
                println!("ok   {}", case.name);
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {}: {}", case.name, why);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
