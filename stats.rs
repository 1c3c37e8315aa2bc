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

use crate::defs::{
    BR_TRANSACTION_SEC_CTX,
    COMMAND_CODES,
    RETURN_CODES, //
};

/// The last debug id handed out.
static LAST_DEBUG_ID: Atomic<u32> = Atomic::new(0);

/// A fresh debug id, for a node, a handle or a transaction.
pub(crate) fn next_debug_id() -> u32 {
    LAST_DEBUG_ID.fetch_add(1, Relaxed).wrapping_add(1)
}

/// One more than the largest `_IOC_NR` among `codes`: how many counters they need.
const fn counters_for(codes: &[(u32, &str)]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < codes.len() {
        let nr = ioc_nr(codes[i].0) + 1;
        if nr > len {
            len = nr;
        }
        i += 1;
    }
    len
}

const COMMANDS: usize = counters_for(COMMAND_CODES);
const RETURNS: usize = counters_for(RETURN_CODES);

/// The name the `stats` file gives the counter `nr` of `codes`, if the driver has a code with
/// that number. `BR_TRANSACTION_SEC_CTX` shares its number with `BR_TRANSACTION`, under whose
/// name C counts both.
fn name_of(codes: &[(u32, &'static str)], nr: usize) -> Option<&'static str> {
    codes
        .iter()
        .filter(|(code, _)| *code != BR_TRANSACTION_SEC_CTX)
        .find(|(code, _)| ioc_nr(*code) == nr)
        .map(|(_, name)| *name)
}

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

impl Object {
    /// Every kind, in the order the `stats` file lists them.
    const ALL: [Object; 8] = [
        Object::Process,
        Object::Thread,
        Object::Node,
        Object::Ref,
        Object::Death,
        Object::Transaction,
        Object::TransactionComplete,
        Object::Freeze,
    ];

    /// How the `stats` file names the kind (the C driver's words).
    fn log_name(self) -> &'static str {
        match self {
            Object::Process => "proc",
            Object::Thread => "thread",
            Object::Node => "node",
            Object::Ref => "ref",
            Object::Death => "death",
            Object::Transaction => "transaction",
            Object::TransactionComplete => "transaction_complete",
            Object::Freeze => "freeze",
        }
    }
}

/// Created and deleted counts of one [`Object`] kind.
struct Lifetimes {
    created: Atomic<u32>,
    deleted: Atomic<u32>,
}

/// How many commands and returns were carried out, by `_IOC_NR` of their codes.
pub(crate) struct Stats {
    commands: [Atomic<u32>; COMMANDS],
    returns: [Atomic<u32>; RETURNS],
}

/// The number inside an ioctl-style code (`_IOC_NR`).
const fn ioc_nr(code: u32) -> usize {
    (code & 0xff) as usize
}

impl Stats {
    /// Counters at zero.
    pub(crate) const fn new() -> Self {
        Self {
            commands: [const { Atomic::new(0) }; COMMANDS],
            returns: [const { Atomic::new(0) }; RETURNS],
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
        let groups = [
            (COMMAND_CODES, &self.commands[..]),
            (RETURN_CODES, &self.returns[..]),
        ];
        for (codes, counters) in groups {
            for (nr, counter) in counters.iter().enumerate() {
                let count = counter.load(Relaxed);
                if let (true, Some(name)) = (count != 0, name_of(codes, nr)) {
                    seq_print!(m, "{}{}: {}\n", prefix, name, count);
                }
            }
        }
    }
}

/// The driver's counters.
static GLOBAL: Stats = Stats::new();

/// Objects created and deleted, by [`Object`].
static LIFETIMES: [Lifetimes; Object::ALL.len()] = [const {
    Lifetimes {
        created: Atomic::new(0),
        deleted: Atomic::new(0),
    }
}; Object::ALL.len()];

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
    LIFETIMES[object as usize].created.fetch_add(1, Relaxed);
}

/// Counts an object of kind `object` deleted.
pub(crate) fn deleted(object: Object) {
    LIFETIMES[object as usize].deleted.fetch_add(1, Relaxed);
}

/// A field that counts its object, of the kind `Object::ALL[OBJECT]`, as created when made and
/// as deleted when dropped, for objects the census does not count (see [`crate::census`] for
/// those it does). The kind is a type parameter so that the field takes no room.
pub(crate) struct Tracked<const OBJECT: usize>(());

impl<const OBJECT: usize> Tracked<OBJECT> {
    pub(crate) fn new() -> Self {
        created(Object::ALL[OBJECT]);
        Self(())
    }
}

impl<const OBJECT: usize> Drop for Tracked<OBJECT> {
    fn drop(&mut self) {
        deleted(Object::ALL[OBJECT]);
    }
}

/// Prints the driver's counters: commands, returns and objects (`NAME: active A total T`).
pub(crate) fn print_global(m: &SeqFile) {
    GLOBAL.print(m, "");
    for object in Object::ALL {
        let counts = &LIFETIMES[object as usize];
        let created = counts.created.load(Relaxed);
        let deleted = counts.deleted.load(Relaxed);
        if created != 0 || deleted != 0 {
            seq_print!(
                m,
                "{}: active {} total {}\n",
                object.log_name(),
                created.wrapping_sub(deleted) as i32,
                created
            );
        }
    }
}
