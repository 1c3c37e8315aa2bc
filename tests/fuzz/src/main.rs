//! `binder-fuzz`: a structured fuzzer of the binder interface, and a differential tester.
//!
//! ```text
//! binder-fuzz --driver NAME [--seed N] [--seconds S] [--iterations N] [--procs P]
//!             [--threads T] [--faults] [--differential] [--log FILE] [--tail N]
//!             [--dump FROM-TO:P]
//! ```
//!
//! A coordinator forks P binder processes (process 0 is the context manager), each with T
//! threads, and steps them in lock-step: operation i goes to the process and thread that the
//! seed picks for it, and the next one starts only when it is done. Each process generates
//! its operation from (seed, its index, i) and what it has learnt from the driver (handles,
//! delivered buffers, calls to answer), so that a run replays from its seed. The devices are
//! non-blocking, so that no call ever waits in the kernel for another process.
//!
//! Every operation and its outcome (errno, consumed counts, the returns read) is a line of
//! the log: two drivers' logs of the same seed and length compare line by line. The kernel log
//! is watched after every operation; a kernel report, a process that stops answering or one
//! that dies ends the run with a `FAIL` line, how to replay it and the last operations.
//!
//! With `--differential` (for a run to compare with another driver's) the inputs on which the
//! drivers deliberately differ are left out: after one of them the two runs' states differ,
//! and so would every later outcome.
//!
//! With `--dump FROM-TO:P`, before each operation from FROM to TO the coordinator prints the
//! driver's debugfs file of process P (`binder/proc/PID`: its threads, nodes, handles and
//! buffers; the whole `state` file where there is none) and the driver's failed-transaction
//! log, each line as `#dump I: LINE`: two drivers' dumps of the same seed show where their
//! states part before their outcomes do.
//!
//! With `--faults` each thread switches `/proc/thread-self/make-it-fail` on around its driver
//! calls, for the failslab and fail_page_alloc task filters (set up by the caller).

mod gen;
mod kmsg;
mod outcome;
mod process;
mod rng;

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, BufWriter, Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::ExitCode,
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use process::{Done, Fault, Proc};
use rng::Rng;

/// The stream of the scheduler's numbers (which process and thread runs operation i).
const SCHEDULER: u64 = u64::MAX - 1;

/// An operation that takes longer than this means a process is stuck in the kernel.
const OP_TIMEOUT_MS: i32 = 60_000;

/// After an operation that makes the kernel release something asynchronously, the time the
/// coordinator lets it finish before the next one, so that runs stay comparable.
const SETTLE: Duration = Duration::from_millis(300);

struct Args {
    driver: String,
    seed: u64,
    seconds: u64,
    iterations: u64,
    procs: usize,
    threads: usize,
    faults: bool,
    differential: bool,
    log: Option<String>,
    tail: usize,
    /// `--dump`: the first and last operation, and the process whose state to print.
    dump: Option<(u64, u64, usize)>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: binder-fuzz --driver NAME [--seed N] [--seconds S] [--iterations N] [--procs P] \
         [--threads T] [--faults] [--differential] [--log FILE] [--tail N] [--dump FROM-TO:P]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut args = Args {
        driver: String::new(),
        seed: 0,
        seconds: 60,
        iterations: 0,
        procs: 3,
        threads: 2,
        faults: false,
        differential: false,
        log: None,
        tail: 60,
        dump: None,
    };
    let mut seed = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--driver" => args.driver = it.next()?,
            "--seed" => seed = Some(it.next()?.parse().ok()?),
            "--seconds" => args.seconds = it.next()?.parse().ok()?,
            "--iterations" => args.iterations = it.next()?.parse().ok()?,
            "--procs" => args.procs = it.next()?.parse().ok()?,
            "--threads" => args.threads = it.next()?.parse().ok()?,
            "--faults" => args.faults = true,
            "--differential" => args.differential = true,
            "--log" => args.log = Some(it.next()?),
            "--tail" => args.tail = it.next()?.parse().ok()?,
            "--dump" => args.dump = Some(parse_dump(&it.next()?)?),
            _ => return None,
        }
    }
    if args.driver.is_empty() || args.procs == 0 || args.threads == 0 || args.procs > 16 {
        return None;
    }
    args.seed = seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        now % 1_000_000_000
    });
    Some(args)
}

