// SPDX-License-Identifier: GPL-2.0

//! Threads: the tasks of a process that have called into the driver.
//!
//! As in the C driver, a thread comes into being the first time a task of the process makes
//! an ioctl (or polls) on the device, and lives until `BINDER_THREAD_EXIT` or until the
//! process closes the device. Its state changes under its process's `inner` lock, so that
//! handing a thread work and waking it happen under one lock.

use kernel::{
    fs::File,
    list::{
        impl_list_arc_safe,
        impl_list_item,
        AtomicTracker,
        ListArc,
        ListLinks,
        TryNewListArc, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        poll::{
            PollCondVarBox,
            PollTable, //
        },
        Arc,
        LockedBy,
        SetOnce, //
    },
    task::Pid,
};

use crate::{
    census::{
        Counted,
        Kind, //
    },
    defs::{
        ExtendedError,
        BR_DEAD_REPLY,
        BR_NOOP,
        BR_OK,
        BR_SPAWN_LOOPER,
        BR_TRANSACTION_COMPLETE, //
    },
    process::{
        Process,
        ProcessInner, //
    },
    trace,
    transaction::{
        Complete,
        Transaction,
        TransactionArc, //
    },
    work::{
        self,
        Deliver,
        Described,
        Flow,
        Todo,
        Work,
        WorkItem, //
    },
    write_read::Returns,
};

/// Looper state bits, as the C driver names them.
pub(crate) mod looper {
    /// The thread was started at the driver's request (`BC_REGISTER_LOOPER`).
    pub(crate) const REGISTERED: u32 = 0x01;
    /// The thread made itself a looper (`BC_ENTER_LOOPER`).
    pub(crate) const ENTERED: u32 = 0x02;
    /// The thread left the loop (`BC_EXIT_LOOPER`).
    pub(crate) const EXITED: u32 = 0x04;
    /// The thread used the looper commands out of order.
    pub(crate) const INVALID: u32 = 0x08;
    /// The thread is blocked in a read.
    pub(crate) const WAITING: u32 = 0x10;
    /// The thread has polled the file.
    pub(crate) const POLL: u32 = 0x20;
    /// The thread waits in a read that may take the process's work, and no work was handed
    /// to it since it began to wait. Set exactly while the thread is on its process's list of
    /// waiting threads (the C driver's `waiting_threads`); picking it for new process work
    /// takes it off, so that two items queued together wake two threads.
    pub(crate) const AVAILABLE: u32 = 0x40;
}

/// A thread of a binder process.
///
/// `looper` changes only under the process's `inner` lock, and `need_return` is set only
/// under it; they are atomics so that `poll` and the ioctl paths can read them next to the
/// condition variable. The thread itself clears `need_return` without the lock at the end of
/// each ioctl, as C does: a `flush` that races with that clear is lost with the lock too (it
/// comes just before the clear), so the lock would order nothing.
#[pin_data]
pub(crate) struct Thread {
    /// Counts the object in the module's census.
    _census: Counted,
    /// The task's pid (a thread id, in the init pid namespace).
    pub(crate) id: Pid,
    /// The `looper` bits.
    looper: Atomic<u32>,
    /// Whether the thread must go back to userspace instead of waiting for work.
    ///
    /// Set when the thread is created and when a descriptor of the file is closed (`flush`);
    /// cleared at the end of each of the thread's ioctls. `poll` reports it as readable, as
    /// the C driver does with its `looper_need_return`.
    need_return: Atomic<bool>,
    /// The thread's state guarded by its process's `inner` lock (one `LockedBy` for all of
    /// it: each carries a pointer to the lock, and with one the thread fits in the 128-byte
    /// kmalloc class).
    locked: LockedBy<ThreadLocked, ProcessInner>,
    /// The thread's place on its process's list of threads waiting for process work
    /// ([`ProcessInner::waiting_threads`]); it is on no other list of that kind.
    #[pin]
    waiting_links: ListLinks,
    /// Lets the thread be put on that list only once at a time.
    #[pin]
    waiting_tracker: AtomicTracker,
    /// What the thread needs to send, receive, wait and be woken, from its first
    /// `BINDER_WRITE_READ` or poll on ([`Thread::equip`]).
    equipment: SetOnce<Equipment>,
    /// Set when the thread leaves the driver: replies to it fail from then on.
    dead: Atomic<bool>,
}

