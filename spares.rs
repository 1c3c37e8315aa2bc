// SPDX-License-Identifier: GPL-2.0

//! Spares: the memory of removed handles, kept for the next new ones.
//!
//! A server that frees the buffers of calls carrying binder objects makes and removes handles
//! all the time: each one is an allocation made when it is made and freed when it goes. A
//! process keeps a few of those allocations instead of freeing them, so the next handles need
//! none. A process that never removes a handle keeps nothing; the room for the spares itself
//! is allocated only once a process has more than one handle, so a process that holds just
//! the context manager's handle stays as small as it was. (Nodes need none: a node is linked
//! into its owner's tree through its own links, see [`crate::node_tree`].)
//!
//! A `Spares` lives under its owner's lock; new room is allocated before the lock is taken
//! (see [`Spares::wants_room`] and [`Spares::new_room`]).
//!
//! A [`OneSpare`] keeps a single box, taken and given back without a lock: the box a
//! transaction carries its files in, which a process that receives fds would otherwise
//! allocate and free for every such transaction.

use core::{
    marker::PhantomData,
    ptr, //
};

use kernel::{
    alloc::AllocError,
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        Release, //
    },
};

/// How many spares a process keeps of each kind: the objects of a typical parcel, 16 as in
/// the benchmark's.
const KEPT: usize = 16;

/// Room for the spares, allocated before the lock is taken.
pub(crate) type SpareRoom<T> = KVec<T>;

/// Up to [`KEPT`] spare allocations of one kind.
pub(crate) struct Spares<T> {
    /// The spares. It has no room (capacity 0) until [`Spares::give_room`].
    kept: KVec<T>,
}

impl<T> Spares<T> {
    /// No spares, and no room for any.
    pub(crate) const fn new() -> Self {
        Self { kept: KVec::new() }
    }

    /// A spare, if there is one.
    pub(crate) fn take(&mut self) -> Option<T> {
        self.kept.pop()
    }

    /// Whether there is no room for spares yet.
    pub(crate) fn wants_room(&self) -> bool {
        self.kept.capacity() == 0
    }

    /// Room for the spares, to allocate before taking the lock; `None` if memory is short,
    /// which only means no spares are kept.
    pub(crate) fn new_room() -> Option<SpareRoom<T>> {
        KVec::with_capacity(KEPT, GFP_KERNEL).ok()
    }

    /// Takes `room` if there is none yet; gives it back (to drop after the lock) if not.
    pub(crate) fn give_room(&mut self, room: Option<SpareRoom<T>>) -> Option<SpareRoom<T>> {
        if self.kept.capacity() != 0 {
            return room;
        }
        if let Some(room) = room {
            self.kept = room;
        }
        None
    }

    /// Keeps `spare` if there is room; gives it back if not. Freeing it under a spinlock is
    /// fine (`kfree` does not sleep), so a caller may drop what comes back at once.
    pub(crate) fn keep(&mut self, spare: T) -> Option<T> {
        self.kept.push_within_capacity(spare).err().map(|err| err.0)
    }

    /// Takes every spare and their room out, for a process being released.
    pub(crate) fn take_all(&mut self) -> SpareRoom<T> {
        core::mem::take(&mut self.kept)
    }
}

/// One spare box for a `T`, kept empty. Any thread may take it or give one back, with one
/// atomic exchange and no lock; a box given back when there is a spare already is freed.
///
/// # Invariants
///
/// `spare` is null, or a pointer from `KBox::into_raw` of a box that holds `None`, which the
/// slot owns.
pub(crate) struct OneSpare<T> {
    /// Null, or the raw pointer of the spare: a `KBox<Option<T>>` holding `None`.
    spare: Atomic<*mut Option<T>>,
    /// The slot owns such a box.
    _owns: PhantomData<KBox<Option<T>>>,
}

impl<T> OneSpare<T> {
    /// No spare.
    pub(crate) const fn new() -> Self {
        Self {
            // INVARIANT: Null.
            spare: Atomic::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// A box holding `value`: the spare if there is one, else a new one.
    pub(crate) fn boxed(&self, value: T) -> Result<KBox<Option<T>>, AllocError> {
        // Acquire: the box was emptied before it was given back (`Release` there).
        // INVARIANT: Null is left in the slot.
        let spare = self.spare.xchg(ptr::null_mut(), Acquire);
        if spare.is_null() {
            return KBox::new(Some(value), GFP_KERNEL);
        }
        // SAFETY: By the invariant, a non-null pointer is a box's, owned by the slot; the
        // exchange left null in its place, so the slot hands its ownership to this call alone.
        let mut boxed = unsafe { KBox::from_raw(spare) };
        *boxed = Some(value);
        Ok(boxed)
    }

    /// Drops what `boxed` holds and keeps the box as the spare, unless there is one.
    pub(crate) fn give_back(&self, mut boxed: KBox<Option<T>>) {
        *boxed = None;
        let raw = KBox::into_raw(boxed);
        // INVARIANT: The box holds `None`, and the slot owns it if the exchange succeeds.
        if self.spare.cmpxchg(ptr::null_mut(), raw, Release).is_err() {
            // SAFETY: `raw` came from `KBox::into_raw` just above and is owned here still:
            // the slot did not take it.
            drop(unsafe { KBox::from_raw(raw) });
        }
    }
}

impl<T> Drop for OneSpare<T> {
    fn drop(&mut self) {
        let spare = core::mem::take(self.spare.get_mut());
        if !spare.is_null() {
            // SAFETY: By the invariant, the slot owned the box; it holds null now.
            drop(unsafe { KBox::from_raw(spare) });
        }
    }
}
