// SPDX-License-Identifier: GPL-2.0

//! Threads: the tasks of a process that have called into the driver.
//!
//! As in the C driver, a thread comes into being the first time a task of the process makes
//! an ioctl (or polls) on the device, and lives until `BINDER_THREAD_EXIT` or until the
//! process closes the device. Its state changes under its process's `inner` lock, so that
//! handing a thread work and waking it happen under one lock.

use kernel::{
    fs::File,
    new_poll_condvar,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        poll::{
            PollCondVar,
            PollTable, //
        },
        Arc,
        LockedBy, //
    },
    task::Pid,
};

use crate::{
    defs::{
        ExtendedError,
        BR_NOOP,
        BR_OK,
        BR_SPAWN_LOOPER, //
    },
    process::{
        Process,
        ProcessInner, //
    },
    transaction::Transaction,
    work::{
        self,
        Deliver,
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
}

/// A thread of a binder process.
///
/// `looper` and `need_return` change only under the process's `inner` lock; they are atomics
/// so that `poll` and the ioctl paths can read them next to the condition variable.
#[pin_data]
pub(crate) struct Thread {
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
    /// Work for this thread only.
    todo: LockedBy<Todo, ProcessInner>,
    /// The error return of the thread's last failed transaction, until it is read.
    return_error: Arc<Work<ReturnError>>,
    /// What `BINDER_GET_EXTENDED_ERROR` reports: the last failed transaction's details.
    extended_error: LockedBy<ExtendedError, ProcessInner>,
    /// The failure of a call this thread made, reported by the side that was to answer it
    /// (`BR_DEAD_REPLY`). Unlike `return_error`, it does not hold back the thread's commands.
    reply_error: Arc<Work<ReturnError>>,
    /// The call this thread received and has not answered yet.
    received: LockedBy<Option<Arc<Transaction>>, ProcessInner>,
    /// Set when the thread leaves the driver: replies to it fail from then on.
    dead: Atomic<bool>,
    /// Signalled, under the process's `inner` lock, when the thread has something to read.
    /// Pollers of the file wait on it too.
    #[pin]
    wake: PollCondVar,
}

impl Thread {
    /// Creates the thread for the task with pid `id` in `process`.
    pub(crate) fn new(process: &Process, id: Pid) -> Result<Arc<Self>> {
        let return_error = Work::new_pinned(try_pin_init!(ReturnError {
            code: Atomic::new(BR_OK),
        }))?;
        let reply_error = Work::new_pinned(try_pin_init!(ReturnError {
            code: Atomic::new(BR_OK),
        }))?;
        Arc::pin_init(
            try_pin_init!(Self {
                id,
                looper: Atomic::new(0),
                need_return: Atomic::new(true),
                todo: LockedBy::new(process.inner_lock(), Todo::new()),
                return_error,
                extended_error: LockedBy::new(process.inner_lock(), no_extended_error()),
                reply_error,
                received: LockedBy::new(process.inner_lock(), None),
                dead: Atomic::new(false),
                wake <- new_poll_condvar!("Thread::wake"),
            }),
            GFP_KERNEL,
        )
    }

    fn looper_bits(&self) -> u32 {
        self.looper.load(Relaxed)
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

    /// Whether the thread may take work from the process's todo list now: a looper with no
    /// work of its own and no call to answer.
    fn takes_process_work(&self, inner: &mut ProcessInner) -> bool {
        self.is_looper()
            && self.received.access_mut(inner).is_none()
            && self.todo.access_mut(inner).is_empty()
    }

    /// Whether the thread waits in a read for work of the process (a candidate to wake).
    pub(crate) fn waits_for_process_work(&self, inner: &mut ProcessInner) -> bool {
        self.looper_bits() & looper::WAITING != 0 && self.takes_process_work(inner)
    }

    /// Whether the thread polls and could take work of the process (a poller to wake).
    pub(crate) fn polls_for_process_work(&self, inner: &mut ProcessInner) -> bool {
        self.looper_bits() & looper::POLL != 0 && self.takes_process_work(inner)
    }

    /// Whether a read would return without waiting.
    fn has_work(&self, inner: &mut ProcessInner, process_work: bool) -> bool {
        self.need_return.load(Relaxed)
            || !self.todo.access_mut(inner).is_empty()
            || (process_work && inner.has_process_work())
    }

    /// Wakes the thread: its read, or its pollers.
    pub(crate) fn notify(&self) {
        self.wake.notify_one();
    }

    /// Queues `work` for this thread and wakes it.
    pub(crate) fn push_work(&self, inner: &mut ProcessInner, work: WorkItem) {
        self.todo.access_mut(inner).push_back(work);
        self.notify();
    }

    /// Whether an error return is waiting to be read. The C driver carries out no more of the
    /// thread's commands until it is.
    pub(crate) fn has_pending_error(&self) -> bool {
        self.return_error.item.code.load(Relaxed) != BR_OK
    }

    /// Reports a failed transaction: `code` (`BR_FAILED_REPLY`, `BR_DEAD_REPLY`) is queued
    /// for the thread, and `id` and `errno` are kept for `BINDER_GET_EXTENDED_ERROR`.
    pub(crate) fn transaction_failed(&self, process: &Process, id: u32, code: u32, errno: Error) {
        let mut inner = process.inner_lock().lock();
        *self.extended_error.access_mut(&mut inner) =
            ExtendedError(kernel::uapi::binder_extended_error {
                id,
                command: code,
                param: errno.to_errno(),
            });
        self.return_error.item.code.store(code, Relaxed);
        if let Some(item) = Work::to_queue(&self.return_error) {
            self.push_work(&mut inner, item);
        }
    }

    /// Takes the extended error (`BINDER_GET_EXTENDED_ERROR`), leaving "no error" behind.
    pub(crate) fn take_extended_error(&self, process: &Process) -> ExtendedError {
        let mut inner = process.inner_lock().lock();
        core::mem::replace(
            self.extended_error.access_mut(&mut inner),
            no_extended_error(),
        )
    }

    /// Whether the thread left the driver.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    /// Remembers `call` as the call this thread must answer next.
    pub(crate) fn push_received_call(&self, process: &Process, call: Arc<Transaction>) {
        let mut inner = process.inner_lock().lock();
        let previous = self.received.access_mut(&mut inner).replace(call);
        drop(inner);
        // A thread that must answer a call takes no other; anything here would be a bug.
        if let Some(previous) = previous {
            previous.fail_caller();
        }
    }

    /// Takes the call this thread must answer, if any.
    pub(crate) fn take_received_call(&self, process: &Process) -> Option<Arc<Transaction>> {
        let mut inner = process.inner_lock().lock();
        self.received.access_mut(&mut inner).take()
    }

    /// The thread leaves the driver (`BINDER_THREAD_EXIT`, or its process is released): its
    /// queued work is cancelled, and the caller of a call it never answered reads
    /// `BR_DEAD_REPLY`.
    pub(crate) fn leave(&self, process: &Process) {
        let mut inner = process.inner_lock().lock();
        self.dead.store(true, Relaxed);
        let todo = core::mem::take(self.todo.access_mut(&mut inner));
        let call = self.received.access_mut(&mut inner).take();
        drop(inner);
        work::cancel_all(todo);
        if let Some(call) = call {
            call.fail_caller();
        }
    }

    /// Queues `complete` and `reply` for this thread, which waits for the reply to its call.
    /// Returns `false` if the thread or its process is gone.
    pub(crate) fn deliver_reply(
        &self,
        process: &Process,
        complete: WorkItem,
        reply: WorkItem,
    ) -> bool {
        let mut inner = process.inner_lock().lock();
        if inner.is_dead() || self.is_dead() {
            return false;
        }
        self.push_work(&mut inner, complete);
        self.push_work(&mut inner, reply);
        true
    }

    /// Tells this thread that its call failed on the other side: it reads
    /// `BR_TRANSACTION_COMPLETE` (if `complete` could be allocated) and `code`.
    pub(crate) fn deliver_failure(&self, process: &Process, code: u32, complete: Option<WorkItem>) {
        let mut inner = process.inner_lock().lock();
        if inner.is_dead() || self.is_dead() {
            return;
        }
        if let Some(complete) = complete {
            self.push_work(&mut inner, complete);
        }
        self.reply_error.item.code.store(code, Relaxed);
        if let Some(item) = Work::to_queue(&self.reply_error) {
            self.push_work(&mut inner, item);
        }
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

    /// Called when one of the thread's ioctls ends.
    pub(crate) fn ioctl_done(&self, process: &Process) {
        let _guard = process.inner_lock().lock();
        self.need_return.store(false, Relaxed);
    }

    /// Applies a looper command (`BC_REGISTER_LOOPER`, `BC_ENTER_LOOPER`, `BC_EXIT_LOOPER`).
    ///
    /// Out-of-order use marks the thread invalid rather than failing, as in the C driver.
    pub(crate) fn looper_command(&self, process: &Process, bit: u32) {
        let mut guard = process.inner_lock().lock();
        let requested = bit != looper::REGISTERED || guard.take_thread_request();
        let conflicting = match bit {
            looper::REGISTERED => looper::ENTERED,
            looper::ENTERED => looper::REGISTERED,
            _ => 0,
        };
        if self.looper_bits() & conflicting != 0 || !requested {
            self.set_looper_bits(looper::INVALID, true);
        }
        self.set_looper_bits(bit, true);
    }

    /// The `poll` file operation for this thread: registers its wait queue and reports
    /// whether a read would return at once.
    pub(crate) fn poll(&self, process: &Process, file: &File, table: PollTable<'_>) -> bool {
        let mut guard = process.inner_lock().lock();
        self.set_looper_bits(looper::POLL, true);
        let process_work = self.takes_process_work(&mut guard);
        drop(guard);
        table.register_wait(file, &self.wake);
        let mut guard = process.inner_lock().lock();
        self.has_work(&mut guard, process_work)
    }

    /// The read half of `BINDER_WRITE_READ`: waits for work and writes returns into `out`.
    ///
    /// Without `nonblock` it waits until there is work, the thread is told to return to
    /// userspace, or a signal comes (`EINTR`); with `nonblock` it fails with `EAGAIN` instead
    /// of waiting.
    pub(crate) fn read(&self, process: &Process, out: &mut Returns, nonblock: bool) -> Result {
        if out.is_fresh() {
            out.put_code(BR_NOOP)?;
        }
        self.deliver_work(process, out, nonblock)?;
        if process.inner_lock().lock().request_thread(self) {
            out.overwrite_first_word(BR_SPAWN_LOOPER)?;
        }
        Ok(())
    }

    /// Waits for work and delivers it into `out` until there is no more, no more room, or an
    /// item sends the thread back to userspace.
    fn deliver_work(&self, process: &Process, out: &mut Returns, nonblock: bool) -> Result {
        loop {
            self.wait_for_work(process, nonblock)?;
            loop {
                if !out.has_room_for_return() {
                    return Ok(());
                }
                let Some(work) = self.next_work(process) else {
                    break;
                };
                if work.item.deliver(self, out)? == Flow::Return {
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

    /// Blocks until a read has something to return.
    fn wait_for_work(&self, process: &Process, nonblock: bool) -> Result {
        let mut guard = process.inner_lock().lock();
        loop {
            let process_work = self.takes_process_work(&mut guard);
            if self.has_work(&mut guard, process_work) {
                return Ok(());
            }
            if nonblock {
                return Err(EAGAIN);
            }
            self.set_looper_bits(looper::WAITING, true);
            let interrupted = self.wake.wait_interruptible(&mut guard);
            self.set_looper_bits(looper::WAITING, false);
            if interrupted {
                return Err(EINTR);
            }
        }
    }

    /// Takes the next item to deliver: the thread's own work first, then the process's.
    fn next_work(&self, process: &Process) -> Option<WorkItem> {
        let mut guard = process.inner_lock().lock();
        if let Some(work) = self.todo.access_mut(&mut guard).pop_front() {
            return Some(work);
        }
        if self.takes_process_work(&mut guard) {
            return guard.pop_process_work();
        }
        None
    }
}

/// The extended error of a thread whose transactions have not failed.
fn no_extended_error() -> ExtendedError {
    ExtendedError(kernel::uapi::binder_extended_error {
        id: 0,
        command: BR_OK,
        param: 0,
    })
}

/// A thread's pending error return.
#[pin_data]
struct ReturnError {
    /// The `BR_*` code to deliver; `BR_OK` when there is none.
    code: Atomic<u32>,
}

impl Deliver for ReturnError {
    fn deliver(&self, _thread: &Thread, out: &mut Returns) -> Result<Flow> {
        let code = self.code.load(Relaxed);
        self.code.store(BR_OK, Relaxed);
        if code != BR_OK {
            out.put_code(code)?;
        }
        Ok(Flow::Continue)
    }
}
