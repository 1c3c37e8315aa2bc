// SPDX-License-Identifier: GPL-2.0

//! Objects inside a transaction's payload (binders and handles, fds, fd arrays and
//! scatter-gather buffers), a payload builder that records where they are, and a reader of
//! the objects and buffers a transaction delivered.

use std::io;

use crate::{protocol::Txn, uapi, Mapping};

/// The kind of a `flat_binder_object`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `BINDER_TYPE_BINDER`: a strong reference to an object of the sender.
    Binder,
    /// `BINDER_TYPE_WEAK_BINDER`.
    WeakBinder,
    /// `BINDER_TYPE_HANDLE`: a strong reference through a handle.
    Handle,
    /// `BINDER_TYPE_WEAK_HANDLE`.
    WeakHandle,
}

impl ObjectKind {
    /// The `BINDER_TYPE_*` value.
    pub fn raw(self) -> u32 {
        match self {
            ObjectKind::Binder => uapi::BINDER_TYPE_BINDER,
            ObjectKind::WeakBinder => uapi::BINDER_TYPE_WEAK_BINDER,
            ObjectKind::Handle => uapi::BINDER_TYPE_HANDLE,
            ObjectKind::WeakHandle => uapi::BINDER_TYPE_WEAK_HANDLE,
        }
    }

    fn from_raw(raw: u32) -> Option<Self> {
        [
            ObjectKind::Binder,
            ObjectKind::WeakBinder,
            ObjectKind::Handle,
            ObjectKind::WeakHandle,
        ]
        .into_iter()
        .find(|kind| kind.raw() == raw)
    }
}

/// A `flat_binder_object`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatObject {
    pub kind: ObjectKind,
    /// The `FLAT_BINDER_FLAG_*` bits.
    pub flags: u32,
    /// The object's pointer (for the binder kinds) or its handle (for the handle kinds; the
    /// upper half of the word is 0).
    pub value: u64,
    pub cookie: u64,
}

/// The size of a `flat_binder_object` in a payload.
pub const FLAT_OBJECT_SIZE: usize = size_of::<uapi::flat_binder_object>();

impl FlatObject {
    /// An object of the sender: `ptr` and `cookie` identify it to its owner.
    pub fn binder(ptr: u64, cookie: u64) -> Self {
        Self {
            kind: ObjectKind::Binder,
            flags: 0,
            value: ptr,
            cookie,
        }
    }

    /// A strong reference through the sender's `handle`.
    pub fn handle(handle: u32) -> Self {
        Self {
            kind: ObjectKind::Handle,
            flags: 0,
            value: handle.into(),
            cookie: 0,
        }
    }

    /// The same object with kind `kind`.
    pub fn with_kind(self, kind: ObjectKind) -> Self {
        Self { kind, ..self }
    }

    /// The handle, for the handle kinds.
    pub fn handle_value(&self) -> u32 {
        self.value as u32
    }

    /// The object's bytes, as they go into a payload.
    pub fn to_bytes(&self) -> [u8; FLAT_OBJECT_SIZE] {
        let mut bytes = [0u8; FLAT_OBJECT_SIZE];
        bytes[0..4].copy_from_slice(&self.kind.raw().to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.value.to_ne_bytes());
        bytes[16..24].copy_from_slice(&self.cookie.to_ne_bytes());
        bytes
    }

    /// Decodes the object at the start of `bytes`; `None` if it is too short or not one of
    /// the four binder kinds.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let long = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        if bytes.len() < FLAT_OBJECT_SIZE {
            return None;
        }
        Some(Self {
            kind: ObjectKind::from_raw(word(0))?,
            flags: word(4),
            value: long(8),
            cookie: long(16),
        })
    }
}

/// `struct binder_fd_object` (`BINDER_TYPE_FD`): a file the driver carries to the receiver.
///
/// The sender names the file by its own fd number; the receiver reads its own number for the
/// same open file, installed when it read the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdObject {
    /// The fd number (the sender's when sent, the receiver's when delivered).
    pub fd: u32,
    /// Passed through untouched.
    pub cookie: u64,
}

