// SPDX-License-Identifier: GPL-2.0
//! Memory: the pages a driver holds for a process's receive buffer through a burst and under
//! memory pressure, and the kernel memory one binder object costs.
//!
//! Pages are read the same way on both drivers: the `Rss` of the process's binder mapping in
//! `/proc/PID/smaps` (both drivers map a buffer page into it when they allocate the page, and
//! unmap it only when they free it). Every driver's buffer goes through the same pressure, at
//! once: in the guest nothing else is reclaimable (no swap, files in RAM), so kswapd fails
//! every pass, and after 16 failed passes in a row (`MAX_RECLAIM_RETRIES`) it gives up on the
//! node (`node_unreclaimable` in `/proc/zoneinfo`); it is not woken again until some reclaim
//! frees pages while the node is above its high watermark, which nothing in the guest does.
//! Its first passes run every shrinker down to the lowest priority, so a driver measured under
//! a second, later hog would meet no kswapd at all (and be freed only if the hog happened to
//! dip below the min watermark, into direct reclaim): the first driver measured would always
//! look better.
//!
//! Object sizes come from `/proc/slabinfo`: the bytes of all active slab objects (every cache
//! shrunk first), before and after making many of one kind of object, divided by their count
//! (both drivers allocate from the kmalloc caches).

use std::{fs, io::Write, sync::Arc, thread, time::Duration};

use binder_client::{Binder, Commands, FlatObject, Payload};

use crate::{
    proc::{now_ns, pin_to, Child, Outcome, SharedCounters, Step},
    server::{self, Caller, CODE_HOLD, CODE_RELEASE},
};

/// The calls of the burst, each held by the server until it is told to free them all.
const BURST_CALLS: usize = 3;
const BURST_BYTES: usize = 1 << 20;

/// How long the hog keeps the guest short of memory, and how long it may take to get there.
const PRESSURE_MS: u64 = 3000;
const HOG_LIMIT_MS: u64 = 120_000;

/// Objects of each kind made for the slab figures (threads: [`THREADS`]). SLUB's slabinfo
/// counts the free objects of the per-CPU slabs as active, so a figure moves by whole slabs:
/// the more objects, the smaller that error per object.
const OBJECTS: usize = 1024;
const THREADS: usize = 256;

/// Each slab figure is the median of this many measurements.
const TRIALS: usize = 3;

/// The phases of the page measurement, in order.
pub const PHASES: [&str; 4] = ["before", "peak", "freed", "pressure"];

/// Pages of a server's binder mapping in each of [`PHASES`], one server per device in
/// `devices`, in that order: each server goes through its burst in turn, then one hog puts
/// them all under the same memory pressure.
pub fn pages(
    devices: &[&'static str],
    counters: &'static SharedCounters,
) -> Outcome<Vec<[u64; 4]>> {
    let mut servers = Vec::new();
    let result = (|| -> Outcome<Vec<[u64; 4]>> {
        for &device in devices {
            servers.push((device, server::start(device, 1, Some(0), counters)?));
        }
        let mut figures = Vec::new();
        for (device, server) in &servers {
            let (device, pid) = (*device, server.pid());
            let before = mapped_pages(pid, device)?;
            in_child(move || {
                let mut caller = Caller::open(device)?;
                let data = vec![0x5a; BURST_BYTES];
                for _ in 0..BURST_CALLS {
                    caller.call(CODE_HOLD, &data, &[])?;
                }
                Ok(())
            })?;
            let peak = mapped_pages(pid, device)?;
            in_child(move || Caller::open(device)?.call(CODE_RELEASE, &[], &[]))?;
            let freed = mapped_pages(pid, device)?;
            figures.push([before, peak, freed, 0]);
        }
        // A pressure kswapd sleeps through would measure nothing: see the module documentation.
        if main_zone()?.unreclaimable {
            let why = "kswapd gave up on the node before the pressure (node_unreclaimable)";
            return Err(format!("{why}: not measured"));
        }
        // A hog the OOM killer ended (it asks to be the one) still put the guest under pressure.
        if let Err(e) = without_watermark_boost(|| in_child(hog)) {
            eprintln!("hog: {e}");
        }
        for ((device, server), figure) in servers.iter().zip(&mut figures) {
            figure[3] = mapped_pages(server.pid(), device)?;
        }
        Ok(figures)
    })();
    for (_, server) in servers {
        server.kill();
    }
    result
}

/// Runs `body` in a child process and waits for it.
fn in_child(body: impl FnOnce() -> Outcome) -> Outcome {
    Child::spawn(&[], |ready| {
        ready();
        body().map(|()| Vec::new())
    })?
    .finish()
    .map(drop)
}

/// The resident pages of `pid`'s mapping of `device`.
fn mapped_pages(pid: libc::pid_t, device: &str) -> Outcome<u64> {
    let path = format!("/proc/{pid}/smaps");
    let smaps = fs::read_to_string(&path).step(&path)?;
    let mut in_binder = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_binder = line.split_whitespace().last() == Some(device);
        } else if in_binder && first == "Rss:" {
            let kb: u64 = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or("smaps: bad Rss line")?;
            return Ok(kb / 4);
        }
    }
    Err(format!("no mapping of {device} in {path}"))
}

