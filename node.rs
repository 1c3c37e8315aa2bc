// SPDX-License-Identifier: GPL-2.0

//! Nodes: binder objects owned by a process (`binder_node`).
//!
//! A process gets a node for one of its objects the first time it sends the object in a
//! transaction (`BINDER_TYPE_BINDER` or `WEAK_BINDER`), or when it becomes the context
//! manager. The owner knows a node by its pointer and cookie; everyone else by a handle
//! ([`crate::refs`]).
//!
//! Reference counting follows the C driver. A node counts the handles other processes hold
//! to it (and how many of those are strong), and the references the driver holds itself, its
//! "local" ones: a transaction to the node until its buffer is freed, the node coming back to
//! its owner inside a buffer, an acquire the owner has not confirmed yet. When the first
//! reference of a kind appears, the owner reads `BR_INCREFS` or `BR_ACQUIRE` and answers
//! `BC_INCREFS_DONE` or `BC_ACQUIRE_DONE`; when the last one goes, it reads `BR_RELEASE` or
//! `BR_DECREFS`. The node is its own work item for these: it is queued when its counts cross
//! zero and works out what to tell the owner when a thread reads it. A node nobody refers to
//! and whose owner holds nothing for it any more leaves the owner's tree.
//!
//! A node dies with its owner and then notifies the holders that asked ([`crate::death`]).

use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        LockedBy, //
    },
};

use crate::{
    census::{
        Counted,
        Kind, //
    },
    death::Death,
    defs::{
        BR_ACQUIRE,
        BR_DECREFS,
        BR_INCREFS,
        BR_RELEASE,
        FLAT_BINDER_FLAG_ACCEPTS_FDS,
        FLAT_BINDER_FLAG_PRIORITY_MASK,
        FLAT_BINDER_FLAG_TXN_SECURITY_CTX, //
    },
    node_tree::TreeLinks,
    process::{
        Process,
        ProcessInner, //
    },
    thread::Thread,
    work::{
        Deliver,
        Described,
        Flow,
        Todo,
        Work,
        WorkItem, //
    },
    write_read::Returns,
};

/// A shared node: the node inside the work envelope that queues its refcount returns.
pub(crate) type NodeArc = Arc<Work<Node>>;

/// A binder object of one process.
#[pin_data]
pub(crate) struct Node {
    /// Counts the object in the module's census.
    _census: Counted,
    /// The process that owns the object.
    owner: Arc<Process>,
    /// The owner's identity for the object, handed back to it in transactions.
    ptr: u64,
    /// The owner's second word for the object (usually the address of its implementation).
    cookie: u64,
    /// The `FLAT_BINDER_FLAG_*` bits fixed when the node was created.
    flags: u32,
    /// The node is its context's manager: a new handle to it is handle 0.
    manager: Atomic<bool>,
    /// The node's links in its owner's tree of nodes ([`crate::node_tree`]).
    pub(crate) tree: TreeLinks,
    /// The reference counts, the one-way queue and the death notifications, guarded by the
    /// owner's `inner` lock (one `LockedBy` for all: each carries a pointer to its lock, and
    /// a lock of their own would cost more: with its tree links, a node is in the 192-byte
    /// kmalloc class, `Arc` and work envelope included, with no room for a mutex).
    locked: LockedBy<NodeLocked, ProcessInner>,
    /// The node's number in the log files ([`crate::stats::next_debug_id`]).
    debug_id: u32,
    /// The owner is gone (the node died); the log files show handles to it as dead.
    gone: Atomic<bool>,
}

/// A node's reference counts as the log files show them (the C driver's fields).
pub(crate) struct LogCounts {
    /// `has_strong_ref`, `has_weak_ref`: the owner was told of a strong, a weak reference.
    pub(crate) told: (bool, bool),
    /// `local_strong_refs`, `local_weak_refs`.
    pub(crate) local: (u32, u32),
    /// `internal_strong_refs`: the handles that hold a strong reference.
    pub(crate) strong_handles: u32,
    /// The handles to the node.
    pub(crate) handles: u32,
}

