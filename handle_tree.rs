// SPDX-License-Identifier: GPL-2.0

//! A process's handles, found by number and by node: one allocation per handle, linked into
//! both trees (the C driver's `binder_ref` in `refs_by_desc` and `refs_by_node`).
//!
//! A handle is one [`Entry`]: the links of both trees, the handle's numbers and its
//! [`NodeRef`]. Two trees of the kernel crate's own would cost an allocation each, from the
//! 64-byte kmalloc class; the one entry fits the 96-byte class. The tree by number owns the
//! entries; the tree by node (keyed by the node's address) only links them.

use core::{
    cmp::Ordering,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::{
        self,
        null_mut,
        NonNull, //
    }, //
};

use kernel::{
    bindings,
    container_of,
    prelude::*,
    types::Opaque, //
};

use crate::{
    node::NodeArc,
    node_tree::child,
    refs::NodeRef, //
};

/// One handle, in both trees of a [`HandleTree`].
struct Entry {
    /// Its links in the tree by number.
    by_handle: Opaque<bindings::rb_node>,
    /// Its links in the tree by node.
    by_node: Opaque<bindings::rb_node>,
    /// The handle's number.
    handle: u32,
    /// The handle's number in the log files.
    debug_id: u32,
    /// The node and the references held through the handle.
    node_ref: NodeRef,
}

// SAFETY: The links are used only by the tree that owns the entry, through its `&mut` to
// change them; the rest of the entry may be sent between threads.
unsafe impl Send for Entry {}
// SAFETY: As above: through a shared reference, the links are only read.
unsafe impl Sync for Entry {}

/// The key of `node` in the tree by node: its address.
fn node_key(node: &NodeArc) -> usize {
    ptr::from_ref(&**node) as usize
}

impl Entry {
    fn node_key(&self) -> usize {
        node_key(&self.node_ref.node)
    }
}

/// The memory of one handle, allocated before the lock is taken, or kept from a removed one.
pub(crate) struct HandleSlot(KBox<MaybeUninit<Entry>>);

impl HandleSlot {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(KBox::new_uninit(GFP_KERNEL)?))
    }
}

/// The handles of one process.
///
/// # Invariants
///
/// Every `rb_node` in `by_handle` is the `by_handle` field of an [`Entry`] allocated as a
/// `KBox` and owned by the tree (made with [`KBox::into_raw`]); `by_node` links the same
/// entries by their `by_node` field, and no other. Both trees are ordered by their keys, and
/// an entry is in both or in neither.
pub(crate) struct HandleTree {
    by_handle: bindings::rb_root,
    by_node: bindings::rb_root,
}

// SAFETY: The tree owns its entries, whose contents may be sent between threads; the raw
// pointers are only to them.
unsafe impl Send for HandleTree {}
// SAFETY: Through `&self`, the entries are only read.
unsafe impl Sync for HandleTree {}

/// Which tree of a [`HandleTree`] a link is in.
#[derive(Clone, Copy)]
enum Index {
    ByHandle,
    ByNode,
}

impl HandleTree {
    /// No handles.
    pub(crate) const fn new() -> Self {
        Self {
            by_handle: bindings::rb_root {
                rb_node: null_mut(),
            },
            by_node: bindings::rb_root {
                rb_node: null_mut(),
            },
        }
    }

    /// The entry that `link`, a link of the tree `index`, belongs to.
    ///
    /// # Safety
    ///
    /// `link` is in the tree `index` of a `HandleTree`.
    unsafe fn entry(link: *mut bindings::rb_node, index: Index) -> *mut Entry {
        let link = link.cast::<Opaque<bindings::rb_node>>();
        // SAFETY: By the type invariants, `link` is the field of an `Entry` named after its
        // tree.
        unsafe {
            match index {
                Index::ByHandle => container_of!(link, Entry, by_handle),
                Index::ByNode => container_of!(link, Entry, by_node),
            }
        }
    }

