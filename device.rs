// SPDX-License-Identifier: GPL-2.0

//! Binder devices: misc device registration and the `file_operations` entry points.
//!
//! The module's binder devices are of two kinds, sharing these file operations: the misc
//! devices of the `devices` parameter, registered at load, and the devices of binderfs mounts
//! ([`crate::binderfs`]). Opening either finds the device's [`Context`] (in the misc device, or
//! in the binderfs inode) and creates a [`Process`] for the file.
//!
//! `kernel::miscdevice` has no `poll` or `flush`, both of which binder needs, so the devices
//! are registered with a `file_operations` table of our own. Each entry point recovers the
//! [`Process`] from the file and hands over to it.

use kernel::{
    bindings,
    error::to_result,
    ffi::{
        c_int,
        c_long,
        c_uint,
        c_ulong, //
    },
    fs::File,
    mm::virt::VmaNew,
    prelude::*,
    str::CString,
    sync::{
        poll::PollTable,
        Arc,
        ArcBorrow, //
    },
    types::{
        ForeignOwnable,
        Opaque, //
    },
};

use crate::{
    binderfs::{
        self,
        ProcLogFile, //
    },
    context::Context,
    ioctl,
    process::Process, //
};

/// All devices of the module, deregistered when dropped.
pub(crate) struct Devices {
    list: KVec<Pin<KBox<BinderDevice>>>,
}

impl Devices {
    /// Registers one device per name, in order.
    ///
    /// The names are checked already ([`crate::devices_param::device_names`]). On failure the
    /// devices registered so far are deregistered again, as `list` is dropped.
    pub(crate) fn register(names: KVec<CString>) -> Result<Self> {
        let mut list = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for name in names {
            let context = Context::new(name)?;
            list.push(BinderDevice::register(context)?, GFP_KERNEL)?;
        }
        Ok(Self { list })
    }
}

impl Drop for Devices {
    fn drop(&mut self) {
        // Deregister in reverse order of registration.
        while let Some(device) = self.list.pop() {
            drop(device);
        }
    }
}

/// One registered binder device.
///
/// # Invariants
///
/// `misc` is registered with `misc_register` for as long as this value exists, and its
/// `fops` is [`BINDER_FOPS`].
#[pin_data(PinnedDrop)]
struct BinderDevice {
    /// The device's context; `misc.name` points into its name.
    context: Arc<Context>,
    /// The registered misc device.
    #[pin]
    misc: Opaque<bindings::miscdevice>,
}

// SAFETY: Registration and deregistration may happen on any thread, and after registration
// the misc core only reads the `miscdevice` under its own lock.
unsafe impl Send for BinderDevice {}

// SAFETY: No `&self` method touches the `miscdevice`; the context is `Sync`.
unsafe impl Sync for BinderDevice {}

impl BinderDevice {
    /// Registers a misc device for `context`, named after it.
    fn register(context: Arc<Context>) -> Result<Pin<KBox<Self>>> {
        // The name lives in the context's heap allocation, which this device keeps alive.
        let name = context.name.as_char_ptr();
        KBox::try_pin_init(
            try_pin_init!(Self {
                context,
                misc <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                    let mut misc: bindings::miscdevice = pin_init::zeroed();
                    misc.minor = bindings::MISC_DYNAMIC_MINOR as c_int;
                    misc.name = name;
                    misc.fops = &BINDER_FOPS.0;
                    // SAFETY: `slot` is valid for writes, and pinned: it stays put until
                    // `PinnedDrop` deregisters it.
                    unsafe { slot.write(misc) };
                    // SAFETY: `slot` holds a fully initialised `miscdevice` whose name and
                    // fops outlive the registration.
                    // INVARIANT: On success the device is registered until `PinnedDrop`.
                    to_result(unsafe { bindings::misc_register(slot) })
                }),
            }),
            GFP_KERNEL,
        )
    }
}

