// SPDX-License-Identifier: GPL-2.0

//! rsb-calc-client: calls `add` on a calculator, found through the service manager, with
//! rsbinder.
//!
//! Usage: rsb-calc-client [--wait] NAME A B
//!        rsb-calc-client --sum [--pipe] NAME N...
//!        rsb-calc-client --stress NAME SENDERS ITERATIONS
//!
//! Polls `getService` for up to 30 seconds; with `--wait` it uses rsbinder's own
//! `wait_for_interface` instead, which registers an `IServiceCallback` with the service
//! manager (registerForNotifications) and waits for its `onRegistration`.
//!
//! `--sum` writes the numbers into a file, a memfd (with `--pipe`: the write end of a pipe,
//! closed before the call), sends it to `sumFile` as a `ParcelFileDescriptor` and prints the
//! file that comes back: fds both ways.
//!
//! `--stress` is what rsbinder's own integration tests do to a service when two of them run at
//! once: on rsbinder's thread pool, SENDERS threads each make a new local object (an
//! `IToken`) ITERATIONS times, send it in a synchronous `takeToken` call (the service gets it
//! as a handle and lets it go when the call returns; every second sender's calls have the
//! service call the token back first) and drop it; meanwhile one more thread looks the
//! calculator up through the service manager and calls `add`, again and again, until every
//! sender is done. The driver has to deliver every call and every reference change on the
//! tokens (`BR_INCREFS`, `BR_ACQUIRE`, `BR_RELEASE`, `BR_DECREFS`, to whichever thread it
//! picks). A thread that got nowhere for 60 s fails the run, naming what each thread waits
//! for: a hang is a failure, not a stuck program.

use std::{
    io::{Read, Seek, Write},
    os::fd::AsRawFd,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use rsb_interop::{describe_fd, memfd, BnToken, ICalculator, IToken};
use rsbinder::{hub, BinderResult, Interface, ParcelFileDescriptor, ProcessState, Strong};

/// Looks `name` up, polling `getService` for up to 30 s.
fn look_up(name: &str) -> Result<Strong<dyn ICalculator>, String> {
    let mut tries = 0;
    loop {
        match hub::try_get_interface::<dyn ICalculator>(name) {
            Ok(Some(calculator)) => return Ok(calculator),
            Ok(None) if tries < 600 => {}
            Ok(None) => return Err(format!("no service {name:?} registered within 30 s")),
            Err(e) => return Err(format!("looking {name:?} up failed: {e}")),
        }
        tries += 1;
        thread::sleep(Duration::from_millis(50));
    }
}

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
    look_up(name)?
        .add(a, b)
        .map_err(|e| format!("add({a}, {b}) failed: {e}"))
}

/// Sends `numbers` to `sumFile` in a memfd or a pipe, and returns what the file that came
/// back says, with what was sent and received.
fn sum_file(name: &str, pipe: bool, numbers: &[String]) -> Result<String, String> {
    ProcessState::init_default().map_err(|e| format!("cannot open the binder device: {e}"))?;
    let calculator = look_up(name)?;
    let text = numbers.join(" ");
    let file = if pipe {
        let (read, write) =
            ParcelFileDescriptor::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
        // A few bytes fit the pipe; the service reads to the end, so the write end goes now.
        (&write)
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing the pipe: {e}"))?;
        drop(write);
        read
    } else {
        let mut file = memfd(c"numbers").map_err(|e| format!("memfd_create: {e}"))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.rewind())
            .map_err(|e| format!("writing the memfd: {e}"))?;
        ParcelFileDescriptor::from(file)
    };
    let sent = describe_fd(file.as_raw_fd());
    let answer = calculator
        .sumFile(&file)
        .map_err(|e| format!("sumFile failed: {e}"))?;
    let mut reply = String::new();
    (&answer)
        .read_to_string(&mut reply)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(format!(
        "sumFile({sent}, {} bytes) answered {}: {}",
        text.len(),
        describe_fd(answer.as_raw_fd()),
        reply.trim_end()
    ))
}

/// A thread that made no progress for this long is stuck: far longer than any call takes,
/// even under emulation.
const STALL: Duration = Duration::from_secs(60);

/// The object a sender sends: answers the tag it was made with.
struct Token(i32);

impl Interface for Token {}

impl IToken for Token {
    fn tag(&self) -> BinderResult<i32> {
        Ok(self.0)
    }
}

