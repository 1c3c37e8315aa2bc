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

/// One transaction, as the logs record it.
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
    context_name: [u8; NAME_LEN],
    context_len: usize,
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
    /// `from_proc` on `context`.
    pub(crate) fn new(
        debug_id: u32,
        call_type: CallType,
        from_proc: i32,
        from_thread: i32,
        context: &Context,
    ) -> Self {
        let name = context.display_name();
        let context_len = name.len().min(NAME_LEN);
        let mut context_name = [0; NAME_LEN];
        context_name[..context_len].copy_from_slice(&name[..context_len]);
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
            context_name,
            context_len,
            done: false,
        }
    }

    /// Prints the entry as one line of a log file.
    fn print(&self, m: &SeqFile) {
        let kind = match self.call_type {
            CallType::Reply => "reply",
            CallType::Oneway => "async",
            CallType::Call => "call ",
        };
        let context = BStr::from_bytes(&self.context_name[..self.context_len]);
        // The sizes, handle and return are C `int`s there, and print as such.
        seq_print!(
            m,
            "{}: {} from {}:{} to {}:{} context {} node {} handle {} size {}:{} ret {}/{} l={}{}\n",
            self.debug_id as i32,
            kind,
            self.from_proc,
            self.from_thread,
            self.to_proc,
            self.to_thread,
            context,
            self.to_node as i32,
            self.target_handle as i32,
            self.data_size as i32,
            self.offsets_size as i32,
            self.return_error as i32,
            self.return_error_param,
            self.return_error_line as i32,
            if self.done { "" } else { " (incomplete)" }
        );
    }
}

/// A ring of the last [`LOG_LEN`] entries.
pub(crate) struct Log {
    entries: [Option<Entry>; LOG_LEN],
    /// How many entries were ever added.
    added: u64,
}

impl Log {
    const fn new() -> Self {
        Self {
            entries: [None; LOG_LEN],
            added: 0,
        }
    }

    fn add(&mut self, entry: Entry) -> u64 {
        let number = self.added;
        self.entries[(number % LOG_LEN as u64) as usize] = Some(entry);
        self.added = number.wrapping_add(1);
        number
    }

    /// The entry added as `number`, unless it was overwritten since.
    fn get_mut(&mut self, number: u64, debug_id: u32) -> Option<&mut Entry> {
        if self.added.wrapping_sub(number) > LOG_LEN as u64 {
            return None;
        }
        self.entries[(number % LOG_LEN as u64) as usize]
            .as_mut()
            .filter(|entry| entry.debug_id == debug_id)
    }

    /// The entry `index` places from the oldest one kept.
    fn nth_oldest(&self, index: usize) -> Option<Entry> {
        let kept = self.added.min(LOG_LEN as u64);
        let oldest = self.added - kept;
        if index as u64 >= kept {
            return None;
        }
        self.entries[((oldest + index as u64) % LOG_LEN as u64) as usize]
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
    /// Logs the start of the transaction `entry` describes.
    pub(crate) fn start(entry: Entry) -> Self {
        let number = TXN_LOG.lock().add(entry);
        Self { entry, number }
    }

    /// Logs the end of the transaction: its entry, complete now, replaces the one logged at
    /// the start (if the ring has not moved past it), and goes to the failed log if it failed
    /// (`return_error` is set).
    pub(crate) fn finish(mut self) {
        self.entry.done = true;
        let entry = self.entry;
        if let Some(slot) = TXN_LOG.lock().get_mut(self.number, entry.debug_id) {
            *slot = entry;
        }
        if entry.return_error != 0 {
            FAILED_LOG.lock().add(entry);
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
        let entry = match which {
            Which::All => TXN_LOG.lock().nth_oldest(index),
            Which::Failed => FAILED_LOG.lock().nth_oldest(index),
        };
        match entry {
            Some(entry) => entry.print(m),
            None => break,
        }
    }
}
