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
//! ([`close_array_fds`]). Their files are released on the receiver's way back to userspace (a
//! task work, as in C), so that a file cannot be freed while the ioctl that closes it, or an
//! `fdget` in the same task, still looks at it.

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
    sync::aref::ARef,
    task::Task,
};

use crate::{
    allocation::RangeView,
    first_inline::FirstInline,
    lazy_vec::LazyVec, //
};

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
        // SAFETY: The current syscall is an ioctl (the sender's `BINDER_WRITE_READ`), which
        // uses `fdget`, not `fdget_pos`; so this thread has no `fdget_pos` active.
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        kernel::security::binder_transfer_file(from, to, &file).map_err(|_| EPERM)?;
        Ok(Self {
            file,
            offset,
            in_array,
        })
    }
}

/// The fds the reader got for the fd arrays of a buffer, which the driver closes when the
/// buffer is freed. Boxed, and only when there are some: few buffers have fd arrays, and the
/// buffer keeps this for as long as the range is allocated.
pub(crate) type ArrayFds = Option<KBox<KVec<u32>>>;

/// The fds reserved in the reading task for a transaction's files, with their numbers already
/// written into the buffer; [`Reserved::install`] makes them the files'.
///
/// Dropped without installing, it gives the numbers back and drops the files: the receiver
/// never learnt of them.
pub(crate) struct Reserved {
    slots: FirstInline<(FileDescriptorReservation, ARef<File>)>,
    /// The fds reserved for elements of fd arrays.
    array_fds: ArrayFds,
}

impl Reserved {
    /// Reserves an fd in the current task (the reader) for each of `files`, and writes its
    /// number into the buffer seen through `view`. `debug_id` is the transaction's, for the
    /// trace events.
    ///
    /// Fails with `ENOMEM` when the task cannot have another fd (the C driver's errno, whatever
    /// the reason), or `EINVAL` if the buffer cannot be written.
    pub(crate) fn new(
        files: FirstInline<FileTransfer>,
        view: &RangeView,
        debug_id: u32,
    ) -> Result<Self> {
        let mut slots = FirstInline::with_room(files.len())?;
        let mut array_fds = LazyVec::new();
        for transfer in files {
            let reservation =
                FileDescriptorReservation::get_unused_fd_flags(O_CLOEXEC).map_err(|_| ENOMEM)?;
            let number = reservation.reserved_fd();
            view.write(transfer.offset, &number.to_ne_bytes())
                .map_err(|_| EINVAL)?;
            crate::trace::binder_transaction_fd_recv(
                debug_id as i32,
                number as i32,
                transfer.offset,
            );
            if transfer.in_array {
                array_fds.push(number, GFP_KERNEL)?;
            }
            // Cannot fail: there is room for every file.
            if slots.push((reservation, transfer.file)).is_err() {
                return Err(ENOMEM);
            }
        }
        // The list has memory only after a push: `None` unless the buffer has array fds.
        let array_fds = array_fds
            .into_vec()
            .map(|fds| KBox::new(fds, GFP_KERNEL))
            .transpose()?;
        Ok(Self { slots, array_fds })
    }

    /// Installs every file at its reserved fd. Returns the fds of array elements, which the
    /// driver closes when the buffer is freed.
    pub(crate) fn install(self) -> ArrayFds {
        for (reservation, file) in self.slots {
            reservation.fd_install(file);
        }
        self.array_fds
    }
}

/// Closes `fds` in the current task, the owner of a buffer being freed: the fds of its fd
/// arrays, which the driver installed when the buffer was read.
///
/// Each fd leaves the task's table at once, as with `close()`, but its file is released only
/// when the task returns to userspace: the last `fput` from a user task hands the release to
/// a task work. That is the guarantee of C's deferred close (which pins the file with a task
/// work of its own): the ioctl that closes the fd, or an `fdget` in it, never sees the file
/// freed under it. Unlike C's, the task work is the VFS's, not module code, so the module may
/// go before it runs. As in C, an fd that is not open (userspace closed it already) is skipped.
pub(crate) fn close_array_fds(fds: &[u32]) {
    let current = Task::current_raw();
    for &fd in fds {
        // SAFETY: Any number may be passed; it is looked up in the current task's table.
        let file = unsafe { bindings::file_close_fd(fd) };
        if file.is_null() {
            continue;
        }
        // SAFETY: `file_close_fd` handed over the table's reference, which `filp_close` uses
        // up after flushing (locks, dnotify), as `close()` does. `current` is the running
        // task, and its `files` the table the fd was in.
        unsafe { bindings::filp_close(file, (*current).files.cast()) };
    }
}