/// One zone of `/proc/zoneinfo`: free pages and its watermarks, and whether kswapd gave up on
/// its node.
#[derive(Default, Debug)]
struct Zone {
    free: u64,
    min: u64,
    low: u64,
    managed: u64,
    unreclaimable: bool,
}

/// The zone with the most managed pages, where the hog's pages come from.
fn main_zone() -> Outcome<Zone> {
    let text = fs::read_to_string("/proc/zoneinfo").step("/proc/zoneinfo")?;
    let mut zones: Vec<Zone> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse().ok()).unwrap_or(0);
        match words[..] {
            ["Node", _, "zone", _] => zones.push(Zone::default()),
            ["pages", "free", _] => zones.last_mut().ok_or("zoneinfo")?.free = number(2),
            ["min", _] => zones.last_mut().ok_or("zoneinfo")?.min = number(1),
            ["low", _] => zones.last_mut().ok_or("zoneinfo")?.low = number(1),
            ["managed", _] => zones.last_mut().ok_or("zoneinfo")?.managed = number(1),
            ["node_unreclaimable:", v] => {
                zones.last_mut().ok_or("zoneinfo")?.unreclaimable = v != "0"
            }
            _ => {}
        }
    }
    zones
        .into_iter()
        .max_by_key(|z| z.managed)
        .ok_or_else(|| "no zones in /proc/zoneinfo".to_string())
}

/// Runs `body` with the kernel's watermark boosting off, as set again after it.
///
/// A boost (after an allocation had to fall back to another migrate type) raises the min
/// watermark by megabytes at once, under the pages [`hog`] already holds; its next page then
/// reclaims nothing and ends in the OOM killer (seen in C's half of a bench boot). Set here, in
/// the parent, so that it is put back also when the OOM killer ends the hog.
fn without_watermark_boost(body: impl FnOnce() -> Outcome) -> Outcome {
    const BOOST: &str = "/proc/sys/vm/watermark_boost_factor";
    let factor = fs::read_to_string(BOOST).ok();
    if factor.is_some() {
        let _ = fs::write(BOOST, "0");
    }
    let result = body();
    if let Some(factor) = factor {
        let _ = fs::write(BOOST, factor.trim());
    }
    result
}