/// The size of a `binder_fd_object`.
pub const FD_OBJECT_SIZE: usize = size_of::<uapi::binder_fd_object>();

/// `struct binder_buffer_object` (`BINDER_TYPE_PTR`): a scatter-gather buffer.
///
/// The driver copies the `length` bytes at the sender's address `buffer` into the receiver's
/// transaction buffer (after the offsets) and rewrites `buffer` to the receiver's address.
/// With [`uapi::BINDER_BUFFER_FLAG_HAS_PARENT`], it also writes that address into the
/// buffer of object number `parent` (an earlier `PTR`), at byte `parent_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferObject {
    /// The `BINDER_BUFFER_FLAG_*` bits.
    pub flags: u32,
    /// The buffer's user address.
    pub buffer: u64,
    /// The buffer's length in bytes.
    pub length: u64,
    /// The index (in the offsets) of the parent `PTR` object, with `HAS_PARENT`.
    pub parent: u64,
    /// Where in the parent's buffer the pointer to this buffer sits, with `HAS_PARENT`.
    pub parent_offset: u64,
}

/// The size of a `binder_buffer_object`.
pub const BUFFER_OBJECT_SIZE: usize = size_of::<uapi::binder_buffer_object>();

impl BufferObject {
    /// A buffer of `length` bytes at `buffer`, without a parent.
    pub fn new(buffer: u64, length: u64) -> Self {
        Self {
            flags: 0,
            buffer,
            length,
            parent: 0,
            parent_offset: 0,
        }
    }

    /// The same buffer, pointed to from object number `parent` at byte `parent_offset`.
    pub fn with_parent(self, parent: u64, parent_offset: u64) -> Self {
        Self {
            flags: self.flags | uapi::BINDER_BUFFER_FLAG_HAS_PARENT,
            parent,
            parent_offset,
            ..self
        }
    }

    /// The parent's object index and the offset in it, if the buffer has a parent.
    pub fn parent(&self) -> Option<(u64, u64)> {
        (self.flags & uapi::BINDER_BUFFER_FLAG_HAS_PARENT != 0)
            .then_some((self.parent, self.parent_offset))
    }
}

/// `struct binder_fd_array_object` (`BINDER_TYPE_FDA`): `num_fds` fd numbers (`u32`s) inside
/// the buffer of object number `parent` (a `PTR`), at byte `parent_offset`.
///
/// The driver carries each file and writes the receiver's fd numbers over the sender's in the
/// receiver's copy of the parent; it closes them when the receiver frees the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdArrayObject {
    /// How many fds.
    pub num_fds: u64,
    /// The index (in the offsets) of the `PTR` object holding the fds.
    pub parent: u64,
    /// Where in the parent's buffer the fds start.
    pub parent_offset: u64,
}

/// The size of a `binder_fd_array_object`.
pub const FD_ARRAY_OBJECT_SIZE: usize = size_of::<uapi::binder_fd_array_object>();

