// SPDX-License-Identifier: GPL-2.0

//! Scatter-gather buffers: `BINDER_TYPE_PTR` objects of `BC_TRANSACTION_SG`/`BC_REPLY_SG`, and
//! the fd arrays (`BINDER_TYPE_FDA`) that live inside them.
//!
//! A `PTR` object points at a buffer in the sender's memory. Each is given the next 8-byte
//! aligned place of the transaction's scatter-gather area (`buffers_size` bytes after the
//! offsets), and the object is rewritten to point at that place in the receiver's mapping.
//! A buffer may have a parent, an earlier `PTR` object: the pointer field at
//! `parent_offset` in the parent buffer is then patched to the child's new address, so that
//! nested structures (a `native_handle` inside a HIDL struct) arrive intact. An fd array
//! names its parent and the place of its fds there the same way.
//!
//! The rules are the C driver's, errors included (`EINVAL` for every broken one):
//!
//! - a parent is an object listed *before* the child, and it must be a `PTR`;
//! - fixups happen at increasing offsets, and only in the buffer fixed up last or in one of
//!   its ancestors, above the pointer that led from it to the child;
//! - a pointer fixup needs 8 bytes within its parent, an fd array all its fds.
//!
//! As in C, nothing is copied while the objects are checked: the copies are listed, and done at
//! the end ([`ScatterGather::copy_buffers`]), the patched pointers written in place of the
//! sender's and the fd slots of arrays skipped (they get the receiver's fds when it reads). The
//! receiver's read-only mapping thus never shows the sender's pointers.

use kernel::{
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uapi,
};

use crate::{
    allocation::RangeView,
    defs::{
        BufferObject,
        FdArrayObject,
        BUFFER_FLAG_HAS_PARENT, //
    },
    lazy_vec::LazyVec, //
};

/// The size of a pointer in a parent buffer, as the C driver's `binder_uintptr_t`.
const POINTER_SIZE: u64 = size_of::<u64>() as u64;

/// What to do, instead of copying, at `at` in the scatter-gather area.
struct Fixup {
    at: usize,
    kind: FixupKind,
}

enum FixupKind {
    /// Write the receiver's address of a child buffer.
    Pointer(u64),
    /// Leave the bytes to the fd array whose fds the reader's fds replace.
    FdSlots(usize),
}

/// The place of an fd array's fds, found by [`ScatterGather::translate_fd_array`].
pub(crate) struct FdSlots {
    /// Where the first fd is in the transaction buffer.
    pub(crate) to: usize,
    /// Where the sender has the first fd.
    pub(crate) from: u64,
    pub(crate) count: usize,
}

/// A `PTR` object whose buffer has its place in the scatter-gather area, to be copied there
/// from the sender at the end; the fd arrays inside it find it by `object`, and their fds
/// by `from`.
struct PlacedBuffer {
    /// The offset of the `PTR` object in the data.
    object: usize,
    /// Where in the transaction buffer the copy goes.
    to: usize,
    /// The sender's address of the buffer.
    from: u64,
    /// Its length in bytes.
    len: usize,
}

/// The scatter-gather state of one transaction being translated.
pub(crate) struct ScatterGather {
    /// The receiver's address of the transaction buffer.
    base: u64,
    /// The transaction's data size; objects lie within it.
    data_size: usize,
    /// Where the offsets array starts in the buffer.
    offsets_start: usize,
    /// The next free place in the scatter-gather area, and its end.
    next: usize,
    end: usize,
    /// In the order they were placed, so sorted by `to`.
    placed: LazyVec<PlacedBuffer>,
    /// Sorted by `at`.
    fixups: LazyVec<Fixup>,
    /// The offset of the `PTR` object last fixed up into or placed, as C's
    /// `last_fixup_obj_off`: 0 means none (so, as in C, an object at offset 0 of the data
    /// cannot take a fixup once it was last).
    last_object: usize,
    /// The lowest offset a fixup into `last_object` may have.
    last_min: u64,
}