#[pinned_drop]
impl PinnedDrop for BinderDevice {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}

/// Makes a C-ABI table usable in a `static`.
#[repr(transparent)]
struct FileOps(bindings::file_operations);

// SAFETY: The table is immutable and only holds function pointers and the module pointer,
// which any thread may use.
unsafe impl Sync for FileOps {}

/// The `file_operations` of every binder device.
///
/// `owner` pins the module while any file of it is open, so `rmmod` cannot pull the code out
/// from under an open file.
static BINDER_FOPS: FileOps = FileOps(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(binder_open),
    release: Some(binder_release),
    mmap: Some(binder_mmap),
    unlocked_ioctl: Some(binder_ioctl),
    compat_ioctl: Some(binder_compat_ioctl),
    poll: Some(binder_poll),
    flush: Some(binder_flush),
    ..pin_init::zeroed()
});

/// What `binder_open` keeps in a binder file's `private_data`.
struct OpenFile {
    /// The process the open created.
    process: Arc<Process>,
    /// Its `binder_logs/proc/<pid>` file, for a device of a `stats=global` binderfs mount.
    _log_file: Option<ProcLogFile>,
}

/// The file operations of every binder device, misc or binderfs.
pub(crate) fn binder_fops() -> &'static bindings::file_operations {
    &BINDER_FOPS.0
}

/// Borrows the process that `binder_open` stored in `file`.
///
/// # Safety
///
/// `file` must be a binder file that `binder_open` set up and that is not yet released, and
/// the borrow must end before it is released.
unsafe fn process_of<'a>(file: *mut bindings::file) -> ArcBorrow<'a, Process> {
    // SAFETY: Per the safety requirements, `private_data` came from `KBox::into_foreign` in
    // `binder_open` and `binder_release` has not yet taken it back.
    let open = unsafe { <KBox<OpenFile> as ForeignOwnable>::borrow((*file).private_data) };
    open.process.as_arc_borrow()
}

/// `open`: creates the [`Process`] of the new file.
///
/// The device is a misc device (its `miscdevice` is in `private_data`) or a binderfs device
/// (its context is in the inode).
///
/// # Safety
///
/// Called by `misc_open` with a file being opened on one of our misc devices, or by the VFS
/// with a file being opened on one of our binderfs devices.
unsafe extern "C" fn binder_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: The inode is being opened with these file operations.
    let binderfs_context = unsafe { binderfs::context_of(inode) };
    let is_binderfs = binderfs_context.is_some();
    let context = match binderfs_context {
        Some(context) => context,
        None => {
            // SAFETY: Not a binderfs device, so `misc_open` stored the registered
            // `miscdevice` in `private_data`, and holds the misc lock during this call, so the
            // device cannot be deregistered meanwhile.
            let misc = unsafe { (*file).private_data }.cast::<Opaque<bindings::miscdevice>>();
            // SAFETY: Every misc device using `BINDER_FOPS` is the `misc` field of a
            // `BinderDevice`.
            let device = unsafe { &*kernel::container_of!(misc, BinderDevice, misc) };
            device.context.clone()
        }
    };
    // Allocated first, so that nothing can fail once the process exists.
    let slot = match KBox::<OpenFile>::new_uninit(GFP_KERNEL) {
        Ok(slot) => slot,
        Err(_) => return ENOMEM.to_errno(),
    };
    // SAFETY: The file is valid for this call, and is not in an `fdget_pos` region.
    let file_ref = unsafe { File::from_raw_file(file) };
    match Process::open(context, file_ref) {
        Ok((process, first_of_pid)) => {
            // As in C, a process's log file is made by the first open of its pid, of any
            // device.
            let log_file = if is_binderfs && first_of_pid {
                // SAFETY: The inode is a binderfs device being opened.
                unsafe { ProcLogFile::new(inode, process.pid()) }
            } else {
                None
            };
            let open = KBox::write(
                slot,
                OpenFile {
                    process,
                    _log_file: log_file,
                },
            );
            // SAFETY: From here on the private data is ours; `binder_release` takes it back.
            unsafe { (*file).private_data = open.into_foreign() };
            0
        }
        Err(err) => err.to_errno(),
    }
}

