//! A small userspace library over the Linux binder uapi.
//!
//! It is what rust_binder's conformance cases, tools and demo are written with: a [`Binder`]
//! is one open binder device with typed wrappers for its ioctls, and [`Mapping`] is its
//! receive buffer. The ABI itself is in [`uapi`], generated from the kernel's headers.

mod device;
mod mapping;
pub mod protocol;
pub mod uapi;

pub use device::{Binder, WriteRead};
pub use mapping::Mapping;
pub use protocol::{local_binder, object_bytes, parse_returns, Commands, Return, Txn};

/// The protocol version every current binder driver reports.
pub const PROTOCOL_VERSION: i32 = uapi::BINDER_CURRENT_PROTOCOL_VERSION as i32;
