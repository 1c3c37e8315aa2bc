// SPDX-License-Identifier: GPL-2.0

//! The binder userspace ABI, from `include/uapi/linux/android/binder.h`.
//!
//! The numbers come from the kernel's generated `kernel::uapi` bindings, renamed without the
//! bindgen enum prefixes. Structs that cross the user boundary are wrapped in newtypes so that
//! they can implement [`FromBytes`] and [`AsBytes`].

use kernel::{
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uapi, //
};

/// The protocol version `BINDER_VERSION` reports.
pub(crate) const BINDER_CURRENT_PROTOCOL_VERSION: i32 =
    uapi::BINDER_CURRENT_PROTOCOL_VERSION as i32;

// The ioctls, as `_IOC` numbers.
pub(crate) const BINDER_WRITE_READ: u32 = uapi::BINDER_WRITE_READ;
pub(crate) const BINDER_SET_MAX_THREADS: u32 = uapi::BINDER_SET_MAX_THREADS;
pub(crate) const BINDER_SET_CONTEXT_MGR: u32 = uapi::BINDER_SET_CONTEXT_MGR;
pub(crate) const BINDER_THREAD_EXIT: u32 = uapi::BINDER_THREAD_EXIT;
pub(crate) const BINDER_VERSION: u32 = uapi::BINDER_VERSION;
pub(crate) const BINDER_GET_NODE_DEBUG_INFO: u32 = uapi::BINDER_GET_NODE_DEBUG_INFO;
pub(crate) const BINDER_GET_NODE_INFO_FOR_REF: u32 = uapi::BINDER_GET_NODE_INFO_FOR_REF;
pub(crate) const BINDER_SET_CONTEXT_MGR_EXT: u32 = uapi::BINDER_SET_CONTEXT_MGR_EXT;
pub(crate) const BINDER_FREEZE: u32 = uapi::BINDER_FREEZE;
pub(crate) const BINDER_GET_FROZEN_INFO: u32 = uapi::BINDER_GET_FROZEN_INFO;
pub(crate) const BINDER_ENABLE_ONEWAY_SPAM_DETECTION: u32 =
    uapi::BINDER_ENABLE_ONEWAY_SPAM_DETECTION;
pub(crate) const BINDER_GET_EXTENDED_ERROR: u32 = uapi::BINDER_GET_EXTENDED_ERROR;

/// Declares `pub(crate)` copies of uapi enum constants, without bindgen's enum-name prefix.
///
/// These are the whole protocol tables, so some entries are unused (the codes no driver sends,
/// for one); `dead_code` is allowed for them here.
macro_rules! uapi_consts {
    ($table:ident, $prefix:ident: $($name:ident),* $(,)?) => {
        $(
            #[allow(dead_code)]
            pub(crate) const $name: u32 = kernel::macros::paste!(uapi::[<$prefix $name>]);
        )*
        /// Each code above with its name, for the log files.
        pub(crate) const $table: &[(u32, &str)] = &[$(($name, stringify!($name))),*];
    };
}

// Commands userspace writes (`enum binder_driver_command_protocol`).
uapi_consts!(COMMAND_CODES, binder_driver_command_protocol_:
    BC_TRANSACTION, BC_REPLY, BC_ACQUIRE_RESULT, BC_FREE_BUFFER, BC_INCREFS, BC_ACQUIRE,
    BC_RELEASE, BC_DECREFS, BC_INCREFS_DONE, BC_ACQUIRE_DONE, BC_ATTEMPT_ACQUIRE,
    BC_REGISTER_LOOPER, BC_ENTER_LOOPER, BC_EXIT_LOOPER, BC_REQUEST_DEATH_NOTIFICATION,
    BC_CLEAR_DEATH_NOTIFICATION, BC_DEAD_BINDER_DONE, BC_TRANSACTION_SG, BC_REPLY_SG,
    BC_REQUEST_FREEZE_NOTIFICATION, BC_CLEAR_FREEZE_NOTIFICATION, BC_FREEZE_NOTIFICATION_DONE,
);

