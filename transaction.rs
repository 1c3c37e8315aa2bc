// SPDX-License-Identifier: GPL-2.0

//! Transactions: `BC_TRANSACTION` and `BC_REPLY`.
//!
//! A failed transaction is not an ioctl error: the sender reads `BR_FAILED_REPLY` or
//! `BR_DEAD_REPLY` instead of `BR_TRANSACTION_COMPLETE`, and `BINDER_GET_EXTENDED_ERROR`
//! tells it more. So far this file finds the target and reports the C driver's failures for
//! a target that cannot be reached; delivering to a target that can is the next step of the
//! IPC engine, and until then such a transaction fails the ioctl with `EOPNOTSUPP`.

use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
};

use crate::{
    defs::{
        TransactionData,
        BR_DEAD_REPLY,
        BR_FAILED_REPLY, //
    },
    process::Process,
    refs::MANAGER_HANDLE,
    thread::Thread,
};

/// The last debug id handed out; the C driver numbers its transactions the same way, and
/// `BINDER_GET_EXTENDED_ERROR` reports the number of the one that failed.
static LAST_DEBUG_ID: Atomic<u32> = Atomic::new(0);

/// A fresh debug id.
fn next_debug_id() -> u32 {
    LAST_DEBUG_ID.fetch_add(1, Relaxed).wrapping_add(1)
}

/// Why a transaction failed: the return the sender reads, and the errno behind it.
struct Failure {
    code: u32,
    errno: Error,
}

impl Thread {
    /// Carries out `BC_TRANSACTION` (or, with `reply`, `BC_REPLY`) described by `tr`.
    pub(crate) fn transaction(
        &self,
        process: &Arc<Process>,
        tr: &TransactionData,
        reply: bool,
    ) -> Result {
        let id = next_debug_id();
        let outcome = if reply {
            // No transaction can have reached this thread yet, so there is nothing to reply
            // to: the C driver's "reply with no transaction stack".
            Err(Failure {
                code: BR_FAILED_REPLY,
                errno: EPROTO,
            })
        } else {
            self.find_target(process, tr.target_handle())
        };
        match outcome {
            Ok(()) => Err(EOPNOTSUPP),
            Err(failure) => {
                pr_debug!("transaction {} failed: {}\n", id, failure.errno.to_errno());
                self.transaction_failed(process, id, failure.code, failure.errno);
                Ok(())
            }
        }
    }

    /// Finds the node that `handle` names for `process`, as the C driver does: handle 0 is
    /// the context manager (`BR_DEAD_REPLY` without one), any other handle needs a strong
    /// reference (`BR_FAILED_REPLY` without).
    fn find_target(&self, process: &Arc<Process>, handle: u32) -> Result<(), Failure> {
        let node = if handle == MANAGER_HANDLE {
            let node = process.context.manager_node().ok_or(Failure {
                code: BR_DEAD_REPLY,
                errno: EINVAL,
            })?;
            if node.is_owned_by(process) {
                return Err(Failure {
                    code: BR_FAILED_REPLY,
                    errno: EINVAL,
                });
            }
            node
        } else {
            process.strong_ref_target(handle).ok_or(Failure {
                code: BR_FAILED_REPLY,
                errno: EINVAL,
            })?
        };
        drop(node);
        Ok(())
    }
}
