// SPDX-License-Identifier: GPL-2.0

//! What every process of a run shares: one anonymous `MAP_SHARED` mapping made by the
//! supervisor before it forks, holding the workers' identities (slot, generation, alive), the
//! counters, the first failure, and one record per call in flight for the watchdog.
//!
//! Everything in it is an atomic, so a zeroed page is a valid initial state and any process may
//! read or write any field.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering::SeqCst},
};

/// Worker slots (slot 0 is the context manager).
pub const MAX_SLOTS: usize = 16;
/// Calls that can be in flight at once, across all processes.
pub const MAX_RECORDS: usize = 2048;
/// The slot number an ephemeral process (a device opened and closed by a client thread)
/// puts in its calls: it has no slot of its own.
pub const EPHEMERAL: u32 = u32::MAX;

/// A call that took longer than this was never answered: a failure, not a slow run. Generous
/// for TCG under KASAN; never reached by a working driver.
pub const CALL_DEADLINE_NS: u64 = 60_000_000_000;

/// What the run counts.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Counter {
    SyncCalls,
    Oneways,
    Nested,
    Binders,
    WeakBinders,
    Handles,
    WeakHandles,
    ThirdPartyHandles,
    Fds,
    FdArrays,
    FdsInArrays,
    SgBuffers,
    DeathsRequested,
    DeathsDelivered,
    DeathsCleared,
    Kills,
    ClientThreadExits,
    LooperExits,
    LoopersSpawned,
    Ephemerals,
    Unmaps,
    DeadReplies,
    HoldRounds,
    ObjectsReleased,
    RefReturns,
    CallsToUnmapped,
}

const COUNTERS: usize = 32;

/// One worker's identity, as the supervisor keeps it.
#[repr(C)]
pub struct Slot {
    /// Its process id (0 while there is none).
    pub pid: AtomicI32,
    /// Its generation: incremented for every new process in the slot.
    pub gen: AtomicU64,
    /// 1 from its registration with the context manager until the supervisor decides to kill
    /// it (set to 0 before the signal is sent).
    pub alive: AtomicU32,
    /// When the supervisor last decided to kill the slot's process.
    pub died_ns: AtomicU64,
}

/// One call in flight: who waits, since when, for what.
#[repr(C)]
pub struct Record {
    /// The waiting thread (0: the record is free).
    pub tid: AtomicI32,
    pub pid: AtomicI32,
    pub start_ns: AtomicU64,
    pub op: AtomicU32,
    pub target: AtomicU32,
    pub seq: AtomicU64,
}

/// The shared state.
#[repr(C)]
pub struct Shared {
    /// Set when the run is over (time up or a failure): the workers stop making calls.
    pub stop: AtomicU32,
    /// Set by the first failure, whose message is in `message`.
    pub failed: AtomicU32,
    message_len: AtomicU32,
    message: [AtomicU8; 2048],
    /// Set once the context manager is serving.
    pub cm_ready: AtomicU32,
    /// How many worker slots the run has (1 to this).
    pub workers: AtomicU32,
    pub counters: [AtomicU64; COUNTERS],
    pub slots: [Slot; MAX_SLOTS],
    pub records: [Record; MAX_RECORDS],
}

