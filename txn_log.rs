// SPDX-License-Identifier: GPL-2.0

//! The transaction logs: the last 32 transactions, and the last 32 that failed.
//!
//! Every `BC_TRANSACTION`/`BC_REPLY` takes a slot in the first log when it starts and fills
//! it in as it learns where it goes; when it ends the slot is marked done and, if it failed,
//! copied to the failed log. A slot read before that shows `(incomplete)`, as the C driver's
//! do. The fields are the C driver's, so the `transaction_log` and `failed_transaction_log`
//! files read the same.
//!
//! Each log (`TXN_LOG`, `FAILED_LOG`) is a ring of slots taken in turn by an atomic counter,
//! with no lock: a transaction writes its slot's fields, each an atomic, and the log files read
//! them (see [`Slot`]). So logging costs a transaction plain stores, and transactions on
//! different CPUs do not wait for each other to log.

use kernel::{
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    str::BStr,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        barrier::{
            smp_mb,
            Read,
            Write, //
        },
    },
};

use crate::context::Context;

/// How many entries a log keeps, as in the C driver.
const LOG_LEN: usize = 32;

/// The room for a context's name in an entry: a binderfs name at most (255 bytes).
const NAME_LEN: usize = 255;

/// What kind of transaction an entry is, with the C driver's numbers.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum CallType {
    #[default]
    Call = 0,
    Oneway = 1,
    Reply = 2,
}

/// One transaction, as the logs record it, but for the context's name, which only the log's
/// slot keeps (copied into it once, at the start).
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) debug_id: u32,
    pub(crate) call_type: CallType,
    pub(crate) from_proc: i32,
    pub(crate) from_thread: i32,
    pub(crate) target_handle: u32,
    pub(crate) to_proc: i32,
    pub(crate) to_thread: i32,
    pub(crate) to_node: u32,
    pub(crate) data_size: u64,
    pub(crate) offsets_size: u64,
    /// The return the sender read (`BR_*`), zero for a transaction that did not fail.
    pub(crate) return_error: u32,
    /// The errno behind `return_error`.
    pub(crate) return_error_param: i32,
    /// Where in the driver the transaction failed (a line of `transaction.rs`).
    pub(crate) return_error_line: u32,
    /// The transaction ended (successfully or not).
    done: bool,
}

impl Entry {
    /// The receiving process and thread as far as they are known yet (0 for unknown): also
    /// what a netlink report of the transaction names.
    pub(crate) fn receiver(&self) -> crate::netlink::Target {
        (self.to_proc, self.to_thread)
    }

    /// An entry for transaction `debug_id` of `call_type`, sent by thread `from_thread` of
    /// `from_proc`.
    pub(crate) const fn new(
        debug_id: u32,
        call_type: CallType,
        from_proc: i32,
        from_thread: i32,
    ) -> Self {
        Self {
            debug_id,
            call_type,
            from_proc,
            from_thread,
            target_handle: 0,
            to_proc: 0,
            to_thread: 0,
            to_node: 0,
            data_size: 0,
            offsets_size: 0,
            return_error: 0,
            return_error_param: 0,
            return_error_line: 0,
            done: false,
        }
    }
}

/// The bytes of a word of a context's name in a slot.
const WORD: usize = size_of::<usize>();

/// How many words a slot keeps of a context's name.
const NAME_WORDS: usize = NAME_LEN.div_ceil(WORD);

/// A log's place for one entry, with the name of the entry's context.
///
/// Written without a lock by the transaction that took it (and by another if that one is
/// still going `LOG_LEN` transactions later), read by the log files: every field is an
/// atomic, so a reader racing a writer may see parts of two entries, but nothing undefined.
/// `done_id` is the entry's debug id once the transaction ended, stored last and cleared
/// first when the slot is taken: a reader reads it before and after the other fields and
/// prints the line `(incomplete)` unless both reads give the same id, not 0, as C's readers
/// do. That catches a new entry written over the one being read; a transaction that ends just
/// as its slot is taken by the one `LOG_LEN` later may still leave a line mixing the two,
/// as in C.
struct Slot {
    debug_id: Atomic<u32>,
    done_id: Atomic<u32>,
    call_type: Atomic<u32>,
    from_proc: Atomic<i32>,
    from_thread: Atomic<i32>,
    target_handle: Atomic<u32>,
    to_proc: Atomic<i32>,
    to_thread: Atomic<i32>,
    to_node: Atomic<u32>,
    data_size: Atomic<u64>,
    offsets_size: Atomic<u64>,
    return_error: Atomic<u32>,
    return_error_param: Atomic<i32>,
    return_error_line: Atomic<u32>,
    /// The context's name, in native-endian words, and its length in bytes.
    context_name: [Atomic<usize>; NAME_WORDS],
    context_len: Atomic<usize>,
}

