// SPDX-License-Identifier: GPL-2.0

//! References: a process's handles to nodes of other processes (`binder_ref`).
//!
//! A handle counts the strong and weak references its process holds through it, and goes
//! away when both reach zero. New handles take the lowest free number from 1 up; 0 is kept
//! for the context manager's node, as in the C driver.
//!
//! A server that frees the buffers of calls carrying objects hands handles out and back all
//! the time, so the cost of a new handle matters: the search for the lowest free number
//! starts from a hint below which every number is in use, and the memory of a removed handle
//! is kept (for a few of them) for the next new handle instead of being freed. A handle is one
//! allocation, in the trees by number and by node at once ([`crate::handle_tree`]).
//!
//! The node's side of the counting (is there a handle, does it hold a strong reference) is
//! kept by the node under its owner's lock, which is never held together with this
//! process's. [`Process`](crate::process::Process) orders the two steps so that a node never
//! counts fewer references than its handles hold: it counts on the node before a handle
//! gains, and uncounts after a handle loses.

use kernel::{prelude::*, sync::Arc};

pub(crate) use crate::handle_tree::HandleSlot;
use crate::{
    death::Death,
    freeze::FreezeListener,
    handle_tree::{
        HandleTree,
        Iter, //
    },
    node::NodeArc,
    spares::{
        SpareRoom,
        Spares, //
    },
    stats::{
        Object,
        Tracked, //
    },
    work::Work, //
};

/// The handle of the context manager.
pub(crate) const MANAGER_HANDLE: u32 = 0;

/// One handle of a process, and the references it holds through it.
pub(crate) struct NodeRef {
    /// The node the handle names.
    pub(crate) node: NodeArc,
    /// Strong references held through this handle.
    strong: u32,
    /// Weak references held through this handle.
    weak: u32,
    /// The death notification requested through this handle, if any.
    pub(crate) death: Option<Arc<Work<Death>>>,
    /// The freeze notification requested through this handle, if any.
    pub(crate) freeze: Option<Arc<Work<FreezeListener>>>,
    /// Counts the handle for the `stats` log file.
    _stats: Tracked<{ Object::Ref as usize }>,
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

/// What [`Refs::gain_existing`] found.
pub(crate) enum Existing {
    /// The reference was counted through this handle.
    Counted(u32),
    /// A weak reference was counted through this handle, its first: the handle held only a
    /// strong one. The node counts the handle already, but may have to tell its owner (see
    /// [`Node::tell`]).
    ///
    /// [`Node::tell`]: crate::node::Node::tell
    FirstWeak(u32),
    /// The handle exists, but holds no strong reference for a strong one to be counted on
    /// without the node hearing of it.
    Weak,
    /// The process has no handle to the node.
    Missing,
}

/// What a handle's gain means for its node.
#[derive(Clone, Copy, Default)]
pub(crate) struct Gain {
    /// The handle was created.
    pub(crate) created: bool,
    /// The handle went from no strong reference to one.
    pub(crate) became_strong: bool,
}

/// What a handle's loss means for its node.
pub(crate) struct Loss {
    /// The node the handle names.
    pub(crate) node: NodeArc,
    /// The handle's last strong reference went.
    pub(crate) lost_strong: bool,
    /// The handle's last reference went and it was removed: what it held besides its
    /// counts, to drop after the lock.
    pub(crate) removed: Option<Removed>,
}

/// The notifications a removed handle had requested.
pub(crate) struct Removed {
    /// Its death notification.
    pub(crate) death: Option<Arc<Work<Death>>>,
    /// Its freeze notification.
    pub(crate) freeze: Option<Arc<Work<FreezeListener>>>,
}

/// The handles of one process.
pub(crate) struct Refs {
    /// The handles, by number and by node.
    handles: HandleTree,
    /// Every handle from 1 up to this one (excluded) is in use: where the search for the
    /// lowest free handle starts.
    free_from: u32,
    /// Slots of removed handles, for the next new ones. It gets room when the process is
    /// about to hold a second handle.
    spare: Spares<HandleSlot>,
}

impl Refs {
    /// A process without handles.
    pub(crate) fn new() -> Self {
        Self {
            handles: HandleTree::new(),
            free_from: 1,
            spare: Spares::new(),
        }
    }

