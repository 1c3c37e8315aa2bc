// SPDX-License-Identifier: GPL-2.0

//! Decoding of the binder ioctls.
//!
//! Each ioctl's argument is copied in or out here, with the errno the C driver gives when that
//! copy fails (`EINVAL` for most of the small ioctls, not `EFAULT`), and the work is left to the
//! process, thread and context objects.

use kernel::{
    fs::{
        file,
        File, //
    },
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    defs::*,
    process::Process,
    thread::Thread,
    write_read, //
};

/// Carries out the ioctl `cmd` with argument `arg` for `process`.
pub(crate) fn dispatch(
    process: ArcBorrow<'_, Process>,
    file: &File,
    cmd: u32,
    arg: usize,
) -> Result<isize> {
    crate::trace::binder_ioctl(cmd, arg as kernel::ffi::c_ulong);
    let result = dispatch_traced(process, file, cmd, arg);
    crate::trace::ioctl_done(&result);
    result
}

/// [`dispatch`] between its two trace events.
fn dispatch_traced(
    process: ArcBorrow<'_, Process>,
    file: &File,
    cmd: u32,
    arg: usize,
) -> Result<isize> {
    // A stopped driver (`stop_on_user_error`) holds every ioctl here, as C does.
    crate::debug::wait_while_stopped()?;
    // Every ioctl makes the calling task a binder thread first, as in the C driver.
    let thread = process.current_thread()?;
    let result = handle(process, &thread, file, cmd, arg);
    thread.ioctl_done();
    crate::debug::ioctl_end(&process, &thread, cmd, arg, &result);
    result
}

/// Carries out one ioctl for `thread` of `process`.
fn handle(
    process: ArcBorrow<'_, Process>,
    thread: &Arc<Thread>,
    file: &File,
    cmd: u32,
    arg: usize,
) -> Result<isize> {
    match cmd {
        BINDER_WRITE_READ => {
            let nonblock = file.flags() & file::flags::O_NONBLOCK != 0;
            write_read::write_read(process, thread, arg, nonblock)?;
        }
        BINDER_VERSION => {
            let version = BinderVersion(kernel::uapi::binder_version {
                protocol_version: BINDER_CURRENT_PROTOCOL_VERSION,
            });
            write_arg(arg, &version).map_err(|_| EINVAL)?;
        }
        BINDER_SET_MAX_THREADS => {
            let max = read_arg::<u32>(arg).map_err(|_| EINVAL)?;
            process.set_max_threads(max);
        }
        BINDER_SET_CONTEXT_MGR => Arc::from(process).set_as_manager(None)?,
        BINDER_SET_CONTEXT_MGR_EXT => {
            let object = read_arg::<FlatBinderObject>(arg).map_err(|_| EINVAL)?;
            Arc::from(process).set_as_manager(Some(&object))?;
        }
        BINDER_THREAD_EXIT => process.remove_thread(thread),
        BINDER_GET_EXTENDED_ERROR => {
            let error = thread.take_extended_error(&process);
            write_arg(arg, &error)?;
        }
        BINDER_GET_NODE_DEBUG_INFO => {
            let mut info = read_arg::<NodeDebugInfo>(arg)?;
            process.node_debug_info(&mut info);
            write_arg(arg, &info)?;
        }
        BINDER_GET_NODE_INFO_FOR_REF => {
            let mut info = read_arg::<NodeInfoForRef>(arg)?;
            process.node_info_for_ref(&mut info)?;
            write_arg(arg, &info)?;
        }
        BINDER_ENABLE_ONEWAY_SPAM_DETECTION => {
            let enable = read_arg::<u32>(arg)?;
            process.enable_oneway_spam_detection(enable != 0);
        }
        BINDER_FREEZE => {
            let info = read_arg::<FreezeInfo>(arg)?;
            return crate::freeze::freeze(&info);
        }
        BINDER_GET_FROZEN_INFO => {
            let mut info = read_arg::<FrozenStatusInfo>(arg)?;
            crate::freeze::frozen_info(&mut info)?;
            write_arg(arg, &info)?;
        }
        // Unknown ioctls, and BINDER_SET_IDLE_TIMEOUT/_PRIORITY, which the uapi header defines
        // but no binder driver ever implemented.
        _ => return Err(EINVAL),
    }
    Ok(0)
}

/// Copies an ioctl argument of type `T` in from userspace.
fn read_arg<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .reader()
        .read()
}

/// Copies an ioctl argument of type `T` out to userspace.
fn write_arg<T: AsBytes>(arg: usize, value: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .writer()
        .write(value)
}