// Returns the driver writes (`enum binder_driver_return_protocol`).
uapi_consts!(RETURN_CODES, binder_driver_return_protocol_:
    BR_ERROR, BR_OK, BR_TRANSACTION_SEC_CTX, BR_TRANSACTION, BR_REPLY, BR_DEAD_REPLY,
    BR_TRANSACTION_COMPLETE, BR_INCREFS, BR_ACQUIRE, BR_RELEASE, BR_DECREFS, BR_NOOP,
    BR_SPAWN_LOOPER, BR_DEAD_BINDER, BR_CLEAR_DEATH_NOTIFICATION_DONE, BR_FAILED_REPLY,
    BR_FROZEN_REPLY, BR_ONEWAY_SPAM_SUSPECT, BR_TRANSACTION_PENDING_FROZEN, BR_FROZEN_BINDER,
    BR_CLEAR_FREEZE_NOTIFICATION_DONE,
);

/// Transaction flag: one-way, no reply expected.
pub(crate) const TF_ONE_WAY: u32 = uapi::transaction_flags_TF_ONE_WAY;
/// Transaction flag of a call: its reply may carry file descriptors.
pub(crate) const TF_ACCEPT_FDS: u32 = uapi::transaction_flags_TF_ACCEPT_FDS;
/// Transaction flag: the buffer is zeroed when it is freed.
pub(crate) const TF_CLEAR_BUF: u32 = uapi::transaction_flags_TF_CLEAR_BUF;
/// Transaction flag of a one-way transaction to a frozen process: it replaces an older one
/// like it that still waits in its node's queue.
pub(crate) const TF_UPDATE_TXN: u32 = uapi::transaction_flags_TF_UPDATE_TXN;

/// `binder_buffer_object.flags`: the buffer's address goes into a parent buffer.
pub(crate) const BUFFER_FLAG_HAS_PARENT: u32 = uapi::BINDER_BUFFER_FLAG_HAS_PARENT;

// Flags of `flat_binder_object.flags` that a node keeps from its creation.
pub(crate) const FLAT_BINDER_FLAG_PRIORITY_MASK: u32 =
    uapi::flat_binder_object_flags_FLAT_BINDER_FLAG_PRIORITY_MASK;
pub(crate) const FLAT_BINDER_FLAG_ACCEPTS_FDS: u32 =
    uapi::flat_binder_object_flags_FLAT_BINDER_FLAG_ACCEPTS_FDS;
pub(crate) const FLAT_BINDER_FLAG_TXN_SECURITY_CTX: u32 =
    uapi::flat_binder_object_flags_FLAT_BINDER_FLAG_TXN_SECURITY_CTX;

