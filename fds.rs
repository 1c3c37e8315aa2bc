// SPDX-License-Identifier: GPL-2.0

//! File descriptors in transactions: `BINDER_TYPE_FD` objects, and the fds in a
//! `BINDER_TYPE_FDA` array.
//!
//! What travels is the open file, not the number. The sender's file is taken when the
//! transaction is sent ([`FileTransfer::take`]); the receiver gets a new fd for it, with
//! `O_CLOEXEC`, only when one of its threads reads the transaction ([`Reserved`]), as in the C
//! driver. A transaction that is never read simply drops its files: a receiver that dies or
//! never reads gains no fd, and no file is left behind.
//!
//! The fds of an array belong to the buffer: the driver closes them when the receiver frees it
//! ([`close_array_fds`]). The close is finished on the receiver's way back to userspace (a task
//! work, as in C), so that the file cannot be freed while the ioctl that closes it, or another
//! `fdget` user in the same task, still looks at it.

use kernel::{
    bindings,
    cred::Credential,
    fs::{
        file::{
            flags::O_CLOEXEC,
            FileDescriptorReservation,
            LocalFile, //
        },
        File,
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
    },
    task::Task,
};

use crate::allocation::RangeView;

/// A file on its way to the receiver of a transaction.
pub(crate) struct FileTransfer {
    file: ARef<File>,
    /// Where in the buffer the receiver's fd number goes (a `u32`).
    offset: usize,
    /// The fd is an element of an fd array, which the driver closes with the buffer.
    in_array: bool,
}

impl FileTransfer {
    /// Takes the sender's file `fd`, to be installed at `offset` in the buffer of the receiver.
    ///
    /// `from` and `to` are the credentials of the sending and the receiving process, for the
    /// LSM's say. Fails as C does: `EBADF` for a file descriptor that is not open, `EPERM` if
    /// the LSM refuses.
    pub(crate) fn take(
        fd: u32,
        offset: usize,
        in_array: bool,
        from: &Credential,
        to: &Credential,
    ) -> Result<Self> {
        let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: This runs in the sender's `BINDER_WRITE_READ` ioctl, which holds its binder
        // file through `fdget`, never `fdget_pos`; so this thread has no `fdget_pos` active.
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        kernel::security::binder_transfer_file(from, to, &file).map_err(|_| EPERM)?;
        Ok(Self {
            file,
            offset,
            in_array,
        })
    }
}

/// The fds reserved in the reading task for a transaction's files, with their numbers already
/// written into the buffer; [`Reserved::install`] makes them the files'.
///
/// Dropped without installing, it gives the numbers back and drops the files: the receiver
/// never learnt of them.
pub(crate) struct Reserved {
    slots: KVec<(FileDescriptorReservation, ARef<File>)>,
    /// The fds reserved for elements of fd arrays.
    array_fds: KVec<u32>,
}

impl Reserved {
    /// Reserves an fd in the current task (the reader) for each of `files`, and writes its
    /// number into the buffer seen through `view`.
    ///
    /// Fails with `ENOMEM` when the task cannot have another fd (the C driver's errno, whatever
    /// the reason), or `EINVAL` if the buffer cannot be written.
    pub(crate) fn new(files: KVec<FileTransfer>, view: &RangeView) -> Result<Self> {
        let mut slots = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        let mut array_fds = KVec::new();
        for transfer in files {
            let reservation =
                FileDescriptorReservation::get_unused_fd_flags(O_CLOEXEC).map_err(|_| ENOMEM)?;
            let number = reservation.reserved_fd();
            view.write(transfer.offset, &number.to_ne_bytes())
                .map_err(|_| EINVAL)?;
            if transfer.in_array {
                array_fds.push(number, GFP_KERNEL)?;
            }
            slots.push((reservation, transfer.file), GFP_KERNEL)?;
        }
        Ok(Self { slots, array_fds })
    }

