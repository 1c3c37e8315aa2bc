// SPDX-License-Identifier: GPL-2.0

//! The kernel log (`/dev/kmsg`): the reports a correct driver never causes.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom},
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

fn is_report(message: &str) -> bool {
    REPORTS.iter().any(|r| message.contains(r))
        || (message.contains("INFO: task") && message.contains("blocked"))
}

/// A reader of the kernel log from some point on.
pub struct Kmsg(Option<File>);

impl Kmsg {
    /// Reads from the oldest record the kernel still has (`from_start`) or from now on.
    pub fn open(from_start: bool) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()
            .map(|mut f| {
                if !from_start {
                    let _ = f.seek(SeekFrom::End(0));
                }
                f
            });
        if file.is_none() {
            eprintln!("stress: cannot read /dev/kmsg: kernel reports are not counted here");
        }
        Self(file)
    }

    /// The report lines logged since the last call.
    pub fn reports(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        let Some(file) = self.0.as_mut() else {
            return found;
        };
        let mut record = vec![0u8; 8192];
        loop {
            match file.read(&mut record) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&record[..n]);
                    // "prio,seq,time,flags;message" then continuation lines.
                    let message = text.split_once(';').map(|(_, m)| m).unwrap_or(&text);
                    let first = message.lines().next().unwrap_or("");
                    if is_report(first) {
                        found.push(first.to_string());
                    }
                }
                // EPIPE: records were overwritten before they were read; go on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        found
    }
}
