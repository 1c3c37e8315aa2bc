// SPDX-License-Identifier: GPL-2.0

//! The ranges of a receive buffer's area: which parts hold buffers, which are free, and which
//! free part a new buffer goes in.
//!
//! A new range goes where the C driver puts it, byte for byte: at the start of the smallest free
//! part that holds it, and of several as small, the one C's tree of free parts meets first.
//! Userspace sees where its buffers land (and a buffer address it frees must name one), so the
//! choice among equal parts is C's too: the tree of free parts is the kernel's red-black tree,
//! ordered by size and, for equal sizes, by when each part went in (a later one goes after, as
//! C's insertion does), and every part goes in and out of it in C's order. A search for a size
//! stops at the first part of exactly that size it meets; with none, it takes the first of the
//! smallest larger ones (the earliest to go in). A range that goes merges with the free parts
//! around it. A range costs the logarithm of how many the area holds, not their number: a
//! receiver that lets thousands of one-way buffers pile up (each can be as small as 8 bytes)
//! pays about as much per buffer as one that holds a single buffer.
//!
//! Ranges and free parts are entries of one type, as C's allocated and free `binder_buffer`s
//! are one struct: the entry of a range that goes becomes the free part it leaves, so giving
//! a range back never allocates and cannot fail. A new range needs an entry of its own; the
//! area keeps one spare, from a free part filled or merged, so steady traffic allocates none.

use core::{cell::Cell, cmp::Ordering};

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
};

/// The key of an entry, two numbers. In the tree of free parts `(size, order)`: `order` counts
/// the parts that went into that tree, so that a part goes after every part of its size already
/// there, and names the part; a key with order 0 is a probe, equal to every part of its size
/// (the search stops at the first it meets, as C's does). In the tree of ranges `(offset,
/// order of the free part right after the range)`: offsets differ, so the second number never
/// decides there, and a lookup by offset gives 0. It is kept in the key rather than the entry
/// because there it costs nothing: a range's entry fits a 128-byte allocation, and would not
/// with another field. It is stale while no part follows the range (then nothing reads it).
///
/// Both are `Cell`s. The second is set when the part after a range changes. The first for one
/// moment of a split, when C inserts the rest of a part while the part is still in the tree
/// and already counts as cut to the new range's size ([`Ranges::reserve`]); the tree stays
/// ordered through it.
struct Key {
    first: Cell<usize>,
    second: Cell<u64>,
}

impl Key {
    fn range(offset: usize) -> Self {
        Self::new(offset, 0)
    }

    fn range_before_part(offset: usize, order: u64) -> Self {
        Self::new(offset, order)
    }

    fn part(size: usize, order: u64) -> Self {
        Self::new(size, order)
    }

    /// Equal to any free part of `size`.
    fn probe(size: usize) -> Self {
        Self::new(size, 0)
    }

    fn new(first: usize, second: u64) -> Self {
        Self {
            first: Cell::new(first),
            second: Cell::new(second),
        }
    }
}

