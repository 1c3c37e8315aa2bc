//! Loading and unloading kernel modules, for the cases about rust_binder as a module.

use std::{ffi::CString, fs::File, io, os::fd::AsRawFd, path::Path};

/// Loads the module in `path` with the parameter string `params` (`finit_module`).
pub fn load(path: &Path, params: &str) -> io::Result<()> {
    let file = File::open(path)?;
    let params = CString::new(params).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: The descriptor is open and `params` is a NUL-terminated string.
    let ret =
        unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unloads the module called `name` without waiting for its users (`delete_module`).
pub fn unload(name: &str) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `name` is a NUL-terminated string.
    let ret = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
