// SPDX-License-Identifier: GPL-2.0

//! A census of the driver's objects, checked when the module is unloaded.
//!
//! Every process, thread, node, transaction, death and freeze notification is counted while
//! it lives. A module can only be unloaded once none of its files is open, and with every file
//! released nothing of the driver should be left: whatever is still counted then leaked, and
//! the unload says so in the kernel log. That catches a reference cycle every time, where
//! kmemleak only sometimes does.

use kernel::{
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

use crate::stats;

/// The kinds of object the census counts.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Process,
    Thread,
    Node,
    Transaction,
    Death,
    FreezeListener,
}

const KINDS: [(Kind, &str); 6] = [
    (Kind::Process, "processes"),
    (Kind::Thread, "threads"),
    (Kind::Node, "nodes"),
    (Kind::Transaction, "transactions"),
    (Kind::Death, "death notifications"),
    (Kind::FreezeListener, "freeze notifications"),
];

/// How many objects of each kind are alive, indexed by `Kind as usize`.
static LIVE: [Atomic<usize>; KINDS.len()] = [const { Atomic::new(0) }; KINDS.len()];

/// A field that counts its object in the census from creation to drop.
pub(crate) struct Counted(Kind);

impl Counted {
    pub(crate) fn new(kind: Kind) -> Self {
        LIVE[kind as usize].fetch_add(1, Relaxed);
        stats::created(kind.stats_object());
        Self(kind)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE[self.0 as usize].fetch_sub(1, Relaxed);
        stats::deleted(self.0.stats_object());
    }
}

impl Kind {
    /// The kind's counters in the `stats` log file.
    fn stats_object(self) -> stats::Object {
        match self {
            Kind::Process => stats::Object::Process,
            Kind::Thread => stats::Object::Thread,
            Kind::Node => stats::Object::Node,
            Kind::Transaction => stats::Object::Transaction,
            Kind::Death => stats::Object::Death,
            Kind::FreezeListener => stats::Object::Freeze,
        }
    }
}

/// Reports every kind of object still alive; called when the module is unloaded.
pub(crate) fn report_leaks() {
    for (kind, name) in KINDS {
        let live = LIVE[kind as usize].load(Relaxed);
        if live != 0 {
            pr_err!("leaked {} {} (still alive at unload)\n", live, name);
        }
    }
}
