// SPDX-License-Identifier: GPL-2.0

//! binderfs: the `binder` filesystem, where binder devices are made on demand.
//!
//! Every mount is a filesystem of its own (a user namespace's root may mount one), holding:
//!
//! - `binder-control`, whose `BINDER_CTL_ADD` ioctl makes a new binder device in the mount;
//! - one device per name of the `devices` module parameter, made at mount time;
//! - `features/`, one file per protocol feature the driver has, reading `1`;
//! - with `stats=global`, `binder_logs/`: the log files of [`crate::logs`] and `proc/`, where
//!   a process that opens one of the mount's devices gets a `proc/<pid>` file until it closes.
//!
//! Each device is its own binder [`Context`], with its own context manager. Its inode holds a
//! reference to the context, and each process that opened it another, so that a device
//! unlinked, or whose mount is gone, keeps working for the files still open on it.
//!
//! The mount API (`fs_context`) is not in the Rust bindings: `binderfs_glue.c` parses the
//! options and sets up the superblock, then calls [`rb_binderfs_fill_super`] here for the rest.
//!
//! Locks: [`STATE`] guards the minor numbers and every mount's device count. It is taken with
//! no other lock of the driver held, and under it only allocations happen.

use core::ptr::{
    null_mut,
    NonNull, //
};

use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
        c_long,
        c_uint,
        c_ulong,
        c_void, //
    },
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    census::{
        Counted,
        Kind, //
    },
    context::Context,
    logs,
};

/// How many minor numbers binderfs devices share, across all mounts (`BINDERFS_MAX_MINOR`).
const MINORS: u32 = 1 << bindings::MINORBITS;

/// The minors a mount outside the initial IPC namespace may use: the last four are kept for
/// the initial namespace, so that its mounts always get devices.
const MINORS_OUTSIDE_INIT_IPC: u32 = MINORS - 4;

/// Inode numbers: the root directory, `binder-control`, then devices from this number on
/// (their minor added). Directories and files get numbers above every device's.
const ROOT_INO: u64 = 1;
const CONTROL_INO: u64 = 2;
const FIRST_DEVICE_INO: u64 = 3;

/// Longest device name (`BINDERFS_MAX_NAME`).
const MAX_NAME: usize = 255;

/// `struct binderfs_device` of `include/uapi/linux/android/binderfs.h`: the name of the device
/// `BINDER_CTL_ADD` makes, and the numbers the driver gives it back.
#[repr(C)]
#[derive(Clone, Copy)]
struct BinderfsDevice {
    name: [u8; MAX_NAME + 1],
    major: u32,
    minor: u32,
}

// SAFETY: Bytes, then two `u32`s at 4-aligned offsets: no padding, any bits are valid.
unsafe impl FromBytes for BinderfsDevice {}
// SAFETY: As above, no padding.
unsafe impl AsBytes for BinderfsDevice {}

/// `BINDER_CTL_ADD`: `_IOWR('b', 1, struct binderfs_device)`.
const BINDER_CTL_ADD: u32 = kernel::ioctl::_IOWR::<BinderfsDevice>(b'b' as u32, 1);

/// The protocol features `features/` lists, as C's binderfs names them, and whether this
/// driver has each. A file reads `1` or `0`.
const FEATURES: [(&CStr, bool); 4] = [
    (c"oneway_spam_detection", true),
    (c"extended_error", true),
    (c"freeze_notification", true),
    // The generic netlink reports of failed and spam-suspect transactions (netlink.rs).
    (c"transaction_report", true),
];

extern "C" {
    /// The filesystem type of `binderfs_glue.c` (a `struct file_system_type`; an opaque
    /// pointer here, as bindgen's view of the type is not FFI-safe).
    #[link_name = "rb_binderfs_fs_type"]
    fn rb_binderfs_fs_type_raw() -> *mut c_void;
    /// Drops the IPC namespace reference `binderfs_glue.c` took for a mount.
    fn rb_binderfs_put_ipc_ns(ipc_ns: *mut c_void);
}

/// The minor numbers in use, one bit each.
struct MinorPool {
    words: KVec<u64>,
}

impl MinorPool {
    const fn new() -> Self {
        Self { words: KVec::new() }
    }

    /// Takes the lowest free minor below `limit`; `ENOSPC` if there is none.
    fn take(&mut self, limit: u32) -> Result<u32> {
        for (index, word) in self.words.iter_mut().enumerate() {
            if *word != u64::MAX {
                let bit = word.trailing_ones();
                let minor = u32::try_from(index * 64).map_err(|_| ENOSPC)? + bit;
                if minor >= limit {
                    return Err(ENOSPC);
                }
                *word |= 1 << bit;
                return Ok(minor);
            }
        }
        let minor = u32::try_from(self.words.len() * 64).map_err(|_| ENOSPC)?;
        if minor >= limit {
            return Err(ENOSPC);
        }
        self.words.push(1, GFP_KERNEL)?;
        Ok(minor)
    }

