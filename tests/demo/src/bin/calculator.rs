// SPDX-License-Identifier: GPL-2.0

//! rb-calculator: a service that adds numbers, `rb.demo.ICalculator` over binder.
//!
//! It registers one of its nodes with the service manager under a name, then serves calls on
//! a thread pool: the main thread loops, and the driver asks for more threads
//! (`BR_SPAWN_LOOPER`) when calls arrive while every looper is busy.
//!
//! Usage: rb-calculator [--device PATH] [--name NAME] [--threads N]

use std::{process::ExitCode, sync::Arc};

use binder_client::{
    parcel::{exception, INTERFACE_TRANSACTION, PING_TRANSACTION, UNKNOWN_TRANSACTION},
    Call, Object, Parcel, ParcelError, Process, Response, Service,
};
use demo::{calc, fail, say, sm, Args};

/// The calculator's node: the driver knows it by this object's address.
static NODE: Calculator = Calculator;

struct Calculator;

impl Calculator {
    fn add(&self, call: &Call<'_>) -> Result<Parcel, ParcelError> {
        let mut args = call.reader();
        args.expect_interface(calc::DESCRIPTOR)?;
        let a = args.read_i32()?;
        let b = args.read_i32()?;
        let mut reply = Parcel::new();
        match a.checked_add(b) {
            Some(sum) => {
                say!(
                    "add({a}, {b}) = {sum} for pid {} (code {}, thread {})",
                    call.sender_pid(),
                    call.code(),
                    // SAFETY: gettid has no preconditions.
                    unsafe { libc::gettid() }
                );
                reply.write_ok_status().write_i32(sum);
            }
            None => {
                say!("add({a}, {b}) overflows: refused");
                reply.write_exception(exception::ILLEGAL_ARGUMENT, "the sum does not fit an int");
            }
        }
        Ok(reply)
    }
}

impl Service for Calculator {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        match call.code() {
            calc::ADD => match self.add(call) {
                Ok(reply) => Response::Reply(reply),
                Err(e) => {
                    say!("bad call from pid {}: {e}", call.sender_pid());
                    let mut reply = Parcel::new();
                    reply.write_exception(exception::ILLEGAL_ARGUMENT, &e.to_string());
                    Response::Reply(reply)
                }
            },
            INTERFACE_TRANSACTION => Response::descriptor(calc::DESCRIPTOR),
            PING_TRANSACTION => Response::Reply(Parcel::new()),
            _ => Response::Status(UNKNOWN_TRANSACTION),
        }
    }

    fn on_looper_started(&self) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        say!("BR_SPAWN_LOOPER: thread {tid} joined the thread pool");
    }
}

fn run(args: &Args) -> Result<(), String> {
    let name = args.value("name").unwrap_or(calc::DEFAULT_NAME);
    let threads: u32 = args
        .value("threads")
        .unwrap_or("4")
        .parse()
        .map_err(|_| "--threads needs a number".to_string())?;
    let process = Arc::new(Process::open(&args.device).map_err(|e| e.to_string())?);
    process
        .binder()
        .set_max_threads(threads)
        .map_err(|e| format!("BINDER_SET_MAX_THREADS failed: {e}"))?;
    let ptr = &NODE as *const Calculator as u64;
    // A zero-sized static may sit at address 0 only in theory; the parcel would read as null.
    let node = Object::Binder {
        ptr: ptr.max(1),
        cookie: ptr.max(1),
    };
    // The service manager may call the node back while addService is going on.
    let calculator = Arc::new(Calculator);
    process.set_service(calculator.clone());
    sm::add_service(&process, name, node)
        .map_err(|e| format!("cannot register {name:?} with the service manager: {e}"))?;
    say!(
        "registered {name:?} ({}) with the service manager: addService, code {}, to handle 0",
        calc::DESCRIPTOR,
        sm::code::ADD_SERVICE
    );
    say!("serving calls; thread pool of up to {threads} more threads");
    process.serve(calculator).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = match Args::parse(&["name", "threads"]) {
        Ok(args) if args.positional.is_empty() => args,
        Ok(_) => return fail("usage: rb-calculator [--device PATH] [--name NAME] [--threads N]"),
        Err(e) => return fail(e),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
