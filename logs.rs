// SPDX-License-Identifier: GPL-2.0

//! The log files: `binder_logs/` in a `stats=global` binderfs mount, and debugfs `binder/`.
//!
//! STUB: the files exist and read empty. The `logs` engineer's version, with the same API and
//! C's line formats, replaces this one.

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_void, //
    },
    prelude::*,
};

/// A read-only seq_file log file: its name and file operations.
pub(crate) struct LogFile {
    pub(crate) name: &'static CStr,
    pub(crate) fops: &'static bindings::file_operations,
}

// SAFETY: A `LogFile` is immutable; its file operations hold only function pointers and the
// module pointer, which any thread may use.
unsafe impl Sync for LogFile {}

/// The files of `binder_logs/` and of debugfs `binder/` (state, stats, transactions, ...).
pub(crate) fn log_files() -> &'static [LogFile] {
    &LOG_FILES
}

/// The operations of a `proc/<pid>` file; its inode's `i_private` holds the pid (as `usize`).
pub(crate) fn proc_file_ops() -> &'static bindings::file_operations {
    &EMPTY_FOPS.0
}

static LOG_FILES: [LogFile; 7] = [
    LogFile {
        name: c"state",
        fops: &EMPTY_FOPS.0,
    },
    LogFile {
        name: c"state_hashed",
        fops: &EMPTY_FOPS.0,
    },
    LogFile {
        name: c"stats",
        fops: &EMPTY_FOPS.0,
    },
    LogFile {
        name: c"transactions",
        fops: &EMPTY_FOPS.0,
    },
    LogFile {
        name: c"transactions_hashed",
        fops: &EMPTY_FOPS.0,
    },
    LogFile {
        name: c"transaction_log",
        fops: &EMPTY_FOPS.0,
    },
    LogFile {
        name: c"failed_transaction_log",
        fops: &EMPTY_FOPS.0,
    },
];

/// Makes a C-ABI table usable in a `static`.
#[repr(transparent)]
struct FileOps(bindings::file_operations);

// SAFETY: The table is immutable and only holds function pointers and the module pointer.
unsafe impl Sync for FileOps {}

/// A seq_file that shows nothing.
static EMPTY_FOPS: FileOps = FileOps(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(empty_open),
    read_iter: Some(bindings::seq_read_iter),
    llseek: Some(bindings::seq_lseek),
    release: Some(bindings::single_release),
    ..pin_init::zeroed()
});

/// Prints nothing.
///
/// # Safety
///
/// Called by the seq_file core.
unsafe extern "C" fn empty_show(_m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    0
}

/// `open`: a single-record seq_file.
///
/// # Safety
///
/// Called by the VFS with a file being opened.
unsafe extern "C" fn empty_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `file` is being opened; `inode` is its inode.
    unsafe { bindings::single_open(file, Some(empty_show), (*inode).i_private) }
}
