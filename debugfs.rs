// SPDX-License-Identifier: GPL-2.0

//! The debugfs directory `binder/`: the log files ([`crate::logs`]) and `proc/<pid>`.
//!
//! As in the C driver, `binder/` is made when the module is loaded (if debugfs is there), a
//! process's `proc/<pid>` when it opens a device, unless another open file of the same
//! thread group made one already (it shows every process of the pid), and removed when that
//! file is closed. Unloading removes the directory with everything in it. Debugfs failures
//! are not errors: the driver works without its files.
//!
//! The `proc/` directory's dentry is a global (`PROC_DIR`), published by [`Debugfs::create`]
//! and withdrawn by its drop, after every device is gone and so every file is closed.

use kernel::{
    bindings,
    ffi::c_void,
    prelude::*,
    str::CString,
    sync::atomic::{
        Acquire,
        Atomic,
        Relaxed,
        Release, //
    },
    task::Pid,
};

use crate::logs;

/// The `binder/proc` directory, null when there is none.
static PROC_DIR: Atomic<*mut bindings::dentry> = Atomic::new(core::ptr::null_mut());

/// Whether `dentry` is one debugfs made (not null, not an error pointer).
fn is_made(dentry: *mut bindings::dentry) -> bool {
    !dentry.is_null() && kernel::error::from_err_ptr(dentry).is_ok()
}

/// The module's `binder/` directory in debugfs; dropping it removes the directory.
pub(crate) struct Debugfs {
    root: *mut bindings::dentry,
}

// SAFETY: The dentry pointer is only handed to debugfs, which any thread may call.
unsafe impl Send for Debugfs {}
// SAFETY: As above; `&Debugfs` gives no access to the pointer.
unsafe impl Sync for Debugfs {}

impl Debugfs {
    /// Makes `binder/` with the log files and `proc/`; without debugfs, nothing.
    pub(crate) fn create() -> Self {
        #[cfg(CONFIG_DEBUG_FS)]
        {
            // SAFETY: The name is a valid C string; a null parent is the debugfs root.
            let root = unsafe {
                bindings::debugfs_create_dir(c"binder".as_char_ptr(), core::ptr::null_mut())
            };
            if !is_made(root) {
                return Self {
                    root: core::ptr::null_mut(),
                };
            }
            for file in logs::log_files() {
                // SAFETY: `root` is a directory debugfs made; the name and the operations are
                // static. The files go with `root`, in `drop`.
                unsafe {
                    bindings::debugfs_create_file_full(
                        file.name.as_char_ptr(),
                        0o444,
                        root,
                        core::ptr::null_mut(),
                        core::ptr::null(),
                        file.fops,
                    )
                };
            }
            // SAFETY: As above.
            let proc_dir = unsafe { bindings::debugfs_create_dir(c"proc".as_char_ptr(), root) };
            if is_made(proc_dir) {
                PROC_DIR.store(proc_dir, Release);
            }
            Self { root }
        }
        #[cfg(not(CONFIG_DEBUG_FS))]
        Self {
            root: core::ptr::null_mut(),
        }
    }
}

impl Drop for Debugfs {
    fn drop(&mut self) {
        PROC_DIR.store(core::ptr::null_mut(), Relaxed);
        #[cfg(CONFIG_DEBUG_FS)]
        if is_made(self.root) {
            // SAFETY: `root` is the directory `create` made, removed once, here, with
            // everything in it; open files of it keep working until closed (debugfs's own
            // protection) and hold the module.
            unsafe { bindings::debugfs_remove(self.root) };
        }
    }
}

/// A process's `binder/proc/<pid>` file, if it made one.
pub(crate) struct ProcEntry {
    dentry: Atomic<*mut bindings::dentry>,
}

impl ProcEntry {
    /// No file yet.
    pub(crate) fn new() -> Self {
        Self {
            dentry: Atomic::new(core::ptr::null_mut()),
        }
    }

    /// Makes `binder/proc/<pid>`, if there is a `proc/` directory.
    pub(crate) fn create(&self, pid: Pid) {
        let dir = PROC_DIR.load(Acquire);
        if dir.is_null() {
            return;
        }
        let Ok(name) = CString::try_from_fmt(fmt!("{}", pid)) else {
            return;
        };
        #[cfg(CONFIG_DEBUG_FS)]
        {
            // SAFETY: `dir` is the live `proc/` directory (it goes only at unload, when no
            // binder file is open, and this runs in an open); the name is a valid C string
            // that debugfs copies; the pid fits in the data pointer, which is only read back
            // as a number.
            let dentry = unsafe {
                bindings::debugfs_create_file_full(
                    name.as_char_ptr(),
                    0o444,
                    dir,
                    pid as usize as *mut c_void,
                    core::ptr::null(),
                    logs::proc_file_ops(),
                )
            };
            if is_made(dentry) {
                self.dentry.store(dentry, Relaxed);
            }
        }
    }

    /// Removes the file, if the process made one; called when its file is closed.
    pub(crate) fn remove(&self) {
        let dentry = self.dentry.xchg(core::ptr::null_mut(), Relaxed);
        #[cfg(CONFIG_DEBUG_FS)]
        if is_made(dentry) {
            // SAFETY: The file was made by `create` and is removed once, as the pointer was
            // taken out.
            unsafe { bindings::debugfs_remove(dentry) };
        }
    }
}
