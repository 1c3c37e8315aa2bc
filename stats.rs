// SPDX-License-Identifier: GPL-2.0

//! Debug ids and counters: what the `stats` log file reports, and the numbers the other log
//! files name objects by.
//!
//! Nodes, handles and transactions (and with a transaction its buffer) take their debug ids
//! from one global sequence, as in the C driver, so a number seen in `state` can be looked up
//! in `transaction_log` and in the extended error of a failed call. The command and return
//! counters are kept for the whole driver and for each process, indexed by the number inside
//! the ioctl code (`_IOC_NR`), as C indexes them; the object counters only globally.
//!
//! Everything here is an atomic: counting takes no lock and may happen under any of them.

use kernel::{
    seq_file::SeqFile,
    seq_print,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

/// The last debug id handed out.
static LAST_DEBUG_ID: Atomic<u32> = Atomic::new(0);

/// A fresh debug id, for a node, a handle or a transaction.
pub(crate) fn next_debug_id() -> u32 {
    LAST_DEBUG_ID.fetch_add(1, Relaxed).wrapping_add(1)
}

/// The names of the commands, by `_IOC_NR` of their codes.
const COMMAND_NAMES: [&str; 22] = [
    "BC_TRANSACTION",
    "BC_REPLY",
    "BC_ACQUIRE_RESULT",
    "BC_FREE_BUFFER",
    "BC_INCREFS",
    "BC_ACQUIRE",
    "BC_RELEASE",
    "BC_DECREFS",
    "BC_INCREFS_DONE",
    "BC_ACQUIRE_DONE",
    "BC_ATTEMPT_ACQUIRE",
    "BC_REGISTER_LOOPER",
    "BC_ENTER_LOOPER",
    "BC_EXIT_LOOPER",
    "BC_REQUEST_DEATH_NOTIFICATION",
    "BC_CLEAR_DEATH_NOTIFICATION",
    "BC_DEAD_BINDER_DONE",
    "BC_TRANSACTION_SG",
    "BC_REPLY_SG",
    "BC_REQUEST_FREEZE_NOTIFICATION",
    "BC_CLEAR_FREEZE_NOTIFICATION",
    "BC_FREEZE_NOTIFICATION_DONE",
];

/// The names of the returns, by `_IOC_NR` of their codes (`BR_TRANSACTION_SEC_CTX` shares
/// its number with `BR_TRANSACTION`, and is counted as one).
const RETURN_NAMES: [&str; 23] = [
    "BR_ERROR",
    "BR_OK",
    "BR_TRANSACTION",
    "BR_REPLY",
    "BR_ACQUIRE_RESULT",
    "BR_DEAD_REPLY",
    "BR_TRANSACTION_COMPLETE",
    "BR_INCREFS",
    "BR_ACQUIRE",
    "BR_RELEASE",
    "BR_DECREFS",
    "BR_ATTEMPT_ACQUIRE",
    "BR_NOOP",
    "BR_SPAWN_LOOPER",
    "BR_FINISHED",
    "BR_DEAD_BINDER",
    "BR_CLEAR_DEATH_NOTIFICATION_DONE",
    "BR_FAILED_REPLY",
    "BR_FROZEN_REPLY",
    "BR_ONEWAY_SPAM_SUSPECT",
    "BR_TRANSACTION_PENDING_FROZEN",
    "BR_FROZEN_BINDER",
    "BR_CLEAR_FREEZE_NOTIFICATION_DONE",
];

/// The kinds of object whose creations and deletions are counted.
#[derive(Clone, Copy)]
pub(crate) enum Object {
    Process,
    Thread,
    Node,
    Ref,
    Death,
    Transaction,
    TransactionComplete,
    Freeze,
}

/// The names of [`Object`]s, in its order, as the C driver prints them.
const OBJECT_NAMES: [&str; 8] = [
    "proc",
    "thread",
    "node",
    "ref",
    "death",
    "transaction",
    "transaction_complete",
    "freeze",
];

/// How many commands and returns were carried out, by `_IOC_NR` of their codes.
pub(crate) struct Stats {
    commands: [Atomic<u32>; COMMAND_NAMES.len()],
    returns: [Atomic<u32>; RETURN_NAMES.len()],
}

/// The number inside an ioctl-style code (`_IOC_NR`).
fn ioc_nr(code: u32) -> usize {
    (code & 0xff) as usize
}

impl Stats {
    /// Counters at zero.
    pub(crate) const fn new() -> Self {
        Self {
            commands: [const { Atomic::new(0) }; COMMAND_NAMES.len()],
            returns: [const { Atomic::new(0) }; RETURN_NAMES.len()],
        }
    }

    fn count_command(&self, code: u32) {
        if let Some(counter) = self.commands.get(ioc_nr(code)) {
            counter.fetch_add(1, Relaxed);
        }
    }

    fn count_return(&self, code: u32) {
        if let Some(counter) = self.returns.get(ioc_nr(code)) {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Prints the counters that are not zero, one `NAME: count` line each, after `prefix`.
    pub(crate) fn print(&self, m: &SeqFile, prefix: &str) {
        for (name, counter) in COMMAND_NAMES.iter().zip(&self.commands) {
            let count = counter.load(Relaxed);
            if count != 0 {
                seq_print!(m, "{}{}: {}\n", prefix, name, count);
            }
        }
        for (name, counter) in RETURN_NAMES.iter().zip(&self.returns) {
            let count = counter.load(Relaxed);
            if count != 0 {
                seq_print!(m, "{}{}: {}\n", prefix, name, count);
            }
        }
    }
}

/// The driver's counters.
static GLOBAL: Stats = Stats::new();

/// Objects created, by [`Object`].
static CREATED: [Atomic<u32>; OBJECT_NAMES.len()] = [const { Atomic::new(0) }; OBJECT_NAMES.len()];

/// Objects deleted, by [`Object`].
static DELETED: [Atomic<u32>; OBJECT_NAMES.len()] = [const { Atomic::new(0) }; OBJECT_NAMES.len()];

/// Counts the command `code`, read from a thread of the process whose counters are `process`.
pub(crate) fn command(process: &Stats, code: u32) {
    GLOBAL.count_command(code);
    process.count_command(code);
}

/// Counts the return `code`, written for a thread of the process whose counters are `process`.
pub(crate) fn returned(process: &Stats, code: u32) {
    GLOBAL.count_return(code);
    process.count_return(code);
}

/// Counts an object of kind `object` created.
pub(crate) fn created(object: Object) {
    CREATED[object as usize].fetch_add(1, Relaxed);
}

/// Counts an object of kind `object` deleted.
pub(crate) fn deleted(object: Object) {
    DELETED[object as usize].fetch_add(1, Relaxed);
}

/// A field that counts its object as created when made and as deleted when dropped, for
/// objects the census does not count (see [`crate::census`] for those it does).
pub(crate) struct Tracked(Object);

impl Tracked {
    pub(crate) fn new(object: Object) -> Self {
        created(object);
        Self(object)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        deleted(self.0);
    }
}

/// Prints the driver's counters: commands, returns and objects (`NAME: active A total T`).
pub(crate) fn print_global(m: &SeqFile) {
    GLOBAL.print(m, "");
    for (i, name) in OBJECT_NAMES.iter().enumerate() {
        let created = CREATED[i].load(Relaxed);
        let deleted = DELETED[i].load(Relaxed);
        if created != 0 || deleted != 0 {
            seq_print!(
                m,
                "{}: active {} total {}\n",
                name,
                created.wrapping_sub(deleted) as i32,
                created
            );
        }
    }
}