// Not a total order: a probe equals every part of its size. Searches use probes, never
// insertions (a probe inserted would replace the first part of its size it met).
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        let (second, other_second) = (self.second.get(), other.second.get());
        match self.first.get().cmp(&other.first.get()) {
            Ordering::Equal if second == 0 || other_second == 0 => Ordering::Equal,
            Ordering::Equal => second.cmp(&other_second),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

/// A range (with what its owner keeps with it) or a free part.
struct Entry<T> {
    /// A range's size (its key holds its offset); a free part's offset (its key holds its
    /// size).
    place: usize,
    /// A range's data (taken out as the range goes); `None` in a free part.
    data: Option<T>,
}

/// The memory of one entry.
type Spare<T> = RBTreeNodeReservation<Key, Entry<T>>;

/// The ranges of an area, each with a `T` its owner keeps with it.
pub(crate) struct Ranges<T> {
    /// The size of the area; no part before [`Ranges::set_area`].
    area_size: usize,
    /// The allocated ranges, by offset.
    used: RBTree<Key, Entry<T>>,
    /// How many ranges `used` holds.
    used_count: usize,
    /// The free parts, by size and order; two are never next to each other.
    free: RBTree<Key, Entry<T>>,
    /// How many parts went into `free`: the last one's order.
    orders: u64,
    /// The order of the free part at the start of the area, when one is there.
    first_part: u64,
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
            orders: 0,
            first_part: 0,
            spare: None,
        }
    }

    /// Makes the whole area of `size` bytes (not zero) one free part; called once, when the
    /// area is mapped, with no ranges yet.
    pub(crate) fn set_area(&mut self, size: usize) -> Result {
        let mut area = Self::new();
        let entry = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let order = area.next_order();
        area.free
            .insert(entry.into_node(Key::part(size, order), Self::free_part(0)));
        area.first_part = order;
        area.area_size = size;
        *self = area;
        Ok(())
    }

    fn free_part(offset: usize) -> Entry<T> {
        Entry {
            place: offset,
            data: None,
        }
    }

    /// The order of the next part to go into the tree of free parts.
    fn next_order(&mut self) -> u64 {
        // A u64 does not wrap: one more per reservation or free.
        self.orders += 1;
        self.orders
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

    /// Allocates a range of `size` bytes (not zero) with `data` at the start of the free part
    /// C would choose (see the module's documentation); returns its offset. Needs
    /// [`Ranges::make_room`] first. Gives `data` back with `ENOSPC` if no part is large
    /// enough, with `ENOMEM` if the room was not made.
    pub(crate) fn reserve(&mut self, size: usize, data: T) -> Result<usize, (T, Error)> {
        let Some(spare) = self.spare.take() else {
            return Err((data, ENOMEM));
        };
        let Some(cursor) = self.free.cursor_lower_bound_mut(&Key::probe(size)) else {
            self.spare = Some(spare);
            return Err((data, ENOSPC));
        };
        let (key, part) = cursor.current();
        let (part_size, part_order, offset) = (key.first.get(), key.second.get(), part.place);
        let (entry, part_after) = if part_size > size {
            // The rest of the part goes in first, the part already cut to `size`, and the part
            // goes out after, as in C (the tree's shape, and so the next choices, depend on
            // it). The tree stays ordered: no part is of `size` (the search would have stopped
            // there), the smaller ones are before the part and the larger after.
            key.first.set(size);
            let rest_order = self.next_order();
            let rest = Key::part(part_size - size, rest_order);
            self.free
                .insert(spare.into_node(rest, Self::free_part(offset + size)));
            let Some(entry) = self.free.remove_node(&Key::part(size, part_order)) else {
                // Not reached: the part is in the tree under that key. Should it be missing,
                // the rest goes out again, so that no byte can be handed out twice.
                if let Some(rest) = self
                    .free
                    .remove_node(&Key::part(part_size - size, rest_order))
                {
                    self.keep(rest.into_reservation());
                }
                return Err((data, ENOSPC));
            };
            (entry, rest_order)
        } else {
            let (_, entry) = cursor.remove_current();
            self.keep(spare);
            (entry, 0)
        };
        let range = Entry {
            place: size,
            data: Some(data),
        };
        let key = Key::range_before_part(offset, part_after);
        self.used
            .insert(entry.into_reservation().into_node(key, range));
        self.used_count += 1;
        Ok(offset)
    }

    /// Removes the range at `offset`, merging it with the free parts around it; returns its
    /// size and data. `None` if no range starts there.
    pub(crate) fn remove(&mut self, offset: usize) -> Option<(usize, T)> {
        // The merged part's order (taken before the cursor borrows the tree; an order left
        // unused when no range is there costs nothing).
        let order = self.next_order();
        let mut cursor = self.used.cursor_lower_bound_mut(&Key::range(offset))?;
        if cursor.current().0.first.get() != offset {
            return None;
        }
        let (key, range) = cursor.current();
        let (size, part_after) = (range.place, key.second.get());
        let end = cursor
            .peek_next()
            .map_or(self.area_size, |(next, _)| next.first.get());
        // The range before (or the area) now has the merged part after it.
        let (start, part_before) = match cursor.peek_prev() {
            Some((prev, range)) => (prev.first.get() + range.place, prev.second.replace(order)),
            None => {
                let found = (0, self.first_part);
                self.first_part = order;
                found
            }
        };
        let data = cursor.current_mut().1.data.take();
        let (_, entry) = cursor.remove_current();
        self.used_count -= 1;

        // The free parts after and before it, if any, go out of the tree in that order (C's),
        // and the merged part goes in: the range's own entry, so nothing to allocate.
        let after = (end - offset - size, part_after);
        let before = (offset - start, part_before);
        for (part_size, part_order) in [after, before] {
            if part_size == 0 {
                continue;
            }
            if let Some(merged) = self.free.remove_node(&Key::part(part_size, part_order)) {
                self.keep(merged.into_reservation());
            }
        }
        let merged = end - start;
        self.free.insert(
            entry
                .into_reservation()
                .into_node(Key::part(merged, order), Self::free_part(start)),
        );
        data.map(|data| (size, data))
    }

    /// The data of the range at `offset`.
    pub(crate) fn get_mut(&mut self, offset: usize) -> Option<&mut T> {
        self.used.get_mut(&Key::range(offset))?.data.as_mut()
    }

    /// The data of the range at `offset`.
    pub(crate) fn get(&self, offset: usize) -> Option<&T> {
        self.used.get(&Key::range(offset))?.data.as_ref()
    }

    /// The ranges in order: offset, size and data of each.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, usize, &T)> {
        self.used
            .iter()
            .filter_map(|(key, range)| Some((key.first.get(), range.place, range.data.as_ref()?)))
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
