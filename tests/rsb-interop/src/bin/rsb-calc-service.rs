// SPDX-License-Identifier: GPL-2.0

//! rsb-calc-service: the demo's calculator written on rsbinder.
//!
//! Usage: rsb-calc-service [NAME]   (default rsb.calculator)
//!
//! Opens rsbinder's default device (/dev/binderfs/binder), registers with whatever service
//! manager holds handle 0 and serves `add` and `takeToken` on rsbinder's thread pool.

use std::process::ExitCode;

use rsb_interop::{BnCalculator, ICalculator, IToken, DEFAULT_NAME};
use rsbinder::{hub, BinderResult, ExceptionCode, Interface, ProcessState, Status, Strong};

struct Calculator;

impl Interface for Calculator {}

impl ICalculator for Calculator {
    fn add(&self, a: i32, b: i32) -> BinderResult<i32> {
        let sum = a
            .checked_add(b)
            .ok_or_else(|| Status::from(ExceptionCode::IllegalArgument))?;
        println!(
            "[rsb-calc-service {}] add({a}, {b}) = {sum}",
            std::process::id()
        );
        Ok(sum)
    }

    // Quietly: the stress client sends hundreds. The generated code drops the handle (and
    // with it this process's reference on the client's object) once this returns.
    fn takeToken(
        &self,
        token: &Strong<dyn IToken>,
        tag: i32,
        call_back: bool,
    ) -> BinderResult<i32> {
        if call_back && token.tag()? != tag {
            return Err(Status::from(ExceptionCode::IllegalArgument));
        }
        Ok(tag)
    }
}

fn main() -> ExitCode {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_NAME.into());
    if let Err(e) = ProcessState::init_default() {
        eprintln!("rsb-calc-service: cannot open the binder device: {e}");
        return ExitCode::FAILURE;
    }
    ProcessState::start_thread_pool();
    if let Err(e) = hub::add_service(&name, BnCalculator::new_binder(Calculator).as_binder()) {
        eprintln!("rsb-calc-service: cannot register {name:?}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "[rsb-calc-service {}] registered {name:?}, serving",
        std::process::id()
    );
    match ProcessState::join_thread_pool() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rsb-calc-service: the thread pool stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
