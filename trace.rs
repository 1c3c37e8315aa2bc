// SPDX-License-Identifier: GPL-2.0

//! Trace events in system `binder`, with the C driver's names and fields.
//!
//! The events are defined in C (`binder_tracepoints.h`; Rust cannot define one). Each function
//! here tests its event's static key first and calls into C only when the event is enabled,
//! so a disabled event costs a load and a not-taken branch (a patched jump with
//! `CONFIG_JUMP_LABEL`).
//! Only plain integers cross into C. Callers put one line at each point where the C driver
//! emits the same event.
//!
//! Without `CONFIG_TRACEPOINTS` every function is empty.
//!
//! When the C driver's `binder_linux` is loaded too, both modules' events are in
//! `events/binder/`: writing `events/binder/enable` (or `set_event`) enables both, while the
//! per-event directory shows the module loaded first.

use kernel::{
    ffi::{
        c_int,
        c_uint,
        c_ulong, //
    },
    prelude::*,
};

/// Whether the static key of tracepoint `tracepoint` is on, without `CONFIG_JUMP_LABEL`: a
/// plain load of its count, as C's inline `static_key_count` does. (The kernel crate's
/// `static_branch_unlikely!` calls an out-of-line C helper for it, once per event per call.)
///
/// # Safety
///
/// `tracepoint` must point to a live `struct tracepoint`.
#[cfg(all(CONFIG_TRACEPOINTS, not(CONFIG_JUMP_LABEL)))]
#[inline(always)]
unsafe fn key_enabled(tracepoint: *const kernel::bindings::tracepoint) -> bool {
    // SAFETY: The caller passes a live tracepoint. The count is only ever changed atomically by
    // C; a volatile load of the aligned `int` is what C's `atomic_read` (`READ_ONCE`) is.
    let count = unsafe {
        core::ptr::read_volatile(core::ptr::addr_of!((*tracepoint).key.key.enabled.counter))
    };
    count > 0
}