/// Any object a transaction can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinderObject {
    /// A binder or a handle (`flat_binder_object`).
    Flat(FlatObject),
    /// A file (`binder_fd_object`).
    Fd(FdObject),
    /// A scatter-gather buffer (`binder_buffer_object`).
    Buffer(BufferObject),
    /// Files inside a buffer (`binder_fd_array_object`).
    FdArray(FdArrayObject),
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl BinderObject {
    /// The `BINDER_TYPE_*` value.
    pub fn raw_type(&self) -> u32 {
        match self {
            BinderObject::Flat(flat) => flat.kind.raw(),
            BinderObject::Fd(_) => uapi::BINDER_TYPE_FD,
            BinderObject::Buffer(_) => uapi::BINDER_TYPE_PTR,
            BinderObject::FdArray(_) => uapi::BINDER_TYPE_FDA,
        }
    }

    /// The object's size in a payload.
    pub fn size(&self) -> usize {
        match self {
            BinderObject::Flat(_) => FLAT_OBJECT_SIZE,
            BinderObject::Fd(_) => FD_OBJECT_SIZE,
            BinderObject::Buffer(_) => BUFFER_OBJECT_SIZE,
            BinderObject::FdArray(_) => FD_ARRAY_OBJECT_SIZE,
        }
    }

    /// The object's bytes, as they go into a payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        if let BinderObject::Flat(flat) = self {
            return flat.to_bytes().to_vec();
        }
        let mut bytes = vec![0u8; self.size()];
        put_u32(&mut bytes, 0, self.raw_type());
        match *self {
            BinderObject::Fd(fd) => {
                put_u32(&mut bytes, 8, fd.fd);
                put_u64(&mut bytes, 16, fd.cookie);
            }
            BinderObject::Buffer(b) => {
                put_u32(&mut bytes, 4, b.flags);
                put_u64(&mut bytes, 8, b.buffer);
                put_u64(&mut bytes, 16, b.length);
                put_u64(&mut bytes, 24, b.parent);
                put_u64(&mut bytes, 32, b.parent_offset);
            }
            BinderObject::FdArray(a) => {
                put_u64(&mut bytes, 8, a.num_fds);
                put_u64(&mut bytes, 16, a.parent);
                put_u64(&mut bytes, 24, a.parent_offset);
            }
            BinderObject::Flat(_) => {}
        }
        bytes
    }

    /// Decodes the object at the start of `bytes`; `None` if its type is unknown or `bytes`
    /// is too short for it.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let object = match get_u32(bytes, 0)? {
            uapi::BINDER_TYPE_FD => BinderObject::Fd(FdObject {
                fd: get_u32(bytes, 8)?,
                cookie: get_u64(bytes, 16)?,
            }),
            uapi::BINDER_TYPE_PTR => BinderObject::Buffer(BufferObject {
                flags: get_u32(bytes, 4)?,
                buffer: get_u64(bytes, 8)?,
                length: get_u64(bytes, 16)?,
                parent: get_u64(bytes, 24)?,
                parent_offset: get_u64(bytes, 32)?,
            }),
            uapi::BINDER_TYPE_FDA => BinderObject::FdArray(FdArrayObject {
                num_fds: get_u64(bytes, 8)?,
                parent: get_u64(bytes, 16)?,
                parent_offset: get_u64(bytes, 24)?,
            }),
            _ => BinderObject::Flat(FlatObject::from_bytes(bytes)?),
        };
        Some(object)
    }
}

impl From<FlatObject> for BinderObject {
    fn from(object: FlatObject) -> Self {
        BinderObject::Flat(object)
    }
}

impl From<FdObject> for BinderObject {
    fn from(object: FdObject) -> Self {
        BinderObject::Fd(object)
    }
}

impl From<BufferObject> for BinderObject {
    fn from(object: BufferObject) -> Self {
        BinderObject::Buffer(object)
    }
}

impl From<FdArrayObject> for BinderObject {
    fn from(object: FdArrayObject) -> Self {
        BinderObject::FdArray(object)
    }
}

/// The room a scatter-gather buffer of `length` bytes takes: the driver places each buffer at
/// an 8-byte boundary.
pub fn sg_room(length: u64) -> u64 {
    length.saturating_add(7) & !7
}

