// SPDX-License-Identifier: GPL-2.0

//! Processes: what one `open()` of a binder device creates (`binder_proc` in the C driver).
//!
//! A process is owned by its open file. It remembers who opened the device (thread group,
//! address space, credentials), keeps its threads, handles and todo list, and owns its receive
//! buffer.
//!
//! Lock order, outermost first: `Context::manager`, `Process::inner`,
//! `Death::state`. Two processes' `inner` locks are never held together: what concerns a
//! node and a handle to it in another process is done in two steps (see [`crate::refs`]).
//! The receive buffer's lock nests inside the owner's `mmap_lock` and is never held while any
//! of the others, or a user copy, is taken (see [`ReceiveBuffer::reserve`]).

use kernel::{
    cred::Credential,
    fs::File,
    list::{
        List,
        ListArc, //
    },
    mm::virt::VmaNew,
    prelude::*,
    rbtree::{
        self,
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_condvar,
        new_mutex,
        new_spinlock,
        Arc,
        ArcBorrow,
        CondVar,
        Mutex,
        SpinLock, //
    },
    task::{
        Pid,
        Task, //
    },
    workqueue,
};

use crate::{
    allocation::BufferLabel,
    allocation::{
        Freed,
        RangeView,
        ReceiveBuffer,
        ReservedBuffer, //
    },
    census::{
        Counted,
        Kind, //
    },
    context::Context,
    death::{
        Cleared,
        Death, //
    },
    debugfs,
    defs::{
        FlatBinderObject,
        NodeDebugInfo,
        NodeInfoForRef, //
    },
    freeze::{
        FreezeListener,
        Watchers, //
    },
    node::{
        Count,
        Node,
        NodeArc, //
    },
    node_tree::NodeTree,
    objects::{
        Held,
        HeldRefs, //
    },
    refs::{
        Existing,
        HandleSlot,
        InvalidRef,
        Loss,
        Refs,
        MANAGER_HANDLE, //
    },
    spares::{
        OneSpare,
        Spares, //
    },
    stats::Stats,
    thread::Thread,
    transaction::{
        CarriedFiles,
        Transaction, //
    },
    work::{
        self,
        Deliver,
        Todo,
        Work,
        WorkItem, //
    },
};

pub(crate) use crate::refs::RefChange;

/// The key of a withdrawn death notification in [`ProcessInner::withdrawn_deaths`].
fn death_key(death: &Arc<Work<Death>>) -> usize {
    core::ptr::from_ref::<Work<Death>>(death) as usize
}

/// Why [`Process::queue_transaction`] refused a transaction.
pub(crate) enum Refused {
    /// The process, or the recipient thread, is gone.
    Dead,
    /// A call to a frozen process.
    Frozen,
}

/// Why a `BC_INCREFS_DONE` or `BC_ACQUIRE_DONE` confirmed nothing on the node it named.
enum Unconfirmed {
    /// The node has another cookie.
    OtherCookie,
    /// No such confirmation was awaited.
    NotAwaited,
}

