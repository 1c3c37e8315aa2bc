// SPDX-License-Identifier: GPL-2.0

//! binder-stress: many processes and threads on one binder device for a bounded time, every
//! reply checked against what was sent, processes killed and respawned, and a watchdog on
//! every call.
//!
//!   binder-stress run [--seconds N] [--workers N] [--threads N] [--seed N] [--device PATH]
//!                     [--no-kills]
//!   binder-stress scan-log     counts the reports in the whole kernel log (after an unload,
//!                              rust_binder's census is among them)
//!
//! A run is a supervisor (this process, single-threaded) that forks a context manager and
//! `--workers` worker processes. Each worker registers its root node with the context manager
//! and serves calls on a thread pool the driver grows (`BR_SPAWN_LOOPER`), while `--threads`
//! client threads make random calls to the other workers (see `ops.rs` for the operations and
//! what each checks). The supervisor kills a random worker with `SIGKILL` every few seconds
//! and starts a new generation in its slot. A call unanswered for 60 s fails the run: the
//! supervisor first asks the kernel for every task's stack (`t` to /proc/sysrq-trigger).
//! At the end it prints what was done and the kernel reports logged meanwhile; the exit status
//! is 0 only if nothing failed and nothing was reported.

mod conn;
mod kmsg;
mod ops;
mod serve;
mod shared;
mod wire;

use std::{
    collections::{HashMap, HashSet},
    sync::{atomic::Ordering::SeqCst, Arc},
    thread,
    time::Duration,
};

use binder_client::{uapi, FlatObject, Payload};

use crate::{
    conn::{cookie_of, looper, Conn, Ctx, ROOT_PTR},
    kmsg::Kmsg,
    shared::{now_ns, Counter, Rng, Shared},
    wire::{Header, Writer},
};

struct Opts {
    seconds: u64,
    workers: u32,
    threads: u32,
    seed: u64,
    device: String,
    kills: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: binder-stress run [--seconds N] [--workers N] [--threads N] [--seed N] \
         [--device PATH] [--no-kills]\n       binder-stress scan-log"
    );
    std::process::exit(2);
}

fn number(value: Option<&String>) -> u64 {
    let Some(value) = value else { usage() };
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    parsed.unwrap_or_else(|_| usage())
}

fn parse(args: &[String]) -> Opts {
    let seconds = std::env::var("STRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let mut opts = Opts {
        seconds,
        workers: 4,
        threads: 3,
        seed: 0x5eed,
        device: "/dev/binder".into(),
        kills: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => opts.seconds = number(it.next()),
            "--workers" => opts.workers = number(it.next()).clamp(2, 15) as u32,
            "--threads" => opts.threads = number(it.next()).clamp(1, 16) as u32,
            "--seed" => opts.seed = number(it.next()),
            "--device" => opts.device = it.next().cloned().unwrap_or_else(|| usage()),
            "--no-kills" => opts.kills = false,
            _ => usage(),
        }
    }
    opts
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("run") => run(&parse(&args[1..])),
        Some("scan-log") => scan_log(),
        _ => usage(),
    };
    std::process::exit(code);
}

/// Counts the reports in the whole kernel log.
fn scan_log() -> i32 {
    let reports = Kmsg::open(true).reports();
    for r in &reports {
        println!("stress: kernel report: {r}");
    }
    println!("stress: reports found in the kernel log: {}", reports.len());
    i32::from(!reports.is_empty())
}

/// The most threads the driver may ask a worker to start: enough that every client thread of
/// the run can be served at once, so that a wait is never for a pool the driver will not grow.
fn max_threads(opts: &Opts) -> u32 {
    opts.workers * opts.threads + 8
}

/// Runs `f` in a forked child, which dies with the supervisor.
fn fork_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: The supervisor is single-threaded, so the child starts in a consistent state.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: Plain prctl: the child gets SIGKILL when its parent dies.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let code = f();
        // SAFETY: Ends the child without running the parent's exit handlers twice.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn park() -> ! {
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// The context manager: a registry of the workers' root nodes (`REGISTER`, `LOOKUP`), which
/// asks for each one's death and drops it when it comes.
fn context_manager(sh: &'static Shared, opts: &Opts) -> i32 {
    let conn = match Conn::open(&opts.device, 0, 0, sh, opts.seed) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            sh.fail(&format!("context manager: {e}"));
            return 1;
        }
    };
    let flags = uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS;
    if let Err(e) = conn.binder.set_context_mgr_ext(0, 0, flags) {
        sh.fail(&format!("BINDER_SET_CONTEXT_MGR_EXT: {e}"));
        return 1;
    }
    if let Err(e) = conn.binder.set_max_threads(max_threads(opts)) {
        sh.fail(&format!("BINDER_SET_MAX_THREADS: {e}"));
        return 1;
    }
    for _ in 0..2 {
        let c = Arc::clone(&conn);
        let seed = conn.thread_seed();
        thread::spawn(move || looper(c, seed, true));
    }
    sh.cm_ready.store(1, SeqCst);
    park()
}