impl Shared {
    /// Maps a zeroed `Shared` that forked children share; it lives as long as the process.
    pub fn create() -> &'static Shared {
        let len = size_of::<Shared>();
        // SAFETY: A fresh anonymous shared mapping aliases nothing.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            eprintln!("stress: cannot map the shared state");
            std::process::exit(2);
        }
        // SAFETY: The mapping is zeroed, page-aligned, as long as `Shared` and never unmapped;
        // every field is an atomic (or an array of them), for which zero is a valid value.
        unsafe { &*(addr as *const Shared) }
    }

    pub fn count(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, SeqCst);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(SeqCst)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(SeqCst) != 0
    }

    /// Records a failure (the first one's message is kept) and stops the run.
    pub fn fail(&self, message: &str) {
        eprintln!("stress: FAIL [pid {}]: {message}", std::process::id());
        if self.failed.compare_exchange(0, 1, SeqCst, SeqCst).is_ok() {
            let mut text = String::new();
            let _ = write!(text, "[pid {}] {message}", std::process::id());
            let bytes = text.as_bytes();
            let n = bytes.len().min(self.message.len());
            for (cell, byte) in self.message.iter().zip(&bytes[..n]) {
                cell.store(*byte, SeqCst);
            }
            self.message_len.store(n as u32, SeqCst);
        }
        self.stop.store(1, SeqCst);
    }

    /// The first failure's message.
    pub fn message(&self) -> String {
        let n = self.message_len.load(SeqCst) as usize;
        let bytes: Vec<u8> = self.message[..n].iter().map(|c| c.load(SeqCst)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn slot(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(slot as usize)
    }

    /// Whether the process that was generation `gen` of `slot` may be gone: it is not the
    /// slot's live generation any more, or the supervisor has decided to kill it. A call to
    /// one of its nodes may then fail with `BR_DEAD_REPLY`, and its death may be announced.
    pub fn may_be_dead(&self, slot: u32, gen: u64) -> bool {
        match self.slot(slot) {
            Some(s) => s.gen.load(SeqCst) != gen || s.alive.load(SeqCst) == 0,
            None => true,
        }
    }

    /// Takes a free record for a call from this thread; `None` if all are taken.
    pub fn begin_call(&self, op: u32, target: u32, seq: u64) -> Option<usize> {
        // SAFETY: Plain syscall.
        let tid = unsafe { libc::gettid() };
        let start = (tid as usize).wrapping_mul(7) % MAX_RECORDS;
        for i in 0..MAX_RECORDS {
            let index = (start + i) % MAX_RECORDS;
            let record = &self.records[index];
            if record.tid.compare_exchange(0, -1, SeqCst, SeqCst).is_ok() {
                record.pid.store(std::process::id() as i32, SeqCst);
                record.op.store(op, SeqCst);
                record.target.store(target, SeqCst);
                record.seq.store(seq, SeqCst);
                record.start_ns.store(now_ns(), SeqCst);
                record.tid.store(tid, SeqCst);
                return Some(index);
            }
        }
        None
    }

    /// Gives a record back.
    pub fn end_call(&self, index: Option<usize>) {
        if let Some(record) = index.and_then(|i| self.records.get(i)) {
            record.start_ns.store(0, SeqCst);
            record.pid.store(0, SeqCst);
            record.tid.store(0, SeqCst);
        }
    }

    /// Frees the records of a process that is gone (killed while it waited).
    pub fn forget_process(&self, pid: i32) {
        for record in &self.records {
            if record.pid.load(SeqCst) == pid {
                record.start_ns.store(0, SeqCst);
                record.pid.store(0, SeqCst);
                record.tid.store(0, SeqCst);
            }
        }
    }

    /// The first call in flight for longer than [`CALL_DEADLINE_NS`], described.
    pub fn overdue_call(&self) -> Option<String> {
        let now = now_ns();
        for record in &self.records {
            let tid = record.tid.load(SeqCst);
            let start = record.start_ns.load(SeqCst);
            if tid <= 0 || start == 0 || now.saturating_sub(start) < CALL_DEADLINE_NS {
                continue;
            }
            return Some(format!(
                "call {} (op {}) from pid {} thread {} to slot {} unanswered for {} s",
                record.seq.load(SeqCst),
                crate::wire::op_name(record.op.load(SeqCst)),
                record.pid.load(SeqCst),
                tid,
                slot_name(record.target.load(SeqCst)),
                now.saturating_sub(start) / 1_000_000_000
            ));
        }
        None
    }
}

pub fn slot_name(slot: u32) -> String {
    match slot {
        EPHEMERAL => "ephemeral".to_string(),
        0 => "0 (context manager)".to_string(),
        n => n.to_string(),
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid place for the time.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A small, fast PRNG (xorshift64*), seeded per process and thread from the run's seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// Between `min` and `max` (inclusive) random bytes.
    pub fn some_bytes(&mut self, min: usize, max: usize) -> Vec<u8> {
        let n = min + self.below((max - min + 1) as u64) as usize;
        self.bytes(n)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// FNV-1a of `bytes`: what the receiver checks a payload against.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_stream_every_time() {
        let (mut a, mut b, mut c) = (Rng::new(0x5eed), Rng::new(0x5eed), Rng::new(0x5eee));
        let first: Vec<u64> = (0..8).map(|_| a.next()).collect();
        assert_eq!(first, (0..8).map(|_| b.next()).collect::<Vec<_>>());
        assert_ne!(first, (0..8).map(|_| c.next()).collect::<Vec<_>>());
        assert!((0..1000).all(|_| a.below(7) < 7));
        let bytes = a.some_bytes(3, 5);
        assert!((3..=5).contains(&bytes.len()));
    }

    #[test]
    fn the_checksum_sees_every_byte() {
        assert_ne!(fnv(b"abc"), fnv(b"abd"));
        assert_ne!(fnv(b""), fnv(b"\0"));
    }
}
