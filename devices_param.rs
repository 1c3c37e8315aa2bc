// SPDX-License-Identifier: GPL-2.0

//! The `devices` module parameter: which binder devices the module creates.
//!
//! `module!` only knows integer and boolean parameters, so this one is declared by hand, the
//! way `module_param(devices, charp, 0444)` is in C: a `kernel_param` in the `__param` section
//! that uses the kernel's own `param_ops_charp`, plus the two `.modinfo` strings `modinfo`
//! shows.
//!
//! Its names are checked before any device is registered, so that a bad one fails the load
//! with a message and nothing half done. The C driver registers what it is given and leaves
//! the checks to the misc core or binderfs, except for the length, which `init_binderfs`
//! checks at load (`E2BIG`); rust_binder does the same for the length, and refuses the rest
//! with `EINVAL`.

use kernel::{
    bindings,
    ffi::{
        c_char,
        c_void, //
    },
    module_param::KernelParam,
    prelude::*,
    str::{
        as_char_ptr_in_const_context,
        BStr,
        CString, //
    },
};

/// Device names used when `insmod` is not given `devices=`; the C driver's default.
const DEFAULT_DEVICES: &CStr = c"binder,hwbinder,vndbinder";

/// Longest device name: a device is a file in `/dev`, so `NAME_MAX` bytes, which is also
/// binderfs's limit (`BINDERFS_MAX_NAME`).
const MAX_NAME_LEN: usize = 255;

/// The parameter's value, as `param_ops_charp` manages it.
///
/// It points at [`DEFAULT_DEVICES`] unless the module was loaded with `devices=`. In that case
/// `param_ops_charp` stored its own copy of the argument here, and frees it when the module is
/// unloaded.
static mut DEVICES: *mut c_char = as_char_ptr_in_const_context(DEFAULT_DEVICES).cast_mut();

#[link_section = "__param"]
#[used]
static DEVICES_PARAM: KernelParam = KernelParam::new(bindings::kernel_param {
    name: as_char_ptr_in_const_context(c"devices"),
    // `__this_module` is created by the module loader and lives as long as the module, which
    // is as long as its parameters.
    mod_: (&raw const bindings::__this_module).cast_mut(),
    ops: &raw const bindings::param_ops_charp,
    perm: 0o444,
    level: -1,
    flags: 0,
    __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
        arg: (&raw mut DEVICES).cast::<c_void>(),
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

modinfo!(DEVICES_PARMTYPE, b"parmtype=devices:charp\0");
modinfo!(
    DEVICES_PARM,
    b"parm=devices:Comma-separated binder device names (default binder,hwbinder,vndbinder)\0"
);

/// Returns the device names of the `devices` parameter, checked, in order.
///
/// Empty names (`a,,b`, a trailing comma) are skipped. Fails, saying why in the kernel log,
/// when no name is left (`EINVAL`), when a name is longer than [`MAX_NAME_LEN`] (`E2BIG`, as
/// the C driver), is not a file name (it has a `/`, or is `.` or `..`), or is given twice
/// (`EINVAL`).
///
/// Only call this from module init: that is when nothing can write the parameter.
pub(crate) fn device_names() -> Result<KVec<CString>> {
    let mut names: KVec<CString> = KVec::new();
    for name in param_value().to_bytes().split(|&b| b == b',') {
        if name.is_empty() {
            continue;
        }
        // For the kernel log only: it escapes what is not printable ASCII.
        let shown = BStr::from_bytes(name);
        if name.len() > MAX_NAME_LEN {
            pr_err!(
                "devices= has a name of {} bytes; a device name has at most {}\n",
                name.len(),
                MAX_NAME_LEN
            );
            return Err(E2BIG);
        }
        if name.contains(&b'/') || matches!(name, b"." | b"..") {
            pr_err!("devices= has \"{shown}\", which is not a file name\n");
            return Err(EINVAL);
        }
        if names.iter().any(|known| known.to_bytes() == name) {
            pr_err!("devices= names \"{shown}\" twice\n");
            return Err(EINVAL);
        }
        names.push(owned_name(name)?, GFP_KERNEL)?;
    }
    if names.is_empty() {
        pr_err!("devices= names no device\n");
        return Err(EINVAL);
    }
    Ok(names)
}

/// Copies `name`, byte for byte, into a [`CString`].
///
/// `name` has no NUL byte, since it is a piece of a C string.
fn owned_name(name: &[u8]) -> Result<CString> {
    let mut bytes = KVec::with_capacity(name.len() + 1, GFP_KERNEL)?;
    bytes.extend_from_slice(name, GFP_KERNEL)?;
    bytes.push(0, GFP_KERNEL)?;
    let name = CStr::from_bytes_with_nul(&bytes).map_err(|_| EINVAL)?;
    Ok(CString::try_from(name)?)
}

/// Returns the value of the `devices` parameter.
///
/// Only call this from module init: that is when nothing can write the parameter.
fn param_value() -> &'static CStr {
    // SAFETY: The parameter is read-only in sysfs (0444), so only the module loader writes
    // `DEVICES`, and it does so before module init runs. Reading it now cannot race.
    let names = unsafe { DEVICES };
    if names.is_null() {
        return c"";
    }
    // SAFETY: `names` is either `DEFAULT_DEVICES` or the NUL-terminated copy that
    // `param_ops_charp` made; the copy is freed only after the module is gone.
    unsafe { CStr::from_char_ptr(names) }
}
