// SPDX-License-Identifier: GPL-2.0

//! Priority inheritance, as the mainline C driver does it: with nice values only.
//!
//! - A transaction remembers its sender's nice when it is sent.
//! - A thread that reads a call runs at the caller's nice if that is better (lower) than the
//!   target node's minimum, else at the minimum when it is better than its own; a one-way
//!   transaction only lifts the reader to the node's minimum. The reader's nice from before
//!   is kept with the call, and restored when the thread replies.
//! - A thread that waits for its process's work goes back to the nice the process had when it
//!   opened the device.
//!
//! A node's minimum is the low byte of the flags of the object that created it
//! (`FLAT_BINDER_FLAG_PRIORITY_MASK`), compared as a number with nice values, as in C: userspace
//! that does not mean to use it (libbinder passes `0x7f`) sets a minimum no nice reaches.
//! Setting a nice the task may not have (`can_nice`, `RLIMIT_NICE`) falls back to the best one
//! its `RLIMIT_NICE` allows, as C's `binder_set_nice`.

use kernel::{
    bindings,
    task::Task, //
};

/// The scheduler's priority of nice 0 (`DEFAULT_PRIO`).
const DEFAULT_PRIO: i32 = 120;
/// The weakest nice value (`MAX_NICE`).
const MAX_NICE: isize = 19;

/// The nice value of the current task (-20 to 19).
pub(crate) fn current_nice() -> i8 {
    let current = Task::current_raw();
    // SAFETY: `current` is the running task, valid while it runs; `static_prio` is a plain
    // integer that only the task itself (or the scheduler under its locks) changes, and
    // `task_nice()` reads it the same way.
    let prio = unsafe { core::ptr::read_volatile(&raw const (*current).static_prio) };
    // The scheduler keeps `static_prio` within the nice range, so this never falls back.
    i8::try_from(prio - DEFAULT_PRIO).unwrap_or(0)
}

/// Sets the current task's nice to `nice`, or, if it may not have it, to the best one its
/// `RLIMIT_NICE` allows (nothing changes if that is not a nice value either).
pub(crate) fn set_nice(nice: i32) {
    let current = Task::current_raw();
    // SAFETY: `current` is the running task. `can_nice` takes any nice value.
    let allowed = unsafe { bindings::can_nice(current, nice) } != 0;
    if allowed {
        // SAFETY: `current` is the running task; out-of-range values are ignored.
        unsafe { bindings::set_user_nice(current, nice as isize) };
        return;
    }
    // SAFETY: The running task's `signal` lives as long as it does; the limit is a plain
    // integer, read once, as `rlimit()` reads it.
    let limit = unsafe {
        core::ptr::read_volatile(
            &raw const (*(*current).signal).rlim[bindings::RLIMIT_NICE as usize].rlim_cur,
        )
    };
    // C's `rlimit_to_nice`, on a `long`: an infinite limit gives a value past `MAX_NICE`.
    let best = (MAX_NICE + 1).wrapping_sub(limit as isize);
    crate::debug::binder_debug!(
        crate::debug::mask::PRIORITY_CAP,
        "nice {} not allowed, using {}\n",
        nice,
        best
    );
    // SAFETY: As above.
    unsafe { bindings::set_user_nice(current, best) };
}