    /// Gives `minor` back.
    fn give_back(&mut self, minor: u32) {
        if let Some(word) = self.words.get_mut(minor as usize / 64) {
            *word &= !(1 << (minor % 64));
        }
    }
}

/// What binderfs shares across mounts, guarded by [`STATE`].
struct State {
    /// The minors of every binderfs device and `binder-control` in any mount.
    minors: MinorPool,
    /// The names of the `devices` parameter: each mount starts with these devices.
    default_devices: KVec<CString>,
}

kernel::sync::global_lock! {
    // SAFETY: `init` is called by the module's initialiser, before the filesystem is
    // registered, and so before anything else uses the lock.
    unsafe(uninit) static STATE: Mutex<State> = State {
        minors: MinorPool::new(),
        default_devices: KVec::new(),
    };
}

/// The filesystem type of `binderfs_glue.c`.
fn fs_type() -> *mut bindings::file_system_type {
    // SAFETY: The function only returns the address of a static.
    unsafe { rb_binderfs_fs_type_raw() }.cast()
}

/// The major number of binderfs devices, while the filesystem is registered.
static MAJOR: Atomic<u32> = Atomic::new(0);

/// Initialises binderfs's lock; called once, when the module is loaded.
pub(crate) fn init() {
    // SAFETY: Called once, from the module's initialiser, before any other use of the lock.
    unsafe { STATE.init() };
}

/// The registered filesystem and its range of device numbers, given back when dropped.
///
/// # Invariants
///
/// `region` was allocated with `alloc_chrdev_region` for [`MINORS`] minors, and the type of
/// `binderfs_glue.c` is registered, for as long as this value exists.
pub(crate) struct Registration {
    region: bindings::dev_t,
}

impl Registration {
    /// Registers the `binder` filesystem, whose mounts start with the devices `names`.
    ///
    /// Fails with `EBUSY` when another module (the C driver) registered a `binder` filesystem.
    pub(crate) fn register(names: &[CString]) -> Result<Self> {
        let mut copies = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for name in names {
            copies.push(CString::try_from(&**name)?, GFP_KERNEL)?;
        }
        STATE.lock().default_devices = copies;

        let mut region: bindings::dev_t = 0;
        // SAFETY: `region` is valid for writes; the name is a static C string.
        to_result(unsafe {
            bindings::alloc_chrdev_region(&mut region, 0, MINORS, c"binder".as_char_ptr())
        })?;
        // SAFETY: The type is a static of `binderfs_glue.c`, fully initialised there.
        if let Err(err) = to_result(unsafe { bindings::register_filesystem(fs_type()) }) {
            // SAFETY: The region was allocated just above.
            unsafe { bindings::unregister_chrdev_region(region, MINORS) };
            return Err(err);
        }
        MAJOR.store(region >> bindings::MINORBITS, Relaxed);
        // INVARIANT: The region is allocated and the type registered.
        Ok(Self { region })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the type is registered. No mount is left: each holds
        // a reference to the module, which is being unloaded.
        unsafe { bindings::unregister_filesystem(fs_type()) };
        // SAFETY: By the type invariant the region is ours, and no device of it is left.
        unsafe { bindings::unregister_chrdev_region(self.region, MINORS) };
        // The module's statics go with it: what they own is freed now.
        let (minors, names) = {
            let mut state = STATE.lock();
            (
                core::mem::replace(&mut state.minors, MinorPool::new()),
                core::mem::take(&mut state.default_devices),
            )
        };
        drop(minors);
        drop(names);
    }
}

/// A mount's request, as `binderfs_glue.c` fills it in (`struct rb_binderfs_mount`).
#[repr(C)]
struct MountRequest {
    max: u32,
    stats_global: bool,
    root_uid: bindings::kuid_t,
    root_gid: bindings::kgid_t,
    init_ipc_ns: bool,
    ipc_ns: *mut c_void,
}

