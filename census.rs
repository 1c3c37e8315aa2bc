// SPDX-License-Identifier: GPL-2.0

//! A census of the driver's objects, checked when the module is unloaded.
//!
//! Every process, thread, node, transaction, death and freeze notification, context, binderfs
//! mount and binderfs device inode is counted while it lives. A module can only be unloaded once
//! none of its files is open and no binderfs is mounted, and then nothing of the driver should
//! be left: whatever is still counted then leaked, and the unload says so in the kernel log.
//! That catches a reference cycle every time, where kmemleak only sometimes does.

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
    Context,
    BinderfsMount,
    BinderfsInode,
    BufferPage,
}

const KINDS: [(Kind, &str); 10] = [
    (Kind::Process, "processes"),
    (Kind::Thread, "threads"),
    (Kind::Node, "nodes"),
    (Kind::Transaction, "transactions"),
    (Kind::Death, "death notifications"),
    (Kind::FreezeListener, "freeze notifications"),
    (Kind::Context, "contexts"),
    (Kind::BinderfsMount, "binderfs mounts"),
    (Kind::BinderfsInode, "binderfs device inodes"),
    (Kind::BufferPage, "receive buffer pages"),
];

/// How many objects of each kind are alive, indexed by `Kind as usize`.
static LIVE: [Atomic<usize>; KINDS.len()] = [const { Atomic::new(0) }; KINDS.len()];

/// A field that counts its object in the census from creation to drop.
pub(crate) struct Counted(Kind);

impl Counted {
    pub(crate) fn new(kind: Kind) -> Self {
        LIVE[kind as usize].fetch_add(1, Relaxed);
        if let Some(object) = kind.stats_object() {
            stats::created(object);
        }
        Self(kind)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE[self.0 as usize].fetch_sub(1, Relaxed);
        if let Some(object) = self.0.stats_object() {
            stats::deleted(object);
        }
    }
}

impl Kind {
    /// The kind's counters in the `stats` log file, for the kinds that C counts there.
    fn stats_object(self) -> Option<stats::Object> {
        match self {
            Kind::Process => Some(stats::Object::Process),
            Kind::Thread => Some(stats::Object::Thread),
            Kind::Node => Some(stats::Object::Node),
            Kind::Transaction => Some(stats::Object::Transaction),
            Kind::Death => Some(stats::Object::Death),
            Kind::FreezeListener => Some(stats::Object::Freeze),
            Kind::Context | Kind::BinderfsMount | Kind::BinderfsInode | Kind::BufferPage => None,
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