/// One thread of the stress run, and how far it got.
struct Lane {
    name: String,
    /// Calls answered so far.
    calls: AtomicU32,
    /// What it waits for now.
    doing: Mutex<String>,
    /// When it last got a call answered (or started).
    last: Mutex<Instant>,
    done: AtomicBool,
    /// Why it failed, if it did.
    error: Mutex<Option<String>>,
}

impl Lane {
    fn new(name: String) -> Arc<Self> {
        Arc::new(Self {
            name,
            calls: AtomicU32::new(0),
            doing: Mutex::new("starting".into()),
            last: Mutex::new(Instant::now()),
            done: AtomicBool::new(false),
            error: Mutex::new(None),
        })
    }

    fn doing(&self, what: String) {
        *self.doing.lock().unwrap() = what;
    }

    fn answered(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap() = Instant::now();
    }

    fn status(&self) -> String {
        let idle = self.last.lock().unwrap().elapsed().as_secs();
        let state = if let Some(e) = &*self.error.lock().unwrap() {
            format!("failed: {e}")
        } else if self.done.load(Ordering::Relaxed) {
            "done".into()
        } else {
            format!(
                "waiting for {} (no answer for {idle} s)",
                self.doing.lock().unwrap()
            )
        };
        format!(
            "{}: {} calls answered, {state}",
            self.name,
            self.calls.load(Ordering::Relaxed)
        )
    }
}

/// Runs `body` on a thread of its own for `lane`, which records how it ended.
fn spawn_lane(
    lane: &Arc<Lane>,
    body: impl FnOnce(&Lane) -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let name = lane.name.clone();
    let lane = Arc::clone(lane);
    thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            if let Err(e) = body(&lane) {
                *lane.error.lock().unwrap() = Some(e);
            }
            lane.done.store(true, Ordering::SeqCst);
        })
        .map(drop)
        .map_err(|e| format!("cannot start thread {name}: {e}"))
}

/// Sender `index`: `iterations` new tokens, each sent in one `takeToken` call, then dropped.
fn send_tokens(
    lane: &Lane,
    calculator: Strong<dyn ICalculator>,
    index: usize,
    iterations: u32,
) -> Result<(), String> {
    let call_back = index % 2 == 1;
    for i in 0..iterations {
        let tag = (index as i32) * 1_000_000 + i as i32;
        let token = BnToken::new_binder(Token(tag));
        lane.doing(format!("takeToken #{i} (tag {tag}, call back {call_back})"));
        let answer = calculator
            .takeToken(&token, tag, call_back)
            .map_err(|e| format!("takeToken #{i} failed: {e}"))?;
        if answer != tag {
            return Err(format!("takeToken #{i} answered {answer}, not {tag}"));
        }
        drop(token);
        lane.answered();
    }
    lane.doing("nothing".into());
    Ok(())
}

/// The other calls: a lookup through the service manager and an `add` on what it found, until
/// `senders_done` says every sender has ended (at least once).
fn look_up_and_add(lane: &Lane, name: &str, senders_done: &AtomicBool) -> Result<(), String> {
    let mut i = 0;
    loop {
        lane.doing(format!("getService({name:?}) #{i}"));
        let calculator = hub::try_get_interface::<dyn ICalculator>(name)
            .map_err(|e| format!("getService #{i} failed: {e}"))?
            .ok_or_else(|| format!("getService #{i}: {name:?} is gone"))?;
        lane.answered();
        lane.doing(format!("add({i}, 1)"));
        let sum = calculator
            .add(i, 1)
            .map_err(|e| format!("add({i}, 1) failed: {e}"))?;
        if sum != i + 1 {
            return Err(format!("add({i}, 1) answered {sum}"));
        }
        lane.answered();
        i += 1;
        if senders_done.load(Ordering::SeqCst) {
            lane.doing("nothing".into());
            return Ok(());
        }
    }
}

/// Every thread of this process, one a line: its id, name, scheduler state and where in the
/// kernel it sleeps (`wchan`), for the message when a thread is stuck.
fn threads() -> String {
    let read = |tid: &str, what: &str| {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/{what}"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into())
    };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return " (cannot read /proc/self/task)".into();
    };
    let mut tids: Vec<String> = tasks
        .filter_map(|t| t.ok().map(|t| t.file_name().to_string_lossy().into_owned()))
        .collect();
    tids.sort_by_key(|t| t.parse::<u32>().unwrap_or(0));
    tids.iter()
        .map(|tid| {
            // The state is the field after the parenthesised name in stat.
            let stat = read(tid, "stat");
            let state = stat
                .rsplit(") ")
                .next()
                .and_then(|s| s.split(' ').next())
                .unwrap_or("?");
            format!(
                "\n  {tid} {}: state {state}, in {}",
                read(tid, "comm"),
                read(tid, "wchan")
            )
        })
        .collect()
}

