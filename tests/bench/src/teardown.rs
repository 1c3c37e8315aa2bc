// SPDX-License-Identifier: GPL-2.0
//! Teardown: how long a killed binder process takes to be gone, as the driver sees it.
//!
//! A victim process, the context manager, waits on [`THREADS`] looper threads with its
//! receive buffer's one-way half full of transactions it never frees; a watcher holds a
//! reference to it with a death notification. The victim is killed (SIGKILL), and the time
//! from the kill until the watcher reads `BR_DEAD_BINDER` is one sample: it spans the exit of
//! every thread, the release of the file (C does most of it in a work item) and the node's
//! death being sent.

use binder_client::{Binder, Commands, Return};

use crate::{
    insn_count,
    proc::{now_ns, pin_to, Child, Outcome, Step},
    run::{figures, Figures},
};

/// The victim's looper threads.
pub const THREADS: usize = 16;

/// The victim's receive buffer; its one-way half is what the watcher fills.
const MAP_SIZE: usize = 1 << 20;

/// One-way transactions of [`CHUNK`] bytes the watcher sends, together [`FILL_BYTES`]: just
/// under the one-way half of the victim's buffer, with room for the drivers' bookkeeping.
const CHUNK: usize = 64 << 10;
const CHUNKS: usize = 7;
pub const FILL_BYTES: usize = CHUNK * CHUNKS;

/// Nominal iterations (kills) at scale 1.
pub const NOMINAL: usize = 40;

/// The CPU everything runs on, as in the latency workloads.
const CPU: Option<usize> = Some(0);

/// How long a watcher waits for the death notice before giving up.
const WATCHER_WATCHDOG_SECONDS: u32 = 60;

/// The cookie of the watcher's death notification.
const COOKIE: u64 = 0xdead;

/// `iterations` kills (after one untimed), on the driver of `device`.
pub fn measure(
    device: &'static str,
    iterations: usize,
    _: &crate::proc::SharedCounters,
) -> Outcome<Figures> {
    once(device)?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        samples.push(once(device)?);
    }
    let span = samples.iter().sum();
    figures(samples, 1, span)
}

/// One victim killed: nanoseconds from the kill to the death notice.
///
/// Under the instruction-counting profile the kill and the death notice may mark the window
/// between them ([`insn_count::window_wanted`]): the watcher marks the notice.
fn once(device: &'static str) -> Outcome<u64> {
    let window = insn_count::window_wanted();
    let mut victim = Child::spawn(&[], |ready| victim(device, ready))?;
    victim.wait_ready()?;
    let mut watcher = Child::spawn(&[], |ready| watcher(device, ready, window))?;
    if let Err(e) = watcher.wait_ready() {
        victim.kill();
        return Err(e);
    }
    let killed_at = now_ns();
    if window {
        insn_count::mark();
    }
    victim.kill();
    let bytes = watcher.finish()?;
    if window {
        insn_count::window_marked();
    }
    let dead_at = u64::from_ne_bytes(
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or("watcher: no time")?,
    );
    Ok(dead_at.saturating_sub(killed_at))
}

/// The victim: context manager with [`THREADS`] looper threads that take whatever comes and
/// free nothing. Runs until killed.
fn victim(device: &str, ready: &mut dyn FnMut()) -> Outcome<Vec<u8>> {
    pin_to(CPU)?;
    let binder = Binder::open(device).step("victim: open")?;
    let _mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("victim: mmap")?;
    crate::server::become_manager(&binder)?;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let _ = binder.send(&Commands::new().enter_looper());
                // Reads until killed; keeps every buffer.
                while binder.read().is_ok() {}
            });
        }
        ready();
        Ok(Vec::new())
    })
}

/// The watcher: fills the victim's one-way space, asks for its death, and hands back the
/// time the death notice came; with `window`, marks the notice for the instruction counts.
fn watcher(device: &str, ready: &mut dyn FnMut(), window: bool) -> Outcome<Vec<u8>> {
    // SAFETY: `alarm` only arms a timer; its SIGALRM ends a stuck watcher.
    unsafe { libc::alarm(WATCHER_WATCHDOG_SECONDS) };
    pin_to(CPU)?;
    let binder = Binder::open(device).step("watcher: open")?;
    let _mapping = binder
        .map(128 << 10, libc::PROT_READ)
        .step("watcher: mmap")?;
    binder
        .send(
            &Commands::new()
                .increfs(0)
                .acquire(0)
                .request_death_notification(0, COOKIE),
        )
        .step("watcher: death notification")?;
    let data = vec![0x5a; CHUNK];
    for _ in 0..CHUNKS {
        let oneway =
            Commands::new().transaction(false, 0, 1, binder_client::uapi::TF_ONE_WAY, &data);
        let mut complete = false;
        let mut returns = binder.write_then_read(&oneway).step("watcher: one-way")?;
        loop {
            for ret in returns {
                match ret {
                    Return::TransactionComplete => complete = true,
                    Return::FailedReply | Return::DeadReply => {
                        return Err(format!("watcher: filling the victim: {ret:?}"))
                    }
                    _ => {}
                }
            }
            if complete {
                break;
            }
            returns = binder.read().step("watcher: read")?;
        }
    }
    binder
        .send(&Commands::new().enter_looper())
        .step("watcher: enter looper")?;
    ready();
    loop {
        for ret in binder.read().step("watcher: wait for the death")? {
            if let Return::DeadBinder(COOKIE) = ret {
                let at = now_ns();
                if window {
                    insn_count::mark();
                }
                return Ok(at.to_ne_bytes().to_vec());
            }
        }
    }
}
