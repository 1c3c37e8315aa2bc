// SPDX-License-Identifier: GPL-2.0

//! The ranges of a receive buffer's area: which parts hold buffers, which are free, and which
//! free part a new buffer goes in.
//!
//! As in the C driver, a new range goes at the start of the smallest free part that holds it
//! (the lowest of several as small), and a range that goes merges with the free parts around
//! it. Both are found in trees, so a range costs the logarithm of how many the area holds, not
//! their number: a receiver that lets thousands of one-way buffers pile up (each can be as
//! small as 8 bytes) pays about as much per buffer as one that holds a single buffer.
//!
//! Ranges and free parts are entries of one type, as C's allocated and free `binder_buffer`s
//! are one struct: the entry of a range that goes becomes the free part it leaves, so giving
//! a range back never allocates and cannot fail. A new range needs an entry of its own; the
//! area keeps one spare, from a free part filled or merged, so steady traffic allocates none.

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
};

/// The key of an entry: `(offset, 0)` in the tree of ranges, `(size, offset)` in the tree of
/// free parts, so that there the first part at or after `(size, 0)` is the best fit for `size`.
type Key = (usize, usize);

/// A range (with what its owner keeps with it) or a free part: its size, and for a range, the
/// owner's data (taken out as the range goes).
struct Entry<T> {
    size: usize,
    data: Option<T>,
}

/// The memory of one entry.
type Spare<T> = RBTreeNodeReservation<Key, Entry<T>>;

/// The ranges of an area, each with a `T` its owner keeps with it.
pub(crate) struct Ranges<T> {
    /// The size of the area; no part before [`Ranges::set_area`].
    area_size: usize,
    /// The allocated ranges, by `(offset, 0)`.
    used: RBTree<Key, Entry<T>>,
    /// How many ranges `used` holds.
    used_count: usize,
    /// The free parts, by `(size, offset)`; two are never next to each other.
    free: RBTree<Key, Entry<T>>,
    /// The memory of an entry that went, for the next range.
    spare: Option<Spare<T>>,
}

impl<T> Ranges<T> {
    /// No area yet: nothing fits.
    pub(crate) fn new() -> Self {
        Self {
            area_size: 0,
            used: RBTree::new(),
            used_count: 0,
            free: RBTree::new(),
            spare: None,
        }
    }

    /// Makes the whole area of `size` bytes (not zero) one free part; called once, when the
    /// area is mapped, with no ranges yet.
    pub(crate) fn set_area(&mut self, size: usize) -> Result {
        let mut area = Self::new();
        let entry = RBTreeNodeReservation::new(GFP_KERNEL)?;
        area.free
            .insert(entry.into_node((size, 0), Self::free_part(size)));
        area.area_size = size;
        *self = area;
        Ok(())
    }

    fn free_part(size: usize) -> Entry<T> {
        Entry { size, data: None }
    }

    /// Keeps `entry` as the spare if there is none; else it is freed.
    fn keep(&mut self, entry: Spare<T>) {
        if self.spare.is_none() {
            self.spare = Some(entry);
        }
    }

    /// Allocates what the next [`Ranges::reserve`] needs, so that it cannot fail for want of
    /// memory.
    pub(crate) fn make_room(&mut self) -> Result {
        if self.spare.is_none() {
            self.spare = Some(RBTreeNodeReservation::new(GFP_KERNEL)?);
        }
        Ok(())
    }

    /// Allocates a range of `size` bytes (not zero) with `data` at the start of the smallest
    /// free part that holds it, the lowest of several as small; returns its offset. Needs
    /// [`Ranges::make_room`] first. Gives `data` back with `ENOSPC` if no part is large
    /// enough, with `ENOMEM` if the room was not made.
    pub(crate) fn reserve(&mut self, size: usize, data: T) -> Result<usize, (T, Error)> {
        let Some(entry) = self.spare.take() else {
            return Err((data, ENOMEM));
        };
        let Some(cursor) = self.free.cursor_lower_bound_mut(&(size, 0)) else {
            self.spare = Some(entry);
            return Err((data, ENOSPC));
        };
        let (part_size, offset) = *cursor.current().0;
        let (_, part) = cursor.remove_current();
        let part = part.into_reservation();
        if part_size > size {
            let rest = part_size - size;
            let key = (rest, offset + size);
            self.free.insert(part.into_node(key, Self::free_part(rest)));
        } else {
            self.keep(part);
        }
        let range = Entry {
            size,
            data: Some(data),
        };
        self.used.insert(entry.into_node((offset, 0), range));
        self.used_count += 1;
        Ok(offset)
    }

    /// Removes the range at `offset`, merging it with the free parts around it; returns its
    /// size and data. `None` if no range starts there.
    pub(crate) fn remove(&mut self, offset: usize) -> Option<(usize, T)> {
        let mut cursor = self.used.cursor_lower_bound_mut(&(offset, 0))?;
        if cursor.current().0 .0 != offset {
            return None;
        }
        let size = cursor.current().1.size;
        let start = cursor
            .peek_prev()
            .map_or(0, |(prev, range)| prev.0 + range.size);
        let end = cursor
            .peek_next()
            .map_or(self.area_size, |(next, _)| next.0);
        let data = cursor.current_mut().1.data.take();
        let (_, entry) = cursor.remove_current();
        self.used_count -= 1;

        // The free parts before and after it, if any, merge with it.
        let before = (offset - start, start);
        let after = (end - offset - size, offset + size);
        for part in [before, after] {
            if part.0 == 0 {
                continue;
            }
            if let Some(merged) = self.free.remove_node(&part) {
                self.keep(merged.into_reservation());
            }
        }
        // The range's own entry becomes the free part: nothing to allocate.
        let merged = end - start;
        let entry = entry.into_reservation();
        self.free
            .insert(entry.into_node((merged, start), Self::free_part(merged)));
        data.map(|data| (size, data))
    }

    /// The data of the range at `offset`.
    pub(crate) fn get_mut(&mut self, offset: usize) -> Option<&mut T> {
        self.used.get_mut(&(offset, 0))?.data.as_mut()
    }

    /// The data of the range at `offset`.
    pub(crate) fn get(&self, offset: usize) -> Option<&T> {
        self.used.get(&(offset, 0))?.data.as_ref()
    }

    /// The ranges in order: offset, size and data of each.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, usize, &T)> {
        self.used
            .iter()
            .filter_map(|(key, range)| Some((key.0, range.size, range.data.as_ref()?)))
    }

    /// How many ranges there are.
    pub(crate) fn len(&self) -> usize {
        self.used_count
    }

    /// Takes every range and part out, leaving no area.
    pub(crate) fn take_all(&mut self) -> Self {
        core::mem::replace(self, Self::new())
    }
}
