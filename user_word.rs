// SPDX-License-Identifier: GPL-2.0

//! Single words to and from userspace: the codes of `BC_*` commands and `BR_*` returns, and
//! their pointer and cookie arguments.
//!
//! The C driver moves these with `get_user` and `put_user`, which on x86-64 call the kernel's
//! small assembly routines `__get_user_N` and `__put_user_N`: a range check, the access with
//! user access enabled, and a fault turned into `-EFAULT`, in about ten instructions. The
//! kernel crate has only `copy_from_user` and `copy_to_user`, which for four bytes go through
//! `_copy_from_user` and the byte loop of `rep_movs_alternative`, several times the work; a
//! round trip moves a dozen such words. So on x86-64 the same routines are called here, as
//! `get_user` and `put_user` call them (their register conventions are in
//! `arch/x86/lib/getuser.S` and `putuser.S`); on other architectures (and user-mode Linux)
//! the copies are used.
//!
//! Each function takes the user address and fails with `EFAULT` as the C macros do: for an
//! address outside userspace, or a fault. In a kernel with the debug checks, each first checks,
//! as the macros' `might_fault` does, that the caller may fault (holds no spinlock).

use kernel::prelude::*;

/// C's `might_fault`: in a kernel that checks, warns if the caller may not fault (sleep).
#[inline]
fn might_fault() {
    #[cfg(any(CONFIG_DEBUG_ATOMIC_SLEEP, CONFIG_PROVE_LOCKING))]
    // SAFETY: `__might_fault` only checks the caller's context; the file name is a
    // NUL-terminated string that outlives the call.
    unsafe {
        kernel::bindings::__might_fault(c"user_word.rs".as_char_ptr(), line!() as i32)
    };
}

#[cfg(not(all(target_arch = "x86_64", not(CONFIG_UML))))]
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

/// The result of a `__get_user_N` or `__put_user_N` routine from its status register: 0 or
/// `-EFAULT`.
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
#[inline]
fn checked(status: usize) -> Result {
    if status == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

/// Calls `__get_user_N`, `$routine`, for the user address `$addr`: the value read,
/// zero-extended to a `u64`, or `EFAULT`.
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
macro_rules! get_user_call {
    ($routine:literal, $addr:expr) => {{
        might_fault();
        let status: usize;
        let value: u64;
        // SAFETY: The routine reads at the address in `rax` if it is a user address, with user
        // access enabled only around the read, and returns 0 in `rax` and the value
        // zero-extended in `rdx`, or `-EFAULT` in `rax` on a fault or an address outside
        // userspace. It changes no other register but the flags. It reads only user memory.
        unsafe {
            core::arch::asm!(
                concat!("call ", $routine),
                inout("rax") $addr => status,
                lateout("rdx") value,
            );
        }
        checked(status).map(|()| value)
    }};
}

/// Calls `__put_user_N`, `$routine`, to write the low bytes of the `u64` `$value` at the user
/// address `$addr`.
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
macro_rules! put_user_call {
    ($routine:literal, $addr:expr, $value:expr) => {{
        might_fault();
        let status: usize;
        // SAFETY: The routine writes the low bytes of `rax` at the address in `rcx` if it is a
        // user address, with user access enabled only around the write, and returns 0 in
        // `ecx`, or `-EFAULT` on a fault or an address outside userspace. Besides `rcx` and the
        // flags it changes only `rbx`, which LLVM reserves for itself: it is saved in a
        // register of the compiler's choosing and restored after the call. It writes only user
        // memory.
        unsafe {
            core::arch::asm!(
                "mov {saved}, rbx",
                concat!("call ", $routine),
                "mov rbx, {saved}",
                saved = out(reg) _,
                inout("rcx") $addr => status,
                in("rax") $value,
            );
        }
        checked(status)
    }};
}

/// Reads the `u32` at the user address `addr` (`get_user`).
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
#[inline]
pub(crate) fn get_u32(addr: usize) -> Result<u32> {
    // The routine zero-extends the four bytes it read: the cast keeps all of them.
    get_user_call!("__get_user_4", addr).map(|value| value as u32)
}

/// Reads the `u64` at the user address `addr` (`get_user`).
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
#[inline]
pub(crate) fn get_u64(addr: usize) -> Result<u64> {
    get_user_call!("__get_user_8", addr)
}

/// Writes `value` to the user address `addr` (`put_user`).
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
#[inline]
pub(crate) fn put_u32(addr: usize, value: u32) -> Result {
    put_user_call!("__put_user_4", addr, u64::from(value))
}

/// Writes `value` to the user address `addr` (`put_user`).
#[cfg(all(target_arch = "x86_64", not(CONFIG_UML)))]
#[inline]
pub(crate) fn put_u64(addr: usize, value: u64) -> Result {
    put_user_call!("__put_user_8", addr, value)
}

/// Reads the `u32` at the user address `addr`.
#[cfg(not(all(target_arch = "x86_64", not(CONFIG_UML))))]
pub(crate) fn get_u32(addr: usize) -> Result<u32> {
    UserSlice::new(UserPtr::from_addr(addr), size_of::<u32>())
        .reader()
        .read()
}

/// Reads the `u64` at the user address `addr`.
#[cfg(not(all(target_arch = "x86_64", not(CONFIG_UML))))]
pub(crate) fn get_u64(addr: usize) -> Result<u64> {
    UserSlice::new(UserPtr::from_addr(addr), size_of::<u64>())
        .reader()
        .read()
}

/// Writes `value` to the user address `addr`.
#[cfg(not(all(target_arch = "x86_64", not(CONFIG_UML))))]
pub(crate) fn put_u32(addr: usize, value: u32) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), size_of::<u32>())
        .writer()
        .write(&value)
}

/// Writes `value` to the user address `addr`.
#[cfg(not(all(target_arch = "x86_64", not(CONFIG_UML))))]
pub(crate) fn put_u64(addr: usize, value: u64) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), size_of::<u64>())
        .writer()
        .write(&value)
}
