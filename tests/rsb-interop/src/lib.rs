// SPDX-License-Identifier: GPL-2.0

//! The demo's calculator interface (`rb.demo.ICalculator`) on rsbinder, and the token its
//! `takeToken` takes (`rb.demo.IToken`), generated from `aidl/rb/demo/`; and the files
//! `sumFile` passes both ways.

rsbinder::include_aidl!("calculator");
pub use crate::rb::demo::{ICalculator::*, IToken::*};

/// The name the rsbinder calculator registers as unless told otherwise.
pub const DEFAULT_NAME: &str = "rsb.calculator";

use std::{ffi::CStr, fs::File, io, os::fd::FromRawFd};

/// A new memfd (an anonymous file in memory) called `name`, open for reading and writing,
/// close-on-exec.
pub fn memfd(name: &CStr) -> io::Result<File> {
    // SAFETY: `name` is a NUL-terminated string; the call only creates an fd.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `fd` of this process and what it is, as /proc tells, with the inode, which names the file
/// across processes: `fd 4 (/memfd:numbers, inode 17)`, `fd 5 (pipe:[1234])`.
pub fn describe_fd(fd: i32) -> String {
    use std::os::unix::fs::MetadataExt;
    let link = format!("/proc/self/fd/{fd}");
    let what = match std::fs::read_link(&link) {
        Ok(target) => target.display().to_string(),
        Err(e) => return format!("fd {fd} ({e})"),
    };
    // Every memfd is "(deleted)": it never had a name in a directory.
    let what = what.strip_suffix(" (deleted)").unwrap_or(&what);
    match std::fs::metadata(&link) {
        // A pipe's link names its inode already.
        Ok(meta) if !what.contains('[') => format!("fd {fd} ({what}, inode {})", meta.ino()),
        _ => format!("fd {fd} ({what})"),
    }
}

/// The answer `sumFile` writes for `text` (whitespace-separated integers): "1 + 2 + 3 = 6",
/// or why there is none.
pub fn sum_text(text: &str) -> Result<String, String> {
    let numbers = text
        .split_whitespace()
        .map(|n| n.parse::<i32>().map_err(|_| format!("{n:?} is not an int")))
        .collect::<Result<Vec<_>, _>>()?;
    let sum = numbers
        .iter()
        .try_fold(0i32, |sum, &n| sum.checked_add(n))
        .ok_or("the sum does not fit an int")?;
    if numbers.is_empty() {
        return Ok("nothing = 0".into());
    }
    let terms: Vec<String> = numbers.iter().map(i32::to_string).collect();
    Ok(format!("{} = {sum}", terms.join(" + ")))
}
