// SPDX-License-Identifier: GPL-2.0

//! The kernel reports the run caused, from the kernel log (`binder_client::kmsg`).

use binder_client::kmsg::{is_report, Kmsg as Log};

/// A reader of the kernel log's reports from some point on; without `/dev/kmsg` it finds
/// none, and says so once.
pub struct Kmsg(Option<Log>);

impl Kmsg {
    /// Reads from the oldest record the kernel still has (`from_start`) or from now on.
    pub fn open(from_start: bool) -> Self {
        let log = Log::open(from_start).ok();
        if log.is_none() {
            eprintln!("stress: cannot read /dev/kmsg: kernel reports are not counted here");
        }
        Self(log)
    }

    /// The first lines of the reports logged since the last call.
    pub fn reports(&mut self) -> Vec<String> {
        let Some(log) = self.0.as_mut() else {
            return Vec::new();
        };
        log.messages()
            .iter()
            .filter_map(|message| message.lines().next())
            .filter(|first| is_report(first))
            .map(str::to_string)
            .collect()
    }
}