    /// The entry of the tree `index` whose key is `key`.
    fn find(&self, index: Index, key: usize) -> Option<NonNull<Entry>> {
        let mut link = match index {
            Index::ByHandle => self.by_handle.rb_node,
            Index::ByNode => self.by_node.rb_node,
        };
        while !link.is_null() {
            // SAFETY: `link` is in the tree `index`.
            let entry = unsafe { Self::entry(link, index) };
            // SAFETY: The entry is alive: the tree owns it.
            let at = unsafe { Self::key_of(&*entry, index) };
            let order = key.cmp(&at);
            if order == Ordering::Equal {
                return NonNull::new(entry);
            }
            // SAFETY: `link` is a valid node of the tree.
            link = unsafe { *child(link, order) };
        }
        None
    }

    /// The key of `entry` in the tree `index`.
    fn key_of(entry: &Entry, index: Index) -> usize {
        match index {
            Index::ByHandle => entry.handle as usize,
            Index::ByNode => entry.node_key(),
        }
    }

    /// The reference of `handle`.
    pub(crate) fn get(&self, handle: u32) -> Option<&NodeRef> {
        let entry = self.find(Index::ByHandle, handle as usize)?;
        // SAFETY: The tree owns the entry, borrowed with `self`.
        Some(unsafe { &(*entry.as_ptr()).node_ref })
    }

    /// The reference of `handle`, to change.
    pub(crate) fn get_mut(&mut self, handle: u32) -> Option<&mut NodeRef> {
        let entry = self.find(Index::ByHandle, handle as usize)?;
        // SAFETY: The tree owns the entry, borrowed mutably with `self`. The reference's
        // fields are not the links or keys of the trees.
        Some(unsafe { &mut (*entry.as_ptr()).node_ref })
    }

    /// The handle to `node`, with its number in the log files.
    pub(crate) fn handle_of(&self, node: &NodeArc) -> Option<(u32, u32)> {
        let entry = self.find(Index::ByNode, node_key(node))?;
        // SAFETY: The tree owns the entry.
        let entry = unsafe { entry.as_ref() };
        Some((entry.handle, entry.debug_id))
    }

    /// The handle to `node` and its reference, to change.
    pub(crate) fn by_node_mut(&mut self, node: &NodeArc) -> Option<(u32, &mut NodeRef)> {
        let entry = self.find(Index::ByNode, node_key(node))?;
        // SAFETY: The tree owns the entry, borrowed mutably with `self`. The reference's
        // fields are not the links or keys of the trees.
        let entry = unsafe { &mut *entry.as_ptr() };
        Some((entry.handle, &mut entry.node_ref))
    }

    /// Adds the handle `handle` to `node_ref.node`, in `slot`. Gives everything back if the
    /// number or the node has a handle already.
    pub(crate) fn insert(
        &mut self,
        slot: HandleSlot,
        handle: u32,
        debug_id: u32,
        node_ref: NodeRef,
    ) -> Result<(), (HandleSlot, NodeRef)> {
        let key = node_key(&node_ref.node);
        let (Some(at_handle), Some(at_node)) = (
            self.place(Index::ByHandle, handle as usize),
            self.place(Index::ByNode, key),
        ) else {
            return Err((slot, node_ref));
        };
        let entry = KBox::write(
            slot.0,
            Entry {
                by_handle: Opaque::uninit(),
                by_node: Opaque::uninit(),
                handle,
                debug_id,
                node_ref,
            },
        );
        // INVARIANT: The entry is linked into both trees below, and the trees own it.
        let entry = KBox::into_raw(entry);
        // SAFETY: `entry` is a valid entry that no tree links yet; each place is where the
        // search found room for its key, and nothing changed the trees since.
        unsafe {
            let link = (*entry).by_handle.get();
            bindings::rb_link_node(link, at_handle.0, at_handle.1);
            bindings::rb_insert_color(link, &mut self.by_handle);
            let link = (*entry).by_node.get();
            bindings::rb_link_node(link, at_node.0, at_node.1);
            bindings::rb_insert_color(link, &mut self.by_node);
        }
        Ok(())
    }

