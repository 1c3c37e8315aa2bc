// SPDX-License-Identifier: GPL-2.0

//! Binder objects inside a transaction's payload (`struct flat_binder_object`), and a
//! payload builder that records where they are.

use crate::uapi;

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

/// A transaction payload: data with binder objects in it, and the offsets of the objects.
#[derive(Clone, Debug, Default)]
pub struct Payload {
    pub data: Vec<u8>,
    pub offsets: Vec<u64>,
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
    pub fn object(mut self, object: FlatObject) -> Self {
        self.offsets.push(self.data.len() as u64);
        self.data.extend_from_slice(&object.to_bytes());
        self
    }

    /// The offsets as the bytes the driver reads.
    pub fn offsets_bytes(&self) -> Vec<u8> {
        self.offsets.iter().flat_map(|o| o.to_ne_bytes()).collect()
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
}
