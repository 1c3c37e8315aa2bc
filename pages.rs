// SPDX-License-Identifier: GPL-2.0

//! The pages of one receive buffer: which are there, how many ranges lie on each, and which
//! no range uses any more.
//!
//! A page is put in (allocated and mapped into the owner) when a range that lies on it is
//! reserved and it is missing. When the last range on it goes, the page stays where it is and
//! becomes *unused*: it joins the buffer's list of unused pages, newest at the back. The next
//! range reserved on it takes it off that list again, which costs a few index updates and no
//! allocation. Under memory pressure the shrinker ([`crate::shrinker`]) takes unused pages
//! from the front of the list (those freed longest ago) and frees them; a later range puts in
//! a fresh, zeroed page there. A page some range uses is never on the list, so the shrinker
//! never takes a page that a transaction is being copied into or that userspace may read.
//!
//! The list is threaded through the slots by index, so it needs no memory of its own. The
//! number of unused pages of every buffer together is kept by [`crate::shrinker`], which
//! reports it to the kernel.

use core::ops::RangeInclusive;

use kernel::prelude::*;

use crate::{
    census::{
        Counted,
        Kind, //
    },
    shared_page::SharedPage,
};

/// No slot: the end of the list of unused pages.
const NONE: usize = usize::MAX;

/// A page that is there.
struct Present {
    /// The page. A transaction filling in a range holds its own reference meanwhile.
    page: SharedPage,
    /// Counts the page in the module's census.
    _census: Counted,
}

/// One page-sized slot of the receive buffer.
struct Slot {
    /// The page, if one was put in and not taken back since.
    present: Option<Present>,
    /// How many allocated ranges lie on the page, wholly or in part.
    users: u32,
    /// The previous (older) unused page, while this one is unused and there.
    older: usize,
    /// The next (newer) unused page, likewise.
    newer: usize,
}

/// How many pages of a receive buffer are in each state, as the C driver's debugfs prints
/// them (`pages: active:lru:free` and `pages high watermark`).
#[derive(Clone, Copy, Default)]
pub(crate) struct PageCounts {
    /// Pages there that some range uses.
    pub(crate) active: usize,
    /// Pages there that no range uses: on the list the shrinker takes from.
    pub(crate) lru: usize,
    /// Slots without a page.
    pub(crate) free: usize,
    /// One more than the highest slot a page was ever put in.
    pub(crate) high: usize,
}

impl kernel::fmt::Display for PageCounts {
    /// The C driver's `active:lru:free`, then the high watermark.
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        write!(
            f,
            "{}:{}:{} (high watermark {})",
            self.active, self.lru, self.free, self.high
        )
    }
}

/// The pages of a receive buffer; see the module documentation.
///
/// # Invariants
///
/// - A slot is on the list of unused pages exactly when its page is there and its `users` is
///   zero; `oldest`..`newest`, linked through `newer` (and back through `older`), are those
///   slots in the order they became unused, and `unused` is their number.
/// - [`crate::shrinker`]'s total of unused pages includes `unused`.
pub(crate) struct BufferPages {
    slots: KVec<Slot>,
    /// The unused page that became unused first, or [`NONE`].
    oldest: usize,
    /// The unused page that became unused last, or [`NONE`].
    newest: usize,
    /// How many pages are unused.
    unused: usize,
    /// See [`PageCounts::high`].
    high: usize,
}

impl BufferPages {
    /// No slots: a buffer that is not mapped (yet, or any more).
    pub(crate) const fn new() -> Self {
        // INVARIANT: There is no slot, and no unused page.
        Self {
            slots: KVec::new(),
            oldest: NONE,
            newest: NONE,
            unused: 0,
            high: 0,
        }
    }

