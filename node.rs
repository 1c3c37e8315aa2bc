// SPDX-License-Identifier: GPL-2.0

//! Nodes: binder objects owned by a process.
//!
//! A node is what a process publishes; other processes refer to it by handle. So far the only
//! node is the one a context manager gets from `BINDER_SET_CONTEXT_MGR[_EXT]`. A node dies
//! with its owner, and then notifies the holders that asked ([`crate::death`]).

use kernel::{
    prelude::*,
    sync::{
        new_mutex,
        Arc,
        LockedBy,
        Mutex, //
    },
};

use crate::{
    death::Death,
    defs::{
        FlatBinderObject,
        FLAT_BINDER_FLAG_ACCEPTS_FDS,
        FLAT_BINDER_FLAG_PRIORITY_MASK,
        FLAT_BINDER_FLAG_TXN_SECURITY_CTX, //
    },
    process::{
        Process,
        ProcessInner, //
    },
    work::{
        Todo,
        Work,
        WorkItem, //
    },
};

/// A binder object of one process.
#[pin_data]
pub(crate) struct Node {
    /// The process that owns the object.
    owner: Arc<Process>,
    /// The owner's identity for the object, handed back to it in transactions.
    ptr: u64,
    /// The owner's second word for the object (usually the address of its implementation).
    cookie: u64,
    /// The `FLAT_BINDER_FLAG_*` bits fixed when the node was created.
    flags: u32,
    /// Whether the node died, and who wants to hear about it.
    #[pin]
    deaths: Mutex<NodeDeaths>,
    /// One-way transactions to the node, guarded by the owner's `inner` lock.
    oneway: LockedBy<OnewayQueue, ProcessInner>,
}

/// The one-way transactions of a [`Node`]: one at a time is delivered, and the next waits
/// until userspace frees the buffer of the one before, as in the C driver.
struct OnewayQueue {
    /// A one-way transaction is queued or delivered and its buffer not yet freed.
    busy: bool,
    /// The transactions waiting their turn, oldest first.
    waiting: Todo,
}

/// The death state of a [`Node`], guarded by [`Node::deaths`].
struct NodeDeaths {
    /// The owner is gone.
    dead: bool,
    /// The death notifications to send when the node dies.
    listeners: KVec<Arc<Work<Death>>>,
}

impl Node {
    /// Creates the context manager's node for `owner`.
    ///
    /// `object` is the argument of `BINDER_SET_CONTEXT_MGR_EXT`; the plain ioctl has none and
    /// gets pointer, cookie and flags of zero. The node holds a strong and a weak reference on
    /// behalf of the context for as long as it is the manager.
    pub(crate) fn new_manager(
        owner: Arc<Process>,
        object: Option<&FlatBinderObject>,
    ) -> Result<Arc<Self>> {
        let (ptr, cookie, flags) = match object {
            Some(obj) => (obj.binder_ptr(), obj.0.cookie, obj.0.flags),
            None => (0, 0, 0),
        };
        let flags = flags
            & (FLAT_BINDER_FLAG_PRIORITY_MASK
                | FLAT_BINDER_FLAG_ACCEPTS_FDS
                | FLAT_BINDER_FLAG_TXN_SECURITY_CTX);
        let oneway = LockedBy::new(
            owner.inner_lock(),
            OnewayQueue {
                busy: false,
                waiting: Todo::new(),
            },
        );
        Arc::pin_init(
            try_pin_init!(Self {
                oneway,
                owner,
                ptr,
                cookie,
                flags,
                deaths <- new_mutex!(
                    NodeDeaths {
                        dead: false,
                        listeners: KVec::new(),
                    },
                    "Node::deaths"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// Sends `death` when this node dies, or right away if it is dead already.
    pub(crate) fn add_death(&self, death: Arc<Work<Death>>) -> Result {
        let mut deaths = self.deaths.lock();
        if deaths.dead {
            drop(deaths);
            Death::node_died(&death);
            return Ok(());
        }
        deaths.listeners.push(death, GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets `death`: it was withdrawn, or its holder is gone.
    pub(crate) fn remove_death(&self, death: &Arc<Work<Death>>) {
        let mut deaths = self.deaths.lock();
        if let Some(index) = deaths.listeners.iter().position(|d| Arc::ptr_eq(d, death)) {
            let removed = deaths.listeners.remove(index).ok();
            drop(deaths);
            drop(removed);
        }
    }

    /// The owner is gone: the node dies and notifies every holder that asked.
    pub(crate) fn release(&self) {
        let mut deaths = self.deaths.lock();
        deaths.dead = true;
        let listeners = core::mem::take(&mut deaths.listeners);
        drop(deaths);
        for death in &listeners {
            Death::node_died(death);
        }
    }

    /// Queues a one-way transaction to this node: on the owner's todo list if the node has
    /// none outstanding, else behind the outstanding one. `inner` is the owner's state.
    pub(crate) fn queue_oneway(&self, inner: &mut ProcessInner, item: WorkItem) {
        let queue = self.oneway.access_mut(inner);
        if queue.busy {
            queue.waiting.push_back(item);
        } else {
            queue.busy = true;
            inner.push_process_work(item);
        }
    }

    /// The buffer of the node's outstanding one-way transaction was freed: the next may go.
    pub(crate) fn oneway_done(&self, inner: &mut ProcessInner) {
        let queue = self.oneway.access_mut(inner);
        match queue.waiting.pop_front() {
            Some(next) => inner.push_process_work(next),
            None => queue.busy = false,
        }
    }

    /// Takes the waiting one-way transactions out, for the owner's release to cancel.
    pub(crate) fn take_oneway_queue(&self, inner: &mut ProcessInner) -> Todo {
        core::mem::take(&mut self.oneway.access_mut(inner).waiting)
    }

    /// The owning process.
    pub(crate) fn owner(&self) -> &Arc<Process> {
        &self.owner
    }

    /// The owner's pointer for the node.
    pub(crate) fn ptr(&self) -> u64 {
        self.ptr
    }

    /// The owner's cookie for the node.
    pub(crate) fn cookie(&self) -> u64 {
        self.cookie
    }

    /// Whether `process` owns this node.
    pub(crate) fn is_owned_by(&self, process: &Process) -> bool {
        core::ptr::eq(&*self.owner, process)
    }
}