    /// A slot kept from a removed handle, if there is one.
    pub(crate) fn take_spare(&mut self) -> Option<HandleSlot> {
        self.spare.take()
    }

    /// Whether a new handle should bring room for spare slots: the process has a handle
    /// already and no room yet.
    pub(crate) fn wants_spare_room(&self) -> bool {
        self.spare.wants_room() && !self.handles.is_empty()
    }

    /// Counts one more reference through the handle of `node`, if the process has one and
    /// the node need not count it: a weak reference, or a strong one through a handle that
    /// already holds one.
    pub(crate) fn gain_existing(&mut self, node: &NodeArc, strong: bool) -> Existing {
        let Some((handle, node_ref)) = self.handles.by_node_mut(node) else {
            return Existing::Missing;
        };
        if strong && node_ref.strong == 0 {
            return Existing::Weak;
        }
        let first_weak = !strong && node_ref.weak == 0;
        node_ref.count(strong);
        if first_weak {
            Existing::FirstWeak(handle)
        } else {
            Existing::Counted(handle)
        }
    }

    /// Counts one more reference through the handle of `node`, creating the handle in `slot`
    /// if there is none, and takes `room` for spare slots if it has none. Returns the handle,
    /// what changed for the node, and what it did not need, to drop after the lock; `None`
    /// if there is no handle and no `slot` to make one in (the handle went since the caller
    /// found it).
    pub(crate) fn gain(
        &mut self,
        node: &NodeArc,
        strong: bool,
        slot: Option<HandleSlot>,
        room: Option<SpareRoom<HandleSlot>>,
    ) -> Option<(u32, Gain, Unneeded)> {
        let room = self.spare.give_room(room);
        let mut unneeded = Unneeded {
            slot: None,
            _room: room,
        };
        if let Some((handle, node_ref)) = self.handles.by_node_mut(node) {
            let became_strong = strong && node_ref.strong == 0;
            node_ref.count(strong);
            let gain = Gain {
                created: false,
                became_strong,
            };
            unneeded.slot = slot.and_then(|slot| self.spare.keep(slot));
            return Some((handle, gain, unneeded));
        }
        let slot = slot?;
        let handle = self.lowest_free_handle(node.is_manager());
        if handle != MANAGER_HANDLE {
            // Every handle from 1 up to `handle` is in use now.
            self.free_from = handle.saturating_add(1);
        }
        let mut node_ref = NodeRef {
            node: node.clone(),
            strong: 0,
            weak: 0,
            death: None,
            freeze: None,
            _stats: Tracked::new(),
        };
        node_ref.count(strong);
        let debug_id = crate::stats::next_debug_id();
        if self
            .handles
            .insert(slot, handle, debug_id, node_ref)
            .is_err()
        {
            // Not reached: the number is free and the node has no handle (both looked up
            // above, under the same lock). What came back is memory and a reference to the
            // node that the caller holds too: dropping it here takes no lock.
            return None;
        }
        let gain = Gain {
            created: true,
            became_strong: strong,
        };
        Some((handle, gain, unneeded))
    }

    /// Every handle, in order, with its reference (for the log files).
    pub(crate) fn iter(&self) -> Iter<'_> {
        self.handles.iter()
    }

    /// The number in the log files of the handle holding `node_ref`.
    pub(crate) fn debug_id(&self, node_ref: &NodeRef) -> u32 {
        self.handles
            .handle_of(&node_ref.node)
            .map_or(0, |(_, debug_id)| debug_id)
    }

    /// Whether the process has a handle to `node`.
    pub(crate) fn has_handle_to(&self, node: &NodeArc) -> bool {
        self.handles.handle_of(node).is_some()
    }

    /// The lowest handle not in use: from 0 for the context manager's node, else from 1.
    fn lowest_free_handle(&mut self, manager: bool) -> u32 {
        if manager && self.handles.get(MANAGER_HANDLE).is_none() {
            return MANAGER_HANDLE;
        }
        // Step over the handles in use from `free_from` up to the first gap.
        let mut candidate = self.free_from;
        for (handle, _) in self.handles.iter_from(candidate) {
            if handle != candidate {
                break;
            }
            candidate = candidate.saturating_add(1);
        }
        candidate
    }