/// What a reader copies out of a [`Slot`] to print.
struct Snapshot {
    entry: Entry,
    context_name: [u8; NAME_WORDS * WORD],
    context_len: usize,
}

impl Slot {
    /// A slot that never held an entry.
    const fn empty() -> Self {
        Self {
            debug_id: Atomic::new(0),
            done_id: Atomic::new(0),
            call_type: Atomic::new(0),
            from_proc: Atomic::new(0),
            from_thread: Atomic::new(0),
            target_handle: Atomic::new(0),
            to_proc: Atomic::new(0),
            to_thread: Atomic::new(0),
            to_node: Atomic::new(0),
            data_size: Atomic::new(0),
            offsets_size: Atomic::new(0),
            return_error: Atomic::new(0),
            return_error_param: Atomic::new(0),
            return_error_line: Atomic::new(0),
            context_name: [const { Atomic::new(0) }; NAME_WORDS],
            context_len: Atomic::new(0),
        }
    }

    /// Makes the slot `entry`'s, sent on `context`. Only the name's own words are copied.
    fn fill(&self, entry: &Entry, context: &Context) {
        // Incomplete from here on, whatever the slot held: a reader that sees any of the
        // fields below also sees this.
        self.done_id.store(0, Relaxed);
        smp_mb(Write);
        self.debug_id.store(entry.debug_id, Relaxed);
        self.call_type.store(entry.call_type as u32, Relaxed);
        self.from_proc.store(entry.from_proc, Relaxed);
        self.from_thread.store(entry.from_thread, Relaxed);
        self.target_handle.store(entry.target_handle, Relaxed);
        self.data_size.store(entry.data_size, Relaxed);
        self.offsets_size.store(entry.offsets_size, Relaxed);
        let name: &[u8] = context.display_name();
        let len = name.len().min(NAME_LEN);
        for (word, bytes) in self.context_name.iter().zip(name[..len].chunks(WORD)) {
            let mut raw = [0u8; WORD];
            raw[..bytes.len()].copy_from_slice(bytes);
            word.store(usize::from_ne_bytes(raw), Relaxed);
        }
        self.context_len.store(len, Relaxed);
        // The rest too: zeros at the start, all of it for the failed log's copy.
        self.end(entry);
    }

    /// Writes what `entry` learnt since it started: where it went and how it ended; marks
    /// the slot complete if the entry is done.
    fn end(&self, entry: &Entry) {
        self.to_proc.store(entry.to_proc, Relaxed);
        self.to_thread.store(entry.to_thread, Relaxed);
        self.to_node.store(entry.to_node, Relaxed);
        self.return_error.store(entry.return_error, Relaxed);
        self.return_error_param
            .store(entry.return_error_param, Relaxed);
        self.return_error_line
            .store(entry.return_error_line, Relaxed);
        if entry.done {
            self.done_id.store(entry.debug_id, Release);
        }
    }

    /// The slot's entry as it is now.
    fn snapshot(&self) -> Snapshot {
        let done_id = self.done_id.load(Acquire);
        let debug_id = self.debug_id.load(Relaxed);
        let call_type = match self.call_type.load(Relaxed) {
            1 => CallType::Oneway,
            2 => CallType::Reply,
            _ => CallType::Call,
        };
        let mut entry = Entry::new(
            debug_id,
            call_type,
            self.from_proc.load(Relaxed),
            self.from_thread.load(Relaxed),
        );
        entry.target_handle = self.target_handle.load(Relaxed);
        entry.to_proc = self.to_proc.load(Relaxed);
        entry.to_thread = self.to_thread.load(Relaxed);
        entry.to_node = self.to_node.load(Relaxed);
        entry.data_size = self.data_size.load(Relaxed);
        entry.offsets_size = self.offsets_size.load(Relaxed);
        entry.return_error = self.return_error.load(Relaxed);
        entry.return_error_param = self.return_error_param.load(Relaxed);
        entry.return_error_line = self.return_error_line.load(Relaxed);
        let mut context_name = [0u8; NAME_WORDS * WORD];
        for (bytes, word) in context_name.chunks_mut(WORD).zip(self.context_name.iter()) {
            bytes.copy_from_slice(&word.load(Relaxed).to_ne_bytes());
        }
        let context_len = self.context_len.load(Relaxed).min(NAME_LEN);
        // Written over since the first read if this one differs.
        smp_mb(Read);
        let done_after = self.done_id.load(Relaxed);
        entry.done = done_id != 0 && done_after == done_id;
        Snapshot {
            entry,
            context_name,
            context_len,
        }
    }
}