/// A worker: registers its root node, serves, and runs its client threads.
fn worker(sh: &'static Shared, opts: &Opts, slot: u32, gen: u64) -> i32 {
    let seed = opts.seed ^ (u64::from(slot) << 48) ^ (gen << 24);
    let conn = match Conn::open(&opts.device, slot, gen, sh, seed) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            sh.fail(&format!("slot {slot}: {e}"));
            return 1;
        }
    };
    if let Err(e) = conn.binder.set_max_threads(max_threads(opts)) {
        sh.fail(&format!("BINDER_SET_MAX_THREADS: {e}"));
        return 1;
    }
    for _ in 0..2 {
        let c = Arc::clone(&conn);
        let seed = conn.thread_seed();
        thread::spawn(move || looper(c, seed, true));
    }
    let mut ctx = Ctx::new(Arc::clone(&conn), conn.thread_seed(), false);
    let seq = conn.next_seq();
    let mut w = Writer::default();
    Header {
        op: wire::REGISTER,
        from_slot: slot,
        from_gen: gen,
        seq,
    }
    .write(&mut w);
    w.u32(slot).u32(0).u64(gen);
    let mut root = FlatObject::binder(ROOT_PTR, cookie_of(ROOT_PTR));
    root.flags = uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS;
    let payload = Payload::new().bytes(&w.0).object(root);
    let registered = conn
        .call(&mut ctx, 0, 0, wire::REGISTER, seq, &payload, false)
        .and_then(|outcome| {
            serve::outcome_of(&mut ctx, outcome, (0, 0), "REGISTER", |_, _, _| Ok(()))
        });
    match registered {
        Ok(Some(())) => {}
        Ok(None) => {
            sh.fail(&format!("slot {slot}: the context manager is gone"));
            return 1;
        }
        Err(e) => {
            sh.fail(&format!("slot {slot}: REGISTER: {e}"));
            return 1;
        }
    }
    sh.count(Counter::SyncCalls);
    sh.slots[slot as usize].alive.store(1, SeqCst);
    for _ in 0..opts.threads {
        let c = Arc::clone(&conn);
        let seed = conn.thread_seed();
        thread::spawn(move || ops::client(c, seed));
    }
    park()
}

/// Asks the kernel to log every task's stack (CONFIG_MAGIC_SYSRQ).
fn dump_all_stacks() {
    if std::fs::write("/proc/sysrq-trigger", "t").is_err() {
        eprintln!("stress: cannot write /proc/sysrq-trigger: no stack dump");
    }
}

