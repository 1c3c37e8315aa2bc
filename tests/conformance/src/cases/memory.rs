//! Traffic while memory is short. With most of the guest's memory held by a hog and the
//! kernel's shrinkers run over and over (which gives back the C driver's free buffer pages
//! under the calls' feet), large calls must all go through intact. With allocation failures
//! injected into the calling and serving threads (the kernel's `failslab` and
//! `fail_page_alloc`), every call must still end, in a reply or a failure (BR_FAILED_REPLY),
//! never hang; what the failures left behind is what rust_binder's census and kmemleak look
//! for when the suite unloads the driver.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::FileExt,
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::Duration,
};

use binder_client::{parse_returns, uapi, Binder, Commands, Mapping, Return, Txn};

use crate::{
    ensure,
    harness::{park, spawn_ready, Case, Child, Env, Outcome, Step, BINDER},
};

use super::{
    context_mgr::become_manager,
    cve::{await_reply, on_threads, serve, stop_loopers, STOP},
    sg::pattern,
};

pub const CASES: &[Case] = &[
    Case::new(
        "memory_pressure_large_calls_while_reclaiming",
        large_calls_while_reclaiming,
    ),
    Case::new(
        "memory_fault_injection_every_call_ends",
        fault_injection_every_call_ends,
    ),
];

/// The receive buffer of the processes of these cases: room for several large calls.
const BIG_MAP: usize = 4 << 20;

/// The memory the hog leaves for everything else, in KiB: enough that nothing needs the OOM
/// killer (whose report would fail the kernel log check), little enough that the kernel
/// keeps reclaiming.
const LEFT_FOR_THE_REST_KIB: u64 = 160 << 10;

/// A field of /proc/meminfo, in KiB.
fn meminfo_kib(field: &str) -> Outcome<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").step("read /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| format!("no {field} in /proc/meminfo"))
}

/// A child holding all the guest's available memory but [`LEFT_FOR_THE_REST_KIB`], first in
/// line for the OOM killer; returns it and how much it holds, in MiB.
fn spawn_hog() -> Outcome<(Child, u64)> {
    let hog_kib = meminfo_kib("MemAvailable")?.saturating_sub(LEFT_FOR_THE_REST_KIB);
    let hog = spawn_ready(move |ready| {
        fs::write("/proc/self/oom_score_adj", "1000").step("oom_score_adj")?;
        let len = (hog_kib * 1024) as usize;
        if len > 0 {
            // SAFETY: A fresh private anonymous mapping at an address of the kernel's
            // choosing aliases nothing; MAP_POPULATE makes the kernel fill it now.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                    -1,
                    0,
                )
            };
            ensure!(
                addr != libc::MAP_FAILED,
                "the hog's mmap of {hog_kib} KiB: {}",
                std::io::Error::last_os_error()
            );
        }
        ready();
        park()
    })?;
    Ok((hog, hog_kib >> 10))
}

/// A child that runs the kernel's shrinkers (`drop_caches` 2: slab objects, which includes
/// the C driver's LRU of free buffer pages) over and over until it is killed.
fn spawn_reclaimer() -> Outcome<Child> {
    spawn_ready(|ready| {
        let mut drop_caches = OpenOptions::new()
            .write(true)
            .open("/proc/sys/vm/drop_caches")
            .step("open drop_caches")?;
        ready();
        loop {
            drop_caches.write_all(b"2").step("drop_caches")?;
            thread::sleep(Duration::from_millis(5));
        }
    })
}

/// Opens BINDER with a [`BIG_MAP`] receive buffer and becomes its context manager; serving
/// threads enter the looper themselves.
fn big_manager() -> Outcome<(Binder, Mapping)> {
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(BIG_MAP, libc::PROT_READ).step("mmap")?;
    become_manager(&binder)?;
    Ok((binder, mapping))
}

/// The seed and length of the data of call `code` in these cases: 64 KiB to 472 KiB.
fn big_shape(code: u32) -> (u8, usize) {
    (
        (code ^ (code >> 8)) as u8,
        (64 + (code as usize % 7) * 68) << 10,
    )
}

