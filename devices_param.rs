// SPDX-License-Identifier: GPL-2.0

//! The `devices` module parameter: which binder devices the module creates.
//!
//! `module!` only knows integer and boolean parameters, so this one is declared by hand, the
//! way `module_param(devices, charp, 0444)` is in C: a `kernel_param` in the `__param` section
//! that uses the kernel's own `param_ops_charp`, plus the two `.modinfo` strings `modinfo`
//! shows.

use kernel::{
    bindings,
    ffi::{
        c_char,
        c_void, //
    },
    module_param::KernelParam,
    prelude::*,
    str::as_char_ptr_in_const_context, //
};

/// Device names used when `insmod` is not given `devices=`; the C driver's default.
const DEFAULT_DEVICES: &CStr = c"binder,hwbinder,vndbinder";

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

/// Returns the value of the `devices` parameter.
///
/// Only call this from module init: that is when nothing can write the parameter.
pub(crate) fn device_names() -> &'static CStr {
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