/// Where queued work goes.
pub(crate) enum Recipient<'a> {
    /// Any thread of the process that takes its work (a transaction goes straight to a
    /// waiting one, if there is one).
    Process,
    /// One thread of the process.
    Thread(&'a Thread),
    /// The process, in turn with the other one-way transactions to this node of it.
    Oneway(&'a Node),
}

/// A process's connection to one binder device.
#[pin_data]
pub(crate) struct Process {
    /// Counts the object in the module's census.
    _census: Counted,
    /// The device's context.
    pub(crate) context: Arc<Context>,
    /// The leader of the thread group that opened the device.
    task: ARef<Task>,
    /// `task`'s pid, read once at open: a task's pid never changes.
    pid: Pid,
    /// The credentials the device was opened with (`file->f_cred`).
    cred: ARef<Credential>,
    /// `BINDER_ENABLE_ONEWAY_SPAM_DETECTION` is on.
    oneway_spam_detection: Atomic<bool>,
    /// The opener's nice value: a thread waiting for the process's work goes back to it.
    default_nice: i8,
    /// Threads, handles and settings; see [`ProcessInner`]. Threads wait for work under it.
    #[pin]
    inner: SpinLock<ProcessInner>,
    /// Where this process receives transactions; shared with the shrinker's list while it
    /// has unused pages.
    pub(crate) buffer: Arc<ReceiveBuffer>,
    /// A spare box for the files of a transaction to this process, kept from the last one
    /// read: a process that receives fds allocates no box per transaction.
    pub(crate) files_box: OneSpare<CarriedFiles>,
    /// Queues the release of the process once its file is closed; see [`crate::release`].
    #[pin]
    pub(crate) release_work: workqueue::Work<Process>,
    /// Signalled, under `inner`, when the last outstanding transaction of a frozen process
    /// finishes; a freeze waiting for that waits on it.
    #[pin]
    freeze_wait: CondVar,
    /// The freeze notifications other processes asked for on this process's nodes; see
    /// [`crate::freeze`]. Taken before any process's `inner` lock.
    #[pin]
    freeze_watchers: Mutex<Watchers>,
    /// The commands and returns of the process's threads, for the `stats` log file.
    pub(crate) stats: Stats,
    /// The process's debugfs file `binder/proc/<pid>`, if it made one.
    pub(crate) debugfs_entry: debugfs::ProcEntry,
}

/// The mutable state of a [`Process`], guarded by [`Process::inner`].
pub(crate) struct ProcessInner {
    /// The threads that have called into the driver, by pid.
    threads: RBTree<Pid, Arc<Thread>>,
    /// Work that any thread with no work of its own and no call to answer may take.
    todo: Todo,
    /// Set when the file is released: nothing is queued any more.
    is_dead: bool,
    /// The handles of the process.
    refs: Refs,
    /// The process's nodes, by the pointer it knows each by.
    nodes: NodeTree,
    /// Death notifications withdrawn after their node died, until `BC_DEAD_BINDER_DONE`
    /// (the C driver's `delivered_death` list, for the withdrawn ones), by address.
    withdrawn_deaths: RBTree<usize, Arc<Work<Death>>>,
    /// The most threads the driver may ask userspace to start (`BINDER_SET_MAX_THREADS`).
    max_threads: u32,
    /// Threads asked for with `BR_SPAWN_LOOPER` that have not registered yet.
    requested_threads: u32,
    /// Threads that registered after being asked for.
    requested_threads_started: u32,
    /// The threads waiting in a read for process work and not picked for any yet, the one
    /// that went to sleep last first (the C driver's `waiting_threads`). A thread is on it
    /// exactly while its `looper::AVAILABLE` bit is set; it puts itself on it before it
    /// sleeps and takes itself off when it wakes, unless picking it took it off already.
    waiting_threads: List<Thread>,
    /// `BINDER_FREEZE` froze the process: calls to it fail with `BR_FROZEN_REPLY`.
    frozen: bool,
    /// A call came while the process was frozen, since it was last frozen or thawed.
    sync_recv: bool,
    /// A one-way transaction came while the process was frozen, likewise.
    async_recv: bool,
    /// Transactions to the process not finished with, as the C driver counts them: a call
    /// until it is answered, a one-way transaction or reply until it is read.
    outstanding: u32,
    /// The freeze notifications the process asked for and that are not finished, by address.
    freeze_listeners: RBTree<usize, Arc<Work<FreezeListener>>>,
    /// How many freeze reports were delivered (orders the ones awaiting their done).
    freeze_deliveries: u64,
}

/// What the log files read of a process's state ([`crate::dump`]).
impl ProcessInner {
    pub(crate) fn threads(&self) -> &RBTree<Pid, Arc<Thread>> {
        &self.threads
    }

    pub(crate) fn nodes(&self) -> &NodeTree {
        &self.nodes
    }

    pub(crate) fn refs(&self) -> &Refs {
        &self.refs
    }

    pub(crate) fn todo(&self) -> &Todo {
        &self.todo
    }

    /// The thread counts of `stats`: requested, requested and started, and the maximum.
    pub(crate) fn thread_requests(&self) -> (u32, u32, u32) {
        (
            self.requested_threads,
            self.requested_threads_started,
            self.max_threads,
        )
    }

    /// Whether a death notification was delivered and awaits `BC_DEAD_BINDER_DONE` after
    /// being withdrawn (the C driver's `delivered_death` list is not empty).
    pub(crate) fn has_delivered_death(&self) -> bool {
        !self.withdrawn_deaths.is_empty()
    }

    /// Whether a freeze notification was delivered and awaits its done.
    pub(crate) fn has_delivered_freeze(&self) -> bool {
        self.freeze_listeners
            .values()
            .any(|listener| listener.item.state_ref(self).awaiting_done().is_some())
    }
}

impl ProcessInner {
    /// Whether the process's file was released.
    pub(crate) fn is_dead(&self) -> bool {
        self.is_dead
    }

    /// Takes `node` out of the process's tree of nodes, if it is there; returns it for the
    /// caller to drop once the lock is released.
    pub(crate) fn forget_node(&mut self, node: &NodeArc) -> Option<NodeArc> {
        self.nodes.remove(node)
    }

    /// Whether the process's todo list has work.
    pub(crate) fn has_process_work(&self) -> bool {
        !self.todo.is_empty()
    }

    /// Takes the next item of the process's todo list.
    pub(crate) fn pop_process_work(&mut self) -> Option<WorkItem> {
        self.todo.pop_front()
    }

    /// Takes `item` off the process's todo list, if it is there.
    pub(crate) fn take_process_work<T: ?Sized>(&mut self, item: &Work<T>) -> Option<WorkItem> {
        work::take_from(&mut self.todo, item)
    }

    /// Takes `item` off whichever list of the process holds it: a thread's todo list, looking
    /// at `likely`'s first, or the process's own. The C driver unlinks an item from its list
    /// wherever that is (`binder_dequeue_work_ilocked`); here the lists are searched, which
    /// only a node's first strong reference does when its work is queued already.
    pub(crate) fn take_queued<T: ?Sized>(
        &mut self,
        item: &Work<T>,
        likely: &Thread,
    ) -> Option<WorkItem> {
        if let Some(work) = likely.take_work(self, item) {
            return Some(work);
        }
        if let Some(work) = self.take_process_work(item) {
            return Some(work);
        }
        self.with_threads(|threads, inner| {
            threads
                .values()
                .find_map(|thread| thread.take_work(inner, item))
        })
    }

    /// Queues `work` for any thread that takes the process's work, and wakes one.
    pub(crate) fn push_process_work(&mut self, work: WorkItem) {
        self.todo.push_back(work);
        self.wake_for_process_work();
    }

    /// Queues a transaction for the process, as the C driver does: straight on the todo list
    /// of a thread waiting for process work (the one that began to wait last), which is then
    /// no candidate for more; on the process's list, waking the pollers, if none waits.
    pub(crate) fn push_transaction(&mut self, work: WorkItem) {
        match self.pick_waiting() {
            Some(thread) => thread.push_work(self, work),
            None => self.push_process_work(work),
        }
    }

    /// Wakes a thread for the process's work: one waiting in a read (the one that began to
    /// wait last), which is then no candidate for the next item, as the C driver takes it off
    /// its waiting list; or, if none waits, every thread that polls and could take the work.
    pub(crate) fn wake_for_process_work(&mut self) {
        match self.pick_waiting() {
            Some(thread) => thread.notify(),
            None => self.with_threads(|threads, inner| {
                threads
                    .values()
                    .filter(|thread| thread.polls_for_process_work(inner))
                    .for_each(|thread| thread.notify())
            }),
        }
    }

    /// Takes the thread that went to sleep last, of those waiting for process work, off the
    /// list of waiting threads: it is no candidate for more until it waits again. The caller
    /// wakes it (or queues work for it, which does).
    ///
    /// A thread given work of its own or a call to answer while it waits is passed over (and
    /// left on the list until it wakes): it would not take the process's work.
    fn pick_waiting(&mut self) -> Option<Arc<Thread>> {
        // Moved out while the threads' state is read through `self`; nothing else touches
        // the list meanwhile.
        let mut waiting = core::mem::take(&mut self.waiting_threads);
        let mut cursor = waiting.cursor_front();
        let mut picked = None;
        while let Some(next) = cursor.peek_next() {
            if next.can_be_picked(self) {
                picked = Some(next.remove());
                break;
            }
            cursor.move_next();
        }
        self.waiting_threads = waiting;
        let thread = ListArc::into_arc(picked?);
        thread.set_available(self, false);
        Some(thread)
    }

    /// Whether a thread waits for process work and could be picked for it.
    fn someone_waits(&self) -> bool {
        self.waiting_threads
            .iter()
            .any(|thread| thread.can_be_picked(self))
    }

    /// Puts `thread`, about to sleep waiting for process work, first on the list of waiting
    /// threads.
    pub(crate) fn add_waiting_thread(&mut self, thread: &Arc<Thread>) {
        // It cannot be on the list already: it takes itself off whenever it wakes.
        if let Ok(item) = ListArc::try_from_arc(thread.clone()) {
            self.waiting_threads.push_front(item);
            thread.set_available(self, true);
        }
    }

    /// Takes `thread`, which woke, off the list of waiting threads if picking it did not.
    pub(crate) fn remove_waiting_thread(&mut self, thread: &Thread) {
        // SAFETY: A thread is put only on its own process's list of waiting threads, and the
        // list is never moved out while this runs (`pick_waiting` puts it back before it
        // returns), so `thread` is on this list or on none.
        let removed = unsafe { self.waiting_threads.remove(thread) };
        thread.set_available(self, false);
        // Not the last reference: the caller holds one.
        drop(removed);
    }

    /// Runs `f` over the threads, with the rest of the state at hand.
    ///
    /// The threads' own state is guarded by this lock and reached through `self`, so the tree
    /// is moved out while `f` runs; moving an rbtree only moves its root.
    fn with_threads<R>(&mut self, f: impl FnOnce(&RBTree<Pid, Arc<Thread>>, &mut Self) -> R) -> R {
        let threads = core::mem::take(&mut self.threads);
        let result = f(&threads, self);
        self.threads = threads;
        result
    }

    /// Whether the process is frozen.
    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Freezes or thaws the process; either forgets what came while it was frozen.
    pub(crate) fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
        self.sync_recv = false;
        self.async_recv = false;
    }

    /// Undoes a freeze that failed: the process is thawed, and keeps what it received while
    /// the freeze waited, as in the C driver.
    pub(crate) fn cancel_freeze(&mut self) {
        self.frozen = false;
    }

    /// Whether a call came while frozen.
    pub(crate) fn sync_received(&self) -> bool {
        self.sync_recv
    }

    /// Whether a one-way transaction came while frozen.
    pub(crate) fn async_received(&self) -> bool {
        self.async_recv
    }

    /// How many transactions to the process are outstanding.
    pub(crate) fn outstanding_transactions(&self) -> u32 {
        self.outstanding
    }

    /// Counts a transaction queued for the process, until it is finished with.
    pub(crate) fn count_outstanding(&mut self) {
        self.outstanding = self.outstanding.saturating_add(1);
    }

    /// A transaction counted by [`ProcessInner::count_outstanding`] is finished with. Returns
    /// whether it was the last of a frozen process, so that a freeze waiting for that wakes.
    pub(crate) fn uncount_outstanding(&mut self) -> bool {
        match self.outstanding.checked_sub(1) {
            Some(left) => self.outstanding = left,
            None => pr_warn!("outstanding transaction count underflow\n"),
        }
        self.outstanding == 0 && self.frozen
    }

    /// Whether transactions are pending, as a freeze checks: outstanding ones, or a thread
    /// in a call (sent or received).
    pub(crate) fn has_pending_transactions(&self) -> bool {
        self.outstanding > 0
            || self
                .threads
                .values()
                .any(|thread| thread.has_transaction_stack(self))
    }

    /// The handles of the process.
    pub(crate) fn refs_mut(&mut self) -> &mut Refs {
        &mut self.refs
    }

    /// Keeps a freeze notification request until it is finished.
    pub(crate) fn add_freeze_listener(
        &mut self,
        node: rbtree::RBTreeNode<usize, Arc<Work<FreezeListener>>>,
    ) {
        self.freeze_listeners.insert(node);
    }

    /// Forgets the freeze notification request with `key`; returns it for the caller to drop
    /// once the lock is released.
    pub(crate) fn remove_freeze_listener(
        &mut self,
        key: usize,
    ) -> Option<Arc<Work<FreezeListener>>> {
        self.freeze_listeners.remove(&key)
    }

    /// The request whose report with `cookie` awaits its done, the earliest delivered if
    /// several do.
    pub(crate) fn freeze_listener_awaiting_done(
        &self,
        cookie: u64,
    ) -> Option<Arc<Work<FreezeListener>>> {
        self.freeze_listeners
            .values()
            .filter(|listener| listener.item.cookie() == cookie)
            .filter_map(|listener| {
                let delivered = listener.item.state_ref(self).awaiting_done()?;
                Some((delivered, listener))
            })
            .min_by_key(|(delivered, _)| *delivered)
            .map(|(_, listener)| listener.clone())
    }

    /// Numbers a delivered freeze report.
    pub(crate) fn next_freeze_delivery(&mut self) -> u64 {
        self.freeze_deliveries = self.freeze_deliveries.wrapping_add(1);
        self.freeze_deliveries
    }

    /// Decides, at the end of a read by `reader`, whether to ask userspace for one more looper
    /// thread (`BR_SPAWN_LOOPER`), as the C driver does: when `reader` is a looper, no thread
    /// waits for the process's work (none is a candidate to pick), no request is outstanding,
    /// and fewer threads than `max_threads` registered so far. Counts the request if so.
    pub(crate) fn request_thread(&mut self, reader: &Thread) -> bool {
        if self.requested_threads != 0
            || self.requested_threads_started >= self.max_threads
            || !reader.is_looper()
        {
            return false;
        }
        if self.someone_waits() {
            return false;
        }
        self.requested_threads += 1;
        true
    }

    /// Accounts for a thread registering as a looper (`BC_REGISTER_LOOPER`).
    ///
    /// Returns whether the driver had asked for one.
    pub(crate) fn take_thread_request(&mut self) -> bool {
        if self.requested_threads == 0 {
            return false;
        }
        self.requested_threads -= 1;
        self.requested_threads_started = self.requested_threads_started.saturating_add(1);
        true
    }
}

