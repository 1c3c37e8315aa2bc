// SPDX-License-Identifier: GPL-2.0

//! The `debug_mask` and `stop_on_user_error` module parameters, and the driver's log messages.
//!
//! Both parameters are writable at run time through `/sys/module/rust_binder/parameters/`,
//! as in the C driver. `debug_mask` selects which kinds of messages reach the kernel log; its
//! bits mean what the C driver's do ([`mask`]), and its default is C's: user errors, failed
//! transactions and dead transactions. Messages are rate limited like C's
//! `pr_info_ratelimited` (at most [`BURST`] every [`INTERVAL_NS`]).
//!
//! `stop_on_user_error`, when non-zero, turns into 2 at the next user error; from then on,
//! every binder ioctl waits (interruptibly) at its start and end until 0 or 1 is written
//! again, so that the state around the error can be looked at. It is for debugging only.
//!
//! `module!` only declares read-only parameters, so both are declared by hand, as
//! [`crate::devices_param`] does: a `kernel_param` in the `__param` section and the
//! `.modinfo` strings `modinfo` shows.

use kernel::{
    bindings,
    ffi::c_void,
    module_param::KernelParam,
    prelude::*,
    str::as_char_ptr_in_const_context,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

use crate::{
    process::Process,
    thread::Thread, //
};

/// The bits of `debug_mask`, with the C driver's values.
pub(crate) mod mask {
    /// Misuse of the driver by userspace: bad commands, handles, buffers, looper use.
    pub(crate) const USER_ERROR: u32 = 1 << 0;
    /// A transaction that failed (`BR_FAILED_REPLY`, `BR_DEAD_REPLY`, `BR_FROZEN_REPLY`).
    pub(crate) const FAILED_TRANSACTION: u32 = 1 << 1;
    /// A transaction or other work that was dropped because its receiver went away.
    pub(crate) const DEAD_TRANSACTION: u32 = 1 << 2;
    /// Opening and releasing the device.
    pub(crate) const OPEN_CLOSE: u32 = 1 << 3;
    /// Nodes that died, and the death notifications sent for them.
    pub(crate) const DEAD_BINDER: u32 = 1 << 4;
    /// Requests and clears of death notifications.
    pub(crate) const DEATH_NOTIFICATION: u32 = 1 << 5;
    /// `BINDER_WRITE_READ` calls.
    pub(crate) const READ_WRITE: u32 = 1 << 6;
    /// Reference count changes made by userspace.
    pub(crate) const USER_REFS: u32 = 1 << 7;
    /// Threads starting and exiting.
    pub(crate) const THREADS: u32 = 1 << 8;
    /// Every transaction sent and received.
    pub(crate) const TRANSACTION: u32 = 1 << 9;
    /// `BR_TRANSACTION_COMPLETE` delivered.
    pub(crate) const TRANSACTION_COMPLETE: u32 = 1 << 10;
    /// Buffers freed.
    pub(crate) const FREE_BUFFER: u32 = 1 << 11;
    /// Reference count changes made by the driver.
    pub(crate) const INTERNAL_REFS: u32 = 1 << 12;
    /// A nice value lowered to what the thread may use.
    pub(crate) const PRIORITY_CAP: u32 = 1 << 13;
    /// Lock tracing (a C driver bit; rust_binder logs nothing for it).
    pub(crate) const SPINLOCKS: u32 = 1 << 14;
}

/// The default mask, the C driver's.
const DEFAULT_MASK: u32 = mask::USER_ERROR | mask::FAILED_TRANSACTION | mask::DEAD_TRANSACTION;

/// The value of `debug_mask`; `param_ops_uint` writes it as an `unsigned int`, which has the
/// layout of `Atomic<u32>`.
static DEBUG_MASK: Atomic<u32> = Atomic::new(DEFAULT_MASK);

/// The value of `stop_on_user_error`: 0 (off), 1 (armed) or 2 (stopped); written as an `int`.
static STOP_ON_USER_ERROR: Atomic<i32> = Atomic::new(0);

#[link_section = "__param"]
#[used]
static DEBUG_MASK_PARAM: KernelParam = KernelParam::new(bindings::kernel_param {
    name: as_char_ptr_in_const_context(c"debug_mask"),
    // `__this_module` lives as long as the module, which is as long as its parameters.
    mod_: (&raw const bindings::__this_module).cast_mut(),
    ops: &raw const bindings::param_ops_uint,
    perm: 0o644,
    level: -1,
    flags: 0,
    __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
        arg: (&raw const DEBUG_MASK).cast_mut().cast::<c_void>(),
    },
});

