//! The conformance cases, grouped by what they exercise.

mod basics;
mod concurrency;
mod context_mgr;
mod death;
mod freeze;
mod introspection;
mod mmap;
mod module;
mod nested;
mod objects;
mod oneway;
mod peer;
mod priority;
mod security_ctx;
mod teardown;
mod thread_pool;
mod transaction_errors;
mod transactions;
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
        security_ctx::CASES,
        nested::CASES,
        priority::CASES,
        concurrency::CASES,
        introspection::CASES,
        teardown::CASES,
        module::CASES,
    ]
    .into_iter()
    .flatten()
}
