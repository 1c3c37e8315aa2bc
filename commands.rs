// SPDX-License-Identifier: GPL-2.0

//! The commands a thread writes (`BC_*`), decoded and carried out one at a time.
//!
//! The C driver sorts misuse into two kinds, and so does this file: some commands fail the
//! whole ioctl with `EINVAL` (an unknown command, the never-implemented `BC_ATTEMPT_ACQUIRE`
//! and `BC_ACQUIRE_RESULT`, the context manager taking a reference to itself, any misuse of
//! freeze notifications), while others
//! are logged and skipped (reference counting on a handle that does not exist, freeing a
//! buffer that was never delivered).

use kernel::{
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

use crate::{
    defs::*,
    process::{
        Process,
        RefChange, //
    },
    thread::{
        looper,
        Thread, //
    },
    write_read::Commands,
};

impl Thread {
    /// The write half of `BINDER_WRITE_READ`: carries out the commands in `commands`.
    ///
    /// Stops at the first command that fails; the ones before it stay consumed. Like the C
    /// driver, it also stops (without an error) while a failed transaction's error return
    /// waits to be read, and for good once a read faulted on its code.
    pub(crate) fn write(
        self: &Arc<Self>,
        process: ArcBorrow<'_, Process>,
        commands: &mut Commands,
    ) -> Result {
        while commands.has_more() && !self.has_pending_error() {
            let code = commands.read_u32()?;
            crate::trace::binder_command(code);
            crate::stats::command(&process.stats, code);
            self.command(process, code, commands)?;
            commands.commit();
        }
        Ok(())
    }

    /// Carries out the command `code`, reading its arguments from `commands`.
    fn command(
        self: &Arc<Self>,
        process: ArcBorrow<'_, Process>,
        code: u32,
        commands: &mut Commands,
    ) -> Result {
        match code {
            BC_INCREFS | BC_ACQUIRE | BC_RELEASE | BC_DECREFS => {
                let handle = commands.read_u32()?;
                let change = RefChange {
                    strong: code == BC_ACQUIRE || code == BC_RELEASE,
                    increment: code == BC_INCREFS || code == BC_ACQUIRE,
                };
                process.change_ref_from_user(handle, change)
            }
            BC_FREE_BUFFER => {
                let buffer = commands.read_u64()?;
                if process.free_buffer(buffer) {
                    // Fds were closed: their files go when the task returns to userspace,
                    // so the read half must not block first (C's `looper_need_return`).
                    self.set_need_return(&process.inner_lock().lock());
                }
                Ok(())
            }
            BC_TRANSACTION | BC_REPLY => {
                let tr: TransactionData = commands.read()?;
                // The plain variants are the `_SG` ones without room for buffers.
                let sg = TransactionDataSg(kernel::uapi::binder_transaction_data_sg {
                    transaction_data: tr.0,
                    buffers_size: 0,
                });
                self.transaction(process, &sg, code == BC_REPLY)
            }
            BC_TRANSACTION_SG | BC_REPLY_SG => {
                let tr: TransactionDataSg = commands.read()?;
                self.transaction(process, &tr, code == BC_REPLY_SG)
            }
            BC_REQUEST_DEATH_NOTIFICATION | BC_CLEAR_DEATH_NOTIFICATION => {
                // `struct binder_handle_cookie` is packed: a u32 handle, then a u64 cookie.
                let handle = commands.read_u32()?;
                let cookie = commands.read_u64()?;
                if code == BC_REQUEST_DEATH_NOTIFICATION {
                    process.request_death(handle, cookie)
                } else {
                    process.clear_death(self, handle, cookie);
                    Ok(())
                }
            }
            BC_DEAD_BINDER_DONE => {
                let cookie = commands.read_u64()?;
                process.dead_binder_done(self, cookie);
                Ok(())
            }
            BC_REGISTER_LOOPER => {
                self.looper_command(&process, looper::REGISTERED);
                Ok(())
            }
            BC_ENTER_LOOPER => {
                self.looper_command(&process, looper::ENTERED);
                Ok(())
            }
            BC_EXIT_LOOPER => {
                self.looper_command(&process, looper::EXITED);
                Ok(())
            }
            BC_INCREFS_DONE | BC_ACQUIRE_DONE => {
                let ptr = commands.read_u64()?;
                let cookie = commands.read_u64()?;
                process.confirm_node_ref(ptr, cookie, code == BC_ACQUIRE_DONE);
                Ok(())
            }
            BC_REQUEST_FREEZE_NOTIFICATION | BC_CLEAR_FREEZE_NOTIFICATION => {
                // The same packed `struct binder_handle_cookie` as the death commands.
                let handle = commands.read_u32()?;
                let cookie = commands.read_u64()?;
                if code == BC_REQUEST_FREEZE_NOTIFICATION {
                    process.request_freeze_notification(handle, cookie)
                } else {
                    process.clear_freeze_notification(handle, cookie)
                }
            }
            BC_FREEZE_NOTIFICATION_DONE => {
                let cookie = commands.read_u64()?;
                process.freeze_notification_done(cookie)
            }
            // Unknown commands, and BC_ATTEMPT_ACQUIRE / BC_ACQUIRE_RESULT, which no binder
            // driver ever implemented.
            _ => Err(EINVAL),
        }
    }
}