fn run(opts: &Opts) -> i32 {
    let sh = Shared::create();
    sh.workers.store(opts.workers, SeqCst);
    let _ = ops::DEVICE.set(opts.device.clone());
    let mut kmsg = Kmsg::open(false);
    let mut rng = Rng::new(opts.seed);
    println!(
        "stress: seed {:#x}, {} workers x {} client threads on {}, {} s{}",
        opts.seed,
        opts.workers,
        opts.threads,
        opts.device,
        opts.seconds,
        if opts.kills { "" } else { ", no kills" }
    );
    let start = now_ns();
    let end = start + opts.seconds * 1_000_000_000;

    sh.slots[0].alive.store(1, SeqCst);
    let cm_pid = fork_child(|| context_manager(sh, opts));
    while sh.cm_ready.load(SeqCst) == 0 && !sh.stopping() {
        if now_ns() - start > 60_000_000_000 {
            sh.fail("the context manager did not start within 60 s");
        }
        thread::sleep(Duration::from_millis(20));
    }

    let mut workers: HashMap<i32, u32> = HashMap::new();
    let mut killed: HashSet<i32> = HashSet::new();
    let spawn = |slot: u32, workers: &mut HashMap<i32, u32>| {
        let s = &sh.slots[slot as usize];
        let gen = s.gen.fetch_add(1, SeqCst) + 1;
        let pid = fork_child(|| worker(sh, opts, slot, gen));
        s.pid.store(pid, SeqCst);
        workers.insert(pid, slot);
    };
    for slot in 1..=opts.workers {
        spawn(slot, &mut workers);
    }

    let mut next_kill = now_ns() + 2_000_000_000;
    let mut next_report = now_ns() + 10_000_000_000;
    while !sh.stopping() {
        thread::sleep(Duration::from_millis(100));
        loop {
            let mut status = 0;
            // SAFETY: `status` is valid for the call.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            sh.forget_process(pid);
            if pid == cm_pid {
                sh.fail(&format!("the context manager exited (status {status:#x})"));
            } else if let Some(slot) = workers.remove(&pid) {
                if killed.remove(&pid) {
                    sh.count(Counter::Kills);
                    if !sh.stopping() {
                        spawn(slot, &mut workers);
                    }
                } else {
                    sh.fail(&format!(
                        "worker slot {slot} (pid {pid}) exited by itself (status {status:#x})"
                    ));
                }
            }
        }
        if let Some(call) = sh.overdue_call() {
            dump_all_stacks();
            sh.fail(&format!(
                "watchdog: {call}; every task's stack is in the kernel log"
            ));
            break;
        }
        let now = now_ns();
        if now >= end {
            break;
        }
        if opts.kills && now >= next_kill {
            let alive: Vec<(i32, u32)> = workers
                .iter()
                .filter(|(pid, slot)| {
                    !killed.contains(pid) && sh.slots[**slot as usize].alive.load(SeqCst) == 1
                })
                .map(|(p, s)| (*p, *s))
                .collect();
            if !alive.is_empty() {
                let (pid, slot) = alive[rng.below(alive.len() as u64) as usize];
                let s = &sh.slots[slot as usize];
                s.alive.store(0, SeqCst);
                s.died_ns.store(now, SeqCst);
                // SAFETY: Plain kill of our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed.insert(pid);
            }
            next_kill = now + 1_000_000_000 + rng.below(3_000_000_000);
        }
        if now >= next_report {
            println!(
                "stress: {} s: {} calls, {} one-way, {} kills",
                (now - start) / 1_000_000_000,
                sh.get(Counter::SyncCalls),
                sh.get(Counter::Oneways),
                sh.get(Counter::Kills)
            );
            next_report = now + 10_000_000_000;
        }
    }

    // The clients stop after their current call; the watchdog stays on meanwhile.
    sh.stop.store(1, SeqCst);
    let grace = now_ns();
    while sh.failed.load(SeqCst) == 0 && now_ns() - grace < 70_000_000_000 {
        if let Some(call) = sh.overdue_call() {
            dump_all_stacks();
            sh.fail(&format!(
                "watchdog: {call}; every task's stack is in the kernel log"
            ));
            break;
        }
        let busy = sh.records.iter().any(|r| r.tid.load(SeqCst) != 0);
        if !busy {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    for pid in workers.keys().chain(std::iter::once(&cm_pid)) {
        // SAFETY: Plain kill of our own child.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for _ in 0..=workers.len() {
        let mut status = 0;
        // SAFETY: `status` is valid for the call.
        unsafe { libc::waitpid(-1, &mut status, 0) };
    }
    let elapsed = (now_ns() - start) / 1_000_000_000;

    // Give the kernel a moment to log what the teardown may have caused.
    thread::sleep(Duration::from_secs(2));
    let reports = kmsg.reports();
    summary(sh, elapsed, opts, &reports);
    let ok = sh.failed.load(SeqCst) == 0 && reports.is_empty();
    if ok {
        println!("stress: result: ok");
        0
    } else {
        if sh.failed.load(SeqCst) != 0 {
            println!("stress: result: FAIL: {}", sh.message());
        } else {
            println!(
                "stress: result: FAIL: the kernel logged {} reports",
                reports.len()
            );
        }
        1
    }
}

fn summary(sh: &Shared, elapsed: u64, opts: &Opts, reports: &[String]) {
    use Counter::*;
    let g = |c| sh.get(c);
    println!("stress: ran {elapsed} s, seed {:#x}", opts.seed);
    println!(
        "stress: transactions completed: {} (synchronous {}, one-way {}, nested {})",
        g(SyncCalls) + g(Oneways),
        g(SyncCalls),
        g(Oneways),
        g(Nested)
    );
    println!("stress: kills survived: {}", g(Kills));
    println!(
        "stress: objects passed: binder {}, weak binder {}, handle {}, weak handle {}, \
         third-party handle {}, fd {}, fd array {} ({} fds), scatter-gather buffer {}",
        g(Binders),
        g(WeakBinders),
        g(Handles),
        g(WeakHandles),
        g(ThirdPartyHandles),
        g(Fds),
        g(FdArrays),
        g(FdsInArrays),
        g(SgBuffers)
    );
    println!(
        "stress: death notifications: requested {}, delivered {}, cleared {}",
        g(DeathsRequested),
        g(DeathsDelivered),
        g(DeathsCleared)
    );
    println!(
        "stress: threads: client thread exits {}, looper exits {}, loopers spawned {}",
        g(ClientThreadExits),
        g(LooperExits),
        g(LoopersSpawned)
    );
    println!(
        "stress: processes: ephemeral {} ({} unmapped their buffer mid-traffic), \
         hold rounds {}, objects released {}, calls failed as their target was gone {}",
        g(Ephemerals),
        g(Unmaps),
        g(HoldRounds),
        g(ObjectsReleased),
        g(DeadReplies)
    );
    for r in reports {
        println!("stress: kernel report: {r}");
    }
    println!("stress: reports found: {}", reports.len());
}
