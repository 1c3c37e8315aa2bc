//! A small userspace library over the Linux binder uapi.
//!
//! It is what rust_binder's conformance cases, tools and demo are written with: a [`Binder`]
//! is one open binder device with typed wrappers for its ioctls, and [`Mapping`] is its
//! receive buffer. The ABI itself is in [`uapi`], generated from the kernel's headers.
//!
//! For programs one level up, [`parcel`] reads and writes the payload format of Android's
//! binder userspace (AIDL calls, the service manager), and [`ipc`] makes calls, serves them
//! on a thread pool and waits for deaths.

pub mod binderfs;
mod device;
pub mod ipc;
pub mod kmsg;
mod mapping;
pub mod object;
pub mod parcel;
pub mod protocol;
pub mod reports;
pub mod uapi;

pub use device::{Binder, WriteRead};
pub use ipc::{Call, Process, Reply, Response, Service};
pub use mapping::Mapping;
pub use object::{
    BinderObject, BufferObject, FdArrayObject, FdObject, FlatObject, ObjectKind, Payload, Received,
};
pub use parcel::{Object, Parcel, ParcelError, ParcelReader};
pub use protocol::{parse_returns, Commands, Return, Txn};

/// The protocol version every current binder driver reports.
pub const PROTOCOL_VERSION: i32 = uapi::BINDER_CURRENT_PROTOCOL_VERSION as i32;