    /// Installs every file at its reserved fd. Returns the fds of array elements, which the
    /// driver closes when the buffer is freed.
    pub(crate) fn install(self) -> KVec<u32> {
        for (reservation, file) in self.slots {
            reservation.fd_install(file);
        }
        self.array_fds
    }
}

/// How many deferred closes are queued and not yet run; the module waits for none to be left
/// before it goes, since their callback is module code.
static PENDING_CLOSES: Atomic<usize> = Atomic::new(0);

/// A close of an fd array element, finished when the task returns to userspace.
#[repr(C)]
struct DeferredClose {
    /// The task work; first, so that the callback finds the whole from its address.
    work: bindings::callback_head,
    /// The file, with the reference taken for the task work.
    file: *mut bindings::file,
}

/// Closes `fds` in the current task, the owner of a buffer being freed: the fds of its fd
/// arrays, which the driver installed when the buffer was read.
///
/// Each fd leaves the task's table now, as with `close()`; the driver keeps the file until
/// the task returns to userspace. As in C, an fd that is not open (userspace closed it
/// already) is skipped, and so is one whose close cannot be set up for lack of memory.
pub(crate) fn close_array_fds(fds: &[u32]) {
    for &fd in fds {
        close_deferred(fd);
    }
}

fn close_deferred(fd: u32) {
    let Ok(close) = KBox::new(
        DeferredClose {
            work: bindings::callback_head {
                next: core::ptr::null_mut(),
                func: Some(run_deferred_close),
            },
            file: core::ptr::null_mut(),
        },
        GFP_KERNEL,
    ) else {
        pr_debug!("no memory to close fd {}\n", fd);
        return;
    };
    // SAFETY: Any number may be passed; it is looked up in the current task's table.
    let file = unsafe { bindings::file_close_fd(fd) };
    if file.is_null() {
        return;
    }
    let current = Task::current_raw();
    // SAFETY: `file_close_fd` handed over the table's reference, so `file` is valid. One more
    // reference is taken for the task work, and `filp_close` (flush, locks) uses up the
    // table's. `current` is the running task, whose `files` was the table.
    unsafe {
        bindings::get_file(file);
        bindings::filp_close(file, (*current).files.cast());
    }
    let close = KBox::into_raw(close);
    // SAFETY: `close` came from `KBox::into_raw`, so it is valid and ours.
    unsafe { (*close).file = file };
    PENDING_CLOSES.fetch_add(1, Relaxed);
    // SAFETY: `close` stays valid until `run_deferred_close` takes it back; its `work` has its
    // callback set. `current` is the running task.
    let queued = unsafe {
        bindings::task_work_add(
            current,
            &raw mut (*close).work,
            bindings::task_work_notify_mode_TWA_RESUME,
        )
    };
    if queued != 0 {
        // The task is exiting and runs no more task work: nothing can use the file in its
        // name any more, so the reference goes now.
        // SAFETY: The work was not queued, so nothing else has `close`.
        unsafe { run_deferred_close(&raw mut (*close).work) };
    }
}

/// The task work of a [`DeferredClose`]: drops the file and frees the close.
///
/// # Safety
///
/// `work` must be the `work` of a [`DeferredClose`] made by [`close_deferred`] and given up by
/// it, run once.
unsafe extern "C" fn run_deferred_close(work: *mut bindings::callback_head) {
    // SAFETY: `work` is the first field of a `#[repr(C)]` `DeferredClose` that came from
    // `KBox::into_raw`, and the caller gives it up.
    let close = unsafe { KBox::from_raw(work.cast::<DeferredClose>()) };
    // SAFETY: The close owns one reference on the file.
    unsafe { bindings::fput(close.file) };
    drop(close);
    PENDING_CLOSES.fetch_sub(1, Release);
}

/// Waits until every deferred close has run, for the module's unload.
pub(crate) fn wait_for_deferred_closes() {
    while PENDING_CLOSES.load(Acquire) != 0 {
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
    }
}
