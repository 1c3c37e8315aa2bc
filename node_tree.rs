// SPDX-License-Identifier: GPL-2.0

//! A process's nodes by the pointer it knows each by (the C driver's `proc->nodes`).
//!
//! The tree is linked through the nodes themselves: each [`Node`] carries its links
//! ([`TreeLinks`]), as a C `binder_node` carries its `rb_node`. A node in the tree then costs
//! no allocation of its own, where a tree of `Arc`s would cost one per node (an entry of 40
//! bytes, from the 64-byte kmalloc class) and one more allocation per new node.
//!
//! The tree holds one reference to each of its nodes (an `Arc` turned into a raw pointer on
//! insertion and back on removal). A node is in at most one tree at a time: its owner's, or
//! the one its owner's release took out of it; [`TreeLinks::linked`] says which tree may use
//! the links.

use core::{
    cmp::Ordering,
    marker::PhantomData,
    ptr::{
        self,
        null_mut, //
    }, //
};

use kernel::{
    bindings,
    container_of,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Arc,
        ArcBorrow, //
    },
    types::Opaque, //
};

use crate::{
    node::{
        Node,
        NodeArc, //
    },
    work::Work, //
};

/// The child field of `link` under which a key that compares to `link`'s as `order` (less
/// or greater) is: the left one for less, the right one for greater.
///
/// # Safety
///
/// `link` is a valid node of a tree.
pub(crate) unsafe fn child(
    link: *mut bindings::rb_node,
    order: Ordering,
) -> *mut *mut bindings::rb_node {
    if order == Ordering::Less {
        // SAFETY: `link` is valid (the caller's promise).
        unsafe { &raw mut (*link).rb_left }
    } else {
        // SAFETY: As above.
        unsafe { &raw mut (*link).rb_right }
    }
}

/// A node's links in its owner's [`NodeTree`].
pub(crate) struct TreeLinks {
    /// The red-black tree links; used only by the tree that set `linked`.
    links: Opaque<bindings::rb_node>,
    /// The node is in a tree. Set by the insertion that links the node, cleared after its
    /// removal: whichever tree set it has the links to itself until then.
    linked: Atomic<bool>,
}

// SAFETY: `links` is touched only by the one tree that holds the node (see `linked`), through
// that tree's `&mut` for changes; the rest is an atomic.
unsafe impl Send for TreeLinks {}
// SAFETY: As above: a shared `&TreeLinks` gives no access to `links` except to the tree
// holding the node.
unsafe impl Sync for TreeLinks {}

impl TreeLinks {
    /// Links of a node in no tree.
    pub(crate) fn new() -> Self {
        Self {
            links: Opaque::uninit(),
            linked: Atomic::new(false),
        }
    }
}

/// The nodes of one process, ordered by pointer.
///
/// # Invariants
///
/// Every `rb_node` in the tree is the `links` of the [`TreeLinks`] of a [`Node`] in a
/// `Work<Node>` whose `linked` is set and for which the tree holds a reference, made with
/// [`Arc::into_raw`].
pub(crate) struct NodeTree {
    root: bindings::rb_root,
}

// SAFETY: The tree owns references to nodes, which may be sent and shared between threads;
// it changes only the links of its own nodes, through `&mut self`.
unsafe impl Send for NodeTree {}
// SAFETY: As above: through `&self`, the tree is only read.
unsafe impl Sync for NodeTree {}

impl NodeTree {
    /// An empty tree.
    pub(crate) const fn new() -> Self {
        Self {
            root: bindings::rb_root {
                rb_node: null_mut(),
            },
        }
    }

    /// The node that `link` belongs to.
    ///
    /// # Safety
    ///
    /// `link` is in this tree, which is not changed for `'a`.
    unsafe fn node_at<'a>(link: *mut bindings::rb_node) -> ArcBorrow<'a, Work<Node>> {
        let link = link.cast::<Opaque<bindings::rb_node>>();
        // SAFETY: By the type invariants, `link` is the `links` field of a `TreeLinks` in
        // the `tree` field of a `Node`, the `item` of a `Work<Node>`.
        let work = unsafe {
            let links = container_of!(link, TreeLinks, links);
            let node = container_of!(links, Node, tree);
            container_of!(node, Work<Node>, item)
        };
        // SAFETY: By the type invariants, the tree holds a reference made by `Arc::into_raw`
        // to `work`, and keeps it for `'a`, as it is not changed meanwhile.
        unsafe { ArcBorrow::from_raw(work) }
    }