impl Process {
    /// Creates the process for an `open()` of the device of `context` by the current task;
    /// also says whether it is the first open process of its pid (which gets the log files,
    /// as in C).
    pub(crate) fn open(context: Arc<Context>, file: &File) -> Result<(Arc<Self>, bool)> {
        let current = kernel::current!();
        let task = ARef::from(current.group_leader());
        let pid = task.pid();
        let mm = current.mm().map(|mm| ARef::from(&**mm));
        let cred = ARef::from(file.cred());
        // The receive buffer can only be mapped into the opener's address space.
        let buffer = ReceiveBuffer::new(mm)?;
        let process = Arc::pin_init(
            try_pin_init!(Self {
                _census: Counted::new(Kind::Process),
                context,
                task,
                pid,
                cred,
                oneway_spam_detection: Atomic::new(false),
                default_nice: crate::priority::current_nice(),
                inner <- new_spinlock!(
                    ProcessInner {
                        threads: RBTree::new(),
                        todo: Todo::new(),
                        is_dead: false,
                        refs: Refs::new(),
                        nodes: NodeTree::new(),
                        withdrawn_deaths: RBTree::new(),
                        max_threads: 0,
                        requested_threads: 0,
                        requested_threads_started: 0,
                        waiting_threads: List::new(),
                        frozen: false,
                        sync_recv: false,
                        async_recv: false,
                        outstanding: 0,
                        freeze_listeners: RBTree::new(),
                        freeze_deliveries: 0,
                    },
                    "Process::inner"
                ),
                buffer,
                files_box: OneSpare::new(),
                release_work <- workqueue::new_work!("Process::release_work"),
                freeze_wait <- new_condvar!("Process::freeze_wait"),
                freeze_watchers <- new_mutex!(Watchers::new(), "Process::freeze_watchers"),
                stats: Stats::new(),
                debugfs_entry: debugfs::ProcEntry::new(),
            }),
            GFP_KERNEL,
        )?;
        let pid_was_open = crate::registry::add(&process)?;
        if !pid_was_open {
            process.debugfs_entry.create(process.pid());
        }
        crate::debug::binder_debug!(
            OPEN_CLOSE,
            "binder_open: {}:{}\n",
            process.pid(),
            current.pid()
        );
        Ok((process, !pid_was_open))
    }