impl ScatterGather {
    /// The state of a transaction whose buffer starts at `base` in the receiver's mapping,
    /// with `data_size` bytes of data and `offsets_size` of offsets, followed by a
    /// scatter-gather area of `buffers_size` bytes. Only sums that overflow fail here; the
    /// caller checks the sizes' alignment before any object is placed.
    #[inline(always)]
    pub(crate) fn new(
        base: u64,
        data_size: usize,
        offsets_size: usize,
        buffers_size: usize,
    ) -> Result<Self> {
        let offsets_start = data_size.checked_next_multiple_of(8).ok_or(EINVAL)?;
        let next = offsets_size
            .checked_next_multiple_of(8)
            .and_then(|size| size.checked_add(offsets_start))
            .ok_or(EINVAL)?;
        Ok(Self {
            base,
            data_size,
            offsets_start,
            next,
            end: next.checked_add(buffers_size).ok_or(EINVAL)?,
            placed: LazyVec::new(),
            fixups: LazyVec::new(),
            last_object: 0,
            last_min: 0,
        })
    }

    /// Places the buffer of `object`, the `PTR` object at `offset` (the `index`th object, as
    /// read from there, with `left` objects still to translate counting it), and rewrites the
    /// object for the receiver.
    pub(crate) fn translate_buffer(
        &mut self,
        view: &RangeView,
        index: usize,
        left: usize,
        offset: usize,
        mut object: BufferObject,
    ) -> Result {
        let room = self.end.saturating_sub(self.next);
        let len = usize::try_from(object.0.length).map_err(|_| EINVAL)?;
        if len > room {
            return Err(EINVAL);
        }
        self.placed.reserve_for(left)?;
        let to = self.next;
        let from = object.0.buffer;
        object.0.buffer = self.address_of(to)?;
        // `len <= end - next`, and both are multiples of 8 (`buffers_size` was checked), so
        // this stays within the area.
        self.next = self.next.saturating_add(len.next_multiple_of(8));
        if object.0.flags & BUFFER_FLAG_HAS_PARENT != 0 {
            self.fix_up_parent(view, index, left, &object)?;
        }
        view.write(offset, object.as_bytes())?;
        // Cannot fail: room was reserved above.
        let _ = self.placed.push_within_capacity(PlacedBuffer {
            object: offset,
            to,
            from,
            len,
        });
        self.last_object = offset;
        self.last_min = 0;
        Ok(())
    }

    /// Checks `array`, the `FDA` object that is the `index`th object (`left` objects still to
    /// translate, counting it), against its parent; returns where its fds are, for the caller
    /// to take each one.
    pub(crate) fn translate_fd_array(
        &mut self,
        view: &RangeView,
        index: usize,
        left: usize,
        array: FdArrayObject,
    ) -> Result<FdSlots> {
        let (parent_object, parent) = self.parent(view, array.0.parent, index).ok_or(EINVAL)?;
        if !self.fixup_allowed(view, parent_object, array.0.parent_offset) {
            return Err(EINVAL);
        }
        let sender_parent = self
            .placed
            .iter()
            .find(|placed| placed.object == parent_object)
            .map(|placed| placed.from)
            .ok_or(EINVAL)?;
        let mut slots = FdSlots {
            to: 0,
            from: 0,
            count: 0,
        };
        if array.0.num_fds != 0 {
            let count = usize::try_from(array.0.num_fds).map_err(|_| EINVAL)?;
            let bytes = count
                .checked_mul(size_of::<u32>())
                .and_then(|bytes| u64::try_from(bytes).ok())
                .ok_or(EINVAL)?;
            if bytes > parent.0.length || array.0.parent_offset > parent.0.length - bytes {
                return Err(EINVAL);
            }
            let to = self.place_in(&parent, array.0.parent_offset)?;
            let from = sender_parent.wrapping_add(array.0.parent_offset);
            if to % size_of::<u32>() != 0 || from % size_of::<u32>() as u64 != 0 {
                return Err(EINVAL);
            }
            // `bytes` came from a `usize`.
            self.add_fixup(left, to, FixupKind::FdSlots(bytes as usize))?;
            slots = FdSlots { to, from, count };
        }
        self.last_object = parent_object;
        self.last_min = array
            .0
            .parent_offset
            .wrapping_add(array.0.num_fds.wrapping_mul(4));
        Ok(slots)
    }