/// The argument of `--dump`: `FROM-TO:P`.
fn parse_dump(spec: &str) -> Option<(u64, u64, usize)> {
    let (range, process) = spec.split_once(':')?;
    let (from, to) = range.split_once('-')?;
    Some((from.parse().ok()?, to.parse().ok()?, process.parse().ok()?))
}

/// Prints the debugfs file of the process with `pid` (`--dump`), before operation `op`, and the
/// driver's log of failed transactions (C's records the source line that failed each).
///
/// C makes no `proc/PID` file for a process that opens the device again while its first
/// `binder_proc` still lives (and removes the shared one when that goes); the whole driver's
/// `state` file stands in then.
fn dump_state(op: u64, pid: i32) {
    let dir = "/sys/kernel/debug/binder";
    let print = |name: &str| match std::fs::read_to_string(format!("{dir}/{name}")) {
        Ok(text) => {
            text.lines().for_each(|line| println!("#dump {op}: {line}"));
            true
        }
        Err(e) => {
            println!("#dump {op}: {dir}/{name}: {e}");
            false
        }
    };
    if !print(&format!("proc/{pid}")) {
        print("state");
    }
    print("failed_transaction_log");
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` just returned these descriptors, which nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The coordinator's end of one fuzz process.
struct Child {
    pid: i32,
    commands: File,
    results: File,
}

fn write_message(to: &mut File, text: &str) -> io::Result<()> {
    let mut message = (text.len() as u32).to_ne_bytes().to_vec();
    message.extend_from_slice(text.as_bytes());
    to.write_all(&message)
}

fn read_message(from: &mut File) -> io::Result<String> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let mut text = vec![0u8; u32::from_ne_bytes(len) as usize];
    from.read_exact(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Waits up to `ms` for `fd` to be readable.
fn readable(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is valid for the call.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// The body of fuzz process `index`: receives its setup, then runs operations on its threads
/// as the coordinator asks. Never returns.
fn child_main(index: usize, args: &Args, mut commands: File, mut results: File) -> ! {
    let code = match child_run(index, args, &mut commands, &mut results) {
        Ok(()) => 0,
        Err(why) => {
            let _ = write_message(&mut results, &format!("setup failed\t\t{why}"));
            1
        }
    };
    // SAFETY: Ends this process without unwinding into the coordinator's code.
    unsafe { libc::_exit(code) }
}

fn child_run(
    index: usize,
    args: &Args,
    commands: &mut File,
    results: &mut File,
) -> Result<(), String> {
    let setup = read_message(commands).map_err(|e| format!("setup: {e}"))?;
    let pids: Vec<i32> = setup.split(' ').filter_map(|s| s.parse().ok()).collect();
    let (coordinator, pids) = pids.split_first().ok_or("no pids")?;
    let proc = Proc::new(
        index,
        args.seed,
        pids.to_vec(),
        *coordinator,
        args.differential,
    )?;
    let proc = Arc::new(Mutex::new(proc));
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut threads = Vec::new();
    for t in 0..args.threads {
        let (op_tx, op_rx) = mpsc::channel::<u64>();
        let proc = proc.clone();
        let done_tx = done_tx.clone();
        let faults = args.faults;
        thread::spawn(move || {
            let mut fault = Fault::for_this_thread(faults);
            if let (Some(fd), Ok(mut p)) = (fault.fd(), proc.lock()) {
                p.own_fds.push(fd);
            }
            while let Ok(op) = op_rx.recv() {
                let done = match proc.lock() {
                    Ok(mut p) => p.step(t, op, &mut fault),
                    Err(_) => break,
                };
                if done_tx.send(done).is_err() {
                    break;
                }
            }
        });
        threads.push(op_tx);
    }
    write_message(results, "ready").map_err(|e| e.to_string())?;
    loop {
        let Ok(message) = read_message(commands) else {
            return Ok(());
        };
        let mut words = message.split(' ');
        let (Some(op), Some(t)) = (
            words.next().and_then(|w| w.parse::<u64>().ok()),
            words.next().and_then(|w| w.parse::<usize>().ok()),
        ) else {
            return Ok(());
        };
        let sender = threads.get(t).ok_or("no such thread")?;
        sender.send(op).map_err(|e| e.to_string())?;
        let done = done_rx.recv().map_err(|e| e.to_string())?;
        write_message(
            results,
            &format!("{}\t{}\t{}", done.desc, done.tags, done.outcome),
        )
        .map_err(|e| e.to_string())?;
    }
}

/// Why a run stopped early.
enum Stop {
    Kernel(String),
    Hang(usize),
    Died(usize, String),
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    let driver = args.driver.clone();
    println!(
        "# binder-fuzz: driver {driver}, seed {}, {} processes x {} threads, {}{}",
        args.seed,
        args.procs,
        args.threads,
        if args.iterations > 0 {
            format!("{} operations at most, ", args.iterations)
        } else {
            String::new()
        },
        if args.seconds > 0 {
            format!(
                "{} s at most{}",
                args.seconds,
                if args.faults {
                    ", fault injection on"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        }
    );
    let kmsg = match binder_client::kmsg::Kmsg::open(false) {
        Ok(k) => Some(k),
        Err(e) => {
            println!("# /dev/kmsg: {e}; the kernel log is not watched");
            None
        }
    };

    // Fork the processes; each keeps only its own two pipe ends.
    let mut children: Vec<Child> = Vec::new();
    for index in 0..args.procs {
        let (Ok((cmd_r, cmd_w)), Ok((res_r, res_w))) = (pipe(), pipe()) else {
            println!("FAIL fuzz/run ({driver}): pipe failed");
            return ExitCode::FAILURE;
        };
        // SAFETY: The coordinator is single-threaded here; the child runs `child_main`, which
        // never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            println!("FAIL fuzz/run ({driver}): fork failed");
            return ExitCode::FAILURE;
        }
        if pid == 0 {
            drop(children);
            drop(cmd_w);
            drop(res_r);
            // SAFETY: Plain syscall: the process dies with the coordinator.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            child_main(index, &args, File::from(cmd_r), File::from(res_w));
        }
        drop(cmd_r);
        drop(res_w);
        children.push(Child {
            pid,
            commands: File::from(cmd_w),
            results: File::from(res_r),
        });
    }
    // SAFETY: Plain syscall.
    let me = unsafe { libc::getpid() };
    let pids: Vec<String> = std::iter::once(me)
        .chain(children.iter().map(|c| c.pid))
        .map(|p| p.to_string())
        .collect();
    let pids = pids.join(" ");
    for (i, child) in children.iter_mut().enumerate() {
        let ready = write_message(&mut child.commands, &pids)
            .and_then(|()| read_message(&mut child.results));
        match ready {
            Ok(r) if r == "ready" => {}
            Ok(r) => {
                println!("FAIL fuzz/run ({driver}): process {i} did not start: {r}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                println!("FAIL fuzz/run ({driver}): process {i} did not start: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let mut log = args.log.as_ref().and_then(|path| match File::create(path) {
        Ok(f) => Some(BufWriter::new(f)),
        Err(e) => {
            println!("# {path}: {e}; no log");
            None
        }
    });
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut kernel_lines: Vec<String> = Vec::new();
    let start = Instant::now();
    let mut ops: u64 = 0;
    let mut stop = None;
    let mut tagged = [0u64; 2];
    let mut reports = kmsg::Reports::new(args.faults);
    // Operations that failed for want of memory, and failed transactions.
    let (mut enomem, mut failed_replies) = (0u64, 0u64);
    loop {
        if args.iterations > 0 && ops >= args.iterations {
            break;
        }
        if args.seconds > 0 && start.elapsed() >= Duration::from_secs(args.seconds) {
            break;
        }
        let i = ops;
        if let Some((from, to, process)) = args.dump {
            if (from..=to).contains(&i) {
                if let Some(child) = children.get(process) {
                    dump_state(i, child.pid);
                }
            }
        }
        let mut rng = Rng::for_op(args.seed, SCHEDULER, i);
        let p = rng.index(args.procs);
        let t = rng.index(args.threads);
        let child = &mut children[p];
        if let Err(e) = write_message(&mut child.commands, &format!("{i} {t}")) {
            stop = Some(Stop::Died(p, e.to_string()));
            break;
        }
        if !readable(child.results.as_raw_fd(), OP_TIMEOUT_MS) {
            stop = Some(Stop::Hang(p));
            break;
        }
        let message = match read_message(&mut child.results) {
            Ok(m) => m,
            Err(e) => {
                stop = Some(Stop::Died(p, e.to_string()));
                break;
            }
        };
        ops += 1;
        let mut fields = message.splitn(3, '\t');
        let desc = fields.next().unwrap_or("");
        let tags = fields.next().unwrap_or("");
        let outcome = fields.next().unwrap_or("");
        enomem += u64::from(outcome.contains("ENOMEM"));
        failed_replies += u64::from(outcome.contains("FAILED_REPLY"));
        if tags.contains('K') {
            tagged[0] += 1;
        }
        if tags.contains('A') {
            tagged[1] += 1;
        }
        let line = format!(
            "{i}\tp{p}.{t}\t{}\t{desc}\t=> {outcome}",
            if tags.is_empty() { "-" } else { tags }
        );
        if let Some(log) = &mut log {
            let _ = writeln!(log, "{line}");
        }
        tail.push_back(line);
        if tail.len() > args.tail {
            tail.pop_front();
        }
        if tags.contains('A') {
            thread::sleep(SETTLE);
        }
        if let Some(kmsg) = &kmsg {
            let messages = kmsg.messages();
            if let Some(at) = reports.first(&messages) {
                // Let the rest of the report reach the log.
                thread::sleep(Duration::from_secs(2));
                kernel_lines = messages[at..].to_vec();
                kernel_lines.extend(kmsg.messages());
                stop = Some(Stop::Kernel(messages[at].clone()));
                break;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(log) = &mut log {
        let _ = log.flush();
    }

    // End the processes: their files close and the driver releases everything.
    for child in &mut children {
        let _ = write_message(&mut child.commands, "quit");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for child in &children {
        loop {
            let mut status = 0;
            // SAFETY: Plain syscall on our own child.
            let ret = unsafe { libc::waitpid(child.pid, &mut status, libc::WNOHANG) };
            if ret != 0 {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: As above.
                unsafe { libc::kill(child.pid, libc::SIGKILL) };
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    // Releases (the C driver's run from a workqueue) may still report something.
    if stop.is_none() {
        thread::sleep(Duration::from_secs(1));
        if let Some(kmsg) = &kmsg {
            let messages = kmsg.messages();
            if let Some(at) = reports.first(&messages) {
                kernel_lines = messages[at..].to_vec();
                stop = Some(Stop::Kernel(format!(
                    "after the processes ended: {}",
                    messages[at]
                )));
            }
        }
    }

    println!(
        "# fuzz: {ops} operations in {elapsed:.1} s ({:.0}/s); {} on inputs where the drivers deliberately differ, {} reopens",
        ops as f64 / elapsed.max(0.001),
        tagged[0],
        tagged[1]
    );
    println!(
        "# fuzz: {enomem} operations failed with ENOMEM, {failed_replies} got BR_FAILED_REPLY"
    );
    println!("# fuzz-operations {ops}");
    let seed = args.seed;
    let Some(stop) = stop else {
        println!("ok   fuzz/run ({driver}): {ops} operations, seed {seed}, no kernel report");
        return ExitCode::SUCCESS;
    };
    let what = match stop {
        Stop::Kernel(first) => format!("kernel report: {first}"),
        Stop::Hang(p) => format!(
            "process {p} did not finish its operation in {} s",
            OP_TIMEOUT_MS / 1000
        ),
        Stop::Died(p, e) => format!("process {p} died ({e})"),
    };
    println!(
        "FAIL fuzz/run ({driver}): {what}; seed {seed}, at operation {}",
        ops.saturating_sub(1)
    );
    println!(
        "# replay: make fuzz DRIVER={driver} SEED={seed} FUZZ_ITERATIONS={}{}",
        ops + 1,
        if args.faults { " FAULTS=1" } else { "" }
    );
    println!(
        "# the last {} operations (index, process.thread, tags, operation, outcome):",
        tail.len()
    );
    for line in &tail {
        println!("#   {line}");
    }
    if !kernel_lines.is_empty() {
        println!("# the kernel log from the report on:");
        for line in kernel_lines.iter().take(80) {
            println!("#   {line}");
        }
    }
    ExitCode::FAILURE
}