/// Checks that `txn` in `mapping` holds the data [`big_shape`] gives its code.
fn expect_big_intact(mapping: &Mapping, txn: &Txn) -> Outcome {
    let (seed, len) = big_shape(txn.code);
    let data = mapping
        .bytes_at(txn.buffer, txn.data_size)
        .ok_or("a call is outside the mapping")?;
    ensure!(
        data.len() == len && data == pattern(seed, len),
        "call {:#x} did not arrive intact ({} bytes, {len} sent)",
        txn.code,
        data.len()
    );
    Ok(())
}

/// The reply to call `code`: 16 KiB.
fn big_reply(code: u32) -> Vec<u8> {
    pattern(big_shape(code).0 ^ 0x3c, 16 << 10)
}

/// Most of the guest's memory held by a hog, the shrinkers run in a loop, and large calls
/// (64 KiB to 472 KiB, with 16 KiB replies) from two processes of two threads to a manager
/// with two loopers: the buffers' pages are put in, freed and (on C) reclaimed and put in
/// again all the time. Every call and reply must arrive intact; nothing may fail.
fn large_calls_while_reclaiming(_: &Env) -> Outcome {
    const LOOPERS: usize = 2;
    const CLIENTS: u32 = 2;
    const THREADS: usize = 2;
    const CALLS: u32 = 16;
    let manager = spawn_ready(|ready| {
        let (binder, mapping) = big_manager()?;
        ready();
        on_threads(LOOPERS, |_| {
            serve(&binder, |txn| {
                if txn.code != STOP {
                    expect_big_intact(&mapping, txn)?;
                }
                binder
                    .send(&Commands::new().free_buffer(txn.buffer).transaction(
                        true,
                        0,
                        txn.code,
                        0,
                        &big_reply(txn.code),
                    ))
                    .step("free and reply")?;
                Ok(txn.code != STOP)
            })
        })
    })?;
    let (hog, hog_mib) = spawn_hog()?;
    let reclaimer = spawn_reclaimer()?;
    let clients = (0..CLIENTS)
        .map(|c| {
            Child::spawn(move || {
                let binder = Binder::open(BINDER).step("open")?;
                let mapping = binder.map(BIG_MAP, libc::PROT_READ).step("mmap")?;
                on_threads(THREADS, |t| {
                    let first = 0x100 * (1 + c * THREADS as u32 + t as u32);
                    for code in first..first + CALLS {
                        let (seed, len) = big_shape(code);
                        let data = pattern(seed, len);
                        binder
                            .send(&Commands::new().transaction(false, 0, code, 0, &data))
                            .step("call")?;
                        let reply = await_reply(&binder)?
                            .map_err(|ret| format!("call {code:#x} got {ret:?}"))?;
                        let got = mapping.bytes_at(reply.buffer, reply.data_size);
                        ensure!(
                            got == Some(&big_reply(code)[..]),
                            "the reply to call {code:#x} did not arrive intact"
                        );
                        binder
                            .send(&Commands::new().free_buffer(reply.buffer))
                            .step("free the reply")?;
                    }
                    Ok(())
                })
            })
        })
        .collect::<Outcome<Vec<_>>>()?;
    let mut outcome = Ok(());
    for client in clients {
        outcome = outcome.and(client.join());
    }
    reclaimer.kill()?;
    hog.kill()?;
    outcome?;
    stop_loopers(LOOPERS)?;
    println!(
        "figures: memory_pressure: {} calls of 64-472 KiB intact with a {hog_mib} MiB hog and \
         the shrinkers in a loop",
        CLIENTS * THREADS as u32 * CALLS
    );
    manager.join()
}

/// The kernel's fault injection attributes this case uses.
const FAILSLAB: &str = "/sys/kernel/debug/failslab";
const FAIL_PAGE_ALLOC: &str = "/sys/kernel/debug/fail_page_alloc";

/// How many failures each of the two attributes may inject at most (its `times`).
const INJECT_AT_MOST: u64 = 100_000;

/// The fault injection attributes, set up to fail the allocations of the threads that ask
/// for it (`make-it-fail`) with `probability` percent; switched off when dropped.
struct Injection;