/// One mount's state, in its superblock's `s_fs_info` from `rb_binderfs_fill_super` until
/// `rb_binderfs_free_info` (after every inode of the mount was evicted).
///
/// # Invariants
///
/// `ipc_ns` is a counted reference to the mounter's IPC namespace, dropped with this value.
struct MountInfo {
    _census: Counted,
    /// How many devices the mount may have (`max=`); a remount may change it.
    max: Atomic<u32>,
    /// The mount's devices, counted from creation to eviction. Changed under [`STATE`].
    devices: Atomic<u32>,
    /// `stats=global`: the mount has `binder_logs/`.
    stats_global: bool,
    /// The owner of the mount's devices: root of the user namespace that mounted it.
    root_uid: bindings::kuid_t,
    root_gid: bindings::kgid_t,
    /// The mount belongs to the initial IPC namespace.
    init_ipc_ns: bool,
    ipc_ns: *mut c_void,
    /// The `binder-control` dentry, which cannot be unlinked or renamed; set at mount.
    control: Atomic<*mut bindings::dentry>,
    /// `binder_logs/proc`, with `stats=global`; set at mount.
    proc_dir: Atomic<*mut bindings::dentry>,
}

impl Drop for MountInfo {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the reference is ours to drop.
        unsafe { rb_binderfs_put_ipc_ns(self.ipc_ns) };
    }
}

/// The state of the mount `sb`.
///
/// # Safety
///
/// `sb` must be a binderfs superblock between `rb_binderfs_fill_super` (once it set
/// `s_fs_info`) and `rb_binderfs_free_info`, for as long as the reference is used.
unsafe fn mount_of<'a>(sb: *mut bindings::super_block) -> &'a MountInfo {
    // SAFETY: Per the safety requirements, `s_fs_info` holds a live `MountInfo`.
    unsafe { &*(*sb).s_fs_info.cast::<MountInfo>() }
}

/// What the `i_private` of a character device inode of binderfs owns: its minor number and,
/// for a binder device, its context. Dropped when the inode is evicted.
///
/// # Invariants
///
/// `minor` is taken from [`State::minors`]; `mount` is the mount the inode belongs to, which
/// outlives its inodes. When `context` is `Some`, the device counts in `mount.devices`.
struct CharInode {
    _census: Counted,
    minor: u32,
    mount: *const MountInfo,
    context: Option<Arc<Context>>,
}

impl Drop for CharInode {
    fn drop(&mut self) {
        let mut state = STATE.lock();
        state.minors.give_back(self.minor);
        if self.context.is_some() {
            // SAFETY: By the type invariant the mount outlives this inode.
            unsafe { &*self.mount }.devices.fetch_sub(1, Relaxed);
        }
    }
}

impl CharInode {
    /// Takes a minor for a new device of `mount` (for `binder-control` when `context` is
    /// `None`), within the mount's `max=` for a device.
    fn new(mount: &MountInfo, context: Option<Arc<Context>>) -> Result<KBox<Self>> {
        let limit = if mount.init_ipc_ns {
            MINORS
        } else {
            MINORS_OUTSIDE_INIT_IPC
        };
        let minor = {
            let mut state = STATE.lock();
            if context.is_some() {
                let count = mount.devices.load(Relaxed).checked_add(1).ok_or(ENOSPC)?;
                if count > mount.max.load(Relaxed) {
                    return Err(ENOSPC);
                }
                let minor = state.minors.take(limit)?;
                mount.devices.store(count, Relaxed);
                minor
            } else {
                state.minors.take(limit)?
            }
        };
        // INVARIANT: The minor was taken, and a device was counted, just above.
        let inode = Self {
            _census: Counted::new(Kind::BinderfsInode),
            minor,
            mount,
            context,
        };
        Ok(KBox::new(inode, GFP_KERNEL)?)
    }
}

/// A new inode of `sb`, not yet in any directory: dropped (`iput`) unless handed to a dentry.
struct NewInode(NonNull<bindings::inode>);

impl NewInode {
    /// Allocates an inode of `sb` with number `ino` (or a unique one above every device's)
    /// and `mode`, its times set to now.
    ///
    /// # Safety
    ///
    /// `sb` must be a live superblock.
    unsafe fn new(sb: *mut bindings::super_block, ino: Option<u64>, mode: u32) -> Result<Self> {
        // SAFETY: Per the safety requirements `sb` is live.
        let inode = NonNull::new(unsafe { bindings::new_inode(sb) }).ok_or(ENOMEM)?;
        let raw = inode.as_ptr();
        let ino = match ino {
            Some(ino) => ino,
            // SAFETY: `sb` is live; every number up to the last device's is reserved.
            None => unsafe {
                bindings::iunique(sb, MINORS as usize + FIRST_DEVICE_INO as usize) as u64
            },
        };
        // SAFETY: The inode is new and ours alone.
        unsafe {
            (*raw).i_ino = ino;
            (*raw).i_mode = mode as bindings::umode_t;
            bindings::simple_inode_init_ts(raw);
        }
        Ok(Self(inode))
    }