/// The operations of `stop_on_user_error`: an `int`, read as usual; writing it also lets
/// waiting ioctls go on (they poll, see [`wait_while_stopped`]).
static STOP_OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
    flags: 0,
    set: Some(bindings::param_set_int),
    get: Some(bindings::param_get_int),
    free: None,
};

#[link_section = "__param"]
#[used]
static STOP_ON_USER_ERROR_PARAM: KernelParam = KernelParam::new(bindings::kernel_param {
    name: as_char_ptr_in_const_context(c"stop_on_user_error"),
    mod_: (&raw const bindings::__this_module).cast_mut(),
    ops: &raw const STOP_OPS,
    perm: 0o644,
    level: -1,
    flags: 0,
    __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
        arg: (&raw const STOP_ON_USER_ERROR).cast_mut().cast::<c_void>(),
    },
});

/// Emits one `.modinfo` string (what `modinfo rust_binder.ko` prints).
macro_rules! modinfo {
    ($name:ident, $text:literal) => {
        #[link_section = ".modinfo"]
        #[used]
        static $name: [u8; $text.len()] = *$text;
    };
}

modinfo!(DEBUG_MASK_PARMTYPE, b"parmtype=debug_mask:uint\0");
modinfo!(
    DEBUG_MASK_PARM,
    b"parm=debug_mask:Kinds of messages to log, as in the C driver (default 7): 1 user errors, 2 failed transactions, 4 dead transactions, 8 open/close, 16 dead binders, 32 death notifications, 64 read/write, 128 user refs, 256 threads, 512 transactions, 1024 transaction complete, 2048 free buffer, 4096 internal refs, 8192 priority cap\0"
);
modinfo!(STOP_PARMTYPE, b"parmtype=stop_on_user_error:int\0");
modinfo!(
    STOP_PARM,
    b"parm=stop_on_user_error:Non-zero: the first user error stops every binder ioctl until 0 is written (default 0)\0"
);

/// Whether messages of kind `bits` ([`mask`]) are logged.
#[inline]
pub(crate) fn enabled(bits: u32) -> bool {
    DEBUG_MASK.load(Relaxed) & bits != 0
}

/// The rate limit of the messages: at most `BURST` in each `INTERVAL_NS`, like the default of
/// `pr_info_ratelimited`.
const BURST: u32 = 10;
/// See [`BURST`]: five seconds.
const INTERVAL_NS: u64 = 5_000_000_000;

/// When the current rate-limit interval began (monotonic nanoseconds).
static INTERVAL_START: Atomic<u64> = Atomic::new(0);
/// Messages logged in the current interval.
static PRINTED: Atomic<u32> = Atomic::new(0);

/// Whether one more message may be logged now; counts it if so.
///
/// A message racing with the start of a new interval may be let through or held back; a rate
/// limit needs no more precision.
pub(crate) fn ratelimit() -> bool {
    // SAFETY: `ktime_get_mono_fast_ns` may be called from any context.
    let now = unsafe { bindings::ktime_get_mono_fast_ns() };
    let start = INTERVAL_START.load(Relaxed);
    if start == 0 || now.wrapping_sub(start) >= INTERVAL_NS {
        INTERVAL_START.store(now, Relaxed);
        PRINTED.store(0, Relaxed);
    }
    PRINTED.fetch_add(1, Relaxed) < BURST
}

