// SPDX-License-Identifier: GPL-2.0

//! Short lists whose first element is kept inline.
//!
//! Most transactions carry at most one of a kind (one reference on a node, their target's;
//! one file), so a list of them allocates nothing until it has a second element: then it moves
//! into a boxed `KVec`. The list is two words, whatever it holds.

use kernel::{
    alloc::{
        allocator::Kmalloc,
        kvec, //
    },
    prelude::*,
};

/// How many elements a list gets room for when it first needs a `KVec`.
const FIRST_ROOM: usize = 4;

/// A list of `T`, the first inline.
pub(crate) struct FirstInline<T>(Elements<T>);

enum Elements<T> {
    None,
    One(T),
    Many(KBox<KVec<T>>),
}

impl<T> FirstInline<T> {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        Self(Elements::None)
    }

    /// An empty list with room for `count` elements.
    pub(crate) fn with_room(count: usize) -> Result<Self> {
        if count <= 1 {
            return Ok(Self::new());
        }
        let list = KBox::new(KVec::with_capacity(count, GFP_KERNEL)?, GFP_KERNEL)?;
        Ok(Self(Elements::Many(list)))
    }

    /// Whether the list is empty.
    pub(crate) fn is_empty(&self) -> bool {
        match &self.0 {
            Elements::None => true,
            Elements::One(_) => false,
            Elements::Many(list) => list.is_empty(),
        }
    }

    /// How many elements there are.
    pub(crate) fn len(&self) -> usize {
        match &self.0 {
            Elements::None => 0,
            Elements::One(_) => 1,
            Elements::Many(list) => list.len(),
        }
    }

    /// Makes room for one more element, so that the next [`FirstInline::push`] succeeds.
    pub(crate) fn reserve_one(&mut self) -> Result {
        match &mut self.0 {
            Elements::None => {}
            Elements::One(_) => {
                // Allocated before the first element moves into it, so that a failure leaves
                // the list as it was.
                let mut list = KBox::new(KVec::with_capacity(FIRST_ROOM, GFP_KERNEL)?, GFP_KERNEL)?;
                if let Elements::One(first) = core::mem::replace(&mut self.0, Elements::None) {
                    // Cannot fail: the list has room.
                    let _ = list.push_within_capacity(first);
                }
                self.0 = Elements::Many(list);
            }
            Elements::Many(list) => list.reserve(1, GFP_KERNEL)?,
        }
        Ok(())
    }

    /// Adds `value` at the end if there is room for it; gives it back if not.
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        match &mut self.0 {
            Elements::None => {
                self.0 = Elements::One(value);
                Ok(())
            }
            Elements::One(_) => Err(value),
            Elements::Many(list) => list.push_within_capacity(value).map_err(|err| err.0),
        }
    }
}

/// The elements of a [`FirstInline`], in the order they were pushed.
pub(crate) struct IntoIter<T> {
    one: Option<T>,
    many: Option<kvec::IntoIter<T, Kmalloc>>,
}

impl<T> IntoIterator for FirstInline<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        let (one, many) = match self.0 {
            Elements::None => (None, None),
            Elements::One(value) => (Some(value), None),
            Elements::Many(list) => (None, Some(KBox::into_inner(list).into_iter())),
        };
        IntoIter { one, many }
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.one
            .take()
            .or_else(|| self.many.as_mut().and_then(Iterator::next))
    }
}
