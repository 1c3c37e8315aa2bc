// SPDX-License-Identifier: GPL-2.0

//! Android Binder IPC, as a loadable Rust module.
//!
//! `insmod rust_binder.ko [devices=binder,hwbinder,vndbinder]` creates one misc device per name.
//! Each device is an independent binder *context* with its own context manager. A process talks
//! to a device only through the `file_operations` in [`device`]; its ioctls are decoded in
//! [`ioctl`] and carried out by the process, thread and context objects below.
//!
//! The files, in the order a request meets them:
//!
//! - [`devices_param`]: the `devices` module parameter.
//! - [`device`]: misc device registration and the `file_operations` entry points.
//! - [`context`]: one binder device's shared state, above all its context manager.
//! - [`process`]: what one `open()` of a device creates (`binder_proc` in the C driver).
//! - [`thread`]: a thread of a process that has called into the driver.
//! - [`ioctl`]: decoding of the binder ioctls and their C-compatible errors.
//! - [`write_read`]: `BINDER_WRITE_READ`, the ioctl all binder traffic goes through.
//! - [`commands`]: the `BC_*` commands a thread writes.
//! - [`transaction`]: `BC_TRANSACTION` and `BC_REPLY`.
//! - [`allocation`]: the receive buffer a process maps, where transactions are delivered.
//! - [`objects`]: binder objects inside transactions, translated for the receiver.
//! - [`node`]: a binder object owned by a process (`binder_node`).
//! - [`refs`]: a process's handles to other processes' nodes (`binder_ref`).
//! - [`work`]: the todo lists threads read their work from.
//! - [`death`]: death notifications.
//! - [`defs`]: the userspace ABI, from `include/uapi/linux/android/binder.h`.
//! - [`release`]: the deferred teardown of closed processes.
//! - [`census`]: counts of live objects, checked for leaks at unload.

mod allocation;
mod census;
mod commands;
mod context;
mod death;
mod defs;
mod device;
mod devices_param;
mod ioctl;
mod node;
mod objects;
mod process;
mod refs;
mod release;
mod thread;
mod transaction;
mod work;
mod write_read;

use kernel::prelude::*;

module! {
    type: RustBinderModule,
    name: "rust_binder",
    authors: ["The rust_binder developers"],
    description: "Android Binder IPC driver written in Rust",
    license: "GPL",
}

/// The loaded module: the registered binder devices, and the workqueue that releases closed
/// processes.
///
/// Dropping it (on `rmmod`) deregisters every device. Open files pin the module through
/// `file_operations.owner`, so no file of ours is open by then; releases may still be queued,
/// and are waited for before the census is checked.
struct RustBinderModule {
    devices: Option<device::Devices>,
    releases: Option<release::ReleaseQueue>,
}

impl Drop for RustBinderModule {
    fn drop(&mut self) {
        drop(self.devices.take());
        drop(self.releases.take());
        census::report_leaks();
    }
}

impl kernel::Module for RustBinderModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let releases = release::ReleaseQueue::new()?;
        let devices = device::Devices::register(devices_param::device_names())?;
        Ok(Self {
            devices: Some(devices),
            releases: Some(releases),
        })
    }
}