// The thread and its `Arc`'s count (eight bytes with padding) fit the 128-byte kmalloc class.
const _: () = assert!(core::mem::size_of::<Thread>() <= 120);

/// The part of a [`Thread`] that only a thread that reads, writes or polls needs. It is
/// allocated then, not when the thread is created: a task that only asks the driver something
/// (`BINDER_VERSION`, say) becomes a thread with two allocations (the thread and its place in
/// the tree) instead of six, and a process with many such threads is that much cheaper to
/// create and release, as a C thread is one allocation.
struct Equipment {
    /// The error return of the thread's last failed transaction, until it is read (for good
    /// if a read faulted on its code).
    return_error: Arc<Work<ReturnError>>,
    /// The failure of a call this thread made, reported by the side that was to answer it
    /// (`BR_DEAD_REPLY`). Unlike `return_error`, it does not hold back the thread's commands.
    reply_error: Arc<Work<ReturnError>>,
    /// The thread's own `BR_TRANSACTION_COMPLETE`, queued for each transaction it sends
    /// unless it is queued already (see [`Complete`]).
    complete: Arc<Work<Complete>>,
    /// Signalled, under the process's `inner` lock, when the thread has something to read.
    /// Pollers of the file wait on it too.
    ///
    /// Boxed and freed after an RCU grace period, rather than waiting for one when the
    /// thread goes (`synchronize_rcu`, which an unboxed `PollCondVar` pays on every drop): the
    /// C driver pays that wait only for threads that polled, and a process with many threads
    /// would pay it once per thread at exit.
    wake: PollCondVarBox,
}

impl Equipment {
    fn new() -> Result<Self> {
        Ok(Self {
            return_error: Work::new_pinned(try_pin_init!(ReturnError {
                code: Atomic::new(BR_OK),
            }))?,
            reply_error: Work::new_pinned(try_pin_init!(ReturnError {
                code: Atomic::new(BR_OK),
            }))?,
            complete: Work::new_arc(Complete::idle())?,
            wake: PollCondVarBox::new(
                kernel::c_str!("Thread::wake"),
                kernel::static_lock_class!(),
            )?,
        })
    }
}

/// The state of a [`Thread`] guarded by its process's `inner` lock, [`Thread::locked`].
struct ThreadLocked {
    /// Work for this thread only.
    todo: Todo,
    /// Whether `todo` holds work that makes a read return (the C driver's `process_todo`).
    /// Deferred work (the refcount returns of objects the thread sent) waits in `todo`
    /// without it, for whatever wakes the thread next.
    todo_ready: bool,
    /// What `BINDER_GET_EXTENDED_ERROR` reports: the last failed transaction's details.
    extended_error: ExtendedError,
    /// The top of the thread's transaction stack: the last call it sent and waits on, or
    /// the last call it received and must answer. Each links to the one below it (a sent
    /// call through `from_parent`, a received one through `to_parent`), as in the C driver.
    stack: Option<TransactionArc>,
}

