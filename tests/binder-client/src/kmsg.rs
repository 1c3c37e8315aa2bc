// SPDX-License-Identifier: GPL-2.0

//! The kernel log (`/dev/kmsg`), and the reports in it that a correct driver never causes:
//! what the stress test and the fuzzer watch for while they run.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
};

/// What marks a kernel report: KASAN, lockdep, BUG, WARNING, hung tasks, RCU stalls, leaks,
/// and rust_binder's census at unload. The same list as scripts/vm.sh's console check.
const REPORTS: &[&str] = &[
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
    "suspected memory leak",
    "rust_binder: leaked",
];

/// Whether a kernel log message reports a kernel bug.
pub fn is_report(message: &str) -> bool {
    REPORTS.iter().any(|r| message.contains(r))
}

/// A non-blocking reader of the kernel log from some point on.
pub struct Kmsg(File);

impl Kmsg {
    /// Reads from the oldest record the kernel still has (`from_start`), or from now on.
    pub fn open(from_start: bool) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        if !from_start {
            file.seek(SeekFrom::End(0))?;
        }
        Ok(Self(file))
    }

    /// The messages logged since the last call (each with its continuation lines).
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        let mut record = vec![0u8; 8192];
        loop {
            match (&self.0).read(&mut record) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&record[..n]);
                    // A record is "prio,seq,time,flags;message\n", then continuation lines.
                    let message = text.split_once(';').map_or(&*text, |(_, m)| m);
                    messages.push(message.trim_end().to_string());
                }
                // EPIPE: records were overwritten before they were read; the next read goes on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        messages
    }
}
