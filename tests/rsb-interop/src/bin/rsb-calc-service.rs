// SPDX-License-Identifier: GPL-2.0

//! rsb-calc-service: the demo's calculator written on rsbinder.
//!
//! Usage: rsb-calc-service [NAME]   (default rsb.calculator)
//!
//! Opens rsbinder's default device (/dev/binderfs/binder), registers with whatever service
//! manager holds handle 0 and serves `add`, `takeToken` and `sumFile` on rsbinder's thread
//! pool.

use std::{
    io::{Read, Seek, Write},
    os::fd::AsRawFd,
    process::ExitCode,
};

use rsb_interop::{describe_fd, memfd, sum_text, BnCalculator, ICalculator, IToken, DEFAULT_NAME};
use rsbinder::{
    hub, BinderResult, ExceptionCode, Interface, ParcelFileDescriptor, ProcessState, Status, Strong,
};

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

    fn sumFile(&self, numbers: &ParcelFileDescriptor) -> BinderResult<ParcelFileDescriptor> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            eprintln!("rsb-calc-service: sumFile: {what}: {e}");
            Status::from(ExceptionCode::IllegalState)
        };
        let mut text = String::new();
        let mut input = numbers;
        input
            .read_to_string(&mut text)
            .map_err(|e| failed("reading the file", &e))?;
        let answer = sum_text(&text).map_err(|e| {
            eprintln!("rsb-calc-service: sumFile: {e}");
            Status::from(ExceptionCode::IllegalArgument)
        })?;
        let mut file = memfd(c"sum").map_err(|e| failed("memfd_create", &e))?;
        writeln!(file, "{answer}")
            .and_then(|()| file.rewind())
            .map_err(|e| failed("writing the answer", &e))?;
        println!(
            "[rsb-calc-service {}] sumFile: read {} bytes from {}: {answer}; answering with {}",
            std::process::id(),
            text.len(),
            describe_fd(numbers.as_raw_fd()),
            describe_fd(file.as_raw_fd())
        );
        Ok(ParcelFileDescriptor::from(file))
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
