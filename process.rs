// SPDX-License-Identifier: GPL-2.0

//! Processes: what one `open()` of a binder device creates (`binder_proc` in the C driver).
//!
//! A process is owned by its open file. It remembers who opened the device (thread group,
//! address space, credentials), keeps its threads, and owns its receive buffer.

use kernel::{
    cred::Credential,
    fs::File,
    mm::{
        virt::VmaNew,
        Mm, //
    },
    prelude::*,
    rbtree::{
        self,
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        new_spinlock,
        Arc,
        SpinLock, //
    },
    task::{
        Pid,
        Task, //
    },
};

use crate::{
    allocation::ReceiveBuffer,
    context::Context,
    defs::FlatBinderObject,
    refs::{
        InvalidRef,
        Refs,
        MANAGER_HANDLE, //
    },
    thread::Thread, //
};

pub(crate) use crate::refs::RefChange;

/// A process's connection to one binder device.
#[pin_data]
pub(crate) struct Process {
    /// The device's context.
    pub(crate) context: Arc<Context>,
    /// The leader of the thread group that opened the device.
    task: ARef<Task>,
    /// The address space of the opener; the receive buffer can only be mapped into it.
    mm: Option<ARef<Mm>>,
    /// The credentials the device was opened with (`file->f_cred`).
    cred: ARef<Credential>,
    /// Threads, handles and settings; see [`ProcessInner`]. Threads wait for work under it.
    #[pin]
    inner: SpinLock<ProcessInner>,
    /// Where this process receives transactions.
    #[pin]
    pub(crate) buffer: ReceiveBuffer,
}

/// The mutable state of a [`Process`], guarded by [`Process::inner`].
pub(crate) struct ProcessInner {
    /// The threads that have called into the driver, by pid.
    threads: RBTree<Pid, Arc<Thread>>,
    /// The handles of the process.
    refs: Refs,
    /// The most threads the driver may ask userspace to start (`BINDER_SET_MAX_THREADS`).
    max_threads: u32,
    /// Threads asked for with `BR_SPAWN_LOOPER` that have not registered yet.
    requested_threads: u32,
    /// Threads that registered after being asked for.
    requested_threads_started: u32,
}

impl ProcessInner {
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
    /// Creates the process for an `open()` of the device of `context` by the current task.
    pub(crate) fn open(context: Arc<Context>, file: &File) -> Result<Arc<Self>> {
        let current = kernel::current!();
        let task = ARef::from(current.group_leader());
        let mm = current.mm().map(|mm| ARef::from(&**mm));
        let cred = ARef::from(file.cred());
        Arc::pin_init(
            try_pin_init!(Self {
                context,
                task,
                mm,
                cred,
                inner <- new_spinlock!(
                    ProcessInner {
                        threads: RBTree::new(),
                        refs: Refs::new(),
                        max_threads: 0,
                        requested_threads: 0,
                        requested_threads_started: 0,
                    },
                    "Process::inner"
                ),
                buffer <- ReceiveBuffer::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Tears the process down when its file is released.
    pub(crate) fn release(self: Arc<Self>) {
        // All of these are dropped here, after the locks that guarded them are released.
        let _manager = self.context.take_manager_of(&self);
        let mut inner = self.inner.lock();
        let _threads = core::mem::take(&mut inner.threads);
        let _refs = inner.refs.take_all();
        drop(inner);
    }

    /// The lock that guards the process's threads, handles and settings.
    pub(crate) fn inner_lock(&self) -> &SpinLock<ProcessInner> {
        &self.inner
    }

    /// The credentials the device was opened with.
    pub(crate) fn cred(&self) -> &Credential {
        &self.cred
    }

    /// Returns the calling task's thread, creating it on its first call.
    pub(crate) fn current_thread(&self) -> Result<Arc<Thread>> {
        let id = kernel::current!().pid();
        if let Some(thread) = self.inner.lock().threads.get(&id) {
            return Ok(thread.clone());
        }
        // Allocate outside the spinlock, then insert unless another call of the same task
        // (through a second file descriptor to this file) got there first.
        let new_thread = Thread::new(id)?;
        let reservation = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut inner = self.inner.lock();
        match inner.threads.entry(id) {
            rbtree::Entry::Occupied(entry) => Ok(entry.get().clone()),
            rbtree::Entry::Vacant(entry) => Ok(entry.insert(new_thread, reservation).clone()),
        }
    }

    /// Forgets `thread` (`BINDER_THREAD_EXIT`); its next ioctl creates a new one.
    pub(crate) fn remove_thread(&self, thread: &Thread) {
        let removed = self.inner.lock().threads.remove(&thread.id);
        drop(removed);
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
            if let Some(manager) = self.context.manager_node() {
                if manager.is_owned_by(self) {
                    pr_info!("context manager tried to take a reference to itself\n");
                    return Err(EINVAL);
                }
                let reservation = RBTreeNodeReservation::new(GFP_KERNEL)?;
                self.inner
                    .lock()
                    .refs
                    .take_manager_ref(manager, change.strong, reservation);
                return Ok(());
            }
        }
        let mut inner = self.inner.lock();
        let removed = inner.refs.change(handle, change);
        drop(inner);
        match removed {
            Ok(node_ref) => drop(node_ref),
            Err(InvalidRef) => pr_debug!("reference change on invalid handle {}\n", handle),
        }
        Ok(())
    }

    /// Makes this process the context manager of its device.
    pub(crate) fn set_as_manager(self: &Arc<Self>, object: Option<&FlatBinderObject>) -> Result {
        self.context.set_manager(self, object)
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
        self.buffer.map(vma, self.mm.as_deref())
    }
}