/// The state of a [`Node`] guarded by its owner's `inner` lock, [`Node::locked`].
///
/// The flags of the one-way queue and of the death state are kept here, next to the counts,
/// rather than in their own structs: there they would each take 8 bytes with padding, and a
/// node would no longer fit its kmalloc class (see [`Node::locked`]).
struct NodeLocked {
    /// The reference counts.
    counts: Counts,
    /// A one-way transaction to the node is queued or delivered and its buffer not yet freed.
    oneway_busy: bool,
    /// The owner is gone: death notifications are sent at once.
    dead: bool,
    /// The one-way transactions waiting their turn, oldest first (one at a time is delivered,
    /// and the next waits until userspace frees the buffer of the one before, as in C).
    oneway_waiting: Todo,
    /// The death notifications to send when the node dies.
    death_listeners: KVec<Arc<Work<Death>>>,
}

/// The reference counts of a [`Node`] and what its owner was told about them.
#[derive(Default)]
struct Counts {
    /// Handles of other processes to the node; each is a weak reference.
    handles: u32,
    /// Those of the handles that hold strong references.
    strong_handles: u32,
    /// Strong references the driver holds itself.
    local_strong: u32,
    /// Weak references the driver holds itself.
    local_weak: u32,
    /// The owner read `BR_ACQUIRE` and no `BR_RELEASE` since: it keeps the object alive.
    told_strong: bool,
    /// The owner read `BR_INCREFS` and no `BR_DECREFS` since.
    told_weak: bool,
    /// `BC_ACQUIRE_DONE` is awaited (it drops the local strong reference `BR_ACQUIRE` took).
    acquire_pending: bool,
    /// `BC_INCREFS_DONE` is awaited (it drops the local weak reference `BR_INCREFS` took).
    increfs_pending: bool,
}

impl Counts {
    /// The counter of references like `what`.
    fn slot(&mut self, what: Count) -> &mut u32 {
        match what {
            Count::Handle => &mut self.handles,
            Count::StrongHandle => &mut self.strong_handles,
            Count::Local { strong: true } => &mut self.local_strong,
            Count::Local { strong: false } => &mut self.local_weak,
        }
    }

    fn strong(&self) -> bool {
        self.strong_handles > 0 || self.local_strong > 0
    }

    fn weak(&self) -> bool {
        self.strong() || self.handles > 0 || self.local_weak > 0
    }
}

/// One reference to a node, as it is counted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// A handle of another process exists (a weak reference).
    Handle,
    /// A handle of another process holds a strong reference.
    StrongHandle,
    /// The driver holds a reference itself, strong or weak.
    Local { strong: bool },
}

impl Count {
    fn is_strong(self) -> bool {
        matches!(self, Count::StrongHandle | Count::Local { strong: true })
    }
}

impl Node {
    /// Creates a node of `owner` for the object `ptr`/`cookie`, keeping the
    /// `FLAT_BINDER_FLAG_*` bits of `flags` that a node remembers.
    pub(crate) fn new(owner: Arc<Process>, ptr: u64, cookie: u64, flags: u32) -> Result<NodeArc> {
        let flags = flags
            & (FLAT_BINDER_FLAG_PRIORITY_MASK
                | FLAT_BINDER_FLAG_ACCEPTS_FDS
                | FLAT_BINDER_FLAG_TXN_SECURITY_CTX);
        let locked = LockedBy::new(
            owner.inner_lock(),
            NodeLocked {
                counts: Counts::default(),
                oneway_busy: false,
                dead: false,
                oneway_waiting: Todo::new(),
                death_listeners: KVec::new(),
            },
        );
        Work::new_pinned(try_pin_init!(Self {
            _census: Counted::new(Kind::Node),
            locked,
            owner,
            ptr,
            cookie,
            flags,
            manager: Atomic::new(false),
            tree: TreeLinks::new(),
            debug_id: crate::stats::next_debug_id(),
            gone: Atomic::new(false),
        }))
    }

