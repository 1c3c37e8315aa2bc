// SPDX-License-Identifier: GPL-2.0

//! References: a process's handles to nodes of other processes (`binder_ref`).
//!
//! Handle 0 always names the context manager's node. A reference counts the strong and weak
//! references its process holds through the handle, and goes away when both reach zero.

use kernel::{
    prelude::*,
    rbtree::{
        self,
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::Arc,
};

use crate::{
    death::Death,
    node::Node,
    work::Work, //
};

/// The handle of the context manager.
pub(crate) const MANAGER_HANDLE: u32 = 0;

/// One handle of a process, and the references it holds through it.
pub(crate) struct NodeRef {
    /// The node the handle names.
    pub(crate) node: Arc<Node>,
    /// Strong references held through this handle.
    strong: u32,
    /// Weak references held through this handle.
    weak: u32,
    /// The death notification requested through this handle, if any.
    pub(crate) death: Option<Arc<Work<Death>>>,
}

/// A change of a reference count, as `BC_INCREFS`, `BC_ACQUIRE`, `BC_RELEASE` and
/// `BC_DECREFS` ask for.
#[derive(Clone, Copy)]
pub(crate) struct RefChange {
    /// A strong (`BC_ACQUIRE`/`BC_RELEASE`) rather than a weak reference.
    pub(crate) strong: bool,
    /// An increment (`BC_INCREFS`/`BC_ACQUIRE`) rather than a decrement.
    pub(crate) increment: bool,
}

/// The handle does not name a reference the change can apply to.
pub(crate) struct InvalidRef;

/// The handles of one process.
pub(crate) struct Refs {
    by_handle: RBTree<u32, NodeRef>,
}

impl Refs {
    /// A process without handles.
    pub(crate) fn new() -> Self {
        Self {
            by_handle: RBTree::new(),
        }
    }

    /// Takes a reference on the context manager's `node` through handle 0, creating the
    /// handle with `reservation` if the process has none yet.
    pub(crate) fn take_manager_ref(
        &mut self,
        node: Arc<Node>,
        strong: bool,
        reservation: RBTreeNodeReservation<u32, NodeRef>,
    ) {
        let node_ref = match self.by_handle.entry(MANAGER_HANDLE) {
            rbtree::Entry::Occupied(entry) => entry.into_mut(),
            rbtree::Entry::Vacant(entry) => entry.insert(
                NodeRef {
                    node,
                    strong: 0,
                    weak: 0,
                    death: None,
                },
                reservation,
            ),
        };
        node_ref.count(strong);
    }

    /// Applies `change` to the reference behind `handle`.
    ///
    /// A strong change needs a handle that holds a strong reference, as in the C driver.
    /// Returns the reference when its counts reach zero and it is removed, for the caller to
    /// drop once its locks are released.
    pub(crate) fn change(
        &mut self,
        handle: u32,
        change: RefChange,
    ) -> Result<Option<NodeRef>, InvalidRef> {
        let node_ref = self.by_handle.get_mut(&handle).ok_or(InvalidRef)?;
        if change.strong && node_ref.strong == 0 {
            return Err(InvalidRef);
        }
        if change.increment {
            node_ref.count(change.strong);
            return Ok(None);
        }
        let count = if change.strong {
            &mut node_ref.strong
        } else {
            &mut node_ref.weak
        };
        // Decrementing a weak count of zero is logged and skipped by the C driver.
        *count = count.checked_sub(1).ok_or(InvalidRef)?;
        if node_ref.strong == 0 && node_ref.weak == 0 {
            return Ok(self.by_handle.remove(&handle));
        }
        Ok(None)
    }

    /// The node behind `handle`, if a strong reference is held through it.
    pub(crate) fn strong_target(&self, handle: u32) -> Option<Arc<Node>> {
        self.by_handle
            .get(&handle)
            .filter(|node_ref| node_ref.strong > 0)
            .map(|node_ref| node_ref.node.clone())
    }

    /// The reference behind `handle`.
    pub(crate) fn get_mut(&mut self, handle: u32) -> Option<&mut NodeRef> {
        self.by_handle.get_mut(&handle)
    }

    /// The death notification of this process with `cookie` whose `BR_DEAD_BINDER` awaits
    /// its `BC_DEAD_BINDER_DONE`.
    ///
    /// A notification that was withdrawn meanwhile leaves its handle now.
    pub(crate) fn take_death_awaiting_done(&mut self, cookie: u64) -> Option<Arc<Work<Death>>> {
        let node_ref = self.by_handle.values_mut().find(|node_ref| {
            node_ref
                .death
                .as_ref()
                .is_some_and(|death| death.item.awaits_done(cookie))
        })?;
        let death = node_ref.death.as_ref()?;
        if death.item.is_cleared() {
            node_ref.death.take()
        } else {
            Some(death.clone())
        }
    }

    /// Takes every reference out, for the caller to drop once its locks are released.
    pub(crate) fn take_all(&mut self) -> RBTree<u32, NodeRef> {
        core::mem::take(&mut self.by_handle)
    }
}

impl NodeRef {
    /// Counts one more reference.
    fn count(&mut self, strong: bool) {
        if strong {
            self.strong = self.strong.saturating_add(1);
        } else {
            self.weak = self.weak.saturating_add(1);
        }
    }
}