/// A transaction payload: data with objects in it, the offsets of the objects, and the
/// scatter-gather buffers its `PTR` objects point to.
///
/// The buffers added with [`buffer`](Self::buffer) and [`child_buffer`](Self::child_buffer)
/// are owned by the payload, and their `PTR` objects point at them; a clone owns copies and
/// points at those. A payload with a `PTR` object (or an explicit
/// [`with_buffers_size`](Self::with_buffers_size)) goes as `BC_TRANSACTION_SG`/`BC_REPLY_SG`
/// (see [`Commands::payload`](crate::Commands::payload)).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Payload {
    pub data: Vec<u8>,
    pub offsets: Vec<u64>,
    /// The buffers this payload owns, each with the data offset of the `PTR` object that
    /// points at it. A boxed slice does not move when the payload does.
    buffers: Vec<(usize, Box<[u8]>)>,
    /// The room the `PTR` objects need ([`sg_room`] of each length), if there is one.
    sg_room: Option<u64>,
    /// A `buffers_size` that replaces the computed one.
    buffers_size: Option<u64>,
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        let mut data = self.data.clone();
        let buffers = self
            .buffers
            .iter()
            .map(|(at, bytes)| {
                let copy = bytes.clone();
                put_u64(&mut data, at + 8, copy.as_ptr() as u64);
                (*at, copy)
            })
            .collect();
        Self {
            data,
            offsets: self.offsets.clone(),
            buffers,
            sg_room: self.sg_room,
            buffers_size: self.buffers_size,
        }
    }
}

impl Payload {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends plain bytes.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.data.extend_from_slice(bytes);
        self
    }

    /// Appends `object` and records its offset.
    pub fn object(self, object: FlatObject) -> Self {
        self.any(object)
    }

    /// Appends any object, with whatever fields it has (right or, on purpose, wrong), and
    /// records its offset. A `PTR` object adds its length to the computed `buffers_size`.
    pub fn any(mut self, object: impl Into<BinderObject>) -> Self {
        let object = object.into();
        if let BinderObject::Buffer(buffer) = object {
            let room = self.sg_room.unwrap_or(0);
            self.sg_room = Some(room.saturating_add(sg_room(buffer.length)));
        }
        self.offsets.push(self.data.len() as u64);
        self.data.extend_from_slice(&object.to_bytes());
        self
    }

    /// Appends a `BINDER_TYPE_FD` object for this process's `fd`.
    pub fn fd(self, fd: i32) -> Self {
        self.any(FdObject {
            fd: fd as u32,
            cookie: 0,
        })
    }

    /// Appends a `PTR` object for a copy of `bytes`, without a parent.
    pub fn buffer(self, bytes: &[u8]) -> Self {
        self.owned_buffer(bytes, None)
    }

    /// Appends a `PTR` object for a copy of `bytes` that object number `parent` (an earlier
    /// `PTR`) points to at byte `parent_offset` of its buffer.
    pub fn child_buffer(self, bytes: &[u8], parent: usize, parent_offset: u64) -> Self {
        self.owned_buffer(bytes, Some((parent as u64, parent_offset)))
    }

    fn owned_buffer(mut self, bytes: &[u8], parent: Option<(u64, u64)>) -> Self {
        let copy: Box<[u8]> = bytes.into();
        let mut object = BufferObject::new(copy.as_ptr() as u64, copy.len() as u64);
        if let Some((parent, offset)) = parent {
            object = object.with_parent(parent, offset);
        }
        self.buffers.push((self.data.len(), copy));
        self.any(object)
    }

    /// Appends an `FDA` object: `num_fds` fds at byte `parent_offset` of the buffer of object
    /// number `parent` (which the caller filled with fd numbers).
    pub fn fd_array(self, parent: usize, parent_offset: u64, num_fds: u64) -> Self {
        self.any(FdArrayObject {
            num_fds,
            parent: parent as u64,
            parent_offset,
        })
    }

    /// Sends the payload with `buffers_size` as given instead of as computed (also without any
    /// `PTR` object, which makes it a scatter-gather transaction).
    pub fn with_buffers_size(mut self, buffers_size: u64) -> Self {
        self.buffers_size = Some(buffers_size);
        self
    }

    /// The number the next object appended gets: its index in the offsets, as a parent.
    pub fn next_index(&self) -> usize {
        self.offsets.len()
    }

    /// The `buffers_size` of a scatter-gather transaction, or `None` for a plain one.
    pub fn buffers_size(&self) -> Option<u64> {
        self.buffers_size.or(self.sg_room)
    }

    /// The offsets as the bytes the driver reads.
    pub fn offsets_bytes(&self) -> Vec<u8> {
        self.offsets.iter().flat_map(|o| o.to_ne_bytes()).collect()
    }
}