    fn as_ptr(&self) -> *mut bindings::inode {
        self.0.as_ptr()
    }

    /// Gives the inode up to the caller, who makes a dentry hold it.
    fn into_raw(self) -> *mut bindings::inode {
        let inode = self.0.as_ptr();
        core::mem::forget(self);
        inode
    }
}

impl Drop for NewInode {
    fn drop(&mut self) {
        // SAFETY: The inode is ours; `iput` evicts it, giving back what its `i_private` owns.
        unsafe { bindings::iput(self.0.as_ptr()) };
    }
}

/// Adds `name` to the directory `parent` for `inode`, which becomes a persistent dentry of
/// the directory (freed with the mount, or when unlinked). Fails with `EACCES` for a name
/// that is not a file name (empty, `.`, `..`, with `/`) and `EEXIST` for a name in use.
///
/// # Safety
///
/// `parent` must be a live directory dentry of the superblock `inode` belongs to.
unsafe fn add_entry(
    parent: *mut bindings::dentry,
    name: &CStr,
    inode: NewInode,
) -> Result<*mut bindings::dentry> {
    // SAFETY: `parent` is a live directory; `name` is NUL-terminated.
    let dentry =
        from_err_ptr(unsafe { bindings::simple_start_creating(parent, name.as_char_ptr()) })?;
    // SAFETY: `dentry` is a new negative dentry of `parent`, locked for creation; the dentry
    // takes over the inode's reference.
    unsafe {
        bindings::d_make_persistent(dentry, inode.into_raw());
        bindings::simple_done_creating(dentry);
    }
    Ok(dentry)
}

/// Makes the directory `name` in `parent`.
///
/// # Safety
///
/// `parent` must be a live directory dentry of the superblock `sb`.
unsafe fn add_dir(
    sb: *mut bindings::super_block,
    parent: *mut bindings::dentry,
    name: &CStr,
) -> Result<*mut bindings::dentry> {
    // SAFETY: Per the safety requirements `sb` is live.
    let inode = unsafe { NewInode::new(sb, None, bindings::S_IFDIR | 0o755) }?;
    // SAFETY: The inode is new and ours alone; the operations are the kernel's own.
    unsafe {
        let raw = inode.as_ptr();
        (*raw).__bindgen_anon_3.i_fop = &bindings::simple_dir_operations;
        (*raw).i_op = &bindings::simple_dir_inode_operations;
        bindings::set_nlink(raw, 2);
    }
    // SAFETY: Per the safety requirements `parent` is a live directory of `sb`.
    let dentry = unsafe { add_entry(parent, name, inode) }?;
    // SAFETY: `parent` is live; its new subdirectory's `..` links to it.
    unsafe { bindings::inc_nlink((*parent).d_inode) };
    Ok(dentry)
}

/// Makes the read-only file `name` in `parent`, with `fops` and `private` (the inode's
/// `i_private`, for `fops`).
///
/// # Safety
///
/// `parent` must be a live directory dentry of the superblock `sb`, and `private` what
/// `fops` expects for as long as the file exists.
unsafe fn add_file(
    sb: *mut bindings::super_block,
    parent: *mut bindings::dentry,
    name: &CStr,
    fops: &'static bindings::file_operations,
    private: *mut c_void,
) -> Result<*mut bindings::dentry> {
    // SAFETY: Per the safety requirements `sb` is live.
    let inode = unsafe { NewInode::new(sb, None, bindings::S_IFREG | 0o444) }?;
    // SAFETY: The inode is new and ours alone.
    unsafe {
        (*inode.as_ptr()).__bindgen_anon_3.i_fop = fops;
        (*inode.as_ptr()).i_private = private;
    }
    // SAFETY: Per the safety requirements `parent` is a live directory of `sb`.
    unsafe { add_entry(parent, name, inode) }
}

/// Makes a character device inode of `mount` (in `sb`) for `owner`, with `fops`.
///
/// # Safety
///
/// `sb` must be the live superblock of `mount`.
unsafe fn new_char_inode(
    sb: *mut bindings::super_block,
    mount: &MountInfo,
    ino: u64,
    owner: KBox<CharInode>,
    fops: &'static bindings::file_operations,
) -> Result<NewInode> {
    let rdev = (MAJOR.load(Relaxed) << bindings::MINORBITS) | owner.minor;
    // SAFETY: Per the safety requirements `sb` is live.
    let inode = unsafe { NewInode::new(sb, Some(ino), 0) }?;
    let raw = inode.as_ptr();
    // SAFETY: The inode is new and ours alone. From here on its eviction drops `owner`.
    unsafe {
        bindings::init_special_inode(raw, (bindings::S_IFCHR | 0o600) as bindings::umode_t, rdev);
        (*raw).__bindgen_anon_3.i_fop = fops;
        (*raw).i_uid = mount.root_uid;
        (*raw).i_gid = mount.root_gid;
        (*raw).i_private = KBox::into_raw(owner).cast();
    }
    Ok(inode)
}