    /// Makes the node its context's manager. As in the C driver, the context then holds a
    /// strong and a weak reference that the owner is considered told about, so the owner
    /// never reads `BR_*` refcount returns for it. `inner` is the owner's state.
    pub(crate) fn make_manager(&self, inner: &mut ProcessInner) {
        let counts = &mut self.locked.access_mut(inner).counts;
        counts.local_strong = counts.local_strong.saturating_add(1);
        counts.local_weak = counts.local_weak.saturating_add(1);
        counts.told_strong = true;
        counts.told_weak = true;
        self.manager.store(true, Relaxed);
    }

    /// Whether the node is its context's manager.
    pub(crate) fn is_manager(&self) -> bool {
        self.manager.load(Relaxed)
    }

    /// The node is no longer its context's manager (its owner is going away).
    pub(crate) fn resign_manager(&self) {
        self.manager.store(false, Relaxed);
    }

    /// Counts one more reference. `inner` is the owner's state.
    ///
    /// A handle's reference counted on behalf of `notify`, the thread sending the object, may
    /// queue the node for that thread ([`Node::tell`]).
    pub(crate) fn count(
        this: &NodeArc,
        inner: &mut ProcessInner,
        what: Count,
        notify: Option<&Thread>,
    ) {
        let slot = this.locked.access_mut(inner).counts.slot(what);
        *slot = slot.saturating_add(1);
        if let Some(thread) = notify {
            Self::tell(this, inner, what.is_strong(), thread);
        }
    }

    /// A reference of the kind `strong` was taken on behalf of `thread`, the thread sending
    /// the node's object: if the owner has yet to hear of one of its kind, the node is queued
    /// for that thread, which reads `BR_INCREFS`/`BR_ACQUIRE` with its other returns, as in
    /// the C driver (`binder_inc_node_nilocked` with the sender's list). C does so for a
    /// handle's first reference of each kind, which it counts apart; so the first weak one on
    /// a handle that held only a strong one comes here too. `inner` is the owner's state.
    pub(crate) fn tell(this: &NodeArc, inner: &mut ProcessInner, strong: bool, thread: &Thread) {
        let counts = &this.locked.access(inner).counts;
        let told = if strong {
            counts.told_strong
        } else {
            counts.told_weak
        };
        if told || inner.is_dead() {
            return;
        }
        match Work::to_queue(this) {
            Some(item) => thread.push_deferred_work(inner, item),
            // Queued already: a first strong reference takes the node's work off whichever
            // list holds it (this thread's, another's, the process's) and queues it at the end
            // of this thread's, behind what the thread queued since, as the C driver's requeue
            // does. The sender, not whoever reads the process's work, reads `BR_ACQUIRE` then.
            None if strong => {
                if let Some(item) = inner.take_queued(this, thread) {
                    thread.push_deferred_work(inner, item);
                }
            }
            None => {}
        }
    }

    /// Counts one reference less. `inner` is the owner's state.
    ///
    /// When the last reference of a kind goes and the owner was told of one, the node is
    /// queued for the owner's threads to read `BR_RELEASE`/`BR_DECREFS`. A node left with no
    /// reference and nothing told leaves the owner's tree, and is returned for the caller to
    /// drop after releasing the lock.
    pub(crate) fn uncount(
        this: &NodeArc,
        inner: &mut ProcessInner,
        what: Count,
    ) -> Option<NodeArc> {
        let counts = &mut this.locked.access_mut(inner).counts;
        let slot = counts.slot(what);
        match slot.checked_sub(1) {
            Some(value) => *slot = value,
            None => {
                // A dead node's own references were forgotten when it died (see
                // `Node::die`): one of them going later has nothing to take.
                if !this.is_gone() {
                    pr_warn!("node {:#x}: reference count underflow\n", this.ptr);
                }
                return None;
            }
        }
        if what.is_strong() && counts.strong() {
            return None;
        }
        Self::settle(this, inner, what.is_strong())
    }

    /// Looks at the node as a reference going would, with no count changed: what the C
    /// driver does each time it drops a temporary reference to a node it looked up (a
    /// confirmation, an object sent or released, a freeze or thaw of the owner). The node is
    /// queued if it has no weak reference left and its owner was told of one, or leaves the
    /// tree if nothing refers to it; returned then for the caller to drop after the lock.
    pub(crate) fn recheck(this: &NodeArc, inner: &mut ProcessInner) -> Option<NodeArc> {
        Self::settle(this, inner, false)
    }

