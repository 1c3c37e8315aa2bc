// SPDX-License-Identifier: GPL-2.0

//! The binder log files: `state`, `stats`, `transactions`, `transaction_log`,
//! `failed_transaction_log`, `state_hashed`, `transactions_hashed`, and `proc/<pid>`.
//!
//! The same files appear in debugfs (`binder/`, [`crate::debugfs`]) and in a binderfs mount's
//! `binder_logs/`. Each is a read-only seq_file whose whole text is made at once
//! (`single_open`), in the C driver's formats ([`crate::dump`], [`crate::txn_log`]).

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_void, //
    },
    prelude::*,
    seq_file::SeqFile, //
};

use crate::{
    dump::{
        self,
        Pointers, //
    },
    txn_log::{
        self,
        Which, //
    },
};

/// A read-only seq_file log file: its name and file operations.
pub(crate) struct LogFile {
    pub(crate) name: &'static CStr,
    pub(crate) fops: &'static bindings::file_operations,
}

// SAFETY: A `LogFile` only refers to a static name and a static, immutable table of function
// pointers, which any thread may use.
unsafe impl Sync for LogFile {}

/// What one log file prints.
trait Show {
    /// Prints the file's text into `m`; `private` is its inode's `i_private`.
    fn show(m: &SeqFile, private: *mut c_void) -> Result;
}

/// `seq_file` `show`: prints the text of the file `S`.
///
/// # Safety
///
/// Called by the seq_file core with a valid `seq_file` that `open::<S>` set up.
unsafe extern "C" fn show<S: Show>(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: The seq_file core passes a valid seq_file, used by no one else during the call.
    let seq = unsafe { SeqFile::from_raw(m) };
    // SAFETY: `m` is valid; `single_open` stored the inode's `i_private` in `private`.
    let private = unsafe { (*m).private };
    match S::show(seq, private) {
        Ok(()) => 0,
        Err(err) => err.to_errno(),
    }
}

/// `open` of a log file: the text is made by `show::<S>`, all at once.
///
/// # Safety
///
/// Called by the VFS with a valid inode and a file being opened on it.
unsafe extern "C" fn open<S: Show>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: The inode is valid during `open`; its `i_private` is the file's data.
    let private = unsafe { (*inode).i_private };
    // SAFETY: `file` is being opened; `show::<S>` has the signature `single_open` expects,
    // and `single_release` (this table's `release`) frees what it allocates.
    unsafe { bindings::single_open(file, Some(show::<S>), private) }
}

/// A `file_operations` table in a `static`.
#[repr(transparent)]
struct FileOps(bindings::file_operations);

// SAFETY: The table is immutable and holds only function pointers and the module pointer.
unsafe impl Sync for FileOps {}

impl FileOps {
    /// The operations of a read-only log file whose text `S` prints.
    const fn log<S: Show>() -> Self {
        Self(bindings::file_operations {
            owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
            open: Some(open::<S>),
            read: Some(bindings::seq_read),
            llseek: Some(bindings::seq_lseek),
            release: Some(bindings::single_release),
            ..pin_init::zeroed()
        })
    }
}

struct State;
impl Show for State {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        dump::print_state(m, Pointers::Raw)
    }
}

struct StateHashed;
impl Show for StateHashed {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        dump::print_state(m, Pointers::Hashed)
    }
}

struct Stats;
impl Show for Stats {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        dump::print_stats(m)
    }
}

struct Transactions;
impl Show for Transactions {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        dump::print_transactions(m, Pointers::Raw)
    }
}

struct TransactionsHashed;
impl Show for TransactionsHashed {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        dump::print_transactions(m, Pointers::Hashed)
    }
}

struct TransactionLog;
impl Show for TransactionLog {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        txn_log::print(m, Which::All);
        Ok(())
    }
}

struct FailedTransactionLog;
impl Show for FailedTransactionLog {
    fn show(m: &SeqFile, _: *mut c_void) -> Result {
        txn_log::print(m, Which::Failed);
        Ok(())
    }
}

/// `proc/<pid>`; the inode's `i_private` is the pid.
struct ProcFile;
impl Show for ProcFile {
    fn show(m: &SeqFile, private: *mut c_void) -> Result {
        let pid = u32::try_from(private as usize).map_err(|_| EINVAL)?;
        dump::print_proc(m, pid)
    }
}

static STATE_FOPS: FileOps = FileOps::log::<State>();
static STATE_HASHED_FOPS: FileOps = FileOps::log::<StateHashed>();
static STATS_FOPS: FileOps = FileOps::log::<Stats>();
static TRANSACTIONS_FOPS: FileOps = FileOps::log::<Transactions>();
static TRANSACTIONS_HASHED_FOPS: FileOps = FileOps::log::<TransactionsHashed>();
static TRANSACTION_LOG_FOPS: FileOps = FileOps::log::<TransactionLog>();
static FAILED_TRANSACTION_LOG_FOPS: FileOps = FileOps::log::<FailedTransactionLog>();
static PROC_FOPS: FileOps = FileOps::log::<ProcFile>();

/// The files, in the C driver's order.
static LOG_FILES: [LogFile; 7] = [
    LogFile {
        name: c"state",
        fops: &STATE_FOPS.0,
    },
    LogFile {
        name: c"state_hashed",
        fops: &STATE_HASHED_FOPS.0,
    },
    LogFile {
        name: c"stats",
        fops: &STATS_FOPS.0,
    },
    LogFile {
        name: c"transactions",
        fops: &TRANSACTIONS_FOPS.0,
    },
    LogFile {
        name: c"transactions_hashed",
        fops: &TRANSACTIONS_HASHED_FOPS.0,
    },
    LogFile {
        name: c"transaction_log",
        fops: &TRANSACTION_LOG_FOPS.0,
    },
    LogFile {
        name: c"failed_transaction_log",
        fops: &FAILED_TRANSACTION_LOG_FOPS.0,
    },
];

/// The files of binder_logs/ and of debugfs binder/ (state, stats, transactions, ...).
pub(crate) fn log_files() -> &'static [LogFile] {
    &LOG_FILES
}

/// The operations of a proc/<pid> file; its inode's i_private holds the pid (as usize).
pub(crate) fn proc_file_ops() -> &'static bindings::file_operations {
    &PROC_FOPS.0
}