impl Snapshot {
    /// Prints the entry as one line of a log file.
    fn print(&self, m: &SeqFile) {
        let entry = &self.entry;
        let kind = match entry.call_type {
            CallType::Reply => "reply",
            CallType::Oneway => "async",
            CallType::Call => "call ",
        };
        let context = BStr::from_bytes(&self.context_name[..self.context_len]);
        // The sizes, handle and return are C `int`s there, and print as such.
        seq_print!(
            m,
            "{}: {} from {}:{} to {}:{} context {} node {} handle {} size {}:{} ret {}/{} l={}{}\n",
            entry.debug_id as i32,
            kind,
            entry.from_proc,
            entry.from_thread,
            entry.to_proc,
            entry.to_thread,
            context,
            entry.to_node as i32,
            entry.target_handle as i32,
            entry.data_size as i32,
            entry.offsets_size as i32,
            entry.return_error as i32,
            entry.return_error_param,
            entry.return_error_line as i32,
            if entry.done { "" } else { " (incomplete)" }
        );
    }
}

/// A ring of the last [`LOG_LEN`] entries, taken in turn without a lock.
pub(crate) struct Log {
    /// The slots; only the last `added` of them (at most all) hold an entry.
    slots: [Slot; LOG_LEN],
    /// How many entries were ever added (taken, if not yet filled).
    added: Atomic<u64>,
}

impl Log {
    const fn new() -> Self {
        Self {
            slots: [const { Slot::empty() }; LOG_LEN],
            added: Atomic::new(0),
        }
    }

    /// The slot of the entry added as `number`.
    fn slot(&self, number: u64) -> &Slot {
        &self.slots[(number % LOG_LEN as u64) as usize]
    }

    /// Adds `entry`, sent on `context`, in place of the oldest; returns its number.
    fn add(&self, entry: &Entry, context: &Context) -> u64 {
        let number = self.added.fetch_add(1, Relaxed);
        self.slot(number).fill(entry, context);
        number
    }

    /// Completes the entry added as `number` with what `entry` says now, unless the slot was
    /// taken by a later one since (a check, not a lock: see [`Slot`]).
    fn end(&self, number: u64, entry: &Entry) {
        let slot = self.slot(number);
        if slot.debug_id.load(Relaxed) == entry.debug_id {
            slot.end(entry);
        }
    }

    /// The slots that hold an entry, oldest first, as of now.
    fn oldest_first(&self) -> impl Iterator<Item = &Slot> {
        let added = self.added.load(Relaxed);
        let kept = added.min(LOG_LEN as u64);
        (added - kept..added).map(|number| self.slot(number))
    }
}

/// The last transactions.
static TXN_LOG: Log = Log::new();

/// The last transactions that failed.
static FAILED_LOG: Log = Log::new();

/// A transaction's place in the log, from its start to its end.
pub(crate) struct Logged {
    /// The entry, filled in as the transaction goes.
    pub(crate) entry: Entry,
    number: u64,
}

impl Logged {
    /// Logs the start of the transaction `entry` describes, sent on `context`.
    pub(crate) fn start(entry: Entry, context: &Context) -> Self {
        let number = TXN_LOG.add(&entry, context);
        Self { entry, number }
    }

    /// Logs the end of the transaction sent on `context`: its slot gets the rest of the entry
    /// (if the ring has not moved past it), and the entry goes to the failed log if it failed
    /// (`return_error` is set).
    pub(crate) fn finish(mut self, context: &Context) {
        self.entry.done = true;
        TXN_LOG.end(self.number, &self.entry);
        if self.entry.return_error != 0 {
            FAILED_LOG.add(&self.entry, context);
        }
    }
}

/// Which log a file shows.
#[derive(Clone, Copy)]
pub(crate) enum Which {
    All,
    Failed,
}

/// Prints a log, oldest entry first, one line each.
pub(crate) fn print(m: &SeqFile, which: Which) {
    let log = match which {
        Which::All => &TXN_LOG,
        Which::Failed => &FAILED_LOG,
    };
    for slot in log.oldest_first() {
        slot.snapshot().print(m);
    }
}