/// Declares a newtype over a uapi struct whose fields are all plain integers.
macro_rules! uapi_newtype {
    ($(#[$meta:meta])* $name:ident => $raw:ident) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Default)]
        pub(crate) struct $name(pub(crate) uapi::$raw);

        // SAFETY: The wrapped uapi struct is made of integers (and unions of integers) only, so
        // every byte pattern is a valid value.
        unsafe impl FromBytes for $name {}

        // SAFETY: The wrapped uapi struct is made of integers laid out without padding (its
        // size is checked against the sum of its fields below), so all its bytes are
        // initialised.
        unsafe impl AsBytes for $name {}
    };
}

uapi_newtype!(
    /// `struct binder_version`, the argument of `BINDER_VERSION`.
    BinderVersion => binder_version
);
uapi_newtype!(
    /// `struct flat_binder_object`: a binder object, and the argument of
    /// `BINDER_SET_CONTEXT_MGR_EXT`.
    FlatBinderObject => flat_binder_object
);
uapi_newtype!(
    /// `struct binder_fd_object`: a file descriptor in a transaction (`BINDER_TYPE_FD`).
    FdObject => binder_fd_object
);
uapi_newtype!(
    /// `struct binder_buffer_object`: a scatter-gather buffer (`BINDER_TYPE_PTR`).
    BufferObject => binder_buffer_object
);
uapi_newtype!(
    /// `struct binder_fd_array_object`: an array of file descriptors inside a parent buffer
    /// (`BINDER_TYPE_FDA`).
    FdArrayObject => binder_fd_array_object
);

uapi_newtype!(
    /// `struct binder_transaction_data`, the argument of `BC_TRANSACTION` and `BC_REPLY`.
    TransactionData => binder_transaction_data
);
uapi_newtype!(
    /// `struct binder_transaction_data_sg`, the argument of the `_SG` variants.
    TransactionDataSg => binder_transaction_data_sg
);
uapi_newtype!(
    /// `struct binder_transaction_data_secctx`, the payload of `BR_TRANSACTION_SEC_CTX`.
    TransactionDataSecctx => binder_transaction_data_secctx
);
uapi_newtype!(
    /// `struct binder_extended_error`, the result of `BINDER_GET_EXTENDED_ERROR`.
    ExtendedError => binder_extended_error
);
uapi_newtype!(
    /// `struct binder_node_debug_info`, the argument of `BINDER_GET_NODE_DEBUG_INFO`.
    NodeDebugInfo => binder_node_debug_info
);
uapi_newtype!(
    /// `struct binder_node_info_for_ref`, the argument of `BINDER_GET_NODE_INFO_FOR_REF`.
    NodeInfoForRef => binder_node_info_for_ref
);
uapi_newtype!(
    /// `struct binder_freeze_info`, the argument of `BINDER_FREEZE`.
    FreezeInfo => binder_freeze_info
);
uapi_newtype!(
    /// `struct binder_frozen_status_info`, the argument of `BINDER_GET_FROZEN_INFO`.
    FrozenStatusInfo => binder_frozen_status_info
);
uapi_newtype!(
    /// `struct binder_frozen_state_info`, the payload of `BR_FROZEN_BINDER`.
    FrozenStateInfo => binder_frozen_state_info
);

// The newtypes claim there is no padding; these sizes prove it.
const _: () = assert!(core::mem::size_of::<BinderVersion>() == 4);
const _: () = assert!(core::mem::size_of::<FlatBinderObject>() == 4 + 4 + 8 + 8);
const _: () = assert!(core::mem::size_of::<FdObject>() == 4 + 4 + 8 + 8);
const _: () = assert!(core::mem::size_of::<BufferObject>() == 4 + 4 + 8 * 4);
const _: () = assert!(core::mem::size_of::<FdArrayObject>() == 4 + 4 + 8 * 3);
const _: () = assert!(core::mem::size_of::<TransactionData>() == 8 + 8 + 4 * 4 + 8 * 4);
const _: () = assert!(core::mem::size_of::<TransactionDataSg>() == 64 + 8);
const _: () = assert!(core::mem::size_of::<TransactionDataSecctx>() == 64 + 8);
const _: () = assert!(core::mem::size_of::<ExtendedError>() == 3 * 4);
const _: () = assert!(core::mem::size_of::<NodeDebugInfo>() == 8 + 8 + 4 + 4);
const _: () = assert!(core::mem::size_of::<NodeInfoForRef>() == 6 * 4);
const _: () = assert!(core::mem::size_of::<FreezeInfo>() == 3 * 4);
const _: () = assert!(core::mem::size_of::<FrozenStatusInfo>() == 3 * 4);
const _: () = assert!(core::mem::size_of::<FrozenStateInfo>() == 8 + 4 + 4);

impl TransactionDataSg {
    /// The target handle (the `target` union, as a sender fills it in).
    pub(crate) fn target_handle(&self) -> u32 {
        // SAFETY: Both members of the union are integers, so reading either is always valid.
        unsafe { self.0.transaction_data.target.handle }
    }

    /// The transaction flags (`TF_*`).
    pub(crate) fn flags(&self) -> u32 {
        self.0.transaction_data.flags
    }
}

impl FlatBinderObject {
    /// The `binder` member of the object's union: the owner's pointer for a local object.
    pub(crate) fn binder_ptr(&self) -> u64 {
        // SAFETY: Both members of the union are integers, so reading either is always valid.
        unsafe { self.0.__bindgen_anon_1.binder }
    }
}

impl FlatBinderObject {
    /// Makes this a handle object of `kind` (`HANDLE` or `WEAK_HANDLE`), as a receiver sees
    /// it: the C driver zeroes the whole `binder` word and the cookie.
    pub(crate) fn set_handle(&mut self, kind: u32, handle: u32) {
        self.0.hdr.type_ = kind;
        self.0.__bindgen_anon_1.binder = 0;
        self.0.__bindgen_anon_1.handle = handle;
        self.0.cookie = 0;
    }

    /// Makes this a local object of `kind` (`BINDER` or `WEAK_BINDER`) with the owner's
    /// `ptr` and `cookie`.
    pub(crate) fn set_binder(&mut self, kind: u32, ptr: u64, cookie: u64) {
        self.0.hdr.type_ = kind;
        self.0.__bindgen_anon_1.binder = ptr;
        self.0.cookie = cookie;
    }
}
