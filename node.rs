// SPDX-License-Identifier: GPL-2.0

//! Nodes: binder objects owned by a process.
//!
//! A node is what a process publishes; other processes refer to it by handle. So far the only
//! node is the one a context manager gets from `BINDER_SET_CONTEXT_MGR[_EXT]`.

use kernel::{
    prelude::*,
    sync::Arc, //
};

use crate::{
    defs::{
        FlatBinderObject,
        FLAT_BINDER_FLAG_ACCEPTS_FDS,
        FLAT_BINDER_FLAG_PRIORITY_MASK,
        FLAT_BINDER_FLAG_TXN_SECURITY_CTX, //
    },
    process::Process,
};

/// A binder object of one process.
pub(crate) struct Node {
    /// The process that owns the object.
    owner: Arc<Process>,
    /// The owner's identity for the object, handed back to it in transactions.
    #[expect(
        dead_code,
        reason = "delivered with transactions, which come with the IPC engine"
    )]
    ptr: u64,
    /// The owner's second word for the object (usually the address of its implementation).
    #[expect(
        dead_code,
        reason = "delivered with transactions, which come with the IPC engine"
    )]
    cookie: u64,
    /// The `FLAT_BINDER_FLAG_*` bits fixed when the node was created.
    #[expect(
        dead_code,
        reason = "consulted by transactions, which come with the IPC engine"
    )]
    flags: u32,
}

impl Node {
    /// Creates the context manager's node for `owner`.
    ///
    /// `object` is the argument of `BINDER_SET_CONTEXT_MGR_EXT`; the plain ioctl has none and
    /// gets pointer, cookie and flags of zero. The node holds a strong and a weak reference on
    /// behalf of the context for as long as it is the manager.
    pub(crate) fn new_manager(
        owner: Arc<Process>,
        object: Option<&FlatBinderObject>,
    ) -> Result<Arc<Self>> {
        let (ptr, cookie, flags) = match object {
            Some(obj) => (obj.binder_ptr(), obj.0.cookie, obj.0.flags),
            None => (0, 0, 0),
        };
        let flags = flags
            & (FLAT_BINDER_FLAG_PRIORITY_MASK
                | FLAT_BINDER_FLAG_ACCEPTS_FDS
                | FLAT_BINDER_FLAG_TXN_SECURITY_CTX);
        Ok(Arc::new(
            Self {
                owner,
                ptr,
                cookie,
                flags,
            },
            GFP_KERNEL,
        )?)
    }

    /// Whether `process` owns this node.
    pub(crate) fn is_owned_by(&self, process: &Process) -> bool {
        core::ptr::eq(&*self.owner, process)
    }
}
