// SPDX-License-Identifier: GPL-2.0

//! Lists that usually stay empty, and cost nothing to drop while they have no memory.
//!
//! Dropping a `KVec` always calls into the allocator, even when it never allocated (`krealloc`
//! of nothing to nothing, then `kfree(NULL)`). A transaction carries several lists that almost
//! never get an element (scatter-gather buffers and fixups, counts on handles, pages past the
//! inline ones, fds in arrays), so those calls were a measurable part of a plain call's cost.
//! A [`LazyVec`] is a `KVec` whose drop skips the allocator when it has no memory (for an
//! element type of nonzero size; a `KVec` of zero-sized elements never has memory, reports a
//! capacity of `usize::MAX` and is dropped the usual way).

use core::{
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
};
use kernel::prelude::*;

/// The most memory [`LazyVec::reserve_for`] gives a list that has none.
const ROOM_AT_ONCE: usize = 256;

/// A `KVec<T>` that is dropped for free while it has no memory.
pub(crate) struct LazyVec<T>(ManuallyDrop<KVec<T>>);

impl<T> LazyVec<T> {
    /// An empty list, with no memory.
    pub(crate) const fn new() -> Self {
        Self(ManuallyDrop::new(KVec::new()))
    }

    /// An empty list with room for `count` elements (no memory if `count` is 0).
    pub(crate) fn with_capacity(count: usize) -> Result<Self> {
        Ok(Self(ManuallyDrop::new(KVec::with_capacity(
            count, GFP_KERNEL,
        )?)))
    }

    /// Makes room for at least one more element, for a list of a transaction's objects to
    /// which each object adds at most one: when the list is full, it gets room for the `left`
    /// objects from this one on, at first at most [`ROOM_AT_ONCE`] bytes of it (a list that
    /// has memory already at least doubles, as a `KVec` does). A usual transaction's list is
    /// then allocated once, where growing from nothing one at a time reallocates at each
    /// power of two.
    pub(crate) fn reserve_for(&mut self, left: usize) -> Result {
        if self.0.len() == self.0.capacity() {
            let most = ROOM_AT_ONCE / size_of::<T>().max(1);
            self.0.reserve(left.clamp(1, most.max(1)), GFP_KERNEL)?;
        }
        Ok(())
    }

    /// The list as a `KVec`, or `None` if it has no memory (and so no elements).
    pub(crate) fn into_vec(self) -> Option<KVec<T>> {
        let mut this = ManuallyDrop::new(self);
        if this.0.capacity() == 0 {
            return None;
        }
        // SAFETY: `this` is never dropped, so the list is taken out of it only here, once.
        Some(unsafe { ManuallyDrop::take(&mut this.0) })
    }
}

impl<T> Deref for LazyVec<T> {
    type Target = KVec<T>;

    fn deref(&self) -> &KVec<T> {
        &self.0
    }
}

impl<T> DerefMut for LazyVec<T> {
    fn deref_mut(&mut self) -> &mut KVec<T> {
        &mut self.0
    }
}

impl<T> Drop for LazyVec<T> {
    fn drop(&mut self) {
        // Without memory the list has no elements either (its length is at most its
        // capacity): there is nothing to drop and nothing to free.
        if self.0.capacity() == 0 {
            return;
        }
        // SAFETY: The list is dropped exactly once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.0) };
    }
}