    /// Applies a decrement to the reference behind `handle` (`BC_RELEASE`, `BC_DECREFS`).
    ///
    /// A strong decrement needs a handle that holds a strong reference, as in the C driver.
    pub(crate) fn lose(&mut self, handle: u32, strong: bool) -> Result<Loss, InvalidRef> {
        let node_ref = self.handles.get_mut(handle).ok_or(InvalidRef)?;
        let count = if strong {
            &mut node_ref.strong
        } else {
            &mut node_ref.weak
        };
        // Decrementing a count of zero is logged and skipped by the C driver.
        *count = count.checked_sub(1).ok_or(InvalidRef)?;
        let lost_strong = strong && node_ref.strong == 0;
        let node = node_ref.node.clone();
        if node_ref.strong != 0 || node_ref.weak != 0 {
            return Ok(Loss {
                node,
                lost_strong,
                removed: None,
            });
        }
        let removed = Removed {
            death: node_ref.death.take(),
            freeze: node_ref.freeze.take(),
        };
        if let Some((node_ref, slot)) = self.handles.remove(handle) {
            // Dropping the reference here, under the lock, only lowers counts: its
            // notifications were taken out above, and `node` holds the node.
            drop(node_ref);
            drop(self.spare.keep(slot));
        }
        if handle != MANAGER_HANDLE {
            self.free_from = self.free_from.min(handle);
        }
        Ok(Loss {
            node,
            lost_strong,
            removed: Some(removed),
        })
    }

    /// Whether `handle` exists and, for `strong`, holds a strong reference: an increment
    /// (`BC_INCREFS`, `BC_ACQUIRE`) applies to it. Counts the increment if so.
    pub(crate) fn gain_on_handle(&mut self, handle: u32, strong: bool) -> Result<(), InvalidRef> {
        let node_ref = self.handles.get_mut(handle).ok_or(InvalidRef)?;
        if strong && node_ref.strong == 0 {
            return Err(InvalidRef);
        }
        node_ref.count(strong);
        Ok(())
    }

    /// The node behind `handle`, if the handle holds a strong reference or `strong` is not
    /// asked for.
    pub(crate) fn target(&self, handle: u32, strong: bool) -> Option<NodeArc> {
        self.handles
            .get(handle)
            .filter(|node_ref| !strong || node_ref.strong > 0)
            .map(|node_ref| node_ref.node.clone())
    }

    /// The reference behind `handle`.
    pub(crate) fn get_mut(&mut self, handle: u32) -> Option<&mut NodeRef> {
        self.handles.get_mut(handle)
    }

    /// The death notification on a handle of this process with `cookie` whose
    /// `BR_DEAD_BINDER` awaits its `BC_DEAD_BINDER_DONE`, the first delivered if there are
    /// several, with when it was delivered. (A withdrawn one is no longer on its handle: the
    /// process keeps it apart until the done.)
    pub(crate) fn death_awaiting_done(&self, cookie: u64) -> Option<(u64, &Arc<Work<Death>>)> {
        let deaths = self
            .handles
            .iter()
            .filter_map(|(_, node_ref)| node_ref.death.as_ref());
        Death::first_awaiting_done(deaths, cookie)
    }

    /// Takes every reference out, for the caller to drop once its locks are released.
    pub(crate) fn take_all(&mut self) -> HandleTree {
        self.free_from = 1;
        // The spare slots hold only memory: freed here, not kept with the dead process.
        drop(self.spare.take_all());
        self.handles.take()
    }
}

/// What [`Refs::gain`] did not need, to drop after the lock.
pub(crate) struct Unneeded {
    /// The slot, when the handle existed and there was no room to keep it.
    pub(crate) slot: Option<HandleSlot>,
    /// The spare room, when the process had some (only dropped).
    _room: Option<SpareRoom<HandleSlot>>,
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

    /// Whether the handle holds a strong reference.
    pub(crate) fn is_strong(&self) -> bool {
        self.strong > 0
    }

    /// The strong and weak references held through the handle.
    pub(crate) fn counts(&self) -> (u32, u32) {
        (self.strong, self.weak)
    }
}