/// Memory pressure without the OOM killer: takes pages until the main zone's free pages are
/// below its low watermark (which wakes kswapd, whose reclaim calls every shrinker, at rising
/// strength while it cannot free enough), and keeps them there, above the min watermark (below
/// which the allocation itself would reclaim and, with nothing to free, end in the OOM
/// killer), for [`PRESSURE_MS`]. Run without watermark boosting ([`without_watermark_boost`]).
fn hog() -> Outcome {
    // If the guest runs out after all, the hog is the one to go.
    let _ = fs::File::options()
        .write(true)
        .open("/proc/self/oom_score_adj")
        .and_then(|mut f| f.write_all(b"1000"));
    let mut held = Vec::new();
    let page = 4096;
    let take = |pages: u64, held: &mut Vec<(usize, usize)>| -> Outcome {
        let len = pages as usize * page;
        // SAFETY: A fresh anonymous private mapping at an address of the kernel's choosing.
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
        if addr == libc::MAP_FAILED {
            return Err(format!("hog: mmap: {}", std::io::Error::last_os_error()));
        }
        held.push((addr as usize, len));
        Ok(())
    };
    // The pressure lasts PRESSURE_MS from the first time the zone is below its low mark.
    let mut pressed_at = None;
    let give_up = now_ns() + HOG_LIMIT_MS * 1_000_000;
    let mut lowest = u64::MAX;
    let mut zone = main_zone()?;
    while pressed_at.is_none_or(|at| now_ns() - at < PRESSURE_MS * 1_000_000) {
        if now_ns() > give_up {
            return Err(format!(
                "hog: the zone never got below its low mark: {zone:?}"
            ));
        }
        zone = main_zone()?;
        lowest = lowest.min(zone.free);
        // Aim between the two watermarks.
        let aim = zone.min + (zone.low - zone.min) / 2;
        if zone.free < zone.low && pressed_at.is_none() {
            pressed_at = Some(now_ns());
        }
        if zone.free > aim {
            // Big steps while far off, small ones near: a step taken at once (populated)
            // must not overshoot the min mark, below which the allocation reclaims itself and
            // the OOM killer follows.
            let near = 4 * (zone.low - zone.min);
            let step = if zone.free > aim + near {
                (zone.free - aim - near).clamp(1, 16384)
            } else {
                ((zone.free - aim) / 4).clamp(1, 64)
            };
            take(step, &mut held)?;
        } else {
            thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!(
        "hog: {} MiB taken, the main zone's free pages down to {lowest} (min {}, low {})",
        held.iter().map(|h| h.1).sum::<usize>() >> 20,
        zone.min,
        zone.low
    );
    for (addr, len) in held {
        // SAFETY: Mappings this function made and nothing refers to.
        unsafe { libc::munmap(addr as *mut libc::c_void, len) };
    }
    Ok(())
}

/// Bytes of all active slab objects, from `/proc/slabinfo`, after every cache was shrunk
/// (`/sys/kernel/slab/*/shrink`): SLUB counts the free objects of its per-CPU slabs as
/// active, and shrinking flushes those slabs back, so that the count is of allocated objects.
fn slab_bytes() -> Outcome<u64> {
    if let Ok(caches) = fs::read_dir("/sys/kernel/slab") {
        for cache in caches.flatten() {
            // Merged caches appear once more as symbolic links: shrink each cache once.
            if cache.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = fs::write(cache.path().join("shrink"), "1");
            }
        }
    }
    let text = fs::read_to_string("/proc/slabinfo").step("/proc/slabinfo")?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("slabinfo"))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(w.get(1)?.parse::<u64>().ok()? * w.get(3)?.parse::<u64>().ok()?)
        })
        .sum())
}

/// The slab bytes that `make` adds, per object, over `count` objects: the median of
/// [`TRIALS`] runs of [`per_object_once`].
fn per_object(count: usize, make: impl Fn() -> Outcome) -> Outcome<f64> {
    let mut trials = (0..TRIALS)
        .map(|_| per_object_once(count, &make))
        .collect::<Outcome<Vec<f64>>>()?;
    trials.sort_by(f64::total_cmp);
    Ok(trials[TRIALS / 2])
}

/// The slab bytes that `make` adds, per object, over `count` objects: `make` runs in a child
/// that, once done, reports ready and waits to be killed (so that what it made stays while the
/// slab is read).
fn per_object_once(count: usize, make: &dyn Fn() -> Outcome) -> Outcome<f64> {
    // Settle the per-CPU caches a little, then read twice around the child.
    thread::sleep(Duration::from_millis(100));
    let before = slab_bytes()?;
    let mut child = Child::spawn(&[], |ready| {
        make()?;
        ready();
        loop {
            thread::sleep(Duration::from_secs(60));
        }
    })?;
    child.wait_ready()?;
    let after = slab_bytes()?;
    child.kill();
    Ok((after as f64 - before as f64) / count as f64)
}