/// Makes the binder device `name` in the mount `sb`: a new context, a minor number and the
/// file. `numbers` is told the major and minor numbers before the file is made (so a name
/// refused still reports them, as in C).
///
/// # Safety
///
/// `sb` must be a live binderfs superblock with its root set up.
unsafe fn add_device(
    sb: *mut bindings::super_block,
    name: &CStr,
    numbers: impl FnOnce(u32, u32) -> Result,
) -> Result {
    // SAFETY: Per the safety requirements the mount is set up and live.
    let mount = unsafe { mount_of(sb) };
    let context = Context::new(CString::try_from(name)?)?;
    let owner = CharInode::new(mount, Some(context))?;
    let minor = owner.minor;
    let ino = FIRST_DEVICE_INO + u64::from(minor);
    // SAFETY: `sb` is the live superblock of `mount`.
    let inode = unsafe { new_char_inode(sb, mount, ino, owner, crate::device::binder_fops()) }?;
    numbers(MAJOR.load(Relaxed), minor)?;
    // SAFETY: The root is a live directory of `sb`.
    unsafe { add_entry((*sb).s_root, name, inode) }?;
    Ok(())
}

/// Makes the mount's `binder-control`.
///
/// # Safety
///
/// `sb` must be a live binderfs superblock with its root set up.
unsafe fn add_control(sb: *mut bindings::super_block) -> Result {
    // SAFETY: Per the safety requirements the mount is set up and live.
    let mount = unsafe { mount_of(sb) };
    let owner = CharInode::new(mount, None)?;
    // SAFETY: `sb` is the live superblock of `mount`.
    let inode = unsafe { new_char_inode(sb, mount, CONTROL_INO, owner, &CONTROL_FOPS.0) }?;
    // SAFETY: The root is a live directory of `sb`.
    let dentry = unsafe { add_entry((*sb).s_root, c"binder-control", inode) }?;
    mount.control.store(dentry, Relaxed);
    Ok(())
}

/// Fills a new superblock: the root, `binder-control`, the default devices, `features/` and,
/// with `stats=global`, `binder_logs/`. Called by `binderfs_glue.c` once it set up the
/// superblock's own fields; a failure fails the mount, and `rb_binderfs_free_info` cleans up.
///
/// # Safety
///
/// `sb` must be a new binderfs superblock being filled, and `request` valid for reads; the
/// request's IPC namespace reference becomes ours.
#[no_mangle]
unsafe extern "C" fn rb_binderfs_fill_super(
    sb: *mut bindings::super_block,
    request: *const MountRequest,
) -> c_int {
    // SAFETY: Per the safety requirements `request` is valid.
    let request = unsafe { &*request };
    // INVARIANT: The IPC namespace reference is handed over to the `MountInfo`.
    let mount = KBox::new(
        MountInfo {
            _census: Counted::new(Kind::BinderfsMount),
            max: Atomic::new(request.max),
            devices: Atomic::new(0),
            stats_global: request.stats_global,
            root_uid: request.root_uid,
            root_gid: request.root_gid,
            init_ipc_ns: request.init_ipc_ns,
            ipc_ns: request.ipc_ns,
            control: Atomic::new(null_mut()),
            proc_dir: Atomic::new(null_mut()),
        },
        GFP_KERNEL,
    );
    let mount = match mount {
        Ok(mount) => mount,
        Err(_) => {
            // SAFETY: The reference was ours, and nothing else will drop it.
            unsafe { rb_binderfs_put_ipc_ns(request.ipc_ns) };
            return ENOMEM.to_errno();
        }
    };
    // SAFETY: The superblock is being filled by us alone; `rb_binderfs_free_info` takes the
    // state back, after the inodes that use it are gone.
    unsafe {
        (*sb).s_fs_info = KBox::into_raw(mount).cast();
        (*sb).s_op = &SUPER_OPS.0;
    }
    // SAFETY: `sb` is being filled and its state is set.
    match unsafe { fill(sb) } {
        Ok(()) => 0,
        Err(err) => err.to_errno(),
    }
}