impl Injection {
    fn set(attr: &str, name: &str, value: &str) -> Outcome {
        fs::write(format!("{attr}/{name}"), value).step(&format!("write {attr}/{name}"))
    }

    fn on(probability: u32) -> Outcome<Self> {
        for attr in [FAILSLAB, FAIL_PAGE_ALLOC] {
            ensure!(
                fs::metadata(attr).is_ok(),
                "{attr} is missing: the kernel needs CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC \
                 and CONFIG_FAULT_INJECTION_DEBUG_FS"
            );
        }
        let injection = Self;
        for attr in [FAILSLAB, FAIL_PAGE_ALLOC] {
            // Quiet: a report with a stack trace for each failure would flood the log (and
            // fail its check).
            Self::set(attr, "verbose", "0")?;
            Self::set(attr, "task-filter", "Y")?;
            Self::set(attr, "interval", "1")?;
            Self::set(attr, "space", "0")?;
            Self::set(attr, "times", &INJECT_AT_MOST.to_string())?;
            // The driver allocates with GFP_KERNEL, which both attributes leave alone by
            // default.
            Self::set(attr, "ignore-gfp-wait", "N")?;
            Self::set(attr, "probability", &probability.to_string())?;
        }
        Self::set(FAIL_PAGE_ALLOC, "ignore-gfp-highmem", "N")?;
        Self::set(FAIL_PAGE_ALLOC, "min-order", "0")?;
        Ok(injection)
    }

    /// How many failures each attribute injected so far: (slab, page).
    fn injected() -> Outcome<(u64, u64)> {
        let left = |attr: &str| -> Outcome<u64> {
            let times = fs::read_to_string(format!("{attr}/times")).step("read times")?;
            let times: i64 = times
                .trim()
                .parse()
                .map_err(|_| format!("{attr}/times reads {times:?}"))?;
            Ok(INJECT_AT_MOST.saturating_sub(times.max(0) as u64))
        };
        Ok((left(FAILSLAB)?, left(FAIL_PAGE_ALLOC)?))
    }
}

impl Drop for Injection {
    fn drop(&mut self) {
        for attr in [FAILSLAB, FAIL_PAGE_ALLOC] {
            let _ = Self::set(attr, "probability", "0");
            let _ = Self::set(attr, "task-filter", "N");
        }
    }
}

/// The calling thread's `make-it-fail` switch: while on, the kernel fails the thread's
/// allocations as the injection attributes say. It is opened once, with the switch off, and
/// flipped with plain writes, which allocate nothing; it is on only around binder ioctls, so
/// that the process's own allocations (mmap, threads, pipes) are never failed.
struct FailSwitch(File);

impl FailSwitch {
    fn open() -> Outcome<Self> {
        OpenOptions::new()
            .write(true)
            .open("/proc/thread-self/make-it-fail")
            .step("open make-it-fail")
            .map(Self)
    }

    fn set(&self, on: bool) -> Outcome {
        let value: &[u8] = if on { b"1" } else { b"0" };
        self.0.write_at(value, 0).step("write make-it-fail")?;
        Ok(())
    }

    /// One BINDER_WRITE_READ with the switch on: writes `bytes` from `written` on, reads into
    /// `read`. An ioctl that fails with ENOMEM is no failure of the case; anything else is.
    /// Returns how far the write got and the returns read.
    fn write_read(
        &self,
        binder: &Binder,
        bytes: &[u8],
        written: u64,
        read: &mut [u8],
    ) -> Outcome<(u64, Vec<Return>)> {
        self.set(true)?;
        let done = binder.write_read_at(bytes, written, read, 0);
        self.set(false)?;
        match done.result {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {}
            Err(e) => return Err(format!("BINDER_WRITE_READ: {e}")),
        }
        let len = usize::try_from(done.read_consumed).unwrap_or(usize::MAX);
        let returns = parse_returns(read.get(..len).ok_or("read_consumed is too big")?)
            .map_err(|_| "a return was cut short".to_string())?;
        Ok((done.write_consumed, returns))
    }