    /// Tears the process down once its file is released (from the module's release
    /// workqueue: [`crate::release`]).
    ///
    /// Its nodes die (telling the holders that asked), its handles go (telling the owners of
    /// their nodes), and everything queued for it is cancelled: callers waiting on it read
    /// `BR_DEAD_REPLY`.
    pub(crate) fn release(self: Arc<Self>) {
        crate::debug::binder_debug!(OPEN_CLOSE, "binder_release: {}\n", self.pid());
        let registered = crate::registry::remove(&self);
        let watchers = self.close_freeze_watchers();
        let manager = self.context.take_manager_of(&self);
        // Everything taken out here is dropped after the lock is released. Once `is_dead` is
        // set, nothing new is queued for the process or its threads.
        let mut inner = self.inner.lock();
        inner.is_dead = true;
        inner.frozen = false;
        let threads = core::mem::take(&mut inner.threads);
        let mut undelivered = core::mem::take(&mut inner.todo);
        let refs = inner.refs.take_all();
        let nodes = inner.nodes.take();
        let withdrawn_deaths = core::mem::take(&mut inner.withdrawn_deaths);
        let freeze_listeners = core::mem::take(&mut inner.freeze_listeners);
        for listener in freeze_listeners.values() {
            listener.item.state(&mut inner).set_gone();
        }
        for node in nodes.iter() {
            undelivered.push_all_back(&mut node.take_oneway_queue(&mut inner));
        }
        drop(inner);
        // The queued transactions take their references on the nodes as they go, before the
        // nodes die and forget the rest.
        work::cancel_all(undelivered, work::Dropped::Released);
        let mut inner = self.inner.lock();
        for node in nodes.iter() {
            node.die(&mut inner);
        }
        drop(inner);
        drop(watchers);
        for node in nodes.iter() {
            node.release();
        }
        for thread in threads.values() {
            thread.leave(&self);
        }
        // Ranges refer back to this process through the nodes they hold.
        self.buffer.clear();
        for (_, node_ref) in refs.iter() {
            self.uncount_handle(&node_ref.node, node_ref.is_strong(), true);
            if let Some(death) = &node_ref.death {
                node_ref.node.remove_death(death);
            }
            if let Some(listener) = &node_ref.freeze {
                node_ref.node.owner().forget_freeze_watcher(listener);
            }
        }
        drop(refs);
        drop(withdrawn_deaths);
        drop(freeze_listeners);
        drop(manager);
        drop(registered);
    }

    /// The lock that guards the process's threads, handles and settings.
    pub(crate) fn inner_lock(&self) -> &SpinLock<ProcessInner> {
        &self.inner
    }

    /// The credentials the device was opened with.
    pub(crate) fn cred(&self) -> &Credential {
        &self.cred
    }

    /// The pid of the thread group that opened the device, in the initial pid namespace (C's
    /// `proc->pid`, which logs, trace events and netlink reports show).
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the process was opened by the thread group `pid` (its pid in the initial pid
    /// namespace, which the C driver compares with too).
    pub(crate) fn has_pid(&self, pid: u32) -> bool {
        Pid::try_from(pid).is_ok_and(|pid| self.pid == pid)
    }

    /// Where a freeze waits for the process's outstanding transactions.
    pub(crate) fn freeze_wait(&self) -> &CondVar {
        &self.freeze_wait
    }

    /// The freeze notifications on the process's nodes.
    pub(crate) fn freeze_watchers(&self) -> &Mutex<Watchers> {
        &self.freeze_watchers
    }

    /// A transaction to the process was finished with (see
    /// [`ProcessInner::count_outstanding`]); a freeze waiting for the last wakes.
    pub(crate) fn transaction_finished(&self) {
        let mut inner = self.inner.lock();
        if inner.uncount_outstanding() {
            self.freeze_wait.notify_all();
        }
    }

    /// Whether `other` was opened by the same thread group (the same group leader, as the C
    /// driver compares the pids it recorded at open): it may be another open file of this
    /// process.
    pub(crate) fn same_task_group(&self, other: &Process) -> bool {
        *self.task == *other.task
    }

    /// Returns the calling task's thread, creating it on its first call.
    pub(crate) fn current_thread(&self) -> Result<Arc<Thread>> {
        let id = kernel::current!().pid();
        if let Some(thread) = self.inner.lock().threads.get(&id) {
            return Ok(thread.clone());
        }
        // Allocate outside the spinlock, then insert unless another call of the same task
        // (through a second file descriptor to this file) got there first.
        let new_thread = Thread::new(self, id)?;
        let reservation = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut inner = self.inner.lock();
        match inner.threads.entry(id) {
            rbtree::Entry::Occupied(entry) => Ok(entry.get().clone()),
            rbtree::Entry::Vacant(entry) => Ok(entry.insert(new_thread, reservation).clone()),
        }
    }

    /// Forgets `thread` (`BINDER_THREAD_EXIT`); its next ioctl creates a new one. Work queued
    /// for it is dropped.
    pub(crate) fn remove_thread(&self, thread: &Thread) {
        let removed = self.inner.lock().threads.remove(&thread.id);
        thread.leave(self);
        drop(removed);
    }

    /// Queues `item` for `recipient`, waking whom it concerns. Gives the item back if this
    /// process (or the recipient thread) is gone.
    pub(crate) fn push_work(
        &self,
        item: WorkItem,
        recipient: Recipient<'_>,
    ) -> Result<(), WorkItem> {
        let mut inner = self.inner.lock();
        match recipient {
            _ if inner.is_dead => return Err(item),
            Recipient::Process if item.item.is_transaction() => inner.push_transaction(item),
            Recipient::Process => inner.push_process_work(item),
            Recipient::Thread(thread) if thread.is_dead() => return Err(item),
            Recipient::Thread(thread) => thread.push_work(&mut inner, item),
            // Not frozen, so nothing is replaced: `None`.
            Recipient::Oneway(node) => drop(node.queue_oneway(&mut inner, item, false)),
        }
        Ok(())
    }

    /// Queues the transaction `t`, in its envelope `item`, for `recipient`, as the C driver
    /// does; from then on it counts as outstanding here until it is finished with.
    ///
    /// A call to a frozen process is refused (`Refused::Frozen`), and anything once the
    /// process or the recipient thread is gone (`Refused::Dead`). A one-way transaction to a
    /// frozen process is queued all the same, and `Ok(true)` says so; with `TF_UPDATE_TXN` it
    /// replaces an outdated one waiting in its node's queue, which is dropped here. Either
    /// kind notes that it came while the process was frozen.
    pub(crate) fn queue_transaction(
        &self,
        t: &Transaction,
        item: WorkItem,
        recipient: Recipient<'_>,
    ) -> Result<bool, Refused> {
        let oneway = t.is_oneway();
        let mut inner = self.inner.lock();
        let frozen = inner.frozen;
        if frozen {
            inner.sync_recv |= !oneway;
            inner.async_recv |= oneway;
            if !oneway {
                return Err(Refused::Frozen);
            }
        }
        if inner.is_dead {
            return Err(Refused::Dead);
        }
        let outdated = match recipient {
            Recipient::Thread(thread) if thread.is_dead() => return Err(Refused::Dead),
            Recipient::Thread(thread) => {
                thread.push_work(&mut inner, item);
                None
            }
            Recipient::Process => {
                inner.push_transaction(item);
                None
            }
            Recipient::Oneway(node) => node.queue_oneway(&mut inner, item, frozen),
        };
        t.mark_outstanding(&mut inner);
        if let Some(old) = outdated.as_ref().and_then(|w| w.item.as_transaction()) {
            if old.take_outstanding() {
                inner.uncount_outstanding();
            }
        }
        drop(inner);
        // Its buffer goes back, with the references it holds, outside the lock.
        drop(outdated);
        Ok(frozen && oneway)
    }

    /// Queues the reusable `work` for `recipient`, unless it is queued already; cancels it if
    /// the recipient is gone.
    pub(crate) fn queue<T: Deliver + 'static>(
        &self,
        work: &Arc<Work<T>>,
        recipient: Recipient<'_>,
    ) {
        if let Some(item) = Work::to_queue(work) {
            if let Err(item) = self.push_work(item, recipient) {
                item.item.cancel();
            }
        }
    }

