// SPDX-License-Identifier: GPL-2.0

//! rb-calc-client: looks a calculator up by name, calls `add`, and can wait for its death.
//!
//! Usage:
//!   rb-calc-client [--device PATH] [--name NAME] [--wait-death] A B
//!   rb-calc-client [--device PATH] --list
//!
//! With `--wait-death` it asks the driver for a death notification on the service after the
//! call and waits until the service's process dies (the demo kills it).

use std::{process::ExitCode, time::Duration};

use binder_client::Process;
use demo::{calc, fail, say, sm, Args};

/// How long to wait for the service to be registered.
const PATIENCE: Duration = Duration::from_secs(30);

/// The cookie the death notification is asked for with.
const DEATH_COOKIE: u64 = 0xdead;

fn run(args: &Args) -> Result<(), String> {
    let process = Process::open(&args.device).map_err(|e| e.to_string())?;
    if args.flag("list") {
        let names = sm::list_services(&process).map_err(|e| format!("listServices: {e}"))?;
        say!(
            "listServices (code {}) to handle 0: {} service(s)",
            sm::code::LIST_SERVICES,
            names.len()
        );
        for name in names {
            println!("{name}");
        }
        return Ok(());
    }
    let [a, b] = args.positional.as_slice() else {
        return Err(
            "usage: rb-calc-client [--device PATH] [--name NAME] [--wait-death] A B".into(),
        );
    };
    let parse = |s: &str| {
        s.parse::<i32>()
            .map_err(|_| format!("{s:?} is not a 32-bit integer"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    let name = args.value("name").unwrap_or(calc::DEFAULT_NAME);

    let handle = sm::wait_for_service(&process, name, PATIENCE)
        .map_err(|e| format!("checkService({name:?}): {e}"))?
        .ok_or_else(|| format!("no service {name:?} registered within {PATIENCE:?}"))?;
    say!(
        "checkService({name:?}) (code {}) to handle 0: the service is handle {handle}",
        sm::code::CHECK_SERVICE
    );
    let sum = calc::add(&process, handle, a, b).map_err(|e| format!("add({a}, {b}): {e}"))?;
    say!(
        "add({a}, {b}) (code {}) to handle {handle}: reply {sum}",
        calc::ADD
    );
    if args.flag("wait-death") {
        process
            .request_death(handle, DEATH_COOKIE)
            .map_err(|e| e.to_string())?;
        say!(
            "asked for a death notification on handle {handle} (cookie {DEATH_COOKIE:#x}); waiting"
        );
        let cookie = process.wait_for_death().map_err(|e| e.to_string())?;
        say!("BR_DEAD_BINDER cookie {cookie:#x}: {name:?} (handle {handle}) died");
        process.release(handle).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(&["name"]) {
        Ok(args) => args,
        Err(e) => return fail(e),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