    /// What follows a reference going: `after_strong` when it was a strong one.
    ///
    /// As in the C driver (`binder_dec_node_nilocked`), a weak reference going looks at the
    /// weak side alone, handles and local weak references, not at the strong references that
    /// imply a weak one: with none left and the owner told of a reference, the node is queued
    /// even if strong references remain, and its work then finds nothing to tell. A
    /// non-blocking read takes such work and returns rather than failing with `EAGAIN`.
    fn settle(this: &NodeArc, inner: &mut ProcessInner, after_strong: bool) -> Option<NodeArc> {
        let counts = &mut this.locked.access_mut(inner).counts;
        if !after_strong && (counts.handles > 0 || counts.local_weak > 0) {
            return None;
        }
        if counts.told_strong || counts.told_weak {
            if !inner.is_dead() {
                if let Some(item) = Work::to_queue(this) {
                    inner.push_process_work(item);
                }
            }
            return None;
        }
        if counts.weak() {
            return None;
        }
        inner.forget_node(this)
    }

    /// `BC_INCREFS_DONE` (`strong` false) or `BC_ACQUIRE_DONE`: the owner took the
    /// reference it was told of. Returns `false` if no such confirmation was awaited; else
    /// the node, if it leaves the owner's tree, for the caller to drop after the lock.
    pub(crate) fn confirm(
        this: &NodeArc,
        inner: &mut ProcessInner,
        strong: bool,
    ) -> Result<Option<NodeArc>, ()> {
        let counts = &mut this.locked.access_mut(inner).counts;
        let pending = if strong {
            &mut counts.acquire_pending
        } else {
            &mut counts.increfs_pending
        };
        if !core::mem::replace(pending, false) {
            return Err(());
        }
        Ok(Self::uncount(this, inner, Count::Local { strong }))
    }

    /// Whether the owner was told of a strong and of a weak reference (and told of no release
    /// since). `inner` is the owner's state.
    pub(crate) fn told(&self, inner: &mut ProcessInner) -> (bool, bool) {
        let counts = &mut self.locked.access_mut(inner).counts;
        (counts.told_strong, counts.told_weak)
    }

    /// The counts `BINDER_GET_NODE_INFO_FOR_REF` reports, as the C driver computes them:
    /// strong handles plus the driver's strong references, and the driver's weak ones.
    /// `inner` is the owner's state.
    pub(crate) fn reported_counts(&self, inner: &mut ProcessInner) -> (u32, u32) {
        let counts = &mut self.locked.access_mut(inner).counts;
        (
            counts.strong_handles.saturating_add(counts.local_strong),
            counts.local_weak,
        )
    }

    /// Sends `death` when this node dies, or right away if it is dead already.
    ///
    /// A request withdrawn while it was being made is not added: its withdrawal marks it
    /// cleared before taking it off this list, and the check here is under the list's lock
    /// (the owner's), so a withdrawn request never lingers here holding its holder. The list
    /// grows outside the lock, which is a spinlock: a bigger one is allocated and the check
    /// made again.
    pub(crate) fn add_death(&self, death: Arc<Work<Death>>) -> Result {
        let mut room: Option<KVec<Arc<Work<Death>>>> = None;
        loop {
            let mut inner = self.owner.inner_lock().lock();
            let locked = self.locked.access_mut(&mut inner);
            if death.item.is_cleared() {
                return Ok(());
            }
            if locked.dead {
                drop(inner);
                Death::node_died(&death);
                return Ok(());
            }
            let listeners = &mut locked.death_listeners;
            let len = listeners.len();
            // The old list, once its listeners moved to `room`: freed after the lock.
            let mut old = None;
            if len == listeners.capacity() && room.as_ref().is_some_and(|r| r.capacity() > len) {
                if let Some(mut bigger) = room.take() {
                    for listener in listeners.drain_all() {
                        // Cannot fail: there is room for every listener and one more.
                        let _ = bigger.push_within_capacity(listener);
                    }
                    old = Some(core::mem::replace(listeners, bigger));
                }
            }
            if len < listeners.capacity() {
                // Cannot fail: there is room.
                let _ = listeners.push_within_capacity(death);
                drop(inner);
                drop(old);
                return Ok(());
            }
            drop(inner);
            room = Some(KVec::with_capacity(
                len.saturating_mul(2).max(2),
                GFP_KERNEL,
            )?);
        }
    }

