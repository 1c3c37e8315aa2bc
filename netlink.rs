// SPDX-License-Identifier: GPL-2.0

//! Transaction reports over generic netlink, as the C driver sends them.
//!
//! The family is `binder` (version 1) with one multicast group, `report`
//! (`Documentation/netlink/specs/binder.yaml`). A `BINDER_CMD_REPORT` message goes to the
//! group when a transaction fails, when a one-way transaction makes its receiver suspect the
//! sender of spam, and when a one-way transaction waits for a frozen receiver; it carries the
//! return the sender reads and who sent what to whom. Nothing is built when no one listens.
//!
//! The C driver registers a family of the same name. When it is loaded first, registering
//! fails (`EEXIST`): rust_binder says so once and runs without reports.

use kernel::{
    net::netlink::{
        Family,
        MulticastGroup,
        NetlinkSkBuff,
        Registration,
        GENLMSG_DEFAULT_SIZE, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    task::Pid,
    uapi,
};

use crate::{
    defs::TransactionDataSg,
    process::Process,
    thread::Thread, //
};

/// The family's multicast groups: only `report`, group 0 of the family.
static GROUPS: [MulticastGroup; 1] = [MulticastGroup::const_new(c"report")];

/// The index of `report` in [`GROUPS`].
const REPORT_GROUP: u32 = 0;

/// The `binder` family.
static FAMILY: Family = Family::const_new(
    &<crate::RustBinderModule as kernel::ModuleMetadata>::THIS_MODULE,
    uapi::BINDER_FAMILY_NAME,
    uapi::BINDER_FAMILY_VERSION,
    &GROUPS,
);

/// Whether [`FAMILY`] is registered: reports are sent only then.
static REGISTERED: Atomic<bool> = Atomic::new(false);

/// The registration of the family, for as long as the module is loaded.
pub(crate) struct Reports {
    registration: Option<Registration>,
}

impl Reports {
    /// Registers the family. A failure (the C driver holds the name) is logged, not fatal.
    pub(crate) fn register() -> Self {
        match FAMILY.register() {
            Ok(registration) => {
                REGISTERED.store(true, Relaxed);
                Self {
                    registration: Some(registration),
                }
            }
            Err(err) => {
                pr_info!(
                    "generic netlink family \"binder\" not registered ({:?}); no transaction reports\n",
                    err
                );
                Self { registration: None }
            }
        }
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        // No ioctl runs any more (the module is going, so no file is open).
        REGISTERED.store(false, Relaxed);
        drop(self.registration.take());
    }
}

/// The receiving side of a reported transaction: the process's and thread's pids, each 0
/// when not known (C then leaves the attribute out).
pub(crate) type Target = (Pid, Pid);

/// Reports the transaction `tr` that `thread` of `process` sent (`is_reply` for a reply) to
/// `to`, which ended for the sender with the return `error`.
pub(crate) fn report(
    process: &Process,
    thread: &Thread,
    tr: &TransactionDataSg,
    is_reply: bool,
    error: u32,
    to: Target,
) {
    if !REGISTERED.load(Relaxed) || !FAMILY.has_listeners(REPORT_GROUP) {
        return;
    }
    let tr = &tr.0.transaction_data;
    // The C driver's attribute is a u32; larger sizes are cut, as there.
    let data_size = tr.data_size as u32;
    let context = &*process.context.name;
    crate::trace::binder_netlink_report(
        context.as_char_ptr(),
        error,
        process.pid(),
        thread.id,
        to.0,
        to.1,
        is_reply,
        tr.flags,
        tr.code,
        data_size as usize,
    );
    // A report that cannot be built or sent is dropped, as in C.
    let _ = send(
        context,
        process.pid(),
        thread.id,
        is_reply,
        error,
        to,
        tr,
        data_size,
    );
}

/// Builds and multicasts one report.
#[allow(clippy::too_many_arguments)]
fn send(
    context: &CStr,
    from_pid: Pid,
    from_tid: Pid,
    is_reply: bool,
    error: u32,
    to: Target,
    tr: &uapi::binder_transaction_data,
    data_size: u32,
) -> Result {
    let skb = NetlinkSkBuff::new(GENLMSG_DEFAULT_SIZE, GFP_KERNEL)?;
    let mut msg = skb.genlmsg_put(0, 0, &FAMILY, uapi::BINDER_CMD_REPORT as u8)?;
    msg.put_u32(uapi::BINDER_A_REPORT_ERROR as c_int, error)?;
    msg.put_string(uapi::BINDER_A_REPORT_CONTEXT as c_int, context)?;
    msg.put_u32(uapi::BINDER_A_REPORT_FROM_PID as c_int, from_pid as u32)?;
    msg.put_u32(uapi::BINDER_A_REPORT_FROM_TID as c_int, from_tid as u32)?;
    if to.0 != 0 {
        msg.put_u32(uapi::BINDER_A_REPORT_TO_PID as c_int, to.0 as u32)?;
    }
    if to.1 != 0 {
        msg.put_u32(uapi::BINDER_A_REPORT_TO_TID as c_int, to.1 as u32)?;
    }
    if is_reply {
        msg.put_flag(uapi::BINDER_A_REPORT_IS_REPLY as c_int)?;
    }
    msg.put_u32(uapi::BINDER_A_REPORT_FLAGS as c_int, tr.flags)?;
    msg.put_u32(uapi::BINDER_A_REPORT_CODE as c_int, tr.code)?;
    msg.put_u32(uapi::BINDER_A_REPORT_DATA_SIZE as c_int, data_size)?;
    msg.multicast(&FAMILY, 0, REPORT_GROUP, GFP_KERNEL)
}
