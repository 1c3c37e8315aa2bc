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
//! - [`devices_param`]: the `devices` module parameter, and its checks.
//! - [`device`]: misc device registration and the `file_operations` entry points.
//! - [`binderfs`]: the `binder` filesystem, whose mounts make devices on demand.
//! - [`logs`]: the log files of `binder_logs/` and debugfs.
//! - [`context`]: one binder device's shared state, above all its context manager.
//! - [`process`]: what one `open()` of a device creates (`binder_proc` in the C driver).
//! - [`thread`]: a thread of a process that has called into the driver.
//! - [`ioctl`]: decoding of the binder ioctls and their C-compatible errors.
//! - [`write_read`]: `BINDER_WRITE_READ`, the ioctl all binder traffic goes through.
//! - [`commands`]: the `BC_*` commands a thread writes.
//! - [`user_word`]: codes and their word arguments to and from userspace, as `get_user` and
//!   `put_user` move them.
//! - [`transaction`]: `BC_TRANSACTION` and `BC_REPLY`.
//! - [`allocation`]: the receive buffer a process maps, where transactions are delivered.
//! - [`ranges`]: which parts of a receive buffer hold buffers, and where a new one goes.
//! - [`pages`]: the pages of a receive buffer, and the unused ones kept for reuse.
//! - [`shared_page`]: a buffer page shared with the ranges on it, counted in the page itself.
//! - [`shrinker`]: giving unused receive-buffer pages back under memory pressure.
//! - [`objects`]: binder objects inside transactions, translated for the receiver.
//! - [`scatter_gather`]: scatter-gather buffers and the fd arrays in them.
//! - [`fds`]: file descriptors in transactions, and closing the fds of fd arrays.
//! - [`first_inline`]: short lists whose first element is kept inline.
//! - [`lazy_vec`]: lists that usually stay empty, dropped for free while they have no memory.
//! - [`node`]: a binder object owned by a process (`binder_node`).
//! - [`node_tree`]: a process's nodes by pointer, a tree linked through the nodes.
//! - [`refs`]: a process's handles to other processes' nodes (`binder_ref`).
//! - [`handle_tree`]: a process's handles by number and by node, one allocation each.
//! - [`spares`]: the memory of removed handles, kept for the next new ones.
//! - [`work`]: the todo lists threads read their work from.
//! - [`death`]: death notifications.
//! - [`priority`]: priority inheritance (nice values) from callers to the threads serving them.
//! - [`freeze`]: freezing processes, and freeze notifications.
//! - [`registry`]: every open process, for the ioctls that name a pid.
//! - [`defs`]: the userspace ABI, from `include/uapi/linux/android/binder.h`.
//! - [`release`]: the deferred teardown of closed processes.
//! - [`census`]: counts of live objects, checked for leaks at unload.
//! - [`debug`]: the `debug_mask` and `stop_on_user_error` parameters, and the log messages.
//! - [`trace`]: trace events in system `binder` (defined in `binder_tracepoints.h`).
//! - [`netlink`]: the generic netlink family `binder` and its transaction reports.
//! - [`logs`]: the log files (`state`, `stats`, `transactions`, ...), for debugfs and binderfs.
//! - [`dump`]: the driver's state printed in the C driver's formats, for the log files.
//! - [`stats`]: debug ids, and the counters of commands, returns and objects.
//! - [`txn_log`]: the logs of the last transactions and of the last failed ones.
//! - [`debugfs`]: the debugfs directory `binder/` with the log files and `proc/<pid>`.

mod allocation;
mod binderfs;
mod census;
mod commands;
mod context;
mod death;
mod debug;
mod debugfs;
mod defs;
mod device;
mod devices_param;
mod dump;
mod fds;
mod first_inline;
mod freeze;
mod handle_tree;
mod ioctl;
mod lazy_vec;
mod logs;
mod netlink;
mod node;
mod node_tree;
mod objects;
mod pages;
mod priority;
mod process;
mod ranges;
mod refs;
mod registry;
mod release;
mod scatter_gather;
mod shared_page;
mod shrinker;
mod spares;
mod stats;
mod thread;
mod trace;
mod transaction;
mod txn_log;
mod user_word;
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

/// The `VERSION` file, whose first line is the module's version.
///
/// `dkms.conf` and the README repeat it; `scripts/test-install.sh` checks that they agree with
/// `modinfo`.
const VERSION_FILE: &[u8] = include_bytes!("VERSION");

/// The length of the version: the `VERSION` file up to its first newline.
const VERSION_LEN: usize = {
    let mut len = 0;
    while len < VERSION_FILE.len() && VERSION_FILE[len] != b'\n' {
        len += 1;
    }
    len
};

const _: () = assert!(
    VERSION_LEN > 0,
    "the VERSION file does not start with a version"
);

/// The key of the version in `.modinfo`, as C's `MODULE_VERSION` writes it.
const VERSION_KEY: &[u8] = b"version=";

/// `version=VERSION\0`: what `modinfo` shows as the version (`module!` has no field for it).
#[link_section = ".modinfo"]
#[used]
static MODINFO_VERSION: [u8; VERSION_KEY.len() + VERSION_LEN + 1] = {
    let mut entry = [0u8; VERSION_KEY.len() + VERSION_LEN + 1];
    let mut i = 0;
    while i < VERSION_KEY.len() {
        entry[i] = VERSION_KEY[i];
        i += 1;
    }
    let mut i = 0;
    while i < VERSION_LEN {
        entry[VERSION_KEY.len() + i] = VERSION_FILE[i];
        i += 1;
    }
    entry
};

/// The loaded module: the registered binder devices, and the workqueue that releases closed
/// processes.
///
/// Dropping it (on `rmmod`) deregisters every device. Open files pin the module through
/// `file_operations.owner`, so no file of ours is open by then; releases may still be queued,
/// and are waited for before the census is checked.
struct RustBinderModule {
    devices: Option<device::Devices>,
    /// The `binder` filesystem, unless another driver registered one first.
    binderfs: Option<binderfs::Registration>,
    releases: Option<release::ReleaseQueue>,
    reports: Option<netlink::Reports>,
    shrinker: Option<shrinker::Shrinker>,
    debugfs: Option<debugfs::Debugfs>,
}

impl Drop for RustBinderModule {
    fn drop(&mut self) {
        drop(self.devices.take());
        drop(self.binderfs.take());
        drop(self.releases.take());
        drop(self.reports.take());
        // After the releases: by then every buffer left the shrinker's list.
        drop(self.shrinker.take());
        drop(self.debugfs.take());
        registry::shutdown();
        census::report_leaks();
    }
}

impl kernel::Module for RustBinderModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        registry::init();
        let shrinker = shrinker::Shrinker::register()?;
        binderfs::init();
        let releases = release::ReleaseQueue::new()?;
        let names = devices_param::device_names()?;
        // Without binderfs the misc devices still work: the C driver, loaded alongside, may
        // own the filesystem name.
        let binderfs = match binderfs::Registration::register(&names) {
            Ok(registration) => Some(registration),
            Err(err) => {
                pr_warn!(
                    "binderfs not available ({:?}): the \"binder\" filesystem is registered \
                     already (by binder_linux?); only the misc devices work\n",
                    err
                );
                None
            }
        };
        let debugfs = debugfs::Debugfs::create();
        let reports = netlink::Reports::register();
        let devices = device::Devices::register(names)?;
        Ok(Self {
            devices: Some(devices),
            binderfs,
            releases: Some(releases),
            reports: Some(reports),
            shrinker: Some(shrinker),
            debugfs: Some(debugfs),
        })
    }
}
