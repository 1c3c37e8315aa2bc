// SPDX-License-Identifier: GPL-2.0

//! rb-calculator: a service that adds numbers, `rb.demo.ICalculator` over binder.
//!
//! It registers one of its nodes with the service manager under a name, then serves calls on
//! a thread pool: the main thread loops, and the driver asks for more threads
//! (`BR_SPAWN_LOOPER`) when calls arrive while every looper is busy.
//!
//! Besides `add`, it serves `sumFile`, which takes a file (a pipe or a memfd) and answers with
//! a new memfd, and libbinder's `DUMP_TRANSACTION` (`dumpsys`, `rsb_service dump`), which
//! writes a line about the service into the fd it brings.
//!
//! Usage: rb-calculator [--device PATH] [--name NAME] [--threads N]

use std::{
    fs::File,
    io::{Read, Seek, Write},
    os::fd::AsRawFd,
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use binder_client::{
    parcel::{
        exception, DUMP_TRANSACTION, INTERFACE_TRANSACTION, PING_TRANSACTION, UNKNOWN_TRANSACTION,
    },
    Call, Object, Parcel, ParcelError, Process, Response, Service,
};
use demo::{calc, describe_fd, fail, memfd, say, sm, take_fd, Args};

/// The service; the driver knows its node by this object's address.
struct Calculator {
    /// The name it registered as.
    name: String,
    /// Calls answered (`add` and `sumFile`).
    calls: AtomicU64,
}

/// An I/O failure while serving a call, as the reply's reason.
fn io_failure(what: &str) -> impl FnOnce(std::io::Error) -> ParcelError + '_ {
    move |e| ParcelError::Invalid(format!("{what}: {e}"))
}

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
                self.calls.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                say!("add({a}, {b}) overflows: refused");
                reply.write_exception(exception::ILLEGAL_ARGUMENT, "the sum does not fit an int");
            }
        }
        Ok(reply)
    }

    /// `sumFile`: reads the numbers from the file the call brought, and answers with a new
    /// memfd that says what they add up to. The reply parcel owns the memfd and closes it
    /// once the reply is sent; the caller gets its own fd for the same file.
    fn sum_file(&self, call: &Call<'_>) -> Result<Parcel, ParcelError> {
        let mut args = call.reader();
        args.expect_interface(calc::DESCRIPTOR)?;
        let fd = args
            .read_parcel_fd()?
            .ok_or_else(|| ParcelError::Invalid("a null file".into()))?;
        // SAFETY: The driver installed `fd` for this call, and it is read only here.
        let mut numbers = File::from(unsafe { take_fd(fd) });
        let what = describe_fd(fd);
        let mut text = String::new();
        numbers
            .read_to_string(&mut text)
            .map_err(io_failure("reading the file"))?;
        drop(numbers);
        let mut reply = Parcel::new();
        let answer = match calc::sum_text(&text) {
            Ok(answer) => answer,
            Err(e) => {
                say!("sumFile from pid {}: {e}: refused", call.sender_pid());
                reply.write_exception(exception::ILLEGAL_ARGUMENT, &e);
                return Ok(reply);
            }
        };
        let mut sum = memfd(c"sum").map_err(io_failure("memfd_create"))?;
        writeln!(sum, "{answer}")
            .and_then(|()| sum.rewind())
            .map_err(io_failure("writing the answer"))?;
        say!(
            "sumFile for pid {} (code {}): read {} bytes from {what}: {answer}",
            call.sender_pid(),
            call.code(),
            text.len()
        );
        say!("sumFile: answering with {}", describe_fd(sum.as_raw_fd()));
        reply.write_ok_status().write_parcel_fd(sum.into());
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(reply)
    }

    /// `DUMP_TRANSACTION`: one line about this service into the fd the call brought. The
    /// reply is empty, as libbinder's is.
    fn dump(&self, call: &Call<'_>) -> Result<Parcel, ParcelError> {
        let mut args = call.reader();
        let fd = args.read_fd()?;
        // SAFETY: The driver installed `fd` for this call, and it is read only here.
        let mut out = File::from(unsafe { take_fd(fd) });
        let what = describe_fd(fd);
        let count = args.read_i32()?;
        let dump_args = (0..count.max(0))
            .map(|_| args.read_string())
            .collect::<Result<Vec<_>, _>>()?;
        writeln!(
            out,
            "rb-calculator (pid {}): {} registered as {:?}, {} calls answered; dump arguments {dump_args:?}",
            std::process::id(),
            calc::DESCRIPTOR,
            self.name,
            self.calls.load(Ordering::Relaxed)
        )
        .map_err(io_failure("writing the dump"))?;
        say!(
            "dump for pid {} (code {:#x}): wrote into {what}",
            call.sender_pid(),
            call.code()
        );
        Ok(Parcel::new())
    }
}

impl Service for Calculator {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        let answer = match call.code() {
            calc::ADD => self.add(call),
            calc::SUM_FILE => self.sum_file(call),
            DUMP_TRANSACTION => self.dump(call),
            INTERFACE_TRANSACTION => return Response::descriptor(calc::DESCRIPTOR),
            PING_TRANSACTION => return Response::Reply(Parcel::new()),
            _ => return Response::Status(UNKNOWN_TRANSACTION),
        };
        match answer {
            Ok(reply) => Response::Reply(reply),
            Err(e) => {
                say!("bad call from pid {}: {e}", call.sender_pid());
                let mut reply = Parcel::new();
                reply.write_exception(exception::ILLEGAL_ARGUMENT, &e.to_string());
                Response::Reply(reply)
            }
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
    let calculator = Arc::new(Calculator {
        name: name.to_owned(),
        calls: AtomicU64::new(0),
    });
    // The service lives as long as the process: its address names the node.
    let ptr = Arc::as_ptr(&calculator) as u64;
    let node = Object::Binder { ptr, cookie: ptr };
    // The service manager may call the node back while addService is going on.
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