impl Thread {
    /// Creates the thread for the task with pid `id` in `process`.
    pub(crate) fn new(process: &Process, id: Pid) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                _census: Counted::new(Kind::Thread),
                id,
                looper: Atomic::new(0),
                need_return: Atomic::new(true),
                locked: LockedBy::new(
                    process.inner_lock(),
                    ThreadLocked {
                        todo: Todo::new(),
                        todo_ready: false,
                        extended_error: no_extended_error(),
                        stack: None,
                    }
                ),
                waiting_links <- ListLinks::new(),
                waiting_tracker <- AtomicTracker::new(),
                equipment: SetOnce::new(),
                dead: Atomic::new(false),
            }),
            GFP_KERNEL,
        )
    }

    /// The thread's equipment, allocated by the first call. Only the thread's own task calls
    /// it, with no lock held (it may sleep to allocate).
    #[inline]
    fn equip(&self) -> Result<&Equipment> {
        match self.equipment.as_ref() {
            Some(equipment) => Ok(equipment),
            None => self.equip_first(),
        }
    }

    /// [`Thread::equip`]'s first call, kept out of line: every `BINDER_WRITE_READ` takes the
    /// quick path above.
    #[cold]
    fn equip_first(&self) -> Result<&Equipment> {
        // One task makes one call at a time, so nobody else fills the slot meanwhile (were
        // it filled all the same, `EAGAIN`: the call fails and the thread keeps the other).
        if !self.equipment.populate(Equipment::new()?) {
            return Err(EAGAIN);
        }
        self.equipment.as_ref().ok_or(EAGAIN)
    }

    /// Equips the thread for `BINDER_WRITE_READ` (see [`Equipment`]): from then on its errors
    /// can be queued and it can wait, without allocating.
    pub(crate) fn equip_for_write_read(&self) -> Result {
        self.equip().map(|_| ())
    }

    /// The thread's own `BR_TRANSACTION_COMPLETE`, if it is equipped.
    pub(crate) fn own_complete(&self) -> Option<&Arc<Work<Complete>>> {
        self.equipment.as_ref().map(|e| &e.complete)
    }

    fn looper_bits(&self) -> u32 {
        self.looper.load(Relaxed)
    }

    /// The looper bits as the C driver's `looper` field has them (for the log files).
    pub(crate) fn looper_for_log(&self) -> u32 {
        self.looper_bits() & !looper::AVAILABLE
    }

    /// Whether the thread waits for the process's work and was not picked yet (the C
    /// driver's `waiting_threads` list, the "ready threads" of `stats`).
    pub(crate) fn is_ready(&self) -> bool {
        self.looper_bits() & looper::AVAILABLE != 0
    }

    /// Whether the thread must go back to userspace (`looper_need_return`).
    pub(crate) fn needs_return(&self) -> bool {
        self.need_return.load(Relaxed)
    }

    /// The top of the thread's transaction stack; `inner` is its process's.
    pub(crate) fn stack_top<'a>(&'a self, inner: &'a ProcessInner) -> Option<&'a Transaction> {
        self.locked
            .access(inner)
            .stack
            .as_deref()
            .map(|top| &top.item)
    }

    /// The thread's own work; `inner` is its process's.
    pub(crate) fn todo_list<'a>(&'a self, inner: &'a ProcessInner) -> &'a Todo {
        &self.locked.access(inner).todo
    }

    fn set_looper_bits(&self, bits: u32, on: bool) {
        let state = self.looper_bits();
        self.looper
            .store(if on { state | bits } else { state & !bits }, Relaxed);
    }

    /// Whether the thread said it serves the process (`BC_ENTER_LOOPER`/`BC_REGISTER_LOOPER`).
    pub(crate) fn is_looper(&self) -> bool {
        self.looper_bits() & (looper::REGISTERED | looper::ENTERED) != 0
    }

    /// Whether the thread may take work from the process's todo list now: it has no work
    /// of its own and no call to answer.
    ///
    /// As in the C driver, a thread that never sent a looper command qualifies too (a minimal
    /// server that only reads gets its calls); the C driver logs that as a user error.
    fn takes_process_work(&self, inner: &ProcessInner) -> bool {
        self.locked.access(inner).stack.is_none() && self.locked.access(inner).todo.is_empty()
    }

    /// Whether the thread, on its process's list of waiting threads, is a candidate to wake
    /// for process work: it has still no work of its own and no call to answer.
    pub(crate) fn can_be_picked(&self, inner: &ProcessInner) -> bool {
        self.takes_process_work(inner)
    }

    /// Marks this thread as on (`true`) or off its process's list of waiting threads. The
    /// caller holds the process's `inner` lock, as `_locked` says, and puts the thread on the
    /// list or takes it off in the same lock round.
    pub(crate) fn set_available(&self, _locked: &ProcessInner, available: bool) {
        self.set_looper_bits(looper::AVAILABLE, available);
    }

    /// Whether the thread polls and could take work of the process (a poller to wake).
    pub(crate) fn polls_for_process_work(&self, inner: &ProcessInner) -> bool {
        self.looper_bits() & looper::POLL != 0 && self.takes_process_work(inner)
    }

    /// Whether a read would return without waiting.
    fn has_work(&self, inner: &mut ProcessInner, process_work: bool) -> bool {
        self.need_return.load(Relaxed)
            || self.locked.access_mut(inner).todo_ready
            || (process_work && inner.has_process_work())
    }

    /// Wakes the thread: its read, or its pollers. A thread without equipment never waited
    /// nor polled: there is nobody to wake.
    pub(crate) fn notify(&self) {
        if let Some(equipment) = self.equipment.as_ref() {
            equipment.wake.notify_one();
        }
    }

    /// Wakes the thread as [`Self::notify`] does, telling the scheduler that the waker is
    /// about to sleep: it sent a call and waits for the reply, or replied and goes back to
    /// reading. So the woken thread does not preempt the waker, which runs on to its sleep
    /// first (one switch instead of two on a busy CPU). C wakes so for every call and reply
    /// (`wake_up_interruptible_sync`); a one-way transaction, whose sender runs on, wakes
    /// plainly.
    fn notify_sync(&self) {
        if let Some(equipment) = self.equipment.as_ref() {
            equipment.wake.notify_sync();
        }
    }

    /// Queues `work` for this thread and wakes it.
    ///
    /// Work a thread queues for itself (its `BR_TRANSACTION_COMPLETE`, an error return) wakes
    /// nobody, as in the C driver: the thread is running, not waiting in a read. Only a thread
    /// that polls is woken then, and only when its todo list turns readable, since the poller
    /// (an epoll waiting on the file, say) learns of the work from that wake-up alone. A
    /// transaction always wakes, as C wakes its target thread: the task may have opened the
    /// device twice, and then this thread is its other one, which it may poll.
    pub(crate) fn push_work(&self, inner: &mut ProcessInner, work: WorkItem) {
        let transaction = work.item.as_transaction();
        let sync = transaction.is_some_and(|t| !t.is_oneway());
        let wakes_anyway = transaction.is_some() || kernel::current!().pid() != self.id;
        let locked = self.locked.access_mut(inner);
        locked.todo.push_back(work);
        let was_ready = core::mem::replace(&mut locked.todo_ready, true);
        if sync {
            self.notify_sync();
        } else if wakes_anyway || (!was_ready && self.looper_bits() & looper::POLL != 0) {
            self.notify();
        }
    }

    /// Queues `work` for this thread without waking it: the thread reads it with whatever
    /// it reads next.
    pub(crate) fn push_deferred_work(&self, inner: &mut ProcessInner, work: WorkItem) {
        self.locked.access_mut(inner).todo.push_back(work);
    }

    /// Takes `item` off this thread's todo list, if it is there. A list left empty has
    /// nothing ready to read either.
    pub(crate) fn take_work<T: ?Sized>(
        &self,
        inner: &mut ProcessInner,
        item: &Work<T>,
    ) -> Option<WorkItem> {
        let locked = self.locked.access_mut(inner);
        let work = work::take_from(&mut locked.todo, item)?;
        if locked.todo.is_empty() {
            locked.todo_ready = false;
        }
        Some(work)
    }

    /// Whether an error return is waiting to be read, or was taken by a read that faulted on
    /// its code. The C driver carries out no more of the thread's commands until it is read,
    /// so never after such a fault.
    pub(crate) fn has_pending_error(&self) -> bool {
        self.equipment
            .as_ref()
            .is_some_and(|e| e.return_error.item.code.load(Relaxed) != BR_OK)
    }

    /// Reports a failed transaction: `code` (`BR_FAILED_REPLY`, `BR_DEAD_REPLY`,
    /// `BR_FROZEN_REPLY`) is queued for the thread, and `id` and `param` (a negative errno, or
    /// 0) are kept for `BINDER_GET_EXTENDED_ERROR`.
    pub(crate) fn transaction_failed(&self, process: &Process, id: u32, code: u32, param: i32) {
        let mut inner = process.inner_lock().lock();
        self.locked.access_mut(&mut inner).extended_error = extended_error(id, code, param);
        self.queue_return_error(&mut inner, code);
    }

    /// Queues the error return `code` for the thread, which is in its own
    /// `BINDER_WRITE_READ`, and so equipped.
    fn queue_return_error(&self, inner: &mut ProcessInner, code: u32) {
        let Some(equipment) = self.equipment.as_ref() else {
            pr_warn!("{}: an error return {code:#x} without equipment\n", self.id);
            return;
        };
        equipment.return_error.item.code.store(code, Relaxed);
        if let Some(item) = Work::to_queue(&equipment.return_error) {
            self.push_work(inner, item);
        }
    }

    /// Sets the extended error, as each transaction does when it starts.
    pub(crate) fn set_extended_error(&self, process: &Process, id: u32, code: u32, param: i32) {
        let mut inner = process.inner_lock().lock();
        self.locked.access_mut(&mut inner).extended_error = extended_error(id, code, param);
    }

    /// A reply of this thread failed for its caller: like the C driver, the thread itself
    /// reads only `BR_TRANSACTION_COMPLETE`, and its commands wait until it has.
    pub(crate) fn reply_failed(&self, process: &Process) {
        let mut inner = process.inner_lock().lock();
        self.queue_return_error(&mut inner, BR_TRANSACTION_COMPLETE);
    }

    /// Takes the extended error (`BINDER_GET_EXTENDED_ERROR`), leaving "no error" behind.
    pub(crate) fn take_extended_error(&self, process: &Process) -> ExtendedError {
        let mut inner = process.inner_lock().lock();
        core::mem::replace(
            &mut self.locked.access_mut(&mut inner).extended_error,
            no_extended_error(),
        )
    }

    /// Whether the thread is in a call, sent or received (its transaction stack is not
    /// empty). `inner` is its process's state.
    pub(crate) fn has_transaction_stack(&self, inner: &ProcessInner) -> bool {
        self.locked.access(inner).stack.is_some()
    }

    /// Whether the thread left the driver.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    /// Puts the call it received on the thread's stack: the thread must answer it next.
    pub(crate) fn push_received(&self, process: &Process, call: TransactionArc) {
        let mut inner = process.inner_lock().lock();
        let below = self.locked.access_mut(&mut inner).stack.take();
        *call.to_parent.access_mut(&mut inner) = below;
        self.locked.access_mut(&mut inner).stack = Some(call);
    }

    /// Takes the call this thread must answer off its stack. `None` if the top of the stack
    /// is not a call the thread received (no call, or its own call awaiting a reply).
    pub(crate) fn pop_received(&self, process: &Process) -> Option<TransactionArc> {
        let mut inner = process.inner_lock().lock();
        let top = self.locked.access_mut(&mut inner).stack.take()?;
        if top.is_sent_by(self) {
            self.locked.access_mut(&mut inner).stack = Some(top);
            return None;
        }
        self.locked.access_mut(&mut inner).stack = top.to_parent.access_mut(&mut inner).take();
        Some(top)
    }

    /// Puts the call the thread is sending on its stack (the call's `from_parent` is the
    /// previous top) and queues its `BR_TRANSACTION_COMPLETE`, deferred to come with the
    /// reply.
    pub(crate) fn begin_call(&self, process: &Process, call: TransactionArc, complete: WorkItem) {
        let mut inner = process.inner_lock().lock();
        self.push_deferred_work(&mut inner, complete);
        // The previous top lives on as the call's `from_parent`.
        let previous = self.locked.access_mut(&mut inner).stack.replace(call);
        drop(inner);
        drop(previous);
    }

    /// Takes `call`, which could not be sent after all, off the top of the stack.
    pub(crate) fn pop_sent_call(&self, process: &Process, call: &Transaction) {
        let mut inner = process.inner_lock().lock();
        let popped = self.pop_sent(&mut inner, call);
        drop(inner);
        drop(popped);
    }

    /// The call is answered (or failed): takes it off the top of the stack, if it is there,
    /// and returns it for the caller to drop once the lock is released.
    fn pop_sent(&self, inner: &mut ProcessInner, call: &Transaction) -> Option<TransactionArc> {
        let stack = &mut self.locked.access_mut(inner).stack;
        if stack
            .as_deref()
            .is_some_and(|top| core::ptr::eq(&top.item, call))
        {
            return core::mem::replace(stack, call.parent_of_sent());
        }
        None
    }

    /// Checks that the thread may send a new call to `target`, and picks the thread there
    /// that must take it, as the C driver does.
    ///
    /// A thread answering a call whose chain of callers includes a thread of `target` gets
    /// that thread (which waits for the chain to come back): this is how A calls B and B
    /// calls back into the same thread of A. Fails with `EPROTO` when the thread's stack top
    /// is its own unanswered call, or when a transaction waits at the head of its todo list.
    /// Returns the thread's current stack top, the new call's `from_parent`, and the waiting
    /// thread if there is one.
    pub(crate) fn check_new_call(&self, process: &Process, target: &Process) -> Result<NewCall> {
        let mut inner = process.inner_lock().lock();
        let head_is_call = self
            .locked
            .access_mut(&mut inner)
            .todo
            .iter()
            .next()
            .is_some_and(|work| work.item.is_transaction());
        if head_is_call {
            return Err(EPROTO);
        }
        let top = self.locked.access_mut(&mut inner).stack.clone();
        let Some(top) = top else {
            return Ok(NewCall::default());
        };
        if top.is_sent_by(self) {
            return Err(EPROTO);
        }
        let waiting = top.call_chain().find_map(|call| call.caller_in(target));
        Ok(NewCall {
            parent: Some(top),
            waiting,
        })
    }

    /// The thread leaves the driver (`BINDER_THREAD_EXIT`, or its process is released): its
    /// queued work is cancelled (its transactions leave their buffers behind, see
    /// [`Deliver::abandon`]), and if the top of its stack is a call it received, that
    /// call's caller reads `BR_DEAD_REPLY`.
    ///
    /// As in the C driver, the calls it received further down fail for nobody now: each was
    /// answered by a call the thread made (it is on the stack above), and that call's
    /// answer, failing now that the thread is gone, passes the failure down the chain
    /// ([`Transaction::fail_caller`]).
    pub(crate) fn leave(&self, process: &Process) {
        let mut inner = process.inner_lock().lock();
        self.dead.store(true, Relaxed);
        let todo = core::mem::take(&mut self.locked.access_mut(&mut inner).todo);
        self.locked.access_mut(&mut inner).todo_ready = false;
        drop(inner);
        work::cancel_all(todo, work::Dropped::ThreadLeaves);
        // Unwind the stack, a frame at a time: the calls the thread received will get no
        // answer from it.
        let mut top = true;
        loop {
            let mut inner = process.inner_lock().lock();
            let Some(call) = self.locked.access_mut(&mut inner).stack.take() else {
                break;
            };
            let received = !call.is_sent_by(self);
            self.locked.access_mut(&mut inner).stack = if received {
                call.to_parent.access_mut(&mut inner).take()
            } else {
                call.parent_of_sent()
            };
            drop(inner);
            if received && top {
                call.fail_caller(BR_DEAD_REPLY, None);
            } else if received {
                call.finished();
            }
            top = false;
        }
    }

    /// Queues `reply` for this thread, which waits for the reply to `call`. Returns `false`
    /// if the thread or its process is gone.
    pub(crate) fn deliver_reply(
        &self,
        process: &Process,
        call: &Transaction,
        reply: WorkItem,
    ) -> bool {
        let mut inner = process.inner_lock().lock();
        if inner.is_dead() || self.is_dead() {
            return false;
        }
        let popped = self.pop_sent(&mut inner, call);
        // Outstanding for the caller's process until it is read, as in C.
        if let Some(t) = reply.item.as_transaction() {
            t.mark_outstanding(&mut inner);
        }
        self.push_work(&mut inner, reply);
        drop(inner);
        drop(popped);
        true
    }

    /// Tells this thread that its `call` failed on the other side: it reads `code` (after the
    /// call's `BR_TRANSACTION_COMPLETE`), unless an earlier failure is still unread. `error`,
    /// the debug id and errno (negative, or 0) of a failed reply, becomes the thread's
    /// extended error unless it holds one already. Returns `false` if the thread or its
    /// process is gone, and nobody was told.
    pub(crate) fn deliver_failure(
        &self,
        process: &Process,
        call: &Transaction,
        code: u32,
        error: Option<(u32, i32)>,
    ) -> bool {
        let mut inner = process.inner_lock().lock();
        if inner.is_dead() || self.is_dead() {
            return false;
        }
        let popped = self.pop_sent(&mut inner, call);
        if let Some((id, param)) = error {
            let extended = &mut self.locked.access_mut(&mut inner).extended_error;
            if extended.0.command == BR_OK {
                *extended = extended_error(id, code, param);
            }
        }
        // A thread that sent a call is equipped: it made a `BINDER_WRITE_READ` to send it.
        let Some(equipment) = self.equipment.as_ref() else {
            pr_warn!(
                "{}:{} a reply error {code:#x} lost: the thread has no equipment\n",
                process.pid(),
                self.id
            );
            return true;
        };
        // The thread has room for one reply error. A second can come before the first is
        // read (the thread sent another call after its first failed, without reading): like
        // the C driver, keep the first, and only warn.
        let reply_error = &equipment.reply_error;
        let pending = reply_error.item.code.load(Relaxed);
        if pending == BR_OK {
            reply_error.item.code.store(code, Relaxed);
            if let Some(item) = Work::to_queue(reply_error) {
                self.push_work(&mut inner, item);
            }
        } else {
            pr_warn!(
                "{}:{} a reply error {code:#x} lost: {pending:#x} is still unread\n",
                process.pid(),
                self.id
            );
        }
        drop(inner);
        drop(popped);
        true
    }

    /// Tells the thread to return to userspace (`flush`), waking it if it waits for work.
    ///
    /// The caller holds the process's `inner` lock, as `_locked` says.
    pub(crate) fn set_need_return(&self, _locked: &ProcessInner) {
        self.need_return.store(true, Relaxed);
        if self.looper_bits() & looper::WAITING != 0 {
            self.notify();
        }
    }

    /// Called when one of the thread's ioctls ends (see [`Thread`] on why without the lock).
    pub(crate) fn ioctl_done(&self) {
        self.need_return.store(false, Relaxed);
    }

    /// Applies a looper command (`BC_REGISTER_LOOPER`, `BC_ENTER_LOOPER`, `BC_EXIT_LOOPER`).
    ///
    /// Out-of-order use marks the thread invalid rather than failing, as in the C driver.
    pub(crate) fn looper_command(&self, process: &Process, bit: u32) {
        let mut guard = process.inner_lock().lock();
        let conflicting = match bit {
            looper::REGISTERED => looper::ENTERED,
            looper::ENTERED => looper::REGISTERED,
            _ => 0,
        };
        // A registration counts against the driver's requests only when it is in order: a
        // thread that entered the loop itself and then registers takes no request.
        let invalid = if self.looper_bits() & conflicting != 0 {
            true
        } else {
            bit == looper::REGISTERED && !guard.take_thread_request()
        };
        if invalid {
            self.set_looper_bits(looper::INVALID, true);
        }
        self.set_looper_bits(bit, true);
    }

    /// The `poll` file operation for this thread: registers its wait queue and reports
    /// whether a read would return at once.
    pub(crate) fn poll(
        &self,
        process: &Process,
        file: &File,
        table: PollTable<'_>,
    ) -> Result<bool> {
        let wake = &self.equip()?.wake;
        let guard = process.inner_lock().lock();
        self.set_looper_bits(looper::POLL, true);
        let process_work = self.takes_process_work(&guard);
        drop(guard);
        table.register_wait(file, wake);
        let mut guard = process.inner_lock().lock();
        Ok(self.has_work(&mut guard, process_work))
    }

    /// The read half of `BINDER_WRITE_READ`: waits for work and writes returns into `out`.
    ///
    /// Without `nonblock` it waits until there is work, the thread is told to return to
    /// userspace, or a signal comes (`EINTR`); with `nonblock` it fails with `EAGAIN` instead
    /// of waiting.
    pub(crate) fn read(
        self: &Arc<Self>,
        process: &Process,
        out: &mut Returns<'_>,
        nonblock: bool,
    ) -> Result {
        if out.is_fresh() {
            // Written as a plain word: C traces no `binder_return` for this one. Written first:
            // a read into a bad buffer fails before it waits or takes any work, as in C.
            out.put_u32(BR_NOOP)?;
        }
        self.deliver_work(process, out, nonblock)?;
        if process.inner_lock().lock().request_thread(self) {
            out.overwrite_first_word(BR_SPAWN_LOOPER)?;
        }
        Ok(())
    }

    /// Waits for work and delivers it into `out` until there is no more, no more room, or an
    /// item sends the thread back to userspace.
    fn deliver_work(
        self: &Arc<Self>,
        process: &Process,
        out: &mut Returns<'_>,
        nonblock: bool,
    ) -> Result {
        loop {
            let process_work = self.wait_for_work(process, nonblock)?;
            loop {
                if !out.has_room_for_return() {
                    return Ok(());
                }
                let Some(work) = self.next_work(process, process_work) else {
                    break;
                };
                // Off the list before it delivers, so that whatever queues the item again
                // meanwhile (a death's confirmation) is not refused. An error return is the
                // exception: it stays set until its code is out, so a reply error arriving
                // meanwhile is dropped, as in C.
                let work = ListArc::into_arc(work);
                let flow = work.item.deliver(&work, self, out)?;
                // Its code counts once the whole item is out.
                out.count_written();
                if flow == Flow::Return {
                    return Ok(());
                }
            }
            // Out of work. Go back to waiting if this read returned nothing but its BR_NOOP,
            // unless the thread must return.
            if !out.only_noop() || self.need_return.load(Relaxed) {
                return Ok(());
            }
        }
    }

    /// Blocks until a read has something to return. Returns whether the read takes the
    /// process's work: like the C driver, a thread decides that when it starts to wait (it
    /// has no work of its own and no call to answer), and keeps to it until it waits again,
    /// so a thread that just replied reads its `BR_TRANSACTION_COMPLETE` and leaves the
    /// process's work to the next read.
    fn wait_for_work(self: &Arc<Self>, process: &Process, nonblock: bool) -> Result<bool> {
        // Equipped by the `BINDER_WRITE_READ` this read is the half of.
        let wake = &self.equipment.as_ref().ok_or(EINVAL)?.wake;
        let mut guard = process.inner_lock().lock();
        let process_work = self.takes_process_work(&guard);
        if process_work {
            // As in C, outside the lock: the scheduler takes its own.
            drop(guard);
            crate::priority::set_nice(process.default_nice().into());
            guard = process.inner_lock().lock();
        }
        if process_work && !self.is_looper() {
            crate::debug::binder_user_error!(
                "thread {} waits for process work without a looper command\n",
                self.id
            );
        }
        let todo = !self.locked.access_mut(&mut guard).todo.is_empty();
        trace::binder_wait_for_work(process_work, self.has_transaction_stack(&guard), todo);
        loop {
            if self.has_work(&mut guard, process_work) {
                return Ok(process_work);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            // As in C, each time it goes to sleep the thread becomes the latest waiter, the
            // first to be picked.
            if process_work {
                guard.add_waiting_thread(self);
            }
            self.set_looper_bits(looper::WAITING, true);
            let interrupted = wake.wait_interruptible(&mut guard);
            self.set_looper_bits(looper::WAITING, false);
            guard.remove_waiting_thread(self);
            if interrupted {
                return Err(EINTR);
            }
        }
    }

    /// Takes the next item to deliver: the thread's own work first, then the process's if
    /// the read takes it.
    fn next_work(&self, process: &Process, process_work: bool) -> Option<WorkItem> {
        let mut guard = process.inner_lock().lock();
        if let Some(work) = self.locked.access_mut(&mut guard).todo.pop_front() {
            if self.locked.access_mut(&mut guard).todo.is_empty() {
                self.locked.access_mut(&mut guard).todo_ready = false;
            }
            return Some(work);
        }
        if process_work {
            return guard.pop_process_work();
        }
        None
    }
}

