// SPDX-License-Identifier: GPL-2.0

//! rb-calc-client: looks a calculator up by name, calls `add`, and can wait for its death;
//! or sends it a file of numbers to add up.
//!
//! Usage:
//!   rb-calc-client [--device PATH] [--name NAME] [--wait-death] A B
//!   rb-calc-client [--device PATH] [--name NAME] --sum [--pipe] N...
//!   rb-calc-client [--device PATH] --list
//!
//! With `--wait-death` it asks the driver for a death notification on the service after the
//! call and waits until the service's process dies (the demo kills it).
//!
//! With `--sum` it writes the numbers into a memfd (with `--pipe`: into a pipe, whose write
//! end it closes), sends the file to `sumFile` and prints the file the calculator answers
//! with: an fd each way, carried by the driver as `BINDER_TYPE_FD` objects.

use std::{
    io::{Read, Seek, Write},
    os::fd::{AsRawFd, OwnedFd},
    process::ExitCode,
    time::Duration,
};

use binder_client::Process;
use demo::{calc, describe_fd, fail, memfd, pipe, say, sm, Args};

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
    if args.flag("sum") {
        return sum_file(&process, args);
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

/// `--sum`: the numbers to `sumFile` in a file, and what the file that came back says.
fn sum_file(process: &Process, args: &Args) -> Result<(), String> {
    let name = args.value("name").unwrap_or(calc::DEFAULT_NAME);
    let text = args.positional.join(" ");
    let numbers: OwnedFd = if args.flag("pipe") {
        let (read, mut write) = pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
        // A few bytes fit the pipe; the service reads to the end, so the write end goes now.
        write
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing the pipe: {e}"))?;
        read.into()
    } else {
        let mut file = memfd(c"numbers").map_err(|e| format!("memfd_create: {e}"))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.rewind())
            .map_err(|e| format!("writing the memfd: {e}"))?;
        file.into()
    };
    let handle = sm::wait_for_service(process, name, PATIENCE)
        .map_err(|e| format!("checkService({name:?}): {e}"))?
        .ok_or_else(|| format!("no service {name:?} registered within {PATIENCE:?}"))?;
    say!(
        "sumFile (code {}) to handle {handle}: sending {}, {} bytes: \"{text}\"",
        calc::SUM_FILE,
        describe_fd(numbers.as_raw_fd()),
        text.len()
    );
    let mut answer =
        calc::sum_file(process, handle, numbers).map_err(|e| format!("sumFile: {e}"))?;
    let what = describe_fd(answer.as_raw_fd());
    let mut said = String::new();
    answer
        .read_to_string(&mut said)
        .map_err(|e| format!("reading the answer: {e}"))?;
    say!("reply: {what}, which says \"{}\"", said.trim_end());
    // Every handle from the service manager carries a reference of this process's own.
    process.release(handle).map_err(|e| e.to_string())
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