    /// `BC_REQUEST_DEATH_NOTIFICATION`: asks to hear when the node behind `handle` dies.
    pub(crate) fn request_death(self: ArcBorrow<'_, Self>, handle: u32, cookie: u64) -> Result {
        let node = match self.inner.lock().refs.get_mut(handle) {
            Some(node_ref) if node_ref.death.is_none() => node_ref.node.clone(),
            Some(_) => {
                crate::debug::binder_user_error!(
                    "death notification already requested on handle {}\n",
                    handle
                );
                return Ok(());
            }
            None => {
                crate::debug::binder_user_error!(
                    "death notification on invalid handle {}\n",
                    handle
                );
                return Ok(());
            }
        };
        let death = Death::new(self.into(), cookie)?;
        // Attach it unless another thread got there first or the handle went away.
        match self.inner.lock().refs.get_mut(handle) {
            Some(node_ref) if node_ref.death.is_none() && Arc::ptr_eq(&node_ref.node, &node) => {
                node_ref.death = Some(death.clone());
            }
            _ => return Ok(()),
        }
        node.add_death(death)
    }

    /// `BC_CLEAR_DEATH_NOTIFICATION`: withdraws the request on `handle` made with `cookie`.
    ///
    /// The request leaves the handle at once, so a new one may be made on it. It is confirmed
    /// now, or, if the node died and its `BR_DEAD_BINDER` is queued or unanswered, after
    /// `BC_DEAD_BINDER_DONE`; until then the process keeps it among its withdrawn deaths.
    pub(crate) fn clear_death(&self, thread: &Thread, handle: u32, cookie: u64) {
        let mut inner = self.inner.lock();
        let Some(node_ref) = inner.refs.get_mut(handle) else {
            crate::debug::binder_user_error!(
                "clearing a death notification of invalid handle {}\n",
                handle
            );
            return;
        };
        let Some(death) = node_ref.death.take_if(|death| death.item.cookie == cookie) else {
            crate::debug::binder_user_error!("clearing a death notification that is not set\n");
            return;
        };
        let node = node_ref.node.clone();
        // Marked before it leaves the node's list: see `Node::add_death`.
        let confirm_now = match death.item.mark_cleared() {
            Cleared::ConfirmNow => true,
            Cleared::AfterDone(Some(slot)) => {
                let key = death_key(&death);
                inner
                    .withdrawn_deaths
                    .insert(slot.into_node(key, death.clone()));
                false
            }
            // A request is withdrawn once, and only then leaves its slot: not reached.
            Cleared::AfterDone(None) => false,
        };
        drop(inner);
        node.remove_death(&death);
        if confirm_now {
            Death::confirm_clear(&death, self.recipient_for(thread));
        }
    }

    /// `BC_DEAD_BINDER_DONE`: the holder handled the `BR_DEAD_BINDER` with `cookie`. A
    /// request withdrawn meanwhile is confirmed now.
    pub(crate) fn dead_binder_done(&self, thread: &Thread, cookie: u64) {
        let mut inner = self.inner.lock();
        // The first delivered of those with the cookie, on a handle or withdrawn, as C takes
        // the first of its delivered deaths.
        let on_handle = inner.refs.death_awaiting_done(cookie);
        let withdrawn = Death::first_awaiting_done(inner.withdrawn_deaths.values(), cookie);
        let withdrawn = match (on_handle, withdrawn) {
            (Some((on_handle, death)), withdrawn)
                if withdrawn.is_none_or(|(since, _)| on_handle < since) =>
            {
                death.item.mark_done();
                return;
            }
            (_, withdrawn) => withdrawn.map(|(_, death)| death_key(death)),
        };
        let Some(death) = withdrawn.and_then(|key| inner.withdrawn_deaths.remove(&key)) else {
            drop(inner);
            crate::debug::binder_user_error!(
                "BC_DEAD_BINDER_DONE for unknown cookie {:#x}\n",
                cookie
            );
            return;
        };
        drop(inner);
        if death.item.mark_done() {
            Death::confirm_clear(&death, self.recipient_for(thread));
        }
    }

