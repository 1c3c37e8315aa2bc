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
//! The tree entries are allocations. The memory of a range that goes is kept for the next
//! one, so that steady traffic allocates none; and enough entries for free parts are kept
//! that a range going never allocates: giving a range back cannot fail.

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
};

/// A free part of the area, as its key in [`Ranges::free`]: its size, then its offset. So the
/// first part at or after `(size, 0)` is the best fit for `size`.
type Gap = (usize, usize);

/// An allocated range: its size, and what its owner keeps with it (taken out as it goes).
struct Used<T> {
    size: usize,
    data: Option<T>,
}

/// Where [`Ranges::best_fit`] found room: to hand to [`Ranges::insert`] under the same lock.
pub(crate) struct Fit {
    gap: Gap,
    size: usize,
}

impl Fit {
    /// Where the new range would start.
    pub(crate) fn offset(&self) -> usize {
        self.gap.1
    }
}

/// The ranges of an area, each with a `T` its owner keeps with it.
pub(crate) struct Ranges<T> {
    /// The size of the area; no part before [`Ranges::set_area`].
    area_size: usize,
    /// The allocated ranges, by offset.
    used: RBTree<usize, Used<T>>,
    /// How many ranges `used` holds.
    used_count: usize,
    /// The free parts, by size then offset; two are never next to each other.
    free: RBTree<Gap, ()>,
    /// How many parts `free` holds.
    free_count: usize,
    /// The memory of the last range that went, for the next one.
    spare_used: Option<RBTreeNodeReservation<usize, Used<T>>>,
    /// The memory of free parts that went (merged or filled), for new ones.
    ///
    /// INVARIANT: once the area is set, `free_count + spare_free.len() > used_count`, and
    /// `spare_free` has room for all of those entries. A range that goes leaves at most as many
    /// free parts as there were ranges before (parts and ranges alternate), so it always finds
    /// an entry for the part it leaves, and room to keep the entries of the parts it merges.
    spare_free: KVec<RBTreeNodeReservation<Gap, ()>>,
}

impl<T> Ranges<T> {
    /// No area yet: nothing fits.
    pub(crate) fn new() -> Self {
        Self {
            area_size: 0,
            used: RBTree::new(),
            used_count: 0,
            free: RBTree::new(),
            free_count: 0,
            spare_used: None,
            spare_free: KVec::new(),
        }
    }

    /// Makes the whole area of `size` bytes (not zero) one free part; called once, when the
    /// area is mapped, with no ranges yet.
    pub(crate) fn set_area(&mut self, size: usize) -> Result {
        let mut area = Self::new();
        area.spare_free.reserve(1, GFP_KERNEL)?;
        let entry = RBTreeNodeReservation::new(GFP_KERNEL)?;
        area.free.insert(entry.into_node((size, 0), ()));
        // INVARIANT: One free part, no range; room for one entry.
        area.free_count = 1;
        area.area_size = size;
        *self = area;
        Ok(())
    }

    /// Allocates what the next [`Ranges::insert`] needs, so that it cannot fail. Changes no
    /// range or free part: a [`Fit`] found before stays good.
    pub(crate) fn make_room(&mut self) -> Result {
        if self.spare_used.is_none() {
            self.spare_used = Some(RBTreeNodeReservation::new(GFP_KERNEL)?);
        }
        let entries = self.free_count + self.spare_free.len();
        if entries < self.used_count + 2 {
            // Room for every entry, this one included.
            self.spare_free.reserve(self.free_count + 1, GFP_KERNEL)?;
            let entry = RBTreeNodeReservation::new(GFP_KERNEL)?;
            // Cannot fail: there is room for it.
            let _ = self.spare_free.push_within_capacity(entry);
        }
        Ok(())
    }

    /// Where a range of `size` bytes (not zero) would go: the start of the smallest free part
    /// that holds it, the lowest of several as small.
    pub(crate) fn best_fit(&self, size: usize) -> Option<Fit> {
        let cursor = self.free.cursor_lower_bound(&(size, 0))?;
        Some(Fit {
            gap: *cursor.current().0,
            size,
        })
    }

    /// Allocates the range `fit` found, with `data`; returns its offset. Needs
    /// [`Ranges::make_room`] first, and no change since `fit` was found; gives `data` back if
    /// either was not so.
    pub(crate) fn insert(&mut self, fit: Fit, data: T) -> Result<usize, T> {
        let Some(entry) = self.spare_used.take() else {
            return Err(data);
        };
        let Some(part) = self.free.remove_node(&fit.gap) else {
            self.spare_used = Some(entry);
            return Err(data);
        };
        let (part_size, offset) = fit.gap;
        let part = part.into_reservation();
        if part_size > fit.size {
            let rest = (part_size - fit.size, offset + fit.size);
            self.free.insert(part.into_node(rest, ()));
        } else {
            self.free_count -= 1;
            // Cannot fail: `spare_free` has room for every entry.
            let _ = self.spare_free.push_within_capacity(part);
        }
        let used = Used {
            size: fit.size,
            data: Some(data),
        };
        self.used.insert(entry.into_node(offset, used));
        // INVARIANT: `make_room` made the entries one more than the ranges are now.
        self.used_count += 1;
        Ok(offset)
    }

    /// Removes the range at `offset`, merging it with the free parts around it; returns its
    /// size and data. `None` if no range starts there.
    pub(crate) fn remove(&mut self, offset: usize) -> Option<(usize, T)> {
        let mut cursor = self.used.cursor_lower_bound_mut(&offset)?;
        if *cursor.current().0 != offset {
            return None;
        }
        let size = cursor.current().1.size;
        let start = cursor
            .peek_prev()
            .map_or(0, |(prev, used)| prev + used.size);
        let end = cursor.peek_next().map_or(self.area_size, |(next, _)| *next);
        let data = cursor.current_mut().1.data.take();
        let (_, entry) = cursor.remove_current();
        self.used_count -= 1;
        // The data is out: only the entry's memory is dropped, if a spare is kept already.
        if self.spare_used.is_none() {
            self.spare_used = Some(entry.into_reservation());
        }

        let before = (offset - start, start);
        let after = (end - offset - size, offset + size);
        for part in [before, after] {
            if part.0 == 0 {
                continue;
            }
            if let Some(entry) = self.free.remove_node(&part) {
                self.free_count -= 1;
                // Cannot fail: `spare_free` has room for every entry.
                let _ = self
                    .spare_free
                    .push_within_capacity(entry.into_reservation());
            }
        }
        // Always there: see the invariant on `spare_free`.
        if let Some(entry) = self.spare_free.pop() {
            self.free.insert(entry.into_node((end - start, start), ()));
            self.free_count += 1;
        }
        data.map(|data| (size, data))
    }

    /// The data of the range at `offset`.
    pub(crate) fn get_mut(&mut self, offset: usize) -> Option<&mut T> {
        self.used.get_mut(&offset)?.data.as_mut()
    }

    /// The data of the range at `offset`.
    pub(crate) fn get(&self, offset: usize) -> Option<&T> {
        self.used.get(&offset)?.data.as_ref()
    }

    /// The ranges in order: offset, size and data of each.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, usize, &T)> {
        self.used
            .iter()
            .filter_map(|(offset, used)| Some((*offset, used.size, used.data.as_ref()?)))
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