/// The body of [`rb_binderfs_fill_super`].
///
/// # Safety
///
/// `sb` must be a new binderfs superblock being filled, with its [`MountInfo`] set.
unsafe fn fill(sb: *mut bindings::super_block) -> Result {
    // SAFETY: Per the safety requirements `sb` is live.
    let root = unsafe { NewInode::new(sb, Some(ROOT_INO), bindings::S_IFDIR | 0o755) }?;
    // SAFETY: The inode is new and ours alone.
    unsafe {
        (*root.as_ptr()).__bindgen_anon_3.i_fop = &bindings::simple_dir_operations;
        (*root.as_ptr()).i_op = &ROOT_DIR_OPS.0;
        bindings::set_nlink(root.as_ptr(), 2);
    }
    // SAFETY: `d_make_root` takes the inode's reference, and drops it on failure.
    let root = unsafe { bindings::d_make_root(root.into_raw()) };
    if root.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: The superblock is ours until the mount is set up.
    unsafe { (*sb).s_root = root };

    // SAFETY: The root is set up.
    unsafe { add_control(sb) }?;

    let names = {
        let state = STATE.lock();
        let mut names = KVec::with_capacity(state.default_devices.len(), GFP_KERNEL)?;
        for name in state.default_devices.iter() {
            names.push(CString::try_from(&**name)?, GFP_KERNEL)?;
        }
        names
    };
    for name in names.iter() {
        // SAFETY: The root is set up.
        unsafe { add_device(sb, name, |_, _| Ok(())) }?;
    }

    // SAFETY: The root is a live directory of `sb`.
    let features = unsafe { add_dir(sb, root, c"features") }?;
    for (name, present) in FEATURES.iter() {
        let flag = if *present { &FEATURE_ON } else { &FEATURE_OFF };
        // SAFETY: `features` is a live directory of `sb`; the flag is a static, as
        // `feature_show` expects.
        unsafe {
            add_file(
                sb,
                features,
                name,
                &FEATURE_FOPS.0,
                core::ptr::from_ref(flag).cast_mut().cast(),
            )
        }?;
    }

    // SAFETY: The state is set.
    let mount = unsafe { mount_of(sb) };
    if mount.stats_global {
        // SAFETY: The root is a live directory of `sb`.
        let logs_dir = unsafe { add_dir(sb, root, c"binder_logs") }?;
        for file in logs::log_files() {
            // SAFETY: `logs_dir` is a live directory of `sb`; log files take no private data.
            unsafe { add_file(sb, logs_dir, file.name, file.fops, null_mut()) }?;
        }
        // SAFETY: `logs_dir` is a live directory of `sb`.
        let proc_dir = unsafe { add_dir(sb, logs_dir, c"proc") }?;
        mount.proc_dir.store(proc_dir, Relaxed);
    }
    Ok(())
}

/// Whether the mount `sb` has `stats=global`, for a remount (which cannot change it).
///
/// # Safety
///
/// `sb` must be a live, mounted binderfs superblock.
#[no_mangle]
unsafe extern "C" fn rb_binderfs_stats_global(sb: *mut bindings::super_block) -> bool {
    // SAFETY: Per the safety requirements the mount is set up.
    unsafe { mount_of(sb) }.stats_global
}

/// Sets the mount's `max=` (a remount).
///
/// # Safety
///
/// `sb` must be a live, mounted binderfs superblock.
#[no_mangle]
unsafe extern "C" fn rb_binderfs_set_max(sb: *mut bindings::super_block, max: u32) {
    // SAFETY: Per the safety requirements the mount is set up.
    unsafe { mount_of(sb) }.max.store(max, Relaxed);
}

/// Frees the mount's state, once its superblock is shut down (every inode evicted).
///
/// # Safety
///
/// `sb` must be a binderfs superblock after `kill_anon_super`.
#[no_mangle]
unsafe extern "C" fn rb_binderfs_free_info(sb: *mut bindings::super_block) {
    // SAFETY: The superblock is shut down; nothing else uses its state.
    let info = unsafe { core::mem::take(&mut (*sb).s_fs_info) };
    if !info.is_null() {
        // SAFETY: `rb_binderfs_fill_super` stored it with `KBox::into_raw`.
        drop(unsafe { KBox::from_raw(info.cast::<MountInfo>()) });
    }
}

/// Makes a C-ABI table usable in a `static`.
#[repr(transparent)]
struct Table<T>(T);

// SAFETY: The tables are immutable and only hold function pointers, the module pointer and
// pointers to other such tables, which any thread may use.
unsafe impl<T> Sync for Table<T> {}

static SUPER_OPS: Table<bindings::super_operations> = Table(bindings::super_operations {
    evict_inode: Some(evict_inode),
    show_options: Some(show_options),
    statfs: Some(bindings::simple_statfs),
    ..pin_init::zeroed()
});