    /// Forgets `death`: it was withdrawn, or its holder is gone.
    pub(crate) fn remove_death(&self, death: &Arc<Work<Death>>) {
        let mut inner = self.owner.inner_lock().lock();
        let listeners = &mut self.locked.access_mut(&mut inner).death_listeners;
        if let Some(index) = listeners.iter().position(|d| Arc::ptr_eq(d, death)) {
            let removed = listeners.remove(index).ok();
            drop(inner);
            drop(removed);
        }
    }

    /// The owner is being released: the node is gone from now on, and, as in the C driver
    /// (`binder_node_release`), forgets the references the driver held on it for the owner's
    /// buffers and transactions: only handles count for a dead node (in
    /// `BINDER_GET_NODE_INFO_FOR_REF` and the log files). Those references, when their
    /// holders go later, take nothing. `inner` is the owner's state.
    pub(crate) fn die(&self, inner: &mut ProcessInner) {
        self.gone.store(true, Relaxed);
        let counts = &mut self.locked.access_mut(inner).counts;
        counts.local_strong = 0;
        counts.local_weak = 0;
    }

    /// The owner is gone (the node died in [`Node::die`]): notifies every holder that asked.
    pub(crate) fn release(&self) {
        let mut inner = self.owner.inner_lock().lock();
        let locked = self.locked.access_mut(&mut inner);
        locked.dead = true;
        let listeners = core::mem::take(&mut locked.death_listeners);
        drop(inner);
        for death in &listeners {
            Death::node_died(death);
        }
    }

    /// Queues a one-way transaction to this node: on the owner's todo list if the node has
    /// none outstanding, else behind the outstanding one. `inner` is the owner's state.
    ///
    /// If the owner is `frozen` and the transaction has `TF_UPDATE_TXN`, the first one
    /// waiting behind the outstanding one that it makes outdated leaves the queue, as in the C
    /// driver (see [`Transaction::is_outdated_by`]); it is returned for the caller to drop once
    /// the lock is released.
    ///
    /// [`Transaction::is_outdated_by`]: crate::transaction::Transaction::is_outdated_by
    pub(crate) fn queue_oneway(
        &self,
        inner: &mut ProcessInner,
        item: WorkItem,
        frozen: bool,
    ) -> Option<WorkItem> {
        let queue = self.locked.access_mut(inner);
        if !queue.oneway_busy {
            queue.oneway_busy = true;
            inner.push_transaction(item);
            return None;
        }
        let outdated = match item.item.as_transaction() {
            Some(newer) if frozen && newer.updates_outdated() => {
                let mut cursor = queue.oneway_waiting.cursor_front();
                loop {
                    let Some(next) = cursor.peek_next() else {
                        break None;
                    };
                    let is_outdated = next
                        .arc()
                        .item
                        .as_transaction()
                        .is_some_and(|queued| queued.is_outdated_by(newer));
                    if is_outdated {
                        break Some(next.remove());
                    }
                    cursor.move_next();
                }
            }
            _ => None,
        };
        queue.oneway_waiting.push_back(item);
        outdated
    }

    /// The buffer of the node's outstanding one-way transaction was freed: the next may go.
    pub(crate) fn oneway_done(&self, inner: &mut ProcessInner) {
        let queue = self.locked.access_mut(inner);
        match queue.oneway_waiting.pop_front() {
            Some(next) => inner.push_process_work(next),
            None => queue.oneway_busy = false,
        }
    }

    /// The node's number in the log files.
    pub(crate) fn debug_id(&self) -> u32 {
        self.debug_id
    }