    /// Writes `commands`, in as many ioctls as it takes, reading nothing.
    fn write(&self, binder: &Binder, commands: &Commands) -> Outcome {
        let bytes = commands.as_bytes();
        let mut written = 0;
        while written < bytes.len() as u64 {
            written = self.write_read(binder, bytes, written, &mut [])?.0;
        }
        Ok(())
    }

    /// Reads (blocking) until a read brings more than BR_NOOP.
    fn read(&self, binder: &Binder) -> Outcome<Vec<Return>> {
        let mut read = [0u8; 256];
        loop {
            let (_, returns) = self.write_read(binder, &[], 0, &mut read)?;
            if returns.iter().any(|r| *r != Return::Noop) {
                return Ok(returns);
            }
        }
    }
}

/// The data of call `code` of the fault injection case: 1 to 24 KiB.
fn faulty_shape(code: u32) -> (u8, usize) {
    ((code ^ (code >> 8)) as u8, (1 + code as usize % 24) << 10)
}

/// Allocation failures injected with probability 10 % into every allocation the binder
/// ioctls of two client processes of two threads and of a manager's two loopers make (the
/// transaction, its buffer and the buffer's pages, the work items, threads...), for 40 calls
/// per client thread (one in four one-way). Each call must end: a synchronous call in its
/// reply, intact, or in BR_FAILED_REPLY; a one-way call in BR_TRANSACTION_COMPLETE or
/// BR_FAILED_REPLY; an ioctl that fails with ENOMEM is made again. With the injection off,
/// a last call goes through. Prints how many calls went through, how many failed and how
/// many failures were injected.
///
/// The C driver leaves a caller waiting when the replier's BC_REPLY fails its very first
/// allocation (the transaction's): the replier reads BR_FAILED_REPLY (ENOMEM in its extended
/// error) and the call stays on its stack, so the manager sends such a reply again; without
/// that, the caller hangs on C.
fn fault_injection_every_call_ends(_: &Env) -> Outcome {
    const LOOPERS: usize = 2;
    const CLIENTS: u32 = 2;
    const THREADS: usize = 2;
    const CALLS: u32 = 40;
    let manager = spawn_ready(|ready| {
        let (binder, mapping) = big_manager()?;
        let resent = AtomicU64::new(0);
        ready();
        on_threads(LOOPERS, |_| {
            let switch = FailSwitch::open()?;
            switch.write(&binder, &Commands::new().enter_looper())?;
            // The reply last sent, until the driver took it (BR_TRANSACTION_COMPLETE).
            let mut unanswered: Option<(u32, Vec<u8>)> = None;
            loop {
                let returns = switch.read(&binder)?;
                for ret in returns {
                    let txn = match ret {
                        Return::Transaction(txn) => txn,
                        Return::TransactionComplete => {
                            unanswered = None;
                            continue;
                        }
                        Return::FailedReply => {
                            // C: a reply whose first allocation fails is the replier's failure
                            // (ENOMEM in its extended error), and the call stays on its stack,
                            // unanswered: the reply has to be sent again. Any other failure was
                            // the caller's to hear of.
                            let error = binder.extended_error().step("extended error")?;
                            match unanswered.take() {
                                Some((code, reply)) if error.param == -libc::ENOMEM => {
                                    resent.fetch_add(1, Ordering::Relaxed);
                                    switch.write(
                                        &binder,
                                        &Commands::new().transaction(true, 0, code, 0, &reply),
                                    )?;
                                    unanswered = Some((code, reply));
                                }
                                _ => {}
                            }
                            continue;
                        }
                        Return::Noop => continue,
                        other => return Err(format!("a looper read {other:?}")),
                    };
                    if txn.code == STOP {
                        binder
                            .send(
                                &Commands::new()
                                    .free_buffer(txn.buffer)
                                    .transaction(true, 0, STOP, 0, b"stopped"),
                            )
                            .step("reply to stop")?;
                        return Ok(());
                    }
                    let (seed, len) = faulty_shape(txn.code);
                    let data = mapping.bytes_at(txn.buffer, txn.data_size);
                    ensure!(
                        data == Some(&pattern(seed, len)[..]),
                        "call {:#x} did not arrive intact",
                        txn.code
                    );
                    let mut commands = Commands::new().free_buffer(txn.buffer);
                    let reply = pattern(seed ^ 0x77, 512);
                    if txn.flags & uapi::TF_ONE_WAY == 0 {
                        commands = commands.transaction(true, 0, txn.code, 0, &reply);
                        unanswered = Some((txn.code, reply.clone()));
                    }
                    switch.write(&binder, &commands)?;
                }
            }
        })?;
        println!(
            "figures: fault_injection: the manager sent {} replies again after their first \
             allocation failed",
            resent.load(Ordering::Relaxed)
        );
        Ok(())
    })?;
    let injection = Injection::on(10)?;
    let clients = (0..CLIENTS)
        .map(|c| {
            Child::spawn(move || {
                let binder = Binder::open(BINDER).step("open")?;
                let mapping = binder.map(BIG_MAP, libc::PROT_READ).step("mmap")?;
                let (replied, failed) = (AtomicU64::new(0), AtomicU64::new(0));
                on_threads(THREADS, |t| {
                    let switch = FailSwitch::open()?;
                    let first = 0x100 * (1 + c * THREADS as u32 + t as u32);
                    for code in first..first + CALLS {
                        let oneway = code % 4 == 3;
                        let (seed, len) = faulty_shape(code);
                        let data = pattern(seed, len);
                        let flags = if oneway { uapi::TF_ONE_WAY } else { 0 };
                        let call = Commands::new().transaction(false, 0, code, flags, &data);
                        switch.write(&binder, &call)?;
                        let mut returns = switch.read(&binder)?;
                        let outcome = loop {
                            if let Some(end) = returns.iter().find(|r| {
                                matches!(r, Return::Reply(_) | Return::FailedReply)
                                    || (oneway && **r == Return::TransactionComplete)
                            }) {
                                break end.clone();
                            }
                            if let Some(other) = returns
                                .iter()
                                .find(|r| !matches!(r, Return::Noop | Return::TransactionComplete))
                            {
                                return Err(format!("call {code:#x} got {other:?}"));
                            }
                            returns = switch.read(&binder)?;
                        };
                        match outcome {
                            Return::Reply(reply) => {
                                let got = mapping.bytes_at(reply.buffer, reply.data_size);
                                ensure!(
                                    got == Some(&pattern(seed ^ 0x77, 512)[..]),
                                    "the reply to call {code:#x} did not arrive intact"
                                );
                                binder
                                    .send(&Commands::new().free_buffer(reply.buffer))
                                    .step("free the reply")?;
                                replied.fetch_add(1, Ordering::Relaxed);
                            }
                            Return::FailedReply => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                replied.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(())
                })?;
                println!(
                    "figures: fault_injection: client {c}: {} calls went through, {} failed",
                    replied.load(Ordering::Relaxed),
                    failed.load(Ordering::Relaxed)
                );
                Ok(())
            })
        })
        .collect::<Outcome<Vec<_>>>()?;
    let mut outcome = Ok(());
    for client in clients {
        outcome = outcome.and(client.join());
    }
    let (slab, page) = Injection::injected()?;
    drop(injection);
    outcome?;
    println!("figures: fault_injection: {slab} slab and {page} page allocations failed on purpose");
    ensure!(
        slab + page > 0,
        "no failure was injected: the binder ioctls never allocated with injection on"
    );
    // With the injection off, everything works again.
    let binder = Binder::open(BINDER).step("open")?;
    let _mapping = binder.map(BIG_MAP, libc::PROT_READ).step("mmap")?;
    let (seed, len) = faulty_shape(0x10);
    let data = pattern(seed, len);
    binder
        .send(&Commands::new().transaction(false, 0, 0x10, 0, &data))
        .step("a last call")?;
    let reply = await_reply(&binder)?.map_err(|ret| format!("the last call got {ret:?}"))?;
    binder
        .send(&Commands::new().free_buffer(reply.buffer))
        .step("free the last reply")?;
    drop(binder);
    stop_loopers(LOOPERS)?;
    manager.join()
}
