//! The conformance cases, grouped by what they exercise.

mod basics;
mod binderfs;
mod buffer_space;
mod concurrency;
mod context_mgr;
mod cve;
mod death;
mod diagnostics;
mod fd_arrays;
mod fds;
mod files;
mod free_buffer;
mod freeze;
mod fuzz_found;
mod introspection;
mod logs;
mod memory;
mod mmap;
mod module;
mod nested;
mod objects;
mod objects_in_flight;
mod oneway;
mod peer;
mod priority;
mod reclaim;
mod security_ctx;
mod sg;
mod teardown;
mod thread_pool;
mod transaction_errors;
mod transactions;
mod txn_flags;
mod write_read;

use crate::harness::Case;

/// Every case, in the order they run. The module cases reload rust_binder, so they go last.
pub fn all() -> impl Iterator<Item = &'static Case> {
    [
        basics::CASES,
        context_mgr::CASES,
        mmap::CASES,
        write_read::CASES,
        thread_pool::CASES,
        death::CASES,
        transaction_errors::CASES,
        transactions::CASES,
        oneway::CASES,
        freeze::CASES,
        objects::CASES,
        fds::CASES,
        sg::CASES,
        fd_arrays::CASES,
        txn_flags::CASES,
        free_buffer::CASES,
        buffer_space::CASES,
        objects_in_flight::CASES,
        security_ctx::CASES,
        nested::CASES,
        priority::CASES,
        concurrency::CASES,
        cve::CASES,
        memory::CASES,
        reclaim::CASES,
        introspection::CASES,
        diagnostics::CASES,
        logs::CASES,
        teardown::CASES,
        binderfs::CASES,
        fuzz_found::CASES,
        module::CASES,
    ]
    .into_iter()
    .flatten()
}
