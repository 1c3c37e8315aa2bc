// SPDX-License-Identifier: GPL-2.0

//! The transaction logs: the last 32 transactions, and the last 32 that failed.
//!
//! Every `BC_TRANSACTION`/`BC_REPLY` takes a slot in the first log when it starts and fills
//! it in as it learns where it goes; when it ends the slot is marked done and, if it failed,
//! copied to the failed log. A slot read before that shows `(incomplete)`, as the C driver's
//! do. The fields are the C driver's, so the `transaction_log` and `failed_transaction_log`
//! files read the same.
//!
//! Each log is a ring under its own spinlock (`TXN_LOG`, `FAILED_LOG`), a leaf: nothing is
//! taken under it and it is taken under nothing but the printing of the log file, which
//! copies an entry out before printing it.

use kernel::{
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    str::BStr, //
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

/// A log's place for one entry, with the name of the entry's context.
#[derive(Clone, Copy)]
struct Slot {
    entry: Entry,
    context_name: [u8; NAME_LEN],
    context_len: usize,
}

impl Slot {
    /// A slot that never held an entry.
    const EMPTY: Self = Self {
        entry: Entry::new(0, CallType::Call, 0, 0),
        context_name: [0; NAME_LEN],
        context_len: 0,
    };

    /// Fills the slot with `entry`, sent on `context`. Only the name's own bytes are copied.
    fn fill(&mut self, entry: Entry, context: &Context) {
        let name = context.display_name();
        let len = name.len().min(NAME_LEN);
        self.context_name[..len].copy_from_slice(&name[..len]);
        self.context_len = len;
        self.entry = entry;
    }

    /// Prints the slot's entry as one line of a log file.
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

/// A ring of the last [`LOG_LEN`] entries.
pub(crate) struct Log {
    /// The slots; only the last `added` of them (at most all) hold an entry.
    slots: [Slot; LOG_LEN],
    /// How many entries were ever added.
    added: u64,
}

impl Log {
    const fn new() -> Self {
        Self {
            slots: [Slot::EMPTY; LOG_LEN],
            added: 0,
        }
    }

    /// Adds `entry`, sent on `context`, in place of the oldest; returns its number.
    fn add(&mut self, entry: Entry, context: &Context) -> u64 {
        let number = self.added;
        self.slots[(number % LOG_LEN as u64) as usize].fill(entry, context);
        self.added = number.wrapping_add(1);
        number
    }

    /// The entry added as `number`, unless it was overwritten since.
    fn get_mut(&mut self, number: u64, debug_id: u32) -> Option<&mut Entry> {
        if self.added.wrapping_sub(number) > LOG_LEN as u64 {
            return None;
        }
        Some(&mut self.slots[(number % LOG_LEN as u64) as usize].entry)
            .filter(|entry| entry.debug_id == debug_id)
    }

    /// The slot `index` places from the oldest one kept.
    fn nth_oldest(&self, index: usize) -> Option<Slot> {
        let kept = self.added.min(LOG_LEN as u64);
        let oldest = self.added - kept;
        if index as u64 >= kept {
            return None;
        }
        Some(self.slots[((oldest + index as u64) % LOG_LEN as u64) as usize])
    }
}

kernel::sync::global_lock! {
    // SAFETY: `init` is called by the module's initialiser, before any device is registered.
    unsafe(uninit) static TXN_LOG: SpinLock<Log> = Log::new();
}

kernel::sync::global_lock! {
    // SAFETY: As for `TXN_LOG`.
    unsafe(uninit) static FAILED_LOG: SpinLock<Log> = Log::new();
}

/// Initialises the logs' locks; called once, when the module is loaded.
pub(crate) fn init() {
    // SAFETY: Called once, from the module's initialiser, before any other use of the locks.
    unsafe { TXN_LOG.init() };
    // SAFETY: As above.
    unsafe { FAILED_LOG.init() };
}

/// A transaction's place in the log, from its start to its end.
pub(crate) struct Logged {
    /// The entry, filled in as the transaction goes.
    pub(crate) entry: Entry,
    number: u64,
}

impl Logged {
    /// Logs the start of the transaction `entry` describes, sent on `context`.
    pub(crate) fn start(entry: Entry, context: &Context) -> Self {
        let number = TXN_LOG.lock().add(entry, context);
        Self { entry, number }
    }

    /// Logs the end of the transaction sent on `context`: its entry, complete now, replaces
    /// the one logged at the start (if the ring has not moved past it), and goes to the failed
    /// log if it failed (`return_error` is set).
    pub(crate) fn finish(mut self, context: &Context) {
        self.entry.done = true;
        let entry = self.entry;
        if let Some(slot) = TXN_LOG.lock().get_mut(self.number, entry.debug_id) {
            *slot = entry;
        }
        if entry.return_error != 0 {
            FAILED_LOG.lock().add(entry, context);
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
    for index in 0..LOG_LEN {
        // Copied out, so that printing happens without the lock.
        let slot = match which {
            Which::All => TXN_LOG.lock().nth_oldest(index),
            Which::Failed => FAILED_LOG.lock().nth_oldest(index),
        };
        match slot {
            Some(slot) => slot.print(m),
            None => break,
        }
    }
}