    /// Copies every placed buffer from the sender, with the patched pointers in place of the
    /// sender's and the fd slots left out. The C driver fails a copy that faults with `EINVAL`.
    pub(crate) fn copy_buffers(&self, view: &RangeView) -> Result {
        let mut fixups = self.fixups.iter().peekable();
        for buffer in self.placed.iter() {
            let end = buffer.to + buffer.len;
            let mut at = buffer.to;
            while at < end {
                let fixup = fixups.peek().filter(|fixup| fixup.at < end);
                let stop = fixup.map_or(end, |fixup| fixup.at);
                // Fixups do not overlap and lie within their buffers, as checked when they
                // were added; anything else is refused rather than written twice.
                if stop < at {
                    return Err(EINVAL);
                }
                if stop > at {
                    let from = buffer.from.wrapping_add((at - buffer.to) as u64);
                    view.copy_from_user(at, from, stop - at)
                        .map_err(|_| EINVAL)?;
                }
                at = stop;
                if let Some(fixup) = fixups.next_if(|fixup| fixup.at < end) {
                    match fixup.kind {
                        FixupKind::Pointer(address) => {
                            view.write(at, &address.to_ne_bytes())?;
                            at += size_of::<u64>();
                        }
                        FixupKind::FdSlots(len) => at += len,
                    }
                }
            }
        }
        Ok(())
    }

    /// The receiver's address of `offset` in the buffer.
    fn address_of(&self, offset: usize) -> Result<u64> {
        u64::try_from(offset)
            .ok()
            .and_then(|offset| self.base.checked_add(offset))
            .ok_or(EINVAL)
    }

    /// Where `offset_in_parent` of the placed buffer of `parent` is in the transaction buffer.
    fn place_in(&self, parent: &BufferObject, offset_in_parent: u64) -> Result<usize> {
        let at = parent
            .0
            .buffer
            .wrapping_sub(self.base)
            .wrapping_add(offset_in_parent);
        usize::try_from(at).map_err(|_| EINVAL)
    }

    /// The child `object` (already rewritten) goes into its parent: checks the parent and the
    /// place, and lists the pointer fixup.
    fn fix_up_parent(
        &mut self,
        view: &RangeView,
        index: usize,
        left: usize,
        object: &BufferObject,
    ) -> Result {
        let (parent_object, parent) = self.parent(view, object.0.parent, index).ok_or(EINVAL)?;
        if !self.fixup_allowed(view, parent_object, object.0.parent_offset) {
            return Err(EINVAL);
        }
        if parent.0.length < POINTER_SIZE || object.0.parent_offset > parent.0.length - POINTER_SIZE
        {
            return Err(EINVAL);
        }
        let at = self.place_in(&parent, object.0.parent_offset)?;
        self.add_fixup(left, at, FixupKind::Pointer(object.0.buffer))
    }

    /// The `PTR` object listed at `parent` in the offsets, if that is one of the `before`
    /// objects already translated: its offset in the data, and the object as translated.
    fn parent(
        &self,
        view: &RangeView,
        parent: u64,
        before: usize,
    ) -> Option<(usize, BufferObject)> {
        let parent = usize::try_from(parent).ok()?;
        if parent >= before {
            return None;
        }
        let offset = self.object_offset(view, parent)?;
        ptr_object_at(view, self.data_size, offset).map(|object| (offset, object))
    }

    /// The offset of the `index`th object, from the offsets array in the buffer.
    fn object_offset(&self, view: &RangeView, index: usize) -> Option<usize> {
        let mut raw = [0u8; 8];
        let at = index.checked_mul(8)?.checked_add(self.offsets_start)?;
        view.read(at, &mut raw).ok()?;
        usize::try_from(u64::from_ne_bytes(raw)).ok()
    }