/// Declares each event's tracepoint and C entry point, and a Rust function that emits it.
macro_rules! events {
    ($($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {
        #[cfg(CONFIG_TRACEPOINTS)]
        mod raw {
            #[allow(unused_imports)]
            use kernel::{
                bindings,
                ffi::*, //
            };
            kernel::macros::paste! {
                // The kernel's `struct tracepoint` has fields Rust does not call FFI-safe;
                // only its address is used, by the static-key test.
                #[allow(improper_ctypes)]
                extern "C" {
                    $(
                        pub(super) static [<__tracepoint_ $name>]: bindings::tracepoint;
                        pub(super) fn [<rust_do_trace_ $name>]($($arg: $ty),*);
                    )*
                }
            }
        }

        $(
            $(#[$attr])*
            #[inline(always)]
            pub(crate) fn $name($($arg: $ty),*) {
                #[cfg(CONFIG_TRACEPOINTS)]
                {
                    kernel::macros::paste! {
                        #[cfg(CONFIG_JUMP_LABEL)]
                        // SAFETY: The tracepoint is defined by `binder_tracepoints.c` in this
                        // module, and reading its static key is always allowed.
                        let enabled = unsafe {
                            kernel::jump_label::static_branch_unlikely!(
                                raw::[<__tracepoint_ $name>],
                                kernel::bindings::tracepoint,
                                key
                            )
                        };
                        #[cfg(not(CONFIG_JUMP_LABEL))]
                        // SAFETY: The tracepoint is a static defined by `binder_tracepoints.c`
                        // in this module, so the pointer is valid for the module's lifetime.
                        let enabled = unsafe {
                            key_enabled(core::ptr::addr_of!(raw::[<__tracepoint_ $name>]))
                        };
                        if enabled {
                            // SAFETY: The C function takes exactly these integer arguments,
                            // and may be called from any context the driver runs in.
                            unsafe { raw::[<rust_do_trace_ $name>]($($arg),*) };
                        }
                    }
                }
                #[cfg(not(CONFIG_TRACEPOINTS))]
                {
                    $(let _ = $arg;)*
                }
            }
        )*
    };
}

events! {
    /// `binder_ioctl`: an ioctl starts.
    fn binder_ioctl(cmd: c_uint, arg: c_ulong);
    /// `binder_ioctl_done`: an ioctl returns `ret`.
    fn binder_ioctl_done(ret: c_int);
    /// `binder_write_done`: the write half of `BINDER_WRITE_READ` returns `ret`.
    fn binder_write_done(ret: c_int);
    /// `binder_read_done`: the read half of `BINDER_WRITE_READ` returns `ret`.
    fn binder_read_done(ret: c_int);
    /// `binder_wait_for_work`: a read is about to wait for work.
    fn binder_wait_for_work(proc_work: bool, transaction_stack: bool, thread_todo: bool);
    /// `binder_txn_latency_free`: a transaction object is freed.
    fn binder_txn_latency_free(
        debug_id: c_int,
        from_proc: c_int,
        from_thread: c_int,
        to_proc: c_int,
        to_thread: c_int,
        code: c_uint,
        flags: c_uint,
    );
    /// `binder_transaction`: a transaction or reply is being sent.
    fn binder_transaction(
        debug_id: c_int,
        target_node: c_int,
        to_proc: c_int,
        to_thread: c_int,
        reply: c_int,
        code: c_uint,
        flags: c_uint,
    );
    /// `binder_transaction_received`: a reader got a transaction or reply.
    fn binder_transaction_received(debug_id: c_int);
    /// `binder_transaction_node_to_ref`: a local binder became a handle in the receiver.
    fn binder_transaction_node_to_ref(
        debug_id: c_int,
        node_debug_id: c_int,
        node_ptr: u64,
        ref_debug_id: c_int,
        ref_desc: u32,
    );
    /// `binder_transaction_ref_to_node`: a handle went back to its node's owner.
    fn binder_transaction_ref_to_node(
        debug_id: c_int,
        ref_debug_id: c_int,
        ref_desc: u32,
        node_debug_id: c_int,
        node_ptr: u64,
    );
    /// `binder_transaction_ref_to_ref`: a handle became another process's handle.
    fn binder_transaction_ref_to_ref(
        debug_id: c_int,
        node_debug_id: c_int,
        src_ref_debug_id: c_int,
        src_ref_desc: u32,
        dest_ref_debug_id: c_int,
        dest_ref_desc: u32,
    );
    /// `binder_transaction_fd_send`: the sender's fd at `offset` in the buffer was taken.
    fn binder_transaction_fd_send(debug_id: c_int, fd: c_int, offset: usize);
    /// `binder_transaction_fd_recv`: the reader got the fd `fd` at `offset` in the buffer.
    fn binder_transaction_fd_recv(debug_id: c_int, fd: c_int, offset: usize);
    /// `binder_transaction_alloc_buf`: a transaction's buffer was allocated.
    fn binder_transaction_alloc_buf(
        debug_id: c_int,
        data_size: usize,
        offsets_size: usize,
        extra_buffers_size: usize,
    );
    /// `binder_command`: a `BC_*` command was read.
    fn binder_command(cmd: u32);
    /// `binder_return`: a `BR_*` return was written.
    fn binder_return(cmd: u32);
    /// `binder_netlink_report`: a transaction report is sent to netlink listeners.
    #[allow(clippy::too_many_arguments)]
    fn binder_netlink_report(
        context: *const kernel::ffi::c_char,
        error: u32,
        from_pid: c_int,
        from_tid: c_int,
        to_pid: c_int,
        to_tid: c_int,
        is_reply: bool,
        flags: c_uint,
        code: c_uint,
        data_size: usize,
    );
}

/// The value an ioctl (or half of one) returns, as its `*_done` event shows it.
fn ret_of<T>(result: &Result<T>) -> c_int {
    match result {
        Ok(_) => 0,
        Err(err) => err.to_errno(),
    }
}

/// `binder_ioctl_done` for an ioctl's result.
#[inline(always)]
pub(crate) fn ioctl_done(result: &Result<isize>) {
    binder_ioctl_done(match result {
        Ok(value) => c_int::try_from(*value).unwrap_or(c_int::MAX),
        Err(err) => err.to_errno(),
    });
}

/// `binder_write_done` for the write half's result.
#[inline(always)]
pub(crate) fn write_done(result: &Result) {
    binder_write_done(ret_of(result));
}

/// `binder_read_done` for the read half's result.
#[inline(always)]
pub(crate) fn read_done(result: &Result) {
    binder_read_done(ret_of(result));
}