    /// The node for `ptr`.
    pub(crate) fn get(&self, ptr: u64) -> Option<ArcBorrow<'_, Work<Node>>> {
        let mut link = self.root.rb_node;
        while !link.is_null() {
            // SAFETY: `link` is in this tree, borrowed for the result's lifetime.
            let node = unsafe { Self::node_at(link) };
            let order = ptr.cmp(&node.ptr());
            if order == Ordering::Equal {
                return Some(node);
            }
            // SAFETY: `link` is a valid node of this tree.
            link = unsafe { *child(link, order) };
        }
        None
    }

    /// The node with the lowest pointer from `ptr` up.
    pub(crate) fn first_from(&self, ptr: u64) -> Option<ArcBorrow<'_, Work<Node>>> {
        let mut link = self.root.rb_node;
        let mut best = None;
        while !link.is_null() {
            // SAFETY: `link` is in this tree, borrowed for the result's lifetime.
            let node = unsafe { Self::node_at(link) };
            if node.ptr() < ptr {
                // SAFETY: `link` is a valid node of this tree.
                link = unsafe { (*link).rb_right };
            } else {
                let equal = node.ptr() == ptr;
                best = Some(node);
                if equal {
                    break;
                }
                // SAFETY: `link` is a valid node of this tree.
                link = unsafe { (*link).rb_left };
            }
        }
        best
    }

    /// The nodes in order of pointer.
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            // SAFETY: `self.root` is a valid tree.
            next: unsafe { bindings::rb_first(&self.root) },
            _tree: PhantomData,
        }
    }

    /// Adds `node`; gives it back if the tree has a node for its pointer already, or the
    /// node is in a tree.
    pub(crate) fn insert(&mut self, node: NodeArc) -> Result<(), NodeArc> {
        let ptr = node.ptr();
        let mut parent = null_mut();
        let mut slot: *mut *mut bindings::rb_node = &raw mut self.root.rb_node;
        // SAFETY: `slot` points at the root or at a child field of a node of this tree.
        while let Some(link) = ptr::NonNull::new(unsafe { *slot }) {
            parent = link.as_ptr();
            // SAFETY: `parent` is in this tree, which is not changed while `existing` lives.
            let existing = unsafe { Self::node_at(parent) };
            let order = ptr.cmp(&existing.ptr());
            if order == Ordering::Equal {
                return Err(node);
            }
            // SAFETY: `parent` is a valid node of this tree.
            slot = unsafe { child(parent, order) };
        }
        if node.tree.linked.cmpxchg(false, true, Acquire).is_err() {
            return Err(node);
        }
        let links = node.tree.links.get();
        // INVARIANT: The node's `linked` is set above, and the tree keeps the reference.
        let _ = Arc::into_raw(node);
        // SAFETY: `links` is the node's links, which this tree has to itself now; `parent`
        // and `slot` are where the search above found room for it.
        unsafe {
            bindings::rb_link_node(links, parent, slot);
            bindings::rb_insert_color(links, &mut self.root);
        }
        Ok(())
    }

    /// Takes `node` out of the tree, if it is there; returns the tree's reference to it.
    pub(crate) fn remove(&mut self, node: &Work<Node>) -> Option<NodeArc> {
        let found = self.get(node.ptr())?;
        if !ptr::eq(&*found, node) {
            return None;
        }
        let raw = ptr::from_ref(&*found);
        // SAFETY: The node is in this tree.
        unsafe { self.unlink(raw) };
        // SAFETY: The tree held this reference, made by `Arc::into_raw`, and gave it up above.
        Some(unsafe { Arc::from_raw(raw) })
    }

    /// Unlinks the node at `raw` and clears its `linked`.
    ///
    /// # Safety
    ///
    /// The node is in this tree. The caller takes over the tree's reference to it.
    unsafe fn unlink(&mut self, raw: *const Work<Node>) {
        // SAFETY: The node is in this tree (the caller's promise), so it is alive and its
        // links are this tree's.
        unsafe {
            bindings::rb_erase((*raw).item.tree.links.get(), &mut self.root);
            (*raw).item.tree.linked.store(false, Release);
        }
    }

    /// Takes every node out, leaving the tree empty.
    pub(crate) fn take(&mut self) -> Self {
        // The links of the nodes do not point back at the root: the tree moves as is.
        core::mem::replace(self, Self::new())
    }
}

impl Drop for NodeTree {
    fn drop(&mut self) {
        loop {
            // SAFETY: `self.root` is a valid tree.
            let first = unsafe { bindings::rb_first(&self.root) };
            if first.is_null() {
                break;
            }
            // SAFETY: `first` is in this tree.
            let raw = ptr::from_ref(&*unsafe { Self::node_at(first) });
            // SAFETY: The node is in this tree; its reference is dropped just below.
            unsafe { self.unlink(raw) };
            // SAFETY: The tree held this reference, made by `Arc::into_raw`.
            drop(unsafe { Arc::from_raw(raw) });
        }
    }
}

/// The nodes of a [`NodeTree`] in order of pointer.
pub(crate) struct Iter<'a> {
    next: *mut bindings::rb_node,
    _tree: PhantomData<&'a NodeTree>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = ArcBorrow<'a, Work<Node>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next.is_null() {
            return None;
        }
        let link = self.next;
        // SAFETY: `link` is in the tree, borrowed for `'a`.
        self.next = unsafe { bindings::rb_next(link) };
        // SAFETY: As above.
        Some(unsafe { NodeTree::node_at(link) })
    }
}
