// SPDX-License-Identifier: GPL-2.0

//! A module that leaks memory on purpose.
//!
//! `make check` loads it in a VM of its own to prove that the kernel log check fails when
//! something leaks. It is never loaded next to a driver under test.

use kernel::prelude::*;

module! {
    type: LeakSelftest,
    name: "rb_leak_selftest",
    authors: ["The rust_binder developers"],
    description: "Leaks a buffer on load, to test rust_binder's leak detection",
    license: "GPL",
}

/// How many buffers the module leaks.
const LEAKED_BUFFERS: usize = 16;

struct LeakSelftest;

impl kernel::Module for LeakSelftest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The point of this module: these buffers are never freed and nothing refers to them.
        // There are several because a stale copy of the last pointer can survive in a cached
        // kernel stack, which kmemleak scans, and hide that one.
        for _ in 0..LEAKED_BUFFERS {
            let buffer = KVec::<u8>::from_elem(0x5a, 1024, GFP_KERNEL)?;
            core::mem::forget(buffer);
        }
        Ok(LeakSelftest)
    }
}