    /// Whether the node died with its owner.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Relaxed)
    }

    /// The counts the log files show; `inner` is the owner's state.
    pub(crate) fn log_counts(&self, inner: &ProcessInner) -> LogCounts {
        let counts = &self.locked.access(inner).counts;
        LogCounts {
            told: (counts.told_strong, counts.told_weak),
            local: (counts.local_strong, counts.local_weak),
            strong_handles: counts.strong_handles,
            handles: counts.handles,
        }
    }

    /// Whether a one-way transaction to the node is outstanding (C's
    /// `has_async_transaction`), and those waiting behind it; `inner` is the owner's state.
    pub(crate) fn oneway_for_log<'a>(&'a self, inner: &'a ProcessInner) -> (bool, &'a Todo) {
        let queue = self.locked.access(inner);
        (queue.oneway_busy, &queue.oneway_waiting)
    }

    /// Takes the waiting one-way transactions out, for the owner's release to cancel.
    pub(crate) fn take_oneway_queue(&self, inner: &mut ProcessInner) -> Todo {
        core::mem::take(&mut self.locked.access_mut(inner).oneway_waiting)
    }

    /// Whether transactions to the node carry the sender's security context
    /// (`FLAT_BINDER_FLAG_TXN_SECURITY_CTX`).
    pub(crate) fn wants_security_context(&self) -> bool {
        self.flags & FLAT_BINDER_FLAG_TXN_SECURITY_CTX != 0
    }

    /// The node's minimum priority (`FLAT_BINDER_FLAG_PRIORITY_MASK`), compared with nice
    /// values as the C driver does (see [`crate::priority`]).
    pub(crate) fn min_priority(&self) -> u8 {
        // The mask is the low byte: nothing is cut.
        (self.flags & FLAT_BINDER_FLAG_PRIORITY_MASK) as u8
    }

    /// Whether transactions to the node may carry file descriptors
    /// (`FLAT_BINDER_FLAG_ACCEPTS_FDS`).
    pub(crate) fn accepts_fds(&self) -> bool {
        self.flags & FLAT_BINDER_FLAG_ACCEPTS_FDS != 0
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

impl Deliver for Node {
    /// Tells the owner what changed since it was last told: the reference kinds that appeared
    /// (`BR_INCREFS`, `BR_ACQUIRE`, each taking a local reference until its `*_DONE`) and
    /// those that went (`BR_RELEASE`, `BR_DECREFS`).
    fn deliver(
        &self,
        this: &Arc<Work<dyn Deliver>>,
        _thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow> {
        let node = Work::downcast::<Node>(this);
        let mut inner = self.owner.inner_lock().lock();
        let counts = &mut self.locked.access_mut(&mut inner).counts;
        let (strong, weak) = (counts.strong(), counts.weak());
        let increfs = weak && !counts.told_weak;
        let acquire = strong && !counts.told_strong;
        let release = !strong && counts.told_strong;
        let decrefs = !weak && counts.told_weak;
        if increfs {
            counts.told_weak = true;
            counts.increfs_pending = true;
            counts.local_weak = counts.local_weak.saturating_add(1);
        }
        if acquire {
            counts.told_strong = true;
            counts.acquire_pending = true;
            counts.local_strong = counts.local_strong.saturating_add(1);
        }
        if release {
            counts.told_strong = false;
        }
        if decrefs {
            counts.told_weak = false;
        }
        let forgotten = match &node {
            Some(node) if !weak => inner.forget_node(node),
            _ => None,
        };
        drop(inner);
        drop(forgotten);
        let returns = [
            (increfs, BR_INCREFS),
            (acquire, BR_ACQUIRE),
            (release, BR_RELEASE),
            (decrefs, BR_DECREFS),
        ];
        for (_, code) in returns.iter().filter(|(due, _)| *due) {
            out.put_code(*code)?;
            out.put_u64(self.ptr)?;
            out.put_u64(self.cookie)?;
            // Counted one by one, as C counts each once its arguments are out.
            out.count_written();
        }
        Ok(Flow::Continue)
    }

    fn describe(&self, _inner: &ProcessInner) -> Described<'_> {
        Described::Node(self)
    }
}