static ROOT_DIR_OPS: Table<bindings::inode_operations> = Table(bindings::inode_operations {
    lookup: Some(bindings::simple_lookup),
    rename: Some(root_rename),
    unlink: Some(root_unlink),
    ..pin_init::zeroed()
});

static CONTROL_FOPS: Table<bindings::file_operations> = Table(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(bindings::nonseekable_open),
    unlocked_ioctl: Some(control_ioctl),
    compat_ioctl: Some(control_ioctl),
    llseek: Some(bindings::noop_llseek),
    ..pin_init::zeroed()
});

static FEATURE_FOPS: Table<bindings::file_operations> = Table(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(feature_open),
    read_iter: Some(bindings::seq_read_iter),
    llseek: Some(bindings::seq_lseek),
    release: Some(bindings::single_release),
    ..pin_init::zeroed()
});

/// What a feature file points at: whether the feature is there.
static FEATURE_ON: bool = true;
static FEATURE_OFF: bool = false;

/// `evict_inode`: gives back what a device's or `binder-control`'s inode owns.
///
/// # Safety
///
/// Called by the VFS for an inode of a binderfs superblock, once.
unsafe extern "C" fn evict_inode(inode: *mut bindings::inode) {
    // SAFETY: The inode is being evicted: nothing else uses it.
    unsafe { bindings::clear_inode(inode) };
    // SAFETY: As above.
    let (mode, private) = unsafe { (u32::from((*inode).i_mode), (*inode).i_private) };
    if mode & bindings::S_IFMT != bindings::S_IFCHR || private.is_null() {
        return;
    }
    // SAFETY: The `i_private` of a character device inode of ours is a `CharInode` from
    // `new_char_inode`; eviction is the one place that takes it back.
    drop(unsafe { KBox::from_raw(private.cast::<CharInode>()) });
    // SAFETY: As above.
    unsafe { (*inode).i_private = null_mut() };
}

/// `show_options`: the mount's options in `/proc/mounts`.
///
/// # Safety
///
/// Called by the VFS with a seq_file and the root of a mounted binderfs.
unsafe extern "C" fn show_options(
    seq: *mut bindings::seq_file,
    root: *mut bindings::dentry,
) -> c_int {
    // SAFETY: The root of a mounted binderfs is live, and so is its state.
    let mount = unsafe { mount_of((*root).d_sb) };
    // SAFETY: The seq_file is valid for this call.
    let seq = unsafe { SeqFile::from_raw(seq) };
    seq_print!(seq, ",max={}", mount.max.load(Relaxed));
    if mount.stats_global {
        seq_print!(seq, ",stats=global");
    }
    0
}

/// Whether `dentry` is its mount's `binder-control`.
///
/// # Safety
///
/// `dentry` must be a live dentry of a mounted binderfs.
unsafe fn is_control(dentry: *mut bindings::dentry) -> bool {
    // SAFETY: The dentry is live, and so is its mount's state.
    let mount = unsafe { mount_of((*dentry).d_sb) };
    mount.control.load(Relaxed) == dentry
}

/// `unlink` in the root: any device but `binder-control`.
///
/// # Safety
///
/// Called by the VFS with the root directory locked.
unsafe extern "C" fn root_unlink(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    // SAFETY: The VFS passes a live dentry of our mount.
    if unsafe { is_control(dentry) } {
        return EPERM.to_errno();
    }
    // SAFETY: The VFS's contract, passed on.
    unsafe { bindings::simple_unlink(dir, dentry) }
}

/// `rename` in the root: anything but to or from `binder-control`.
///
/// # Safety
///
/// Called by the VFS with the directories locked.
unsafe extern "C" fn root_rename(
    idmap: *mut bindings::mnt_idmap,
    old_dir: *mut bindings::inode,
    old_dentry: *mut bindings::dentry,
    new_dir: *mut bindings::inode,
    new_dentry: *mut bindings::dentry,
    flags: c_uint,
) -> c_int {
    // SAFETY: The VFS passes live dentries of our mount.
    if unsafe { is_control(old_dentry) || is_control(new_dentry) } {
        return EPERM.to_errno();
    }
    // SAFETY: The VFS's contract, passed on.
    unsafe { bindings::simple_rename(idmap, old_dir, old_dentry, new_dir, new_dentry, flags) }
}