    /// Where a notification that `thread` caused goes: to it, if it is a looper, as in the C
    /// driver; else to the process.
    fn recipient_for<'a>(&self, thread: &'a Thread) -> Recipient<'a> {
        if thread.is_looper() {
            Recipient::Thread(thread)
        } else {
            Recipient::Process
        }
    }

    /// Sets the most threads the driver may ask for (`BINDER_SET_MAX_THREADS`).
    pub(crate) fn set_max_threads(&self, max: u32) {
        self.inner.lock().max_threads = max;
    }

    /// Changes the reference count behind `handle` (`BC_INCREFS`, `BC_ACQUIRE`, `BC_RELEASE`,
    /// `BC_DECREFS`).
    ///
    /// Taking a reference through handle 0 creates the handle to the context manager. The
    /// context manager itself may not do that (`EINVAL`, failing the ioctl); any other misuse
    /// is logged and skipped, as in the C driver.
    pub(crate) fn change_ref_from_user(&self, handle: u32, change: RefChange) -> Result {
        if change.increment && handle == MANAGER_HANDLE {
            // Under the manager's lock, as in C: the node cannot stop being the manager
            // between looking it up and making the handle, which would then not be 0.
            let taken = self.context.with_manager_node(|manager| {
                if manager.is_owned_by(self) {
                    crate::debug::binder_user_error!(
                        "context manager tried to take a reference to itself\n"
                    );
                    return Err(EINVAL);
                }
                self.take_ref(manager, change.strong, None).map(drop)
            });
            if let Some(result) = taken {
                return result;
            }
        }
        let mut inner = self.inner.lock();
        let outcome = if change.increment {
            inner
                .refs
                .gain_on_handle(handle, change.strong)
                .map(|()| None)
        } else {
            inner.refs.lose(handle, change.strong).map(Some)
        };
        drop(inner);
        match outcome {
            Ok(Some(loss)) => self.settle_loss(loss),
            Ok(None) => {}
            Err(InvalidRef) => {
                crate::debug::binder_user_error!("reference change on invalid handle {}\n", handle)
            }
        }
        Ok(())
    }

    /// Takes a reference to `node` through this process's handle to it, creating the handle
    /// if needed; returns the handle.
    ///
    /// The node counts the handle (and its strength) before the handle shows it, so its
    /// counts never fall short of its handles'. A handle counted on behalf of `notify`, the
    /// thread sending its own object, lets that thread read the node's `BR_INCREFS` and
    /// `BR_ACQUIRE`. Fails with `ESRCH` if this process is being released.
    pub(crate) fn take_ref(
        &self,
        node: &NodeArc,
        strong: bool,
        notify: Option<&Thread>,
    ) -> Result<u32> {
        loop {
            if let Some(handle) = self.try_take_ref(node, strong, notify)? {
                return Ok(handle);
            }
        }
    }

    /// [`Process::take_ref`], once: `None` if it must be tried again, because the handle it
    /// found without a strong reference (so brought no memory for a new one) went meanwhile.
    fn try_take_ref(
        &self,
        node: &NodeArc,
        strong: bool,
        notify: Option<&Thread>,
    ) -> Result<Option<u32>> {
        let mut inner = self.inner.lock();
        if inner.is_dead {
            return Err(ESRCH);
        }
        // A handle that only gains strength needs no memory: no slot, no spare room.
        let (slot, wants_room) = match inner.refs.gain_existing(node, strong) {
            Existing::Counted(handle) => return Ok(Some(handle)),
            Existing::FirstWeak(handle) => {
                drop(inner);
                if let Some(thread) = notify {
                    Node::tell(node, &mut node.owner().inner.lock(), false, thread);
                }
                return Ok(Some(handle));
            }
            Existing::Weak => (None, false),
            Existing::Missing => (Some(inner.refs.take_spare()), inner.refs.wants_spare_room()),
        };
        drop(inner);
        let slot = match slot {
            Some(Some(spare)) => Some(spare),
            Some(None) => Some(HandleSlot::new()?),
            None => None,
        };
        // Spare room only saves allocations later: going without it is no failure.
        let room = wants_room.then(Spares::new_room).flatten();
        {
            let mut owner = node.owner().inner.lock();
            Node::count(node, &mut owner, Count::Handle, notify);
            if strong {
                Node::count(node, &mut owner, Count::StrongHandle, notify);
            }
        }
        let mut inner = self.inner.lock();
        let outcome = if inner.is_dead {
            Err(ESRCH)
        } else {
            Ok(inner.refs.gain(node, strong, slot, room))
        };
        drop(inner);
        // Give back what the node counted and the handle turned out not to need: it existed
        // already (another thread made it meanwhile), or this process is gone, or the handle
        // found first went meanwhile (then all over again, with a slot this time).
        let (result, surplus_handle, surplus_strong) = match outcome {
            Ok(Some((handle, gain, _unneeded))) => (
                Ok(Some(handle)),
                !gain.created,
                strong && !gain.became_strong,
            ),
            Ok(None) => (Ok(None), true, strong),
            Err(err) => (Err(err), true, strong),
        };
        self.uncount_handle(node, surplus_strong, surplus_handle);
        result
    }

    /// Tells the node of a handle that lost references what it lost, after this process's
    /// lock is released; drops a removed handle (and its death notification).
    fn settle_loss(&self, loss: Loss) {
        self.uncount_handle(&loss.node, loss.lost_strong, loss.removed.is_some());
        if let Some(removed) = &loss.removed {
            if let Some(death) = &removed.death {
                self.drop_death(death, &loss.node);
            }
            if let Some(listener) = &removed.freeze {
                self.drop_freeze_listener(listener, loss.node.owner());
            }
        }
    }

    /// The handle that carried `death`, a handle to `node`, went: the request goes with it,
    /// and a `BR_DEAD_BINDER` of it still queued is taken back unread, as the C driver does
    /// (`binder_cleanup_ref_olocked` dequeues the handle's death work wherever it is). A
    /// request that is not withdrawn is queued only on the process's own list.
    fn drop_death(&self, death: &Arc<Work<Death>>, node: &NodeArc) {
        let queued = death.item.handle_gone();
        node.remove_death(death);
        if queued {
            let taken = self.inner.lock().take_process_work(death);
            // Dropped outside the lock, like every item taken off a list.
            drop(taken);
        }
    }

    /// Uncounts on `node` a handle's strong reference (`lost_strong`) and the handle itself
    /// (`lost_handle`).
    fn uncount_handle(&self, node: &NodeArc, lost_strong: bool, lost_handle: bool) {
        if !lost_strong && !lost_handle {
            return;
        }
        let mut owner = node.owner().inner.lock();
        let forgotten_strong = if lost_strong {
            Node::uncount(node, &mut owner, Count::StrongHandle)
        } else {
            None
        };
        let forgotten = if lost_handle {
            Node::uncount(node, &mut owner, Count::Handle)
        } else {
            None
        };
        drop(owner);
        drop(forgotten_strong);
        drop(forgotten);
    }

    /// Takes a local reference on `node`, one of this process's nodes, for a buffer.
    pub(crate) fn count_local(&self, node: &NodeArc, strong: bool) {
        let mut inner = self.inner.lock();
        Node::count(node, &mut inner, Count::Local { strong }, None);
    }

    /// Releases the strong local reference on `node`, one of this process's nodes, that a
    /// range held as its transaction's target ([`Process::count_local`] took it).
    pub(crate) fn uncount_local(&self, node: NodeArc) {
        let mut owner = node.owner().inner.lock();
        let forgotten = Node::uncount(&node, &mut owner, Count::Local { strong: true });
        drop(owner);
        drop(forgotten);
    }

    /// Releases a reference that one of this process's buffers held.
    pub(crate) fn release_held(&self, held: Held) {
        match held {
            Held::Handle { handle, strong } => {
                let loss = self.inner.lock().refs.lose(handle, strong);
                // No handle (or no count left on it) means it went with the process's release,
                // or userspace dropped more references than it had.
                if let Ok(loss) = loss {
                    self.settle_loss(loss);
                }
            }
            Held::Object { node, strong } => {
                let forgotten = node.owner().with_node_rechecked(&node, |owner| {
                    Node::uncount(&node, owner, Count::Local { strong })
                });
                drop(forgotten);
            }
        }
    }

    /// Releases every reference in `held`. Most buffers hold none (a transaction without
    /// binder or handle objects): that case is decided inline, without a call or a walk.
    #[inline(always)]
    pub(crate) fn release_all_held(&self, held: HeldRefs) {
        if !held.is_empty() {
            self.release_each_held(held);
        }
    }

    /// [`Process::release_all_held`] for references that are there.
    fn release_each_held(&self, held: HeldRefs) {
        for reference in held {
            self.release_held(reference);
        }
    }

    /// The node of this process for its object `ptr`, created with `cookie` and `flags` if
    /// there is none yet. An existing node keeps the cookie and flags it was created with.
    pub(crate) fn node_for_object(
        self: ArcBorrow<'_, Self>,
        ptr: u64,
        cookie: u64,
        flags: u32,
    ) -> Result<NodeArc> {
        if let Some(node) = self.inner.lock().nodes.get(ptr) {
            return Ok(node.into());
        }
        // The node carries its own links in the tree: nothing else to allocate.
        let node = Node::new(self.into(), ptr, cookie, flags)?;
        let mut inner = self.inner.lock();
        if inner.is_dead {
            return Err(ESRCH);
        }
        if let Some(found) = inner.nodes.get(ptr) {
            // Another thread made the node meanwhile: the new one is dropped after the lock.
            let found = found.into();
            drop(inner);
            drop(node);
            return Ok(found);
        }
        // Cannot fail: the tree has no node for `ptr`, and a new node is in no tree.
        let unused = inner.nodes.insert(node.clone()).err();
        drop(inner);
        drop(unused);
        Ok(node)
    }

    /// Makes this process's node for `ptr` the context manager's node (creating it with
    /// `cookie` and `flags` if needed); called with the context's manager lock held.
    pub(crate) fn make_manager_node(
        self: &Arc<Self>,
        ptr: u64,
        cookie: u64,
        flags: u32,
    ) -> Result<NodeArc> {
        let node = self.as_arc_borrow().node_for_object(ptr, cookie, flags)?;
        node.make_manager(&mut self.inner.lock());
        Ok(node)
    }

    /// `BC_INCREFS_DONE` (`strong` false) and `BC_ACQUIRE_DONE`: the owner took the reference
    /// to its object `ptr`/`cookie` that `BR_INCREFS`/`BR_ACQUIRE` told it of. A confirmation
    /// that matches nothing is logged and skipped, as in the C driver.
    pub(crate) fn confirm_node_ref(&self, ptr: u64, cookie: u64, strong: bool) {
        let mut inner = self.inner.lock();
        let Some(node) = inner.nodes.get(ptr).map(NodeArc::from) else {
            drop(inner);
            crate::debug::binder_user_error!("refcount confirmation for unknown node {:#x}\n", ptr);
            return;
        };
        // Whatever the outcome, a node found is looked at again afterwards, as C's temporary
        // reference going does (see `Node::recheck`).
        let outcome = if node.cookie() != cookie {
            Err(Unconfirmed::OtherCookie)
        } else {
            Node::confirm(&node, &mut inner, strong).map_err(|()| Unconfirmed::NotAwaited)
        };
        let rechecked = Node::recheck(&node, &mut inner);
        drop(inner);
        drop(rechecked);
        match outcome {
            Ok(forgotten) => drop(forgotten),
            Err(Unconfirmed::OtherCookie) => crate::debug::binder_user_error!(
                "refcount confirmation for node {:#x} with cookie {:#x}, not {:#x}\n",
                ptr,
                cookie,
                node.cookie()
            ),
            Err(Unconfirmed::NotAwaited) => crate::debug::binder_user_error!(
                "refcount confirmation for node {:#x} not awaited\n",
                ptr
            ),
        }
        drop(node);
    }

    /// Looks at `node`, one of this process's nodes, again (see `Node::recheck`).
    pub(crate) fn recheck_node(&self, node: &NodeArc) {
        self.with_node_rechecked(node, |_| ());
    }

    /// Runs `f` on this process's inner, then looks at `node`, one of this process's nodes,
    /// again before the lock goes (see `Node::recheck`). A node that leaves the tree is
    /// dropped after the lock.
    fn with_node_rechecked<R>(&self, node: &NodeArc, f: impl FnOnce(&mut ProcessInner) -> R) -> R {
        let mut inner = self.inner.lock();
        let result = f(&mut inner);
        let forgotten = Node::recheck(node, &mut inner);
        drop(inner);
        drop(forgotten);
        result
    }

    /// Looks at each of this process's nodes again, in order, as the C driver's freeze and
    /// thaw do when they walk the nodes with a temporary reference each (see
    /// `Node::recheck`). The lock is dropped between nodes; the walk stops if the process
    /// dies meanwhile.
    pub(crate) fn recheck_nodes(&self) {
        let mut from = 0u64;
        loop {
            let mut inner = self.inner.lock();
            if inner.is_dead {
                return;
            }
            let Some(node) = inner.nodes.first_from(from).map(NodeArc::from) else {
                return;
            };
            let forgotten = Node::recheck(&node, &mut inner);
            drop(inner);
            drop(forgotten);
            match node.ptr().checked_add(1) {
                Some(next) => from = next,
                None => return,
            }
        }
    }

    /// `BINDER_GET_NODE_DEBUG_INFO`: describes the process's node with the lowest pointer
    /// above `info.ptr`, or zeroes `info` if there is none.
    pub(crate) fn node_debug_info(&self, info: &mut NodeDebugInfo) {
        let after = info.0.ptr;
        *info = NodeDebugInfo(pin_init::zeroed());
        let mut inner = self.inner.lock();
        let Some(node) = after
            .checked_add(1)
            .and_then(|from| inner.nodes.first_from(from))
            .map(NodeArc::from)
        else {
            return;
        };
        let (has_strong, has_weak) = node.told(&mut inner);
        drop(inner);
        info.0.ptr = node.ptr();
        info.0.cookie = node.cookie();
        info.0.has_strong_ref = has_strong.into();
        info.0.has_weak_ref = has_weak.into();
    }

    /// `BINDER_GET_NODE_INFO_FOR_REF`: the reference counts of the node behind a handle of
    /// the context manager (only it may ask: `EPERM`). `EINVAL` for anything but the handle
    /// set in `info`, and for a handle without a strong reference.
    pub(crate) fn node_info_for_ref(&self, info: &mut NodeInfoForRef) -> Result {
        let i = &info.0;
        if i.strong_count != 0
            || i.weak_count != 0
            || i.reserved1 != 0
            || i.reserved2 != 0
            || i.reserved3 != 0
        {
            return Err(EINVAL);
        }
        if !self
            .context
            .manager_node()
            .is_some_and(|manager| manager.is_owned_by(self))
        {
            return Err(EPERM);
        }
        let node = self.ref_target(info.0.handle, true).ok_or(EINVAL)?;
        let (strong, weak) = node.reported_counts(&mut node.owner().inner.lock());
        info.0.strong_count = strong;
        info.0.weak_count = weak;
        Ok(())
    }

    /// The node behind `handle`, if the process holds a strong reference through it (or any
    /// reference, without `strong`).
    pub(crate) fn ref_target(&self, handle: u32, strong: bool) -> Option<NodeArc> {
        self.inner.lock().refs.target(handle, strong)
    }

    /// Reserves `size` bytes of the receive buffer; see [`ReceiveBuffer::reserve`]. The
    /// last part of the result says whether the sender looks like a one-way spammer.
    pub(crate) fn reserve_buffer(
        self: &Arc<Self>,
        size: usize,
        target: Option<NodeArc>,
        oneway: bool,
        clear_on_free: bool,
        label: BufferLabel,
    ) -> Result<(ReservedBuffer, RangeView, bool)> {
        let (range, view, spam) =
            self.buffer
                .reserve(size, target, oneway, clear_on_free, label)?;
        Ok((ReservedBuffer::new(self.clone(), range), view, spam))
    }

    /// `BINDER_ENABLE_ONEWAY_SPAM_DETECTION`: whether this process, when it sends one-way
    /// transactions, reads `BR_ONEWAY_SPAM_SUSPECT` instead of `BR_TRANSACTION_COMPLETE` once
    /// a receiver finds it spamming.
    pub(crate) fn enable_oneway_spam_detection(&self, enable: bool) {
        self.oneway_spam_detection.store(enable, Relaxed);
    }

    /// The nice value of the task that opened the device, when it did.
    pub(crate) fn default_nice(&self) -> i8 {
        self.default_nice
    }

    /// Whether this process asked to hear of one-way spam it is suspected of.
    pub(crate) fn detects_oneway_spam(&self) -> bool {
        self.oneway_spam_detection.load(Relaxed)
    }

    /// `BC_FREE_BUFFER`: frees the delivered buffer at `addr`; anything else is skipped.
    ///
    /// The fds the buffer's fd arrays brought are closed, in the calling task, as in C.
    /// Returns whether there were any: their files are released only when the task returns to
    /// userspace.
    pub(crate) fn free_buffer(&self, addr: u64) -> bool {
        let Some(freed) = self.buffer.free_by_user(addr) else {
            let tid = kernel::current!().pid();
            crate::debug::binder_user_error!(
                "{}:{} BC_FREE_BUFFER no match for buffer at {:#x}\n",
                self.pid(),
                tid,
                addr
            );
            return false;
        };
        let closed = match &freed.array_fds {
            Some(fds) => {
                crate::fds::close_array_fds(fds);
                true
            }
            None => false,
        };
        self.release_freed(freed, true);
        closed
    }

    /// Releases what a range of this process's buffer held when it went: its target's
    /// reference (after, for a one-way transaction and with `oneway_done`, letting the
    /// target's next one-way transaction through), then its objects' references.
    pub(crate) fn release_freed(&self, freed: Freed, oneway_done: bool) {
        if let Some(node) = freed.target {
            if freed.oneway && oneway_done {
                self.oneway_done(&node);
            }
            self.uncount_local(node);
        }
        self.release_all_held(freed.held);
    }

    /// The one-way transaction to `node`, one of this process's nodes, is finished with:
    /// the node's next one may be delivered.
    pub(crate) fn oneway_done(&self, node: &Node) {
        node.oneway_done(&mut self.inner.lock());
    }

    /// The pid of the process, as the calling task's pid namespace sees it.
    pub(crate) fn pid_in_current_ns(&self) -> Pid {
        self.task.tgid_nr_ns(kernel::current!().active_pid_ns())
    }

    /// Makes this process the context manager of its device.
    pub(crate) fn set_as_manager(self: &Arc<Self>, object: Option<&FlatBinderObject>) -> Result {
        self.context.set_manager(self, object)
    }

    /// After a read: if the process's work is still queued (the reader left it, or took
    /// only some), another waiting thread is woken for it, as the C driver does.
    pub(crate) fn wake_for_leftover_work(&self) {
        let mut inner = self.inner.lock();
        if inner.has_process_work() {
            inner.wake_for_process_work();
        }
    }

    /// The `flush` file operation: one of the file's descriptors is being closed.
    ///
    /// Every thread is told to return to userspace rather than wait for work, and the ones
    /// waiting are woken.
    pub(crate) fn flush(&self) {
        let inner = self.inner.lock();
        for thread in inner.threads.values() {
            thread.set_need_return(&inner);
        }
    }

    /// The `mmap` file operation: maps the receive buffer.
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        // Only the thread group that opened the device may map it; a forked child may not.
        if *kernel::current!().group_leader() != *self.task {
            return Err(EINVAL);
        }
        self.buffer.map(vma)
    }
}