/// Where a new call stands on its sender's stack; see [`Thread::check_new_call`].
#[derive(Default)]
pub(crate) struct NewCall {
    /// The sender's stack top: the call it is answering, if any.
    pub(crate) parent: Option<TransactionArc>,
    /// The thread of the target process that waits further down the chain, if any.
    pub(crate) waiting: Option<Arc<Thread>>,
}

/// The extended error of a thread whose transactions have not failed.
fn no_extended_error() -> ExtendedError {
    extended_error(0, BR_OK, 0)
}

/// An extended error: transaction `id` ended with `command` and errno `param`.
fn extended_error(id: u32, command: u32, param: i32) -> ExtendedError {
    ExtendedError(kernel::uapi::binder_extended_error { id, command, param })
}

/// A thread's pending error return.
#[pin_data]
struct ReturnError {
    /// The `BR_*` code to deliver; `BR_OK` when there is none. Set but no longer queued after
    /// a read faulted on it, as in C: for `return_error` the thread then carries out no more
    /// commands, for `reply_error` later reply errors are dropped.
    code: Atomic<u32>,
}

impl Deliver for ReturnError {
    fn deliver(
        &self,
        _this: &Arc<Work<dyn Deliver>>,
        _thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow> {
        // Cleared only once the code is out (see `code`).
        let code = self.code.load(Relaxed);
        if code != BR_OK {
            out.put_code(code)?;
            self.code.store(BR_OK, Relaxed);
        }
        Ok(Flow::Continue)
    }

    fn describe(&self, _inner: &ProcessInner) -> Described<'_> {
        match self.code.load(Relaxed) {
            BR_OK => Described::Nothing,
            code => Described::Error(code),
        }
    }
}

impl_list_arc_safe! {
    impl ListArcSafe<0> for Thread { tracked_by waiting_tracker: AtomicTracker; }
}

impl_list_item! {
    impl ListItem<0> for Thread { using ListLinks { self.waiting_links }; }
}
