// SPDX-License-Identifier: GPL-2.0

//! Objects in transactions: binder objects translated from the sender's view to the
//! receiver's, and the references a buffer holds for them.
//!
//! A transaction's `offsets` array lists where in its data the objects are. Each is checked
//! and rewritten in the receiver's copy, as in the C driver:
//!
//! - `BINDER_TYPE_BINDER`/`WEAK_BINDER`, an object of the sender: the sender's node for it is
//!   found or created, and the receiver gets a `HANDLE`/`WEAK_HANDLE` to it.
//! - `BINDER_TYPE_HANDLE`/`WEAK_HANDLE`, a handle of the sender: the receiver gets its own
//!   handle to the same node, or, if it owns the node, the `BINDER` object with the node's
//!   pointer and cookie.
//! - `BINDER_TYPE_FD`, a file descriptor of the sender: its file is taken, and the receiver
//!   gets an fd of its own when it reads the transaction ([`crate::fds`]).
//! - `BINDER_TYPE_PTR` and `BINDER_TYPE_FDA`, scatter-gather buffers and the fd arrays in them
//!   ([`crate::scatter_gather`]).
//!
//! The references taken for the receiver belong to its buffer until the buffer is freed
//! ([`Held`]); the files go with the transaction until it is read.

use kernel::{
    alloc::{
        allocator::Kmalloc,
        kvec, //
    },
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};

use crate::{
    allocation::RangeView,
    defs::{
        FdObject,
        FlatBinderObject, //
    },
    fds::FileTransfer,
    first_inline::{
        self,
        FirstInline, //
    },
    lazy_vec::LazyVec,
    node::NodeArc,
    process::Process,
    scatter_gather::{
        object_bytes_at,
        object_from,
        FdSlots,
        ScatterGather,
        MAX_OBJECT_SIZE, //
    },
    thread::Thread,
    trace, //
};

/// A reference that a buffer holds until it is freed.
pub(crate) enum Held {
    /// One count of the buffer owner's handle number `handle`. It is released by that number,
    /// as the C driver releases it by the number written in the buffer: if userspace let the
    /// handle go meanwhile and the number went to another node, that node's handle loses the
    /// count.
    Handle { handle: u32, strong: bool },
    /// A local reference on `node`, one of the buffer owner's own objects that came back to
    /// it. The C driver looks such a node up again to release it, with a temporary reference,
    /// so its release also looks at the node again (see `Node::recheck`).
    Object { node: NodeArc, strong: bool },
}

/// Copies the `len` bytes at `offset` of the data, from the sender's data at `from`, into
/// `view`; `EFAULT` if they cannot be read. (The address wraps around as C's pointer sum does,
/// and a wrapped address fails the copy.)
fn copy_data(view: &RangeView, from: u64, offset: usize, len: usize) -> Result {
    view.copy_from_user(offset, from.wrapping_add(offset as u64), len)
}

/// How many offsets [`Translation::translate_all`] reads out of the buffer in one copy.
const OFFSETS_PER_READ: usize = 8;

/// The references one buffer holds. Most objects are handles, so those are kept apart, in 8
/// bytes each (a [`Held`] takes 16): a parcel of 16 binders keeps a 128-byte list. The
/// references on nodes (the owner's own objects that came back) are released first (after the
/// target's, which the range keeps apart, see `Range::target`), then the handles, each in the
/// order they were taken: the two kinds change different things (the owner's nodes; its
/// handles and the nodes of others), so the order between them changes nothing.
pub(crate) struct HeldRefs {
    /// The references on nodes, [`Held::Object`]s. The first is kept inline: a parcel with
    /// one such object allocates no list.
    nodes: FirstInline<Held>,
    /// The counts taken on handles.
    handles: LazyVec<HeldHandle>,
}

/// A [`Held::Handle`], in 8 bytes.
#[derive(Clone, Copy)]
struct HeldHandle {
    handle: u32,
    strong: bool,
}

impl HeldRefs {
    /// No references.
    pub(crate) const fn new() -> Self {
        Self {
            nodes: FirstInline::new(),
            handles: LazyVec::new(),
        }
    }