/// `binder-control`'s ioctl: `BINDER_CTL_ADD` makes a device in the control's mount.
///
/// # Safety
///
/// Called by the VFS for an open `binder-control`.
unsafe extern "C" fn control_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    if cmd != BINDER_CTL_ADD {
        return EINVAL.to_errno() as c_long;
    }
    // SAFETY: The file is open, so its inode and superblock are live.
    let sb = unsafe { (*(*file).f_inode).i_sb };
    let user = UserSlice::new(UserPtr::from_addr(arg), size_of::<BinderfsDevice>());
    let (mut reader, mut writer) = user.reader_writer();
    let result = reader.read::<BinderfsDevice>().and_then(|mut request| {
        // The name ends at its first NUL; an unterminated one is cut at `MAX_NAME` bytes.
        request.name[MAX_NAME] = 0;
        let name = CStr::from_bytes_until_nul(&request.name).map_err(|_| EINVAL)?;
        let name = CString::try_from(name)?;
        // SAFETY: The control's mount is live and set up.
        unsafe {
            add_device(sb, &name, |major, minor| {
                request.major = major;
                request.minor = minor;
                writer.write(&request)
            })
        }
    });
    match result {
        Ok(()) => 0,
        Err(err) => err.to_errno() as c_long,
    }
}

/// Opens a feature file: one line, `1` or `0`.
///
/// # Safety
///
/// Called by the VFS with a file being opened on a feature file.
unsafe extern "C" fn feature_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: The inode of a feature file points at a static flag.
    unsafe { bindings::single_open(file, Some(feature_show), (*inode).i_private) }
}

/// Shows a feature file.
///
/// # Safety
///
/// Called by the seq_file core for a file [`feature_open`] opened.
unsafe extern "C" fn feature_show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: `single_open` put the feature's flag, a static, in `private`.
    let present = unsafe { *(*m).private.cast::<bool>() };
    // SAFETY: The seq_file is valid for this call.
    let seq = unsafe { SeqFile::from_raw(m) };
    seq_print!(seq, "{}\n", u8::from(present));
    0
}

/// The context of the binderfs device `inode`, or `None` when it is not one (a misc device).
///
/// # Safety
///
/// `inode` must be the inode of a file being opened with the binder file operations.
pub(crate) unsafe fn context_of(inode: *mut bindings::inode) -> Option<Arc<Context>> {
    // SAFETY: The inode being opened is live, and so is its superblock.
    let ours = unsafe { (*(*inode).i_sb).s_type } == fs_type();
    if !ours {
        return None;
    }
    // SAFETY: An inode of ours opened with the binder operations is a device inode, whose
    // `i_private` is its `CharInode` until it is evicted, which an open file prevents.
    let owner = unsafe { (*inode).i_private.cast::<CharInode>().as_ref() }?;
    owner.context.clone()
}

/// A process's `binder_logs/proc/<pid>` file, removed when dropped.
///
/// # Invariants
///
/// `dentry` is a file made by [`add_file`] in a mount that outlives this value (the process's
/// open file keeps it mounted), and only this value removes it.
pub(crate) struct ProcLogFile {
    dentry: NonNull<bindings::dentry>,
}

// SAFETY: The dentry may be removed from any thread.
unsafe impl Send for ProcLogFile {}
// SAFETY: No `&self` method.
unsafe impl Sync for ProcLogFile {}

impl ProcLogFile {
    /// Makes `proc/<pid>` in the `binder_logs/` of the mount of `inode`, if it has one. When
    /// `pid` has it already, or it cannot be made, there is no file (C's behaviour; the
    /// failure is logged).
    ///
    /// # Safety
    ///
    /// `inode` must be the inode of a binderfs device being opened.
    pub(crate) unsafe fn new(inode: *mut bindings::inode, pid: i32) -> Option<Self> {
        // SAFETY: The inode being opened is live; it is ours, so its mount is set up.
        let sb = unsafe { (*inode).i_sb };
        // SAFETY: As above.
        let proc_dir = unsafe { mount_of(sb) }.proc_dir.load(Relaxed);
        if proc_dir.is_null() {
            return None;
        }
        let name = CString::try_from_fmt(fmt!("{pid}")).ok()?;
        // SAFETY: `proc_dir` is a directory of `sb`, live while the mount is; the pid fits a
        // `usize`, which is what the proc file's operations expect.
        let made = unsafe {
            add_file(
                sb,
                proc_dir,
                &name,
                logs::proc_file_ops(),
                pid as usize as *mut c_void,
            )
        };
        match made {
            Ok(dentry) => NonNull::new(dentry).map(|dentry| Self { dentry }),
            // Two threads of the pid opened devices at once, and the other made the file.
            Err(err) if err == EEXIST => None,
            Err(err) => {
                pr_warn!(
                    "cannot make binder_logs/proc/{} in binderfs ({:?})\n",
                    pid,
                    err
                );
                None
            }
        }
    }
}

impl Drop for ProcLogFile {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the file is still there and its mount live.
        unsafe { bindings::simple_recursive_removal(self.dentry.as_ptr(), None) };
    }
}
