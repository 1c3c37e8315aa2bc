// SPDX-License-Identifier: GPL-2.0

//! The deferred release of closed processes.
//!
//! When the last reference to a binder file goes, its process is torn down: nodes die and
//! notify their holders, handles are dropped, callers waiting on it are failed, its pages are
//! freed. The C driver does that from a workqueue rather than in the task that closed the file,
//! which is often a task being killed; so does this module. The work runs on a workqueue of
//! the module's own, so that unloading the module can wait for every release still queued
//! (`destroy_workqueue` drains it) before the census counts what is left.
//!
//! The workqueue is per-CPU, as the system workqueue that C's `schedule_work` uses: a release
//! runs on the CPU of the task that closed the file. An unbound one ran it on another CPU,
//! whose lazily kept address spaces then cost cross-CPU TLB flushes to the processes that
//! forked and exited there (the teardown benchmark measured eight times C's flush IPIs).
//!
//! The kernel crate has no owned workqueue type, so [`ReleaseQueue`] wraps the C calls.

use core::ptr::NonNull;

use kernel::{
    bindings,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Arc,
    },
    workqueue::{
        self,
        impl_has_work,
        Queue, //
    },
};

use crate::process::Process;

/// The queue of the loaded module, published for [`release_later`]; null while there is
/// none (before init finished and after unload began).
static QUEUE: Atomic<*mut bindings::workqueue_struct> = Atomic::new(core::ptr::null_mut());

/// The module's workqueue for releases. Dropping it waits for the releases still queued, then
/// frees it.
///
/// # Invariants
///
/// `wq` was returned by `alloc_workqueue` and is destroyed only by `Drop`.
pub(crate) struct ReleaseQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for ReleaseQueue {}
// SAFETY: Queueing work is safe from any thread at once.
unsafe impl Sync for ReleaseQueue {}

impl ReleaseQueue {
    /// Allocates the workqueue and publishes it for [`release_later`].
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: The name is a NUL-terminated format string without conversions, so no
        // variadic argument is read.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                kernel::c_str!("rust_binder_release").as_char_ptr(),
                bindings::wq_flags_WQ_PERCPU,
                0,
            )
        };
        let wq = NonNull::new(wq).ok_or(ENOMEM)?;
        QUEUE.store(wq.as_ptr(), Release);
        // INVARIANT: `wq` came from `alloc_workqueue` just now.
        Ok(Self { wq })
    }
}

impl Drop for ReleaseQueue {
    fn drop(&mut self) {
        QUEUE.store(core::ptr::null_mut(), Release);
        // SAFETY: By the type invariant `wq` is a live workqueue that nothing else destroys;
        // no file of the module is open any more, so nothing queues on it now.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}

/// Releases `process` from the module's workqueue, or right here if there is none.
pub(crate) fn release_later(process: Arc<Process>) {
    let wq = QUEUE.load(Acquire);
    if wq.is_null() {
        process.release();
        return;
    }
    // SAFETY: The queue is published only while it lives; it is destroyed once every file
    // is closed, and this runs for a file being closed.
    let queue = unsafe { Queue::from_raw(wq) };
    if let Err(process) = queue.enqueue(process) {
        // Queued already: cannot happen, a file is released once. Do it here rather than
        // never.
        process.release();
    }
}

impl_has_work! {
    impl HasWork<Self> for Process { self.release_work }
}

impl workqueue::WorkItem for Process {
    type Pointer = Arc<Process>;

    fn run(this: Arc<Process>) {
        this.release();
    }
}
