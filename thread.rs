// SPDX-License-Identifier: GPL-2.0

//! Threads: the tasks of a process that have called into the driver.
//!
//! As in the C driver, a thread comes into being the first time a task of the process makes
//! an ioctl (or polls) on the device, and lives until `BINDER_THREAD_EXIT` or until the
//! process closes the device. Its state changes under its process's `inner` lock, so that
//! waking a thread and deciding that it has something to do happen under one lock.

use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_condvar,
        Arc,
        CondVar, //
    },
    task::Pid,
};

use crate::{
    defs::BR_NOOP,
    process::{
        Process,
        ProcessInner, //
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
}

/// A thread of a binder process.
///
/// `looper` and `need_return` change only under the process's `inner` lock; they are atomics
/// so that they can live here, next to the condition variable the lock goes with.
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
    /// Signalled, under the process's `inner` lock, when the thread has something to read.
    #[pin]
    wake: CondVar,
}

impl Thread {
    /// Creates the thread for the task with pid `id`.
    pub(crate) fn new(id: Pid) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                id,
                looper: Atomic::new(0),
                need_return: Atomic::new(true),
                wake <- new_condvar!("Thread::wake"),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether a read by this thread would return at once.
    pub(crate) fn has_work(&self) -> bool {
        self.need_return.load(Relaxed)
    }

    /// Tells the thread to return to userspace (`flush`), waking it if it waits for work.
    ///
    /// The caller holds the process's `inner` lock, as `_locked` says.
    pub(crate) fn set_need_return(&self, _locked: &ProcessInner) {
        self.need_return.store(true, Relaxed);
        if self.looper.load(Relaxed) & looper::WAITING != 0 {
            self.wake.notify_one();
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
        let mut state = self.looper.load(Relaxed) | bit;
        if state & conflicting != 0 || !requested {
            state |= looper::INVALID;
        }
        self.looper.store(state, Relaxed);
    }

    /// The read half of `BINDER_WRITE_READ`: waits for work and writes returns into `out`.
    ///
    /// Nothing is queued for threads yet; the read returns when the thread is told to go
    /// back to userspace, fails with `EAGAIN` when `nonblock` is set and there is nothing to
    /// return, and with `EINTR` when a signal arrives while it waits.
    pub(crate) fn read(&self, process: &Process, out: &mut Returns, nonblock: bool) -> Result {
        if out.is_fresh() {
            out.put_code(BR_NOOP)?;
        }
        let mut guard = process.inner_lock().lock();
        loop {
            if self.need_return.load(Relaxed) {
                return Ok(());
            }
            if nonblock {
                return Err(EAGAIN);
            }
            self.looper
                .store(self.looper.load(Relaxed) | looper::WAITING, Relaxed);
            let interrupted = self.wake.wait_interruptible(&mut guard);
            self.looper
                .store(self.looper.load(Relaxed) & !looper::WAITING, Relaxed);
            if interrupted {
                return Err(EINTR);
            }
        }
    }
}