    /// Whether a fixup at `at` in the buffer of the `PTR` object at `parent_object` keeps the
    /// order the C driver demands: the buffer is the one fixed up into last, or an ancestor of
    /// it, and `at` is not below the last fixup there (for an ancestor: past the pointer
    /// that leads down to the last one).
    fn fixup_allowed(&self, view: &RangeView, parent_object: usize, at: u64) -> bool {
        let mut last = self.last_object;
        let mut min = self.last_min;
        if last == 0 {
            return false;
        }
        // Each step goes to an earlier object, so there are at most as many as objects.
        let mut steps = self.placed.len();
        while last != parent_object {
            if steps == 0 {
                return false;
            }
            steps -= 1;
            let Some(object) = ptr_object_at(view, self.data_size, last) else {
                return false;
            };
            if object.0.flags & BUFFER_FLAG_HAS_PARENT == 0 {
                return false;
            }
            min = object.0.parent_offset.wrapping_add(POINTER_SIZE);
            let Some(parent) = usize::try_from(object.0.parent)
                .ok()
                .and_then(|parent| self.object_offset(view, parent))
            else {
                return false;
            };
            last = parent;
        }
        at >= min
    }

    /// Lists a fixup for an object with `left` objects still to translate (counting it),
    /// keeping the list sorted by place.
    fn add_fixup(&mut self, left: usize, at: usize, kind: FixupKind) -> Result {
        let position = self
            .fixups
            .iter()
            .rposition(|fixup| fixup.at < at)
            .map_or(0, |before| before + 1);
        self.fixups.reserve_for(left)?;
        self.fixups
            .insert_within_capacity(position, Fixup { at, kind })
            .map_err(|_| ENOMEM)
    }
}

/// The largest object's size (`binder_buffer_object`).
pub(crate) const MAX_OBJECT_SIZE: usize = size_of::<uapi::binder_buffer_object>();

/// The bytes of an object read from the buffer: valid up to the object's size.
pub(crate) type ObjectBytes = [u8; MAX_OBJECT_SIZE];

/// The object at `offset` of the data, as the C driver accepts one: 4-byte aligned, of a
/// known type, and whole within the `data_size` bytes of data. Returns its type, its size and
/// its bytes, read from the buffer in one copy; fails with `EINVAL`.
pub(crate) fn object_bytes_at(
    view: &RangeView,
    data_size: usize,
    offset: usize,
) -> Result<(u32, usize, ObjectBytes)> {
    if offset > data_size || data_size - offset < size_of::<u32>() || offset % size_of::<u32>() != 0
    {
        return Err(EINVAL);
    }
    let mut bytes = [0u8; MAX_OBJECT_SIZE];
    // As much as the largest object, or what the data has left: the whole object if it fits.
    let len = MAX_OBJECT_SIZE.min(data_size - offset);
    view.read(offset, bytes.get_mut(..len).ok_or(EINVAL)?)?;
    let kind = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let size = object_size(kind).ok_or(EINVAL)?;
    if size > data_size - offset {
        return Err(EINVAL);
    }
    Ok((kind, size, bytes))
}

/// The object at `offset` of the data if it is a `PTR` one (see [`object_bytes_at`]).
fn ptr_object_at(view: &RangeView, data_size: usize, offset: usize) -> Option<BufferObject> {
    match object_bytes_at(view, data_size, offset).ok()? {
        (uapi::BINDER_TYPE_PTR, _, bytes) => object_from(&bytes).ok(),
        _ => None,
    }
}

/// The object of type `T` at the start of `bytes`, from [`object_bytes_at`].
pub(crate) fn object_from<T: FromBytes>(bytes: &ObjectBytes) -> Result<T> {
    T::from_bytes_copy(bytes.get(..size_of::<T>()).ok_or(EINVAL)?).ok_or(EINVAL)
}

/// The size of an object of `kind`, or `None` for an unknown type.
fn object_size(kind: u32) -> Option<usize> {
    match kind {
        uapi::BINDER_TYPE_BINDER
        | uapi::BINDER_TYPE_WEAK_BINDER
        | uapi::BINDER_TYPE_HANDLE
        | uapi::BINDER_TYPE_WEAK_HANDLE => Some(size_of::<uapi::flat_binder_object>()),
        uapi::BINDER_TYPE_FD => Some(size_of::<uapi::binder_fd_object>()),
        uapi::BINDER_TYPE_FDA => Some(size_of::<uapi::binder_fd_array_object>()),
        uapi::BINDER_TYPE_PTR => Some(size_of::<uapi::binder_buffer_object>()),
        _ => None,
    }
}
