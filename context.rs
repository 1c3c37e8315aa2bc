// SPDX-License-Identifier: GPL-2.0

//! A binder context: the state that all processes using one binder device share.
//!
//! Every device the module creates has a context of its own, so each device has its own
//! context manager (the object that handle 0 names).

use kernel::{
    prelude::*,
    str::{
        BStr,
        CString, //
    },
    sync::{
        new_mutex,
        Arc,
        Mutex, //
    },
    task::Kuid,
};

use crate::{
    census::{
        Counted,
        Kind, //
    },
    defs::FlatBinderObject,
    node::NodeArc,
    process::Process,
    txn_log::LogName, //
};

/// One binder device's shared state.
#[pin_data]
pub(crate) struct Context {
    _census: Counted,
    /// The device name, as given in the `devices` parameter.
    pub(crate) name: CString,
    /// The name as the transaction logs copy it.
    pub(crate) log_name: LogName,
    /// The context manager slot.
    #[pin]
    manager: Mutex<Manager>,
}

/// The context manager of a context, guarded by [`Context::manager`].
struct Manager {
    /// The node that handle 0 names, while a process is the context manager.
    node: Option<NodeArc>,
    /// The effective uid of the first context manager. From then on only this euid may become
    /// context manager of this context, also after that process is gone (as in the C driver).
    uid: Option<Kuid>,
}

impl Context {
    /// Creates the context of the device called `name`.
    pub(crate) fn new(name: CString) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                _census: Counted::new(Kind::Context),
                log_name: LogName::new(name.to_bytes()),
                name,
                manager <- new_mutex!(Manager { node: None, uid: None }, "Context::manager"),
            }),
            GFP_KERNEL,
        )
    }

    /// The device name, printable.
    pub(crate) fn display_name(&self) -> &BStr {
        BStr::from_bytes(self.name.to_bytes())
    }

    /// Makes `process` the context manager (`BINDER_SET_CONTEXT_MGR[_EXT]`).
    ///
    /// `object` carries the node's pointer, cookie and flags for the `_EXT` variant; the
    /// plain variant uses zeros. Fails with `EBUSY` while another node is the manager and
    /// with `EPERM` when the caller's euid is not the one latched by the first manager.
    pub(crate) fn set_manager(
        &self,
        process: &Arc<Process>,
        object: Option<&FlatBinderObject>,
    ) -> Result {
        let euid = Kuid::current_euid();
        let mut manager = self.manager.lock();
        if manager.node.is_some() {
            crate::debug::binder_user_error!(
                "{}: context manager already set\n",
                self.display_name()
            );
            return Err(EBUSY);
        }
        kernel::security::binder_set_context_mgr(process.cred())?;
        match manager.uid {
            Some(uid) if uid != euid => {
                crate::debug::binder_user_error!(
                    "{}: context manager uid {} refused, {} is latched\n",
                    self.display_name(),
                    euid.into_uid_in_current_ns(),
                    uid.into_uid_in_current_ns()
                );
                return Err(EPERM);
            }
            Some(_) => {}
            None => manager.uid = Some(euid),
        }
        let (ptr, cookie, flags) = match object {
            Some(obj) => (obj.binder_ptr(), obj.0.cookie, obj.0.flags),
            None => (0, 0, 0),
        };
        manager.node = Some(process.make_manager_node(ptr, cookie, flags)?);
        Ok(())
    }

    /// The context manager's node, if there is a manager.
    pub(crate) fn manager_node(&self) -> Option<NodeArc> {
        self.manager.lock().node.clone()
    }

    /// Runs `f` on the context manager's node, if there is a manager, with the manager's
    /// lock held: the node stays the manager (and so handle 0) until `f` returns. `f` may take
    /// the locks that nest inside this one (see [`crate::process`]) and allocate.
    pub(crate) fn with_manager_node<R>(&self, f: impl FnOnce(&NodeArc) -> R) -> Option<R> {
        let manager = self.manager.lock();
        manager.node.as_ref().map(f)
    }

    /// Clears the context manager slot if `process` holds it; called when `process` goes away.
    ///
    /// The node is returned so that the caller drops it after this lock is released.
    pub(crate) fn take_manager_of(&self, process: &Process) -> Option<NodeArc> {
        let mut manager = self.manager.lock();
        match &manager.node {
            Some(node) if node.is_owned_by(process) => {
                // From now on a new handle to the node is an ordinary one: handle 0 names the
                // next manager.
                node.resign_manager();
                manager.node.take()
            }
            _ => None,
        }
    }
}