/// A delivered transaction or reply, read through the receiver's mapping: its data, its
/// objects, and the buffers its `PTR` objects point to.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    mapping: &'a Mapping,
    txn: &'a Txn,
}

fn outside(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what} lies outside the mapping"))
}

impl<'a> Received<'a> {
    /// The transaction `txn` delivered into `mapping`.
    pub fn new(mapping: &'a Mapping, txn: &'a Txn) -> Self {
        Self { mapping, txn }
    }

    /// The payload's data.
    pub fn data(&self) -> io::Result<&'a [u8]> {
        self.mapping
            .bytes_at(self.txn.buffer, self.txn.data_size)
            .ok_or_else(|| outside("the data"))
    }

    /// The object offsets.
    pub fn offsets(&self) -> io::Result<Vec<u64>> {
        if self.txn.offsets_size == 0 {
            return Ok(Vec::new());
        }
        let bytes = self
            .mapping
            .bytes_at(self.txn.offsets, self.txn.offsets_size)
            .ok_or_else(|| outside("the offsets"))?;
        Ok(bytes
            .chunks_exact(8)
            .filter_map(|c| get_u64(c, 0))
            .collect())
    }

    /// The objects, in the order of the offsets.
    pub fn objects(&self) -> io::Result<Vec<BinderObject>> {
        let data = self.data()?;
        self.offsets()?
            .into_iter()
            .map(|offset| {
                data.get(offset as usize..)
                    .and_then(BinderObject::from_bytes)
                    .ok_or_else(|| io::Error::other(format!("no object at data offset {offset}")))
            })
            .collect()
    }

    /// Object number `index`, which must be a `PTR`.
    pub fn buffer_object(&self, index: u64) -> io::Result<BufferObject> {
        match self.objects()?.get(index as usize) {
            Some(BinderObject::Buffer(buffer)) => Ok(*buffer),
            other => Err(io::Error::other(format!(
                "object {index} is not a buffer: {other:?}"
            ))),
        }
    }

    /// The bytes a delivered `PTR` object points to.
    pub fn buffer(&self, object: &BufferObject) -> io::Result<&'a [u8]> {
        self.mapping
            .bytes_at(object.buffer, object.length)
            .ok_or_else(|| outside(format!("buffer {object:?}")))
    }

    /// The receiver's fd numbers an `FDA` object stands for, read from its parent's buffer.
    pub fn fd_array(&self, array: &FdArrayObject) -> io::Result<Vec<i32>> {
        let parent = self.buffer_object(array.parent)?;
        let len = array
            .num_fds
            .checked_mul(4)
            .ok_or_else(|| io::Error::other("num_fds overflows"))?;
        let at = parent
            .buffer
            .checked_add(array.parent_offset)
            .ok_or_else(|| io::Error::other("parent_offset overflows"))?;
        let bytes = self
            .mapping
            .bytes_at(at, len)
            .ok_or_else(|| outside(format!("fd array {array:?}")))?;
        Ok(bytes
            .chunks_exact(4)
            .filter_map(|c| get_u32(c, 0))
            .map(|fd| fd as i32)
            .collect())
    }

    /// Every fd the transaction brought, in the order of its objects: each `FD` object's, then
    /// each `FDA`'s, in place.
    pub fn fds(&self) -> io::Result<Vec<i32>> {
        let mut fds = Vec::new();
        for object in self.objects()? {
            match object {
                BinderObject::Fd(fd) => fds.push(fd.fd as i32),
                BinderObject::FdArray(array) => fds.extend(self.fd_array(&array)?),
                _ => {}
            }
        }
        Ok(fds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_object_round_trips() {
        let object = FlatObject::binder(0x1234, 0x5678).with_kind(ObjectKind::WeakBinder);
        assert_eq!(FlatObject::from_bytes(&object.to_bytes()), Some(object));
        assert_eq!(FlatObject::from_bytes(&[0u8; 8]), None);
    }

    #[test]
    fn payload_records_object_offsets() {
        let payload = Payload::new()
            .bytes(&[1, 2, 3, 4])
            .object(FlatObject::handle(7))
            .object(FlatObject::binder(1, 2));
        assert_eq!(payload.offsets, vec![4, 4 + FLAT_OBJECT_SIZE as u64]);
        assert_eq!(payload.data.len(), 4 + 2 * FLAT_OBJECT_SIZE);
        assert_eq!(payload.offsets_bytes().len(), 16);
    }

    #[test]
    fn object_layouts_match_the_uapi() {
        use core::mem::offset_of;
        assert_eq!(offset_of!(uapi::binder_fd_object, cookie), 16);
        assert_eq!(offset_of!(uapi::binder_buffer_object, buffer), 8);
        assert_eq!(offset_of!(uapi::binder_buffer_object, parent_offset), 32);
        assert_eq!(offset_of!(uapi::binder_fd_array_object, num_fds), 8);
        assert_eq!(offset_of!(uapi::binder_fd_array_object, parent_offset), 24);
        let fd = BinderObject::Fd(FdObject { fd: 7, cookie: 9 });
        assert_eq!(fd.to_bytes().len(), 24);
        assert_eq!(&fd.to_bytes()[8..12], &7u32.to_ne_bytes());
    }

    #[test]
    fn every_object_kind_round_trips() {
        let objects = [
            BinderObject::Flat(FlatObject::handle(3)),
            BinderObject::Fd(FdObject { fd: 4, cookie: 1 }),
            BinderObject::Buffer(BufferObject::new(0x1000, 24).with_parent(1, 8)),
            BinderObject::FdArray(FdArrayObject {
                num_fds: 2,
                parent: 1,
                parent_offset: 16,
            }),
        ];
        for object in objects {
            let bytes = object.to_bytes();
            assert_eq!(bytes.len(), object.size());
            assert_eq!(BinderObject::from_bytes(&bytes), Some(object));
            assert_eq!(BinderObject::from_bytes(&bytes[..bytes.len() - 1]), None);
        }
        assert_eq!(BinderObject::from_bytes(&[0x55; 40]), None);
    }

    #[test]
    fn owned_buffers_are_pointed_at_and_counted() {
        let payload = Payload::new()
            .bytes(&[0; 8])
            .buffer(&[1; 20])
            .child_buffer(&[2; 8], 0, 8)
            .fd(5);
        assert_eq!(payload.offsets, vec![8, 48, 88]);
        assert_eq!(payload.buffers_size(), Some(24 + 8));
        let Some(BinderObject::Buffer(root)) = BinderObject::from_bytes(&payload.data[8..]) else {
            panic!("no root buffer");
        };
        assert_eq!(root.parent(), None);
        // SAFETY: The payload owns the 20 bytes its root object points to.
        let bytes = unsafe { std::slice::from_raw_parts(root.buffer as *const u8, 20) };
        assert_eq!(bytes, &[1; 20]);
        let Some(BinderObject::Buffer(child)) = BinderObject::from_bytes(&payload.data[48..])
        else {
            panic!("no child buffer");
        };
        assert_eq!(child.parent(), Some((0, 8)));
        let copy = payload.clone();
        let Some(BinderObject::Buffer(copied)) = BinderObject::from_bytes(&copy.data[8..]) else {
            panic!("no root buffer in the clone");
        };
        assert_ne!(copied.buffer, root.buffer, "a clone points at its own copy");
        assert_eq!(Payload::new().buffers_size(), None);
        assert_eq!(Payload::new().with_buffers_size(8).buffers_size(), Some(8));
    }
}