/// Makes [`THREADS`] threads in this process, each first calling `touch` (which makes its
/// binder thread, or nothing); returns once all have, leaving them blocked until the process
/// ends.
fn threads(touch: Arc<dyn Fn() -> Outcome + Send + Sync>) -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..THREADS {
        let tx = tx.clone();
        let touch = touch.clone();
        thread::spawn(move || {
            let _ = tx.send(touch());
            loop {
                thread::sleep(Duration::from_secs(60));
            }
        });
    }
    for _ in 0..THREADS {
        rx.recv().map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Kernel bytes per binder object on the driver of `device`: (object, bytes) for a process,
/// a thread, a handle, a node, and a one-way transaction in flight.
pub fn objects(
    device: &'static str,
    counters: &'static SharedCounters,
) -> Outcome<Vec<(&'static str, f64)>> {
    let mut out = Vec::new();
    // Room for the descriptors of OBJECTS opens.
    let limit = libc::rlimit {
        rlim_cur: 4096,
        rlim_max: 4096,
    };
    // SAFETY: `limit` is a valid rlimit; raising the limit is all this does.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    // A process: an open of the device.
    out.push((
        "process",
        per_object(OBJECTS, || {
            let opened: Vec<Binder> = (0..OBJECTS)
                .map(|_| Binder::open(device))
                .collect::<Result<_, _>>()
                .step("open")?;
            std::mem::forget(opened);
            Ok(())
        })?,
    ));
    // A thread: the binder thread made by a thread's first BINDER_WRITE_READ (the task itself
    // is counted out: a baseline of as many threads that do not touch binder).
    let binder_threads = per_object(THREADS, || {
        let binder = Arc::new(Binder::open(device).step("open")?);
        threads(Arc::new(move || {
            binder
                .send(&Commands::new().enter_looper())
                .step("enter looper")
        }))
    })?;
    let plain_threads = per_object(THREADS, || threads(Arc::new(|| Ok(()))))?;
    out.push(("thread", binder_threads - plain_threads));

    let server = server::start(device, 1, Some(0), counters)?;
    let result = (|| -> Outcome<(f64, f64)> {
        // A handle: processes each taking a reference on the context manager (handle 0); the
        // processes themselves counted out.
        let procs = per_object(OBJECTS, || {
            let opened: Vec<Binder> = (0..OBJECTS)
                .map(|_| Binder::open(device))
                .collect::<Result<_, _>>()
                .step("open")?;
            std::mem::forget(opened);
            Ok(())
        })?;
        let procs_with_handle = per_object(OBJECTS, || {
            for _ in 0..OBJECTS {
                let binder = Binder::open(device).step("open")?;
                binder
                    .send(&Commands::new().increfs(0).acquire(0))
                    .step("acquire 0")?;
                std::mem::forget(binder);
            }
            Ok(())
        })?;
        let handle = procs_with_handle - procs;
        // A node with its handle: calls carrying 16 new local binders each, whose buffers the
        // server keeps (so the server's handles stay); counted out: as many calls without
        // objects (the buffers kept). (The node alone, this less a handle, would be the
        // difference of two noisy figures.)
        let calls = OBJECTS / 16;
        let held_plain = per_object(OBJECTS, || {
            let mut caller = Caller::open(device)?;
            for _ in 0..calls {
                caller.call(CODE_HOLD, &[0; 16 * 24], &[])?;
            }
            std::mem::forget(caller);
            Ok(())
        })?;
        let held_objects = per_object(OBJECTS, || {
            let mut caller = Caller::open(device)?;
            for call in 0..calls as u64 {
                let Payload { data, offsets, .. } = (0..16u64).fold(Payload::new(), |p, i| {
                    let ptr = (call * 16 + i + 1) << 12;
                    p.object(FlatObject::binder(ptr, ptr))
                });
                caller.call(CODE_HOLD, &data, &offsets)?;
            }
            std::mem::forget(caller);
            Ok(())
        })?;
        in_child(move || Caller::open(device)?.call(CODE_RELEASE, &[], &[]))?;
        Ok((handle, held_objects - held_plain))
    })();
    server.kill();
    let (handle, node) = result?;
    out.push(("handle", handle));
    out.push(("node with a handle", node));

    // A transaction in flight: one-way calls queued on a node nobody reads (a context manager
    // without looper threads).
    let idle = Child::spawn(&[], |ready| {
        let binder = Binder::open(device).step("idle: open")?;
        let _mapping = binder.map(4 << 20, libc::PROT_READ).step("idle: mmap")?;
        server::become_manager(&binder)?;
        ready();
        loop {
            thread::sleep(Duration::from_secs(60));
        }
    });
    let mut idle = idle?;
    idle.wait_ready()?;
    let in_flight = per_object(OBJECTS, || {
        pin_to(Some(0))?;
        let mut caller = Caller::open(device)?;
        for _ in 0..OBJECTS {
            caller.send_oneway(2, &[])?;
        }
        std::mem::forget(caller);
        Ok(())
    });
    idle.kill();
    out.push(("transaction", in_flight?));
    Ok(out)
}
