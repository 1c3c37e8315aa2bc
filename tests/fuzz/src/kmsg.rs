//! Kernel reports among the kernel log's messages (`binder_client::kmsg` reads the log).

use binder_client::kmsg::is_report;

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
            if is_report(message) {
                return Some(i);
            }
        }
        None
    }
}
