//! Watching the kernel log (`/dev/kmsg`) for reports a correct driver never causes.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// What in a kernel log line means the run found a kernel bug (the same list as the host's
/// check of the console log, scripts/vm.sh).
const BAD: &[&str] = &[
    "BUG:",
    "WARNING:",
    "Oops",
    "KASAN:",
    "UBSAN:",
    "general protection fault",
    "Kernel panic",
    "blocked for more than",
    "detected stall",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "bad unlock balance",
    "held lock freed",
    "DEBUG_LOCKS_WARN_ON",
    "Call Trace:",
    "unreferenced object",
    "rust_binder: leaked",
];

/// `/dev/kmsg`, read from the end of the log as it was when the watch began.
pub struct Kmsg {
    fd: OwnedFd,
}

impl Kmsg {
    /// Opens `/dev/kmsg` non-blocking and skips what is already in the log.
    pub fn open() -> io::Result<Self> {
        let path = CString::new("/dev/kmsg").map_err(|_| io::Error::from(io::ErrorKind::Other))?;
        // SAFETY: `path` is a NUL-terminated string.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `open` just returned this descriptor, which nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: Plain syscall on our descriptor.
        unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
        Ok(Self { fd })
    }

    /// The messages logged since the last call (or since the watch began).
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: `buf` is valid for its length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                // EPIPE: records were overwritten before we read them; the next read goes on.
                if io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE) {
                    continue;
                }
                break;
            }
            if n == 0 {
                break;
            }
            let record = String::from_utf8_lossy(&buf[..n as usize]);
            // A record is "prio,seq,time,flags;message\n" (then continuation lines).
            let message = record.split_once(';').map_or(&*record, |(_, m)| m);
            messages.push(message.trim_end().to_string());
        }
        messages
    }
}

/// Finds kernel reports among kernel log messages.
///
/// With fault injection, a failed page allocation is expected, and the kernel reports it with
/// a stack trace ("page allocation failure", then the trace up to `</TASK>`): those lines are
/// not reports.
pub struct Reports {
    faults: bool,
    in_alloc_warning: bool,
}

impl Reports {
    pub fn new(faults: bool) -> Self {
        Self {
            faults,
            in_alloc_warning: false,
        }
    }

    /// The index of the first message that reports a kernel bug.
    pub fn first(&mut self, messages: &[String]) -> Option<usize> {
        for (i, message) in messages.iter().enumerate() {
            if self.faults && message.contains("page allocation failure") {
                self.in_alloc_warning = true;
            }
            if self.in_alloc_warning {
                if message.contains("</TASK>") {
                    self.in_alloc_warning = false;
                }
                continue;
            }
            if BAD.iter().any(|b| message.contains(b)) {
                return Some(i);
            }
        }
        None
    }
}
