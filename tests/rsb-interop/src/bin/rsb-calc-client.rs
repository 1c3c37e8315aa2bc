// SPDX-License-Identifier: GPL-2.0

//! rsb-calc-client: calls `add` on a calculator, found through the service manager, with
//! rsbinder.
//!
//! Usage: rsb-calc-client [--wait] NAME A B
//!
//! Polls `getService` for up to 30 seconds; with `--wait` it uses rsbinder's own
//! `wait_for_interface` instead, which registers an `IServiceCallback` with the service
//! manager (registerForNotifications) and waits for its `onRegistration`.

use std::{process::ExitCode, thread, time::Duration};

use rsb_interop::ICalculator;
use rsbinder::{hub, ProcessState, Strong};

fn run(wait: bool, name: &str, a: i32, b: i32) -> Result<i32, String> {
    ProcessState::init_default().map_err(|e| format!("cannot open the binder device: {e}"))?;
    if wait {
        // The callback is a local binder: the service manager's onRegistration needs a thread.
        ProcessState::start_thread_pool();
        let calculator: Strong<dyn ICalculator> = hub::wait_for_interface(name)
            .map_err(|e| format!("waiting for {name:?} failed: {e}"))?;
        return calculator
            .add(a, b)
            .map_err(|e| format!("add({a}, {b}) failed: {e}"));
    }
    let mut tries = 0;
    let calculator: Strong<dyn ICalculator> = loop {
        match hub::try_get_interface::<dyn ICalculator>(name) {
            Ok(Some(calculator)) => break calculator,
            Ok(None) if tries < 600 => {}
            Ok(None) => return Err(format!("no service {name:?} registered within 30 s")),
            Err(e) => return Err(format!("looking {name:?} up failed: {e}")),
        }
        tries += 1;
        thread::sleep(Duration::from_millis(50));
    };
    calculator
        .add(a, b)
        .map_err(|e| format!("add({a}, {b}) failed: {e}"))
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let wait = args.first().is_some_and(|a| a == "--wait");
    if wait {
        args.remove(0);
    }
    let parsed = match args.as_slice() {
        [name, a, b] => a
            .parse::<i32>()
            .ok()
            .zip(b.parse::<i32>().ok())
            .map(|(a, b)| (name.clone(), a, b)),
        _ => None,
    };
    let Some((name, a, b)) = parsed else {
        eprintln!("usage: rsb-calc-client [--wait] NAME A B");
        return ExitCode::from(2);
    };
    match run(wait, &name, a, b) {
        Ok(sum) => {
            println!(
                "[rsb-calc-client {}] {name}: add({a}, {b}) = {sum}",
                std::process::id()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rsb-calc-client: {e}");
            ExitCode::FAILURE
        }
    }
}