    /// `count` empty slots, for a buffer just mapped.
    pub(crate) fn with_slots(count: usize) -> Result<Self> {
        let mut pages = Self::new();
        pages.slots.reserve(count, GFP_KERNEL)?;
        for _ in 0..count {
            pages.slots.push(
                Slot {
                    present: None,
                    users: 0,
                    older: NONE,
                    newer: NONE,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(pages)
    }

    /// Counts one more range on the slots `indices`; the unused pages among them are in use
    /// again. Their pages go to `take`, in order, as long as every slot so far has one and
    /// `take` accepts it (returns `true`). Returns whether `take` got all of them.
    ///
    /// One pass does both, since a large range has hundreds of pages.
    pub(crate) fn start_using(
        &mut self,
        indices: RangeInclusive<usize>,
        mut take: impl FnMut(&SharedPage) -> bool,
    ) -> Result<bool> {
        if *indices.end() >= self.slots.len() {
            return Err(EINVAL);
        }
        let mut complete = true;
        let mut reused = 0;
        for index in indices {
            let slot = &mut self.slots[index];
            slot.users += 1;
            let Some(present) = &slot.present else {
                complete = false;
                continue;
            };
            complete = complete && take(&present.page);
            if slot.users == 1 {
                self.unlink(index);
                reused += 1;
            }
        }
        crate::shrinker::unused_removed(reused);
        Ok(complete)
    }

    /// Counts one range less on the slots `indices`; the pages no range uses any more become
    /// unused, at the back of the list. Returns how many did.
    ///
    /// Slots out of bounds are skipped: the buffer was emptied meanwhile.
    pub(crate) fn stop_using(&mut self, indices: RangeInclusive<usize>) -> usize {
        let mut unused = 0;
        for index in indices {
            let Some(slot) = self.slots.get_mut(index) else {
                break;
            };
            slot.users = slot.users.saturating_sub(1);
            if slot.users == 0 && slot.present.is_some() {
                self.link_newest(index);
                unused += 1;
            }
        }
        crate::shrinker::unused_added(unused);
        unused
    }

    /// The page at `index`, if it is there.
    pub(crate) fn get(&self, index: usize) -> Option<&SharedPage> {
        self.slots.get(index)?.present.as_ref().map(|p| &p.page)
    }

    /// Puts `page` in at `index`, a slot that some range uses and that has no page; returns
    /// the page as it is now stored.
    pub(crate) fn put(&mut self, index: usize, page: SharedPage) -> Result<&SharedPage> {
        let high = self.high.max(index + 1);
        let slot = self.slots.get_mut(index).ok_or(EINVAL)?;
        if slot.users == 0 || slot.present.is_some() {
            return Err(EINVAL);
        }
        self.high = high;
        // The slot is in use, so it stays off the list: the invariant holds.
        let present = slot.present.insert(Present {
            page,
            _census: Counted::new(Kind::BufferPage),
        });
        Ok(&present.page)
    }

    /// Takes the page that became unused first out of the buffer, for the shrinker to free;
    /// returns its slot and the page.
    pub(crate) fn take_oldest_unused(&mut self) -> Option<(usize, SharedPage)> {
        let index = self.oldest;
        if index == NONE {
            return None;
        }
        self.unlink(index);
        crate::shrinker::unused_removed(1);
        let present = self.slots.get_mut(index)?.present.take()?;
        Some((index, present.page))
    }

    /// How many pages are unused.
    pub(crate) fn unused(&self) -> usize {
        self.unused
    }

    /// The counts of pages in each state.
    pub(crate) fn counts(&self) -> PageCounts {
        let there = self.slots.iter().filter(|s| s.present.is_some()).count();
        PageCounts {
            active: there - self.unused,
            lru: self.unused,
            free: self.slots.len() - there,
            high: self.high,
        }
    }

    /// Empties the buffer, for the release of its process; returns the pages for the caller
    /// to drop once its locks are released.
    pub(crate) fn take_all(&mut self) -> BufferPages {
        crate::shrinker::unused_removed(self.unused);
        let mut taken = core::mem::replace(self, Self::new());
        // What is returned is only something to drop: it counts no unused page any more.
        taken.unused = 0;
        taken.oldest = NONE;
        taken.newest = NONE;
        taken
    }

    /// Puts the slot `index` at the back of the list of unused pages.
    fn link_newest(&mut self, index: usize) {
        let newest = self.newest;
        self.slots[index].older = newest;
        self.slots[index].newer = NONE;
        match newest {
            NONE => self.oldest = index,
            _ => self.slots[newest].newer = index,
        }
        self.newest = index;
        self.unused += 1;
    }

    /// Takes the slot `index`, which is on the list of unused pages, off it.
    ///
    /// Inlined into [`BufferPages::start_using`]'s loop, which calls it for every page of a
    /// range that reuses unused pages (hundreds for a large payload).
    #[inline]
    fn unlink(&mut self, index: usize) {
        let (older, newer) = (self.slots[index].older, self.slots[index].newer);
        match older {
            NONE => self.oldest = newer,
            _ => self.slots[older].newer = newer,
        }
        match newer {
            NONE => self.newest = older,
            _ => self.slots[newer].older = older,
        }
        self.slots[index].older = NONE;
        self.slots[index].newer = NONE;
        self.unused -= 1;
    }
}