/// `release`: the last reference to the file is gone.
///
/// # Safety
///
/// Called by the VFS once, for a file that `binder_open` set up.
unsafe extern "C" fn binder_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `binder_open` stored the open file with `into_foreign`; this is the one call
    // that takes it back, and no other file operation can run any more.
    let open = unsafe { <KBox<OpenFile> as ForeignOwnable>::from_foreign((*file).private_data) };
    let OpenFile { process, _log_file } = KBox::into_inner(open);
    // The log file goes now, while the file still keeps its mount alive.
    drop(_log_file);
    // The debugfs log file goes at once too, as in C; the process's state lingers until its
    // release.
    process.debugfs_entry.remove();
    // As in the C driver, the teardown happens later, in a worker, not in the closing task.
    crate::release::release_later(process);
    0
}

/// `unlocked_ioctl`: all of binder's requests.
///
/// # Safety
///
/// Called by the VFS for an open binder file.
unsafe extern "C" fn binder_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: The file is open for the duration of the ioctl.
    let process = unsafe { process_of(file) };
    // SAFETY: The file is valid for this call, and is not in an `fdget_pos` region.
    let file = unsafe { File::from_raw_file(file) };
    match ioctl::dispatch(process, file, cmd, arg) {
        Ok(ret) => ret as c_long,
        Err(err) => err.to_errno() as c_long,
    }
}

/// `compat_ioctl`: a 32-bit task on a 64-bit kernel.
///
/// The binder ABI has the same layout for 32-bit tasks (protocol version 8), so only the
/// argument pointer needs widening, which on x86-64 it already is.
///
/// # Safety
///
/// Called by the VFS for an open binder file.
unsafe extern "C" fn binder_compat_ioctl(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: Same contract as `binder_ioctl`.
    unsafe { binder_ioctl(file, cmd, arg) }
}

/// `mmap`: maps the receive buffer.
///
/// # Safety
///
/// Called by the memory manager with an open binder file and a vma being set up for it.
unsafe extern "C" fn binder_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: The file is open for the duration of the call.
    let process = unsafe { process_of(file) };
    // SAFETY: The vma is undergoing its initial setup by this `mmap` call.
    let vma = unsafe { VmaNew::from_raw(vma) };
    match process.mmap(vma) {
        Ok(()) => 0,
        Err(err) => err.to_errno(),
    }
}

/// `poll`: reports whether the calling thread has work to read.
///
/// # Safety
///
/// Called by the VFS for an open binder file.
unsafe extern "C" fn binder_poll(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: The file is open for the duration of the call.
    let process = unsafe { process_of(file) };
    // SAFETY: The file is valid for this call, and is not in an `fdget_pos` region.
    let file_ref = unsafe { File::from_raw_file(file) };
    // SAFETY: The VFS passes a poll table that is valid for this call.
    let table = unsafe { PollTable::from_raw(wait) };
    // Polling makes the caller a binder thread, as an ioctl does.
    match process.current_thread() {
        Ok(thread) => match thread.poll(&process, file_ref, table) {
            Ok(true) => bindings::POLLIN,
            Ok(false) => 0,
            Err(_) => bindings::POLLERR,
        },
        Err(_) => bindings::POLLERR,
    }
}

/// `flush`: a file descriptor of the file is being closed.
///
/// # Safety
///
/// Called by the VFS for an open binder file.
unsafe extern "C" fn binder_flush(file: *mut bindings::file, _id: bindings::fl_owner_t) -> c_int {
    // SAFETY: The file is open for the duration of the call.
    let process = unsafe { process_of(file) };
    process.flush();
    0
}