fn stress(name: &str, senders: usize, iterations: u32) -> Result<String, String> {
    ProcessState::init_default().map_err(|e| format!("cannot open the binder device: {e}"))?;
    // The tokens are local objects: the driver's work on them may go to any looper.
    ProcessState::start_thread_pool();
    let calculator = look_up(name)?;
    let start = Instant::now();
    let sender_lanes: Vec<Arc<Lane>> = (0..senders)
        .map(|i| Lane::new(format!("sender {i}")))
        .collect();
    let adder = Lane::new("adder".into());
    let senders_done = Arc::new(AtomicBool::new(false));
    {
        let name = name.to_owned();
        let senders_done = Arc::clone(&senders_done);
        spawn_lane(&adder, move |lane| {
            look_up_and_add(lane, &name, &senders_done)
        })?;
    }
    for (index, lane) in sender_lanes.iter().enumerate() {
        let calculator = calculator.clone();
        spawn_lane(lane, move |lane| {
            send_tokens(lane, calculator, index, iterations)
        })?;
    }
    let lanes: Vec<&Arc<Lane>> = sender_lanes.iter().chain([&adder]).collect();
    let all = |lanes: &[&Arc<Lane>]| {
        lanes
            .iter()
            .map(|lane| format!("\n  {}", lane.status()))
            .collect::<String>()
    };
    let mut report = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(100));
        if sender_lanes.iter().all(|l| l.done.load(Ordering::SeqCst)) {
            senders_done.store(true, Ordering::SeqCst);
        }
        if lanes.iter().any(|l| l.error.lock().unwrap().is_some()) {
            return Err(format!("a thread failed:{}", all(&lanes)));
        }
        if lanes.iter().all(|l| l.done.load(Ordering::SeqCst)) {
            break;
        }
        let stuck = lanes
            .iter()
            .any(|l| !l.done.load(Ordering::SeqCst) && l.last.lock().unwrap().elapsed() >= STALL);
        if stuck {
            return Err(format!(
                "a thread got no answer for {} s:{}\n  this process's threads now:{}",
                STALL.as_secs(),
                all(&lanes),
                threads()
            ));
        }
        if report.elapsed() >= Duration::from_secs(10) {
            println!(
                "[rsb-calc-client {}] so far:{}",
                std::process::id(),
                all(&lanes)
            );
            report = Instant::now();
        }
    }
    Ok(format!(
        "{senders} senders x {iterations} tokens and {} adder calls in {:.1} s:{}",
        adder.calls.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        all(&lanes)
    ))
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--stress") {
        let parsed = match &args[1..] {
            [name, senders, iterations] => senders
                .parse::<usize>()
                .ok()
                .filter(|&s| s > 0)
                .zip(iterations.parse::<u32>().ok())
                .map(|(s, i)| (name.clone(), s, i)),
            _ => None,
        };
        let Some((name, senders, iterations)) = parsed else {
            eprintln!("usage: rsb-calc-client --stress NAME SENDERS ITERATIONS");
            return ExitCode::from(2);
        };
        // On a stuck thread the process ends from here: the other threads may sleep in the
        // driver for good.
        return match stress(&name, senders, iterations) {
            Ok(summary) => {
                println!(
                    "[rsb-calc-client {}] stress passed: {summary}",
                    std::process::id()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rsb-calc-client: stress failed: {e}");
                std::process::exit(1);
            }
        };
    }
    if args.first().is_some_and(|a| a == "--sum") {
        let pipe = args.get(1).is_some_and(|a| a == "--pipe");
        let rest = &args[if pipe { 2 } else { 1 }..];
        let Some((name, numbers)) = rest.split_first() else {
            eprintln!("usage: rsb-calc-client --sum [--pipe] NAME N...");
            return ExitCode::from(2);
        };
        return match sum_file(name, pipe, numbers) {
            Ok(said) => {
                println!("[rsb-calc-client {}] {name}: {said}", std::process::id());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rsb-calc-client: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
        eprintln!("       rsb-calc-client --sum [--pipe] NAME N...");
        eprintln!("       rsb-calc-client --stress NAME SENDERS ITERATIONS");
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