/// Notes a user error for `stop_on_user_error`: an armed parameter becomes "stopped".
pub(crate) fn user_error_seen() {
    if STOP_ON_USER_ERROR.load(Relaxed) != 0 {
        STOP_ON_USER_ERROR.store(2, Relaxed);
    }
}

/// How long a stopped ioctl sleeps before it looks at `stop_on_user_error` again.
const STOP_POLL_MS: u32 = 100;

/// Waits while `stop_on_user_error` is 2 (stopped), as C's ioctls do; fails with
/// `ERESTARTSYS` if a signal comes first.
///
/// It polls rather than sleeping on a wait queue: the wait happens only while someone debugs
/// the driver, and a write of the parameter needs no hook then.
pub(crate) fn wait_while_stopped() -> Result {
    while STOP_ON_USER_ERROR.load(Relaxed) >= 2 {
        if kernel::current!().signal_pending() {
            return Err(ERESTARTSYS);
        }
        // SAFETY: The ioctl runs in process context, where sleeping is allowed.
        unsafe { bindings::msleep_interruptible(STOP_POLL_MS) };
    }
    Ok(())
}

/// Logs a message of the kinds `$bits` (see [`mask`]), if `debug_mask` has one of them.
macro_rules! binder_debug {
    ($bit:ident, $($arg:tt)+) => {
        $crate::debug::binder_debug!($crate::debug::mask::$bit, $($arg)+)
    };
    ($bits:expr, $($arg:tt)+) => {
        if $crate::debug::enabled($bits) && $crate::debug::ratelimit() {
            ::kernel::pr_info!($($arg)+);
        }
    };
}
pub(crate) use binder_debug;

/// Logs a user error (a misuse of the driver by userspace) and notes it for
/// `stop_on_user_error`, as C's `binder_user_error`.
macro_rules! binder_user_error {
    ($($arg:tt)+) => {{
        $crate::debug::binder_debug!($crate::debug::mask::USER_ERROR, $($arg)+);
        $crate::debug::user_error_seen();
    }};
}
pub(crate) use binder_user_error;

/// What an ioctl does last, as in C: wait while stopped, and log a failure other than
/// `EINTR` (C logs each one; here they count as user errors, so a default load logs them
/// rate limited, and a mask without [`mask::USER_ERROR`] keeps them out of the log).
pub(crate) fn ioctl_end(
    process: &Process,
    thread: &Thread,
    cmd: u32,
    arg: usize,
    result: &Result<isize>,
) {
    let _ = wait_while_stopped();
    if let Err(err) = result {
        if *err != EINTR && *err != ERESTARTSYS {
            binder_debug!(
                mask::USER_ERROR,
                "{}:{} ioctl {:x} {:x} returned {}\n",
                process.pid(),
                thread.id,
                cmd,
                arg,
                err.to_errno()
            );
        }
    }
}

/// Logs a death notification's return (`BR_DEAD_BINDER`, `BR_CLEAR_DEATH_NOTIFICATION_DONE`),
/// as C does under [`mask::DEATH_NOTIFICATION`].
pub(crate) fn death_return(code: u32, cookie: u64) {
    if enabled(mask::DEATH_NOTIFICATION) && ratelimit() {
        let current = kernel::current!();
        let name = if code == crate::defs::BR_DEAD_BINDER {
            "BR_DEAD_BINDER"
        } else {
            "BR_CLEAR_DEATH_NOTIFICATION_DONE"
        };
        pr_info!(
            "{}:{} {} {:016x}\n",
            current.tgid(),
            current.pid(),
            name,
            cookie
        );
    }
}

// Keep the C names of the bits that nothing logs under yet; they are part of the interface.
const _: [u32; 9] = [
    mask::DEAD_BINDER,
    mask::READ_WRITE,
    mask::USER_REFS,
    mask::THREADS,
    mask::TRANSACTION,
    mask::TRANSACTION_COMPLETE,
    mask::FREE_BUFFER,
    mask::INTERNAL_REFS,
    mask::SPINLOCKS,
];