    /// Whether no reference is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.handles.is_empty()
    }

    /// Makes room for one more count on a handle, so that keeping it cannot fail; `left` is
    /// how many of the transaction's objects are still to translate, this one included (see
    /// [`LazyVec::reserve_for`]). A transaction whose objects take no handle (fds, buffers,
    /// its receiver's own nodes) allocates nothing here.
    pub(crate) fn reserve_handle(&mut self, left: usize) -> Result {
        self.handles.reserve_for(left)
    }

    /// Makes room for one more reference on a node, so that keeping it cannot fail.
    pub(crate) fn reserve_node(&mut self) -> Result {
        self.nodes.reserve_one()
    }

    /// Adds `held`; gives it back if there was no room for it.
    fn push_within_capacity(&mut self, held: Held) -> Result<(), Held> {
        if let Held::Handle { handle, strong } = held {
            return self
                .handles
                .push_within_capacity(HeldHandle { handle, strong })
                .map_err(|_| held);
        }
        self.nodes.push(held)
    }
}

impl IntoIterator for HeldRefs {
    type Item = Held;
    type IntoIter = HeldIter;

    /// The references on nodes, then the handles, each in the order they were taken.
    fn into_iter(self) -> HeldIter {
        HeldIter {
            nodes: self.nodes.into_iter(),
            handles: self.handles.into_vec().map(KVec::into_iter),
        }
    }
}

/// The references of a [`HeldRefs`], in the order they are released.
pub(crate) struct HeldIter {
    nodes: first_inline::IntoIter<Held>,
    /// `None` if the list had no memory (so no handles).
    handles: Option<kvec::IntoIter<HeldHandle, Kmalloc>>,
}

impl Iterator for HeldIter {
    type Item = Held;

    fn next(&mut self) -> Option<Held> {
        if let Some(held) = self.nodes.next() {
            return Some(held);
        }
        self.handles
            .as_mut()?
            .next()
            .map(|HeldHandle { handle, strong }| Held::Handle { handle, strong })
    }
}

/// Where the fd is in a `binder_fd_object`: after the header and the padding.
const FD_FIELD_OFFSET: usize = 8;

/// The object types a transaction may contain.
const TYPE_BINDER: u32 = uapi::BINDER_TYPE_BINDER;
const TYPE_WEAK_BINDER: u32 = uapi::BINDER_TYPE_WEAK_BINDER;
const TYPE_HANDLE: u32 = uapi::BINDER_TYPE_HANDLE;
const TYPE_WEAK_HANDLE: u32 = uapi::BINDER_TYPE_WEAK_HANDLE;
const TYPE_FD: u32 = uapi::BINDER_TYPE_FD;
const TYPE_FDA: u32 = uapi::BINDER_TYPE_FDA;
const TYPE_PTR: u32 = uapi::BINDER_TYPE_PTR;

/// Translates the objects of one transaction, from `from` to `to`.
pub(crate) struct Translation<'a> {
    /// The transaction's debug id, for the trace events.
    pub(crate) debug_id: u32,
    /// The sending process.
    pub(crate) from: ArcBorrow<'a, Process>,
    /// The sending thread; it reads the refcount returns its objects cause.
    pub(crate) thread: &'a Thread,
    /// The receiving process.
    pub(crate) to: &'a Arc<Process>,
    /// The references taken so far for the receiver's buffer.
    pub(crate) held: HeldRefs,
    /// Whether file descriptors may be sent: the target node accepts them, or, for a reply,
    /// the call was sent with `TF_ACCEPT_FDS`.
    pub(crate) accept_fds: bool,
    /// The files taken so far, for the receiver to get when it reads the transaction.
    pub(crate) files: FirstInline<FileTransfer>,
    /// The scatter-gather buffers placed so far.
    pub(crate) buffers: ScatterGather,
    /// How many objects are still to translate, the current one included (all of them before
    /// the first); lists reserve room for this many more at once.
    pub(crate) left: usize,
}

