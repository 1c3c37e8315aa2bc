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
pub(crate) enum CallType {
    Call = 0,
    Oneway = 1,
    Reply = 2,
}

/// Defines [`Entry`] and the slot's atomic copy of it ([`Fields`]) from one list of fields:
/// those known when a transaction starts, then those it learns as it goes.
macro_rules! logged_fields {
    (
        at_start { $($(#[$sdoc:meta])* $start:ident: $sty:ty,)* }
        learnt { $($(#[$ldoc:meta])* $learnt:ident: $lty:ty,)* }
    ) => {
        /// One transaction, as the logs record it, but for the context's name, which only the
        /// log's slot keeps (copied into it once, at the start), and whether it ended.
        #[derive(Clone, Copy, Default)]
        pub(crate) struct Entry {
            $($(#[$sdoc])* pub(crate) $start: $sty,)*
            $($(#[$ldoc])* pub(crate) $learnt: $lty,)*
        }

        /// The fields of an [`Entry`] in a [`Slot`], each an atomic.
        struct Fields {
            $($start: Atomic<$sty>,)*
            $($learnt: Atomic<$lty>,)*
        }

        impl Fields {
            /// Fields that never held an entry.
            const fn zeroed() -> Self {
                Self {
                    $($start: Atomic::new(0),)*
                    $($learnt: Atomic::new(0),)*
                }
            }

            /// Writes every field of `entry`.
            fn store(&self, entry: &Entry) {
                $(self.$start.store(entry.$start, Relaxed);)*
                self.store_learnt(entry);
            }

            /// Writes the fields `entry` learnt since it started. (The others stay as they
            /// are: a transaction that ends late cannot change who a newer entry is.)
            fn store_learnt(&self, entry: &Entry) {
                $(self.$learnt.store(entry.$learnt, Relaxed);)*
            }

            /// Reads every field.
            fn load(&self) -> Entry {
                Entry {
                    $($start: self.$start.load(Relaxed),)*
                    $($learnt: self.$learnt.load(Relaxed),)*
                }
            }
        }
    };
}

logged_fields! {
    at_start {
        debug_id: u32,
        /// A [`CallType`].
        call_type: u32,
        from_proc: i32,
        from_thread: i32,
        target_handle: u32,
        data_size: u64,
        offsets_size: u64,
    }
    learnt {
        to_proc: i32,
        to_thread: i32,
        to_node: u32,
        /// The return the sender read (`BR_*`), zero for a transaction that did not fail.
        return_error: u32,
        /// The errno behind `return_error`.
        return_error_param: i32,
        /// Where in the driver the transaction failed (a line of `transaction.rs`).
        return_error_line: u32,
    }
}

impl Entry {
    /// The receiving process and thread as far as they are known yet (0 for unknown): also
    /// what a netlink report of the transaction names.
    pub(crate) fn receiver(&self) -> crate::netlink::Target {
        (self.to_proc, self.to_thread)
    }

    /// An entry for transaction `debug_id` of `call_type`, sent by thread `from_thread` of
    /// `from_proc`.
    pub(crate) fn new(
        debug_id: u32,
        call_type: CallType,
        from_proc: i32,
        from_thread: i32,
    ) -> Self {
        Self {
            debug_id,
            call_type: call_type as u32,
            from_proc,
            from_thread,
            ..Self::default()
        }
    }
}

/// The bytes of a word of a context's name in a slot.
const WORD: usize = size_of::<usize>();

/// How many words a slot keeps of a context's name.
const NAME_WORDS: usize = NAME_LEN.div_ceil(WORD);

/// A context's name as the slots keep it, in native-endian words (the last padded with
/// zeros), packed once when the context is made: every transaction copies it into its slot,
/// and word stores are all that copy then takes.
pub(crate) struct LogName {
    words: [usize; NAME_WORDS],
    /// The length in bytes, at most [`NAME_LEN`].
    len: usize,
}

impl LogName {
    /// Packs `name`, cut to [`NAME_LEN`] bytes.
    pub(crate) fn new(name: &[u8]) -> Self {
        let len = name.len().min(NAME_LEN);
        let mut words = [0usize; NAME_WORDS];
        for (word, bytes) in words.iter_mut().zip(name[..len].chunks(WORD)) {
            let mut raw = [0u8; WORD];
            raw[..bytes.len()].copy_from_slice(bytes);
            *word = usize::from_ne_bytes(raw);
        }
        Self { words, len }
    }

    /// The words the name fills.
    fn used_words(&self) -> &[usize] {
        &self.words[..self.len.div_ceil(WORD)]
    }
}

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
    fields: Fields,
    done_id: Atomic<u32>,
    /// The context's name, in native-endian words, and its length in bytes.
    context_name: [Atomic<usize>; NAME_WORDS],
    context_len: Atomic<usize>,
}

/// What a reader copies out of a [`Slot`] to print.
struct Snapshot {
    entry: Entry,
    /// The entry's transaction had ended when it was read.
    done: bool,
    context_name: [u8; NAME_WORDS * WORD],
    context_len: usize,
}

impl Slot {
    /// A slot that never held an entry.
    const fn empty() -> Self {
        Self {
            fields: Fields::zeroed(),
            done_id: Atomic::new(0),
            context_name: [const { Atomic::new(0) }; NAME_WORDS],
            context_len: Atomic::new(0),
        }
    }

    /// Makes the slot `entry`'s, sent on `context`, not yet done. Only the name's own words
    /// are copied.
    fn fill(&self, entry: &Entry, context: &Context) {
        // Incomplete from here on, whatever the slot held: a reader that sees any of the
        // fields below also sees this.
        self.done_id.store(0, Relaxed);
        smp_mb(Write);
        self.fields.store(entry);
        let name = &context.log_name;
        for (word, &packed) in self.context_name.iter().zip(name.used_words()) {
            word.store(packed, Relaxed);
        }
        self.context_len.store(name.len, Relaxed);
    }

    /// Writes what `entry` learnt since it started, where it went and how it ended, and marks
    /// the slot done.
    fn end(&self, entry: &Entry) {
        self.fields.store_learnt(entry);
        self.done_id.store(entry.debug_id, Release);
    }

    /// The slot's entry as it is now.
    fn snapshot(&self) -> Snapshot {
        let done_id = self.done_id.load(Acquire);
        let entry = self.fields.load();
        let mut context_name = [0u8; NAME_WORDS * WORD];
        for (bytes, word) in context_name.chunks_mut(WORD).zip(self.context_name.iter()) {
            bytes.copy_from_slice(&word.load(Relaxed).to_ne_bytes());
        }
        let context_len = self.context_len.load(Relaxed).min(NAME_LEN);
        // Written over since the first read if this one differs.
        smp_mb(Read);
        let done_after = self.done_id.load(Relaxed);
        Snapshot {
            entry,
            done: done_id != 0 && done_after == done_id,
            context_name,
            context_len,
        }
    }
}

impl Snapshot {
    /// Prints the entry as one line of a log file.
    fn print(&self, m: &SeqFile) {
        let entry = &self.entry;
        let kind = if entry.call_type == CallType::Reply as u32 {
            "reply"
        } else if entry.call_type == CallType::Oneway as u32 {
            "async"
        } else {
            "call "
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
            if self.done { "" } else { " (incomplete)" }
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
        if slot.fields.debug_id.load(Relaxed) == entry.debug_id {
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
    pub(crate) fn finish(self, context: &Context) {
        TXN_LOG.end(self.number, &self.entry);
        if self.entry.return_error != 0 {
            let failed = FAILED_LOG.add(&self.entry, context);
            FAILED_LOG.end(failed, &self.entry);
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