    /// Where `key` would go in the tree `index`: the parent and its child field; `None` if
    /// the key is there.
    fn place(
        &mut self,
        index: Index,
        key: usize,
    ) -> Option<(*mut bindings::rb_node, *mut *mut bindings::rb_node)> {
        let mut parent = null_mut();
        let mut slot: *mut *mut bindings::rb_node = match index {
            Index::ByHandle => &raw mut self.by_handle.rb_node,
            Index::ByNode => &raw mut self.by_node.rb_node,
        };
        // SAFETY: `slot` points at the root or at a child field of a node of the tree.
        while let Some(link) = NonNull::new(unsafe { *slot }) {
            parent = link.as_ptr();
            // SAFETY: `parent` is in the tree `index`, and the tree owns its entry.
            let at = Self::key_of(unsafe { &*Self::entry(parent, index) }, index);
            let order = key.cmp(&at);
            if order == Ordering::Equal {
                return None;
            }
            // SAFETY: `parent` is a valid node of the tree.
            slot = unsafe { child(parent, order) };
        }
        Some((parent, slot))
    }

    /// Takes the handle `handle` out of both trees: its reference, and its memory for the
    /// next new handle.
    pub(crate) fn remove(&mut self, handle: u32) -> Option<(NodeRef, HandleSlot)> {
        let entry = self.find(Index::ByHandle, handle as usize)?.as_ptr();
        // SAFETY: The entry is in both trees (the type invariants), and owned by them.
        unsafe { Some(self.unlink(entry)) }
    }

    /// Unlinks `entry` from both trees and takes it over.
    ///
    /// # Safety
    ///
    /// `entry` is in both trees.
    unsafe fn unlink(&mut self, entry: *mut Entry) -> (NodeRef, HandleSlot) {
        // SAFETY: `entry` is in both trees, which own it (the caller's promise); once it is
        // unlinked, nothing else refers to it, so its reference is moved out and its memory
        // is taken back as uninitialised (its other fields need no drop).
        unsafe {
            bindings::rb_erase((*entry).by_handle.get(), &mut self.by_handle);
            bindings::rb_erase((*entry).by_node.get(), &mut self.by_node);
            let node_ref = ptr::read(&raw const (*entry).node_ref);
            let memory = KBox::from_raw(entry.cast::<MaybeUninit<Entry>>());
            (node_ref, HandleSlot(memory))
        }
    }

    /// The handles from `from` up, in order, with their references.
    pub(crate) fn iter_from(&self, from: u32) -> Iter<'_> {
        let mut link = self.by_handle.rb_node;
        let mut next = null_mut();
        while !link.is_null() {
            // SAFETY: `link` is in the tree by number, which owns its entry.
            let at = unsafe { (*Self::entry(link, Index::ByHandle)).handle };
            if at < from {
                // SAFETY: `link` is a valid node of the tree.
                link = unsafe { (*link).rb_right };
            } else {
                next = link;
                // SAFETY: `link` is a valid node of the tree.
                link = unsafe { (*link).rb_left };
            }
        }
        Iter {
            next,
            _tree: PhantomData,
        }
    }

    /// Every handle, in order, with its reference.
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            // SAFETY: `self.by_handle` is a valid tree.
            next: unsafe { bindings::rb_first(&self.by_handle) },
            _tree: PhantomData,
        }
    }

    /// Whether there are no handles.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_handle.rb_node.is_null()
    }

    /// Takes every handle out, leaving no handles.
    pub(crate) fn take(&mut self) -> Self {
        // The links of the entries do not point back at the roots: the trees move as they are.
        core::mem::replace(self, Self::new())
    }
}

impl Drop for HandleTree {
    fn drop(&mut self) {
        loop {
            // SAFETY: `self.by_handle` is a valid tree.
            let first = unsafe { bindings::rb_first(&self.by_handle) };
            if first.is_null() {
                break;
            }
            // SAFETY: `first` is in the tree by number, so its entry is in both.
            let (node_ref, memory) = unsafe { self.unlink(Self::entry(first, Index::ByHandle)) };
            drop(node_ref);
            drop(memory);
        }
    }
}

/// Handles of a [`HandleTree`] in order, with their references.
pub(crate) struct Iter<'a> {
    next: *mut bindings::rb_node,
    _tree: PhantomData<&'a HandleTree>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (u32, &'a NodeRef);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next.is_null() {
            return None;
        }
        let link = self.next;
        // SAFETY: `link` is in the tree by number, borrowed for `'a`.
        self.next = unsafe { bindings::rb_next(link) };
        // SAFETY: As above; the tree owns the entry.
        let entry = unsafe { &*HandleTree::entry(link, Index::ByHandle) };
        Some((entry.handle, &entry.node_ref))
    }
}
