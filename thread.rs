// SPDX-License-Identifier: GPL-2.0

//! Threads: the tasks of a process that have called into the driver.
//!
//! As in the C driver, a thread comes into being the first time a task of the process makes
//! an ioctl (or polls) on the device, and lives until `BINDER_THREAD_EXIT` or until the
//! process closes the device.

use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
    task::Pid, //
};

/// A thread of a binder process.
pub(crate) struct Thread {
    /// The task's pid (a thread id, in the init pid namespace).
    pub(crate) id: Pid,
    /// Whether the thread must go back to userspace instead of waiting for work.
    ///
    /// Set when the thread is created and when a descriptor of the file is closed (`flush`);
    /// cleared at the end of each of the thread's ioctls. `poll` reports it as readable, as
    /// the C driver's `looper_need_return` is.
    need_return: Atomic<bool>,
}

impl Thread {
    /// Creates the thread for the task with pid `id`.
    pub(crate) fn new(id: Pid) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                id,
                need_return: Atomic::new(true),
            },
            GFP_KERNEL,
        )?)
    }

    /// Whether a read by this thread would return at once.
    pub(crate) fn has_work(&self) -> bool {
        self.need_return.load(Relaxed)
    }

    /// Tells the thread to return to userspace (`flush`).
    pub(crate) fn set_need_return(&self) {
        self.need_return.store(true, Relaxed);
    }

    /// Called when one of the thread's ioctls ends.
    pub(crate) fn ioctl_done(&self) {
        self.need_return.store(false, Relaxed);
    }
}
