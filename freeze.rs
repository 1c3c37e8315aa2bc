// SPDX-License-Identifier: GPL-2.0

//! Freezing: `BINDER_FREEZE` and `BINDER_GET_FROZEN_INFO`.
//!
//! A frozen process takes no calls: its callers read `BR_FROZEN_REPLY`. One-way transactions
//! are queued for it as usual (and its threads woken, as in the C driver: the process is
//! normally frozen by its cgroup as well, so it does not read), and their senders read
//! `BR_TRANSACTION_PENDING_FROZEN`. A freeze fails with `EAGAIN`, leaving the process thawed,
//! while transactions to it are outstanding after the timeout, or while one of its threads is
//! in a call.

use kernel::{prelude::*, sync::CondVarTimeoutResult, time::msecs_to_jiffies};

use crate::{
    defs::{
        FreezeInfo,
        FrozenStatusInfo, //
    },
    process::Process,
    registry,
};

/// `BINDER_FREEZE`: freezes or thaws every process of `info.pid`, newest first, stopping at
/// the first that fails (the ones frozen before it stay frozen, as in the C driver). `EINVAL`
/// if the pid has no binder process.
pub(crate) fn freeze(info: &FreezeInfo) -> Result {
    let targets = registry::processes_of(info.0.pid)?;
    let mut result = Ok(());
    for target in targets.iter() {
        result = target.freeze(info.0.enable != 0, info.0.timeout_ms);
        if result.is_err() {
            break;
        }
    }
    drop(targets);
    result
}

/// `BINDER_GET_FROZEN_INFO`: what the processes of `info.pid` received since they were last
/// frozen or thawed, and whether transactions are pending; `EINVAL` if there is none.
pub(crate) fn frozen_info(info: &mut FrozenStatusInfo) -> Result {
    let (mut sync_recv, mut async_recv) = (0, 0);
    registry::for_each_of(info.0.pid, |process| {
        let inner = process.inner_lock().lock();
        sync_recv |=
            u32::from(inner.sync_received()) | (u32::from(inner.has_pending_transactions()) << 1);
        async_recv |= u32::from(inner.async_received());
    })?;
    info.0.sync_recv = sync_recv;
    info.0.async_recv = async_recv;
    Ok(())
}

impl Process {
    /// Freezes (`enable`) or thaws this process, as [`freeze`] asks. A freeze waits up to
    /// `timeout_ms` for the outstanding transactions to finish; a signal ends the wait
    /// (`ERESTARTSYS`).
    fn freeze(&self, enable: bool, timeout_ms: u32) -> Result {
        let mut inner = self.inner_lock().lock();
        inner.set_frozen(enable);
        if !enable {
            return Ok(());
        }
        let mut result = Ok(());
        if timeout_ms > 0 {
            let mut left = msecs_to_jiffies(timeout_ms);
            while inner.outstanding_transactions() > 0 {
                match self
                    .freeze_wait()
                    .wait_interruptible_timeout(&mut inner, left)
                {
                    CondVarTimeoutResult::Timeout => break,
                    CondVarTimeoutResult::Signal { .. } => {
                        result = Err(ERESTARTSYS);
                        break;
                    }
                    CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                }
            }
        }
        if result.is_ok() && inner.has_pending_transactions() {
            result = Err(EAGAIN);
        }
        if result.is_err() {
            inner.set_frozen(false);
            return result;
        }
        Ok(())
    }
}