impl Translation<'_> {
    /// Checks and translates every object that the offsets in `view` point at, then copies
    /// the scatter-gather buffers they name.
    ///
    /// `view` holds the `data_size` bytes of data and, from the next multiple of 8, the
    /// `offsets_size` bytes of offsets (a multiple of 8, which the caller checked). The data
    /// is still to be copied if its address in the sender is given in `uncopied` (a copy of
    /// all of it failed): then it is copied as C copies it, the data up to each object, the
    /// object, and after the last object the rest. The errors are the C driver's: `EINVAL` for
    /// a misplaced, unknown or unreadable object, and `EFAULT` for an object that does not lie
    /// after the one before within the data, or data that cannot be read.
    pub(crate) fn translate_all(
        &mut self,
        view: &RangeView,
        uncopied: Option<u64>,
        data_size: usize,
        offsets_size: usize,
    ) -> Result {
        let offsets_start = data_size.checked_next_multiple_of(8).ok_or(EINVAL)?;
        let count = offsets_size / size_of::<u64>();
        // The offsets, read out of the buffer a few at a time rather than one by one.
        let mut offsets = [0u64; OFFSETS_PER_READ];
        // Where the previous object ended.
        let mut end_of_last = 0usize;
        for index in 0..count {
            let in_chunk = index % OFFSETS_PER_READ;
            if in_chunk == 0 {
                let chunk = offsets
                    .get_mut(..(count - index).min(OFFSETS_PER_READ))
                    .ok_or(EINVAL)?;
                view.read(
                    offsets_start + index * size_of::<u64>(),
                    AsBytes::as_bytes_mut(chunk),
                )?;
            }
            let offset = offsets.get(in_chunk).copied().ok_or(EINVAL)?;
            let offset = usize::try_from(offset).map_err(|_| EFAULT)?;
            if offset != end_of_last && (offset < end_of_last || offset > data_size) {
                return Err(EFAULT);
            }
            if let Some(from) = uncopied {
                copy_data(view, from, end_of_last, offset - end_of_last)?;
                // As much as the largest object, or what the data has left.
                let object = MAX_OBJECT_SIZE.min(data_size.saturating_sub(offset));
                copy_data(view, from, offset, object).map_err(|_| EINVAL)?;
            }
            self.left = count - index;
            let size = self.translate_one(view, data_size, index, offset)?;
            end_of_last = offset + size;
        }
        if let Some(from) = uncopied {
            copy_data(
                view,
                from,
                end_of_last,
                data_size.saturating_sub(end_of_last),
            )?;
        }
        self.buffers.copy_buffers(view)
    }

    /// Translates the object at `offset`, the `index`th object; returns its size.
    fn translate_one(
        &mut self,
        view: &RangeView,
        data_size: usize,
        index: usize,
        offset: usize,
    ) -> Result<usize> {
        // One copy out of the buffer for the type and the object.
        let (kind, size, bytes) = object_bytes_at(view, data_size, offset)?;
        match kind {
            TYPE_BINDER | TYPE_WEAK_BINDER | TYPE_HANDLE | TYPE_WEAK_HANDLE => {
                let mut object: FlatBinderObject = object_from(&bytes)?;
                if kind == TYPE_BINDER || kind == TYPE_WEAK_BINDER {
                    self.translate_binder(&mut object)?;
                } else {
                    self.translate_handle(&mut object)?;
                }
                view.write(offset, object.as_bytes())?;
            }
            TYPE_FD => {
                let mut object: FdObject = object_from(&bytes)?;
                // SAFETY: Both members of the union are integers, so reading either is valid.
                let fd = unsafe { object.0.__bindgen_anon_1.fd };
                self.take_file(fd, offset + FD_FIELD_OFFSET, false)?;
                // Until the receiver reads it, the object holds no fd: the whole word is
                // cleared, as in C.
                object.0.__bindgen_anon_1.pad_binder = 0;
                view.write(offset, object.as_bytes())?;
            }
            TYPE_PTR => {
                let object = object_from(&bytes)?;
                self.buffers
                    .translate_buffer(view, index, self.left, offset, object)?;
            }
            TYPE_FDA => {
                let array = object_from(&bytes)?;
                let slots = self
                    .buffers
                    .translate_fd_array(view, index, self.left, array)?;
                self.take_fd_array(&slots)?;
            }
            _ => return Err(EINVAL),
        }
        Ok(size)
    }

    /// Takes the sender's file `fd`, for the receiver's fd to go at `offset` in the buffer.
    fn take_file(&mut self, fd: u32, offset: usize, in_array: bool) -> Result {
        if !self.accept_fds {
            crate::debug::binder_user_error!(
                "fd {} sent to a receiver that does not accept fds\n",
                fd
            );
            return Err(EPERM);
        }
        self.files.reserve_one()?;
        let transfer = FileTransfer::take(fd, offset, in_array, self.from.cred(), self.to.cred())?;
        // Cannot fail: room was reserved above.
        let _ = self.files.push(transfer);
        trace::binder_transaction_fd_send(self.debug_id as i32, fd as i32, offset);
        Ok(())
    }

    /// Takes the files of an fd array, reading the fds from the sender's memory. A fault
    /// fails the transaction with `EINVAL`, as in C.
    fn take_fd_array(&mut self, slots: &FdSlots) -> Result {
        for i in 0..slots.count {
            let step = i * size_of::<u32>();
            let from = usize::try_from(slots.from.wrapping_add(step as u64)).map_err(|_| EINVAL)?;
            let fd = UserSlice::new(UserPtr::from_addr(from), size_of::<u32>())
                .reader()
                .read::<u32>()
                .map_err(|_| EINVAL)?;
            self.take_file(fd, slots.to + step, true)?;
        }
        Ok(())
    }

    /// An object of the sender: the receiver gets a handle to the sender's node for it.
    ///
    /// The C driver holds a temporary reference to the node meanwhile, and looks at the node
    /// again when it drops it (see `Node::recheck`). After a success that look decides
    /// nothing, since the receiver's handle, which the buffer keeps, refers to the node; after
    /// a failure it is taken here, so that a new node the object failed to reach anyone with
    /// leaves the sender's tree again.
    fn translate_binder(&mut self, object: &mut FlatBinderObject) -> Result {
        let node =
            self.from
                .node_for_object(object.binder_ptr(), object.0.cookie, object.0.flags)?;
        let result = self.binder_to_handle(object, node.clone());
        if result.is_err() {
            self.from.recheck_node(&node);
        }
        result
    }

    /// The body of [`Self::translate_binder`], given the sender's node for the object.
    fn binder_to_handle(&mut self, object: &mut FlatBinderObject, node: NodeArc) -> Result {
        let strong = object.0.hdr.type_ == TYPE_BINDER;
        if node.cookie() != object.0.cookie {
            crate::debug::binder_user_error!(
                "object {:#x} sent with cookie {:#x}, its node has {:#x}\n",
                node.ptr(),
                object.0.cookie,
                node.cookie()
            );
            return Err(EINVAL);
        }
        self.may_transfer_binder()?;
        let ptr = node.ptr();
        let handle = self.give_handle(object, node, strong, true)?;
        trace::binder_transaction_node_to_ref(self.debug_id as i32, 0, ptr, 0, handle);
        Ok(())
    }

    /// A handle of the sender: the receiver gets its own handle to the node, or the node's
    /// object if the node is its own.
    fn translate_handle(&mut self, object: &mut FlatBinderObject) -> Result {
        let strong = object.0.hdr.type_ == TYPE_HANDLE;
        // SAFETY: Both members of the union are integers, so reading either is always valid.
        let handle = unsafe { object.0.__bindgen_anon_1.handle };
        let node = self.from.ref_target(handle, strong).ok_or(EINVAL)?;
        self.may_transfer_binder()?;
        if !node.is_owned_by(self.to) {
            let new = self.give_handle(object, node, strong, false)?;
            trace::binder_transaction_ref_to_ref(self.debug_id as i32, 0, 0, handle, 0, new);
            return Ok(());
        }
        self.held.reserve_node()?;
        self.to.count_local(&node, strong);
        let kind = if strong {
            TYPE_BINDER
        } else {
            TYPE_WEAK_BINDER
        };
        object.set_binder(kind, node.ptr(), node.cookie());
        trace::binder_transaction_ref_to_node(self.debug_id as i32, 0, handle, 0, node.ptr());
        self.keep(Held::Object { node, strong });
        Ok(())
    }

    /// Asks the LSM whether the sender may pass a binder object to the receiver; `EPERM` if
    /// not, as in C.
    fn may_transfer_binder(&self) -> Result {
        kernel::security::binder_transfer_binder(self.from.cred(), self.to.cred())
            .map_err(|_| EPERM)
    }

    /// Makes `object` the receiver's handle to `node`, taking the reference for its buffer.
    /// `from_owner` says the sender owns the node: its thread reads the node's
    /// `BR_INCREFS`/`BR_ACQUIRE` if they are due.
    fn give_handle(
        &mut self,
        object: &mut FlatBinderObject,
        node: NodeArc,
        strong: bool,
        from_owner: bool,
    ) -> Result<u32> {
        self.held.reserve_handle(self.left)?;
        let notify = from_owner.then_some(self.thread);
        let handle = self.to.take_ref(&node, strong, notify)?;
        self.keep(Held::Handle { handle, strong });
        let kind = if strong {
            TYPE_HANDLE
        } else {
            TYPE_WEAK_HANDLE
        };
        object.set_handle(kind, handle);
        Ok(handle)
    }

    /// Records a reference taken for the receiver; room for it was reserved before it was
    /// taken, so this cannot fail.
    pub(crate) fn keep(&mut self, held: Held) {
        if let Err(err) = self.held.push_within_capacity(held) {
            // Unreachable: the caller reserved the room. Give the reference back regardless.
            self.to.release_held(err);
        }
    }
}
