// SPDX-License-Identifier: GPL-2.0

//! Parcels: the payload format of Android's binder userspace (libbinder's `Parcel`), which
//! AIDL interfaces, the service manager and other binder libraries such as rsbinder speak.
//!
//! A parcel is a run of little-endian values, each padded to 4 bytes, plus a table of the
//! byte offsets where binder objects (`flat_binder_object`) sit, so the driver can translate
//! them between processes. What this module writes and reads:
//!
//! | value | encoding |
//! | --- | --- |
//! | `i32`, `u32`, `bool` | 4 bytes (`bool` as 0 or 1) |
//! | string | `String16`: length in UTF-16 units (`-1` for null), the units, a NUL unit, padding |
//! | string list | count (`-1` for null), then each string |
//! | binder | a 24-byte `flat_binder_object` (listed in the offsets unless null; a local binder accepts fds), then a 4-byte stability level |
//! | file descriptor | a 24-byte `BINDER_TYPE_FD` object (listed in the offsets), the fd in the handle field, the cookie 1 if the receiver owns it |
//! | `ParcelFileDescriptor` | present flag (0: null, then nothing), a 0 "no comm channel" word, the file descriptor |
//! | interface token | strict-mode policy, work-source uid, the `"SYST"` header, the descriptor string |
//! | AIDL reply status | exception code (0: none); otherwise a message string and a 0 stack trace size |

use std::{
    fmt,
    os::fd::{AsRawFd, OwnedFd},
    sync::Arc,
};

use crate::uapi;

/// `FIRST_CALL_TRANSACTION`: AIDL numbers an interface's methods from here, in order.
pub const FIRST_CALL_TRANSACTION: u32 = 1;

/// libbinder's `INTERFACE_TRANSACTION` (`'_NTF'`): "what is your interface descriptor?",
/// answered with the descriptor string and no status.
pub const INTERFACE_TRANSACTION: u32 = pack_chars(b"_NTF");

/// libbinder's `PING_TRANSACTION` (`'_PNG'`): answered with an empty reply.
pub const PING_TRANSACTION: u32 = pack_chars(b"_PNG");

/// libbinder's `DUMP_TRANSACTION` (`'_DMP'`): "write your state into this fd" (`dumpsys`); the
/// call carries the fd, then an argument count and the argument strings. The reply is empty.
pub const DUMP_TRANSACTION: u32 = pack_chars(b"_DMP");

/// The header word of an interface token on Android 11 and later (`'SYST'`).
pub const INTERFACE_HEADER: u32 = pack_chars(b"SYST");

/// The strict-mode word an interface token starts with (`STRICT_MODE_PENALTY_GATHER`).
const STRICT_MODE_PENALTY_GATHER: u32 = 1 << 31;

/// The work-source word of an interface token: no work source.
const UNSET_WORK_SOURCE: i32 = -1;

/// The stability level a binder object is followed by: `SYSTEM`, as libbinder gives the
/// objects of system processes, and which its clients accept.
pub const STABILITY_SYSTEM: i32 = 0b1100;

/// AIDL exception codes of a reply's status (`binder::Status`).
pub mod exception {
    /// No exception: the results follow.
    pub const NONE: i32 = 0;
    /// `EX_ILLEGAL_ARGUMENT`.
    pub const ILLEGAL_ARGUMENT: i32 = -3;
    /// `EX_ILLEGAL_STATE`.
    pub const ILLEGAL_STATE: i32 = -5;
    /// `EX_UNSUPPORTED_OPERATION`.
    pub const UNSUPPORTED_OPERATION: i32 = -7;
    /// `EX_SERVICE_SPECIFIC`: an error code follows the stack trace size.
    pub const SERVICE_SPECIFIC: i32 = -8;
    /// `EX_HAS_REPLY_HEADER`: a sized header to skip, then the results.
    pub const HAS_REPLY_HEADER: i32 = -128;
}

/// libbinder's status code for a transaction code a service does not know (`-EBADMSG`), sent
/// as a `TF_STATUS_CODE` reply.
pub const UNKNOWN_TRANSACTION: i32 = -libc::EBADMSG;

const fn pack_chars(c: &[u8; 4]) -> u32 {
    (c[0] as u32) << 24 | (c[1] as u32) << 16 | (c[2] as u32) << 8 | c[3] as u32
}

/// A binder object in a parcel, as this process sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// One of this process's own nodes, named by the pointer and cookie it chose.
    Binder {
        /// The node's pointer (`flat_binder_object.binder`).
        ptr: u64,
        /// The node's cookie.
        cookie: u64,
    },
    /// A reference to another process's node.
    Handle(u32),
    /// No binder (AIDL's null `IBinder`).
    Null,
}

/// A parcel being written.
///
/// It may own some of the fds it carries ([`write_owned_fd`](Self::write_owned_fd)): they stay
/// open as long as the parcel (or a clone of it) lives, which is until after it was sent.
#[derive(Clone, Debug, Default)]
pub struct Parcel {
    data: Vec<u8>,
    offsets: Vec<u64>,
    /// The fds the parcel keeps open until it is dropped.
    fds: Vec<Arc<OwnedFd>>,
}

/// Two parcels are equal when their bytes and offsets are: the fds a parcel owns are the ones
/// its bytes name.
impl PartialEq for Parcel {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data && self.offsets == other.offsets
    }
}

impl Eq for Parcel {}

impl Parcel {
    /// An empty parcel.
    pub fn new() -> Self {
        Self::default()
    }

    /// The payload bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The offsets of the binder objects in the payload.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// Appends `bytes` and pads them with zeros to a multiple of 4.
    fn put_padded(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        let padded = bytes.len().next_multiple_of(4);
        self.data.resize(self.data.len() + padded - bytes.len(), 0);
    }

    /// Appends an `i32`.
    pub fn write_i32(&mut self, value: i32) -> &mut Self {
        self.put_padded(&value.to_le_bytes());
        self
    }

    /// Appends a `u32`.
    pub fn write_u32(&mut self, value: u32) -> &mut Self {
        self.put_padded(&value.to_le_bytes());
        self
    }

    /// Appends a `bool` as a 4-byte 0 or 1.
    pub fn write_bool(&mut self, value: bool) -> &mut Self {
        self.write_i32(value.into())
    }

    /// Appends a string as `String16` (`None` is the null string).
    pub fn write_str(&mut self, value: Option<&str>) -> &mut Self {
        let Some(value) = value else {
            return self.write_i32(-1);
        };
        let units: Vec<u16> = value.encode_utf16().collect();
        self.write_i32(units.len() as i32);
        let mut bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        bytes.extend_from_slice(&[0, 0]);
        self.put_padded(&bytes);
        self
    }

    /// Appends a list of strings (AIDL's `String[]`).
    pub fn write_str_list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut Self {
        self.write_i32(values.len() as i32);
        for value in values {
            self.write_str(Some(value.as_ref()));
        }
        self
    }

    /// Appends the interface token that starts every AIDL call: the callee checks the
    /// descriptor before it reads the arguments.
    pub fn write_interface_token(&mut self, descriptor: &str) -> &mut Self {
        self.write_u32(STRICT_MODE_PENALTY_GATHER)
            .write_i32(UNSET_WORK_SOURCE)
            .write_u32(INTERFACE_HEADER)
            .write_str(Some(descriptor))
    }

    /// Appends a binder object and its stability level.
    pub fn write_object(&mut self, object: Object) -> &mut Self {
        let (type_, value, cookie) = match object {
            Object::Binder { ptr, cookie } => (uapi::BINDER_TYPE_BINDER, ptr, cookie),
            Object::Handle(handle) => (uapi::BINDER_TYPE_HANDLE, handle.into(), 0),
            Object::Null => (uapi::BINDER_TYPE_BINDER, 0, 0),
        };
        if object != Object::Null {
            self.offsets.push(self.data.len() as u64);
        }
        // As libbinder does, a process's own binder accepts fds in calls to it.
        let flags = match object {
            Object::Binder { .. } => uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS,
            _ => 0,
        };
        self.write_u32(type_).write_u32(flags);
        self.data.extend_from_slice(&value.to_le_bytes());
        self.data.extend_from_slice(&cookie.to_le_bytes());
        let stability = if object == Object::Null {
            0
        } else {
            STABILITY_SYSTEM
        };
        self.write_i32(stability)
    }

    /// Appends a file descriptor: the driver carries the open file to the receiver, which
    /// gets its own fd for it. `take_ownership` sets the cookie to 1, as libbinder does for an
    /// fd the receiver is to close.
    pub fn write_fd(&mut self, fd: i32, take_ownership: bool) -> &mut Self {
        self.offsets.push(self.data.len() as u64);
        self.write_u32(uapi::BINDER_TYPE_FD).write_u32(0);
        self.data
            .extend_from_slice(&u64::from(fd as u32).to_le_bytes());
        self.data
            .extend_from_slice(&u64::from(take_ownership).to_le_bytes());
        self
    }

    /// Appends a file descriptor the parcel owns: the fd stays open until the parcel is dropped,
    /// after it was sent, so a service can return a file it made for the reply (libbinder's
    /// `writeDupFileDescriptor`, with the dup left to the caller). The receiver owns its fd.
    pub fn write_owned_fd(&mut self, fd: OwnedFd) -> &mut Self {
        self.write_fd(fd.as_raw_fd(), true);
        self.fds.push(Arc::new(fd));
        self
    }

    /// Appends an AIDL `ParcelFileDescriptor` (what `android.os.ParcelFileDescriptor`,
    /// libbinder's and rsbinder's write): present, no comm channel, then `fd`, owned by the
    /// parcel as with [`write_owned_fd`](Self::write_owned_fd).
    pub fn write_parcel_fd(&mut self, fd: OwnedFd) -> &mut Self {
        self.write_i32(1).write_i32(0).write_owned_fd(fd)
    }

    /// Appends a non-null structured parcelable (or union) as AIDL does: the "present" flag 1,
    /// then what `body` writes, preceded by its size in bytes (the size word included).
    pub fn write_parcelable(&mut self, body: impl FnOnce(&mut Self)) -> &mut Self {
        self.write_i32(1);
        let start = self.data.len();
        self.write_i32(0);
        body(self);
        let size = (self.data.len() - start) as i32;
        self.data[start..start + 4].copy_from_slice(&size.to_le_bytes());
        self
    }

    /// Appends the status of a successful AIDL call; the results follow it.
    pub fn write_ok_status(&mut self) -> &mut Self {
        self.write_i32(exception::NONE)
    }

    /// Appends the status of a failed AIDL call: `code` (an [`exception`]) and a message.
    pub fn write_exception(&mut self, code: i32, message: &str) -> &mut Self {
        self.write_i32(code).write_str(Some(message)).write_i32(0);
        if code == exception::SERVICE_SPECIFIC {
            self.write_i32(0);
        }
        self
    }
}

/// What went wrong reading a parcel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParcelError {
    /// The parcel ends before the value.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where.
        at: usize,
    },
    /// A value is malformed.
    Invalid(String),
    /// An AIDL call failed: the reply carries an exception.
    Exception {
        /// The exception code.
        code: i32,
        /// Its message.
        message: String,
    },
}

impl fmt::Display for ParcelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, at } => write!(f, "the parcel ends in a {what} at byte {at}"),
            Self::Invalid(why) => write!(f, "malformed parcel: {why}"),
            Self::Exception { code, message } => {
                write!(f, "the call failed with exception {code}: {message}")
            }
        }
    }
}

impl std::error::Error for ParcelError {}

impl From<ParcelError> for std::io::Error {
    fn from(e: ParcelError) -> Self {
        std::io::Error::other(e)
    }
}

/// Reads a parcel's values in order.
#[derive(Clone, Debug)]
pub struct ParcelReader<'a> {
    data: &'a [u8],
    offsets: Vec<u64>,
    pos: usize,
}

impl<'a> ParcelReader<'a> {
    /// A reader of `data`, whose binder objects are at `offsets`.
    pub fn new(data: &'a [u8], offsets: &[u64]) -> Self {
        Self {
            data,
            offsets: offsets.to_vec(),
            pos: 0,
        }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Takes `len` bytes plus their padding to 4.
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ParcelError> {
        let truncated = ParcelError::Truncated { what, at: self.pos };
        let end = self.pos.checked_add(len).ok_or(truncated.clone())?;
        let bytes = self.data.get(self.pos..end).ok_or(truncated)?;
        self.pos = end.next_multiple_of(4).min(self.data.len().max(end));
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ParcelError> {
        let bytes = self.take(N, what)?;
        bytes
            .try_into()
            .map_err(|_| ParcelError::Truncated { what, at: self.pos })
    }

    /// Reads an `i32`.
    pub fn read_i32(&mut self) -> Result<i32, ParcelError> {
        Ok(i32::from_le_bytes(self.take_array("i32")?))
    }

    /// Reads a `u32`.
    pub fn read_u32(&mut self) -> Result<u32, ParcelError> {
        Ok(u32::from_le_bytes(self.take_array("u32")?))
    }

    /// Reads a `bool`.
    pub fn read_bool(&mut self) -> Result<bool, ParcelError> {
        Ok(self.read_i32()? != 0)
    }

    /// Reads a `String16` (`None` for the null string).
    pub fn read_str(&mut self) -> Result<Option<String>, ParcelError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len)
            .map_err(|_| ParcelError::Invalid(format!("string length {len}")))?;
        let bytes = self.take(len.saturating_add(1).saturating_mul(2), "string")?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        if units.last() != Some(&0) {
            return Err(ParcelError::Invalid("a string without its NUL".into()));
        }
        String::from_utf16(&units[..len])
            .map(Some)
            .map_err(|_| ParcelError::Invalid("a string that is not UTF-16".into()))
    }

    /// Reads a non-null `String16`.
    pub fn read_string(&mut self) -> Result<String, ParcelError> {
        self.read_str()?
            .ok_or_else(|| ParcelError::Invalid("a null string where one is required".into()))
    }

    /// Reads a list of strings (`None` for the null list).
    pub fn read_str_list(&mut self) -> Result<Option<Vec<String>>, ParcelError> {
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(None);
        }
        let count = usize::try_from(count)
            .map_err(|_| ParcelError::Invalid(format!("list length {count}")))?;
        // Each entry takes at least 4 bytes: a hostile count cannot make us allocate much.
        if count > self.remaining() / 4 {
            return Err(ParcelError::Truncated {
                what: "string list",
                at: self.pos,
            });
        }
        (0..count)
            .map(|_| self.read_string())
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Reads an interface token and returns its descriptor.
    pub fn read_interface_token(&mut self) -> Result<String, ParcelError> {
        let _strict_mode = self.read_u32()?;
        let _work_source = self.read_i32()?;
        let header = self.read_u32()?;
        if header != INTERFACE_HEADER {
            return Err(ParcelError::Invalid(format!(
                "interface token header {header:#x}, not 'SYST'"
            )));
        }
        self.read_string()
    }

    /// Reads an interface token and checks that it names `descriptor`.
    pub fn expect_interface(&mut self, descriptor: &str) -> Result<(), ParcelError> {
        let found = self.read_interface_token()?;
        if found == descriptor {
            Ok(())
        } else {
            Err(ParcelError::Invalid(format!(
                "the call is for interface {found:?}, not {descriptor:?}"
            )))
        }
    }

    /// Reads a binder object and its stability level.
    pub fn read_object(&mut self) -> Result<Object, ParcelError> {
        let at = self.pos as u64;
        let type_ = self.read_u32()?;
        let _flags = self.read_u32()?;
        let value = u64::from_le_bytes(self.take_array("binder object")?);
        let cookie = u64::from_le_bytes(self.take_array("binder object")?);
        let _stability = self.read_i32()?;
        let listed = self.offsets.contains(&at);
        match type_ {
            uapi::BINDER_TYPE_BINDER | uapi::BINDER_TYPE_WEAK_BINDER if value == 0 => {
                Ok(Object::Null)
            }
            _ if !listed => Err(ParcelError::Invalid(format!(
                "a binder object at byte {at} that the offsets do not list"
            ))),
            uapi::BINDER_TYPE_BINDER | uapi::BINDER_TYPE_WEAK_BINDER => {
                Ok(Object::Binder { ptr: value, cookie })
            }
            uapi::BINDER_TYPE_HANDLE | uapi::BINDER_TYPE_WEAK_HANDLE => {
                let handle = u32::try_from(value)
                    .map_err(|_| ParcelError::Invalid(format!("handle {value:#x}")))?;
                Ok(Object::Handle(handle))
            }
            other => Err(ParcelError::Invalid(format!(
                "an object of type {other:#x} where a binder belongs"
            ))),
        }
    }

    /// Reads a file descriptor: the receiver's fd number, which the receiver now owns (the
    /// driver installed it, close-on-exec, when the transaction was read).
    pub fn read_fd(&mut self) -> Result<i32, ParcelError> {
        let at = self.pos as u64;
        let type_ = self.read_u32()?;
        let _flags = self.read_u32()?;
        let value = u64::from_le_bytes(self.take_array("fd object")?);
        let _cookie = u64::from_le_bytes(self.take_array("fd object")?);
        if type_ != uapi::BINDER_TYPE_FD {
            return Err(ParcelError::Invalid(format!(
                "an object of type {type_:#x} where an fd belongs"
            )));
        }
        if !self.offsets.contains(&at) {
            return Err(ParcelError::Invalid(format!(
                "an fd object at byte {at} that the offsets do not list"
            )));
        }
        Ok(value as u32 as i32)
    }

    /// Reads an AIDL `ParcelFileDescriptor`: `None` for the null one, else the receiver's fd
    /// number, which the receiver owns (as with [`read_fd`](Self::read_fd)). One with a comm
    /// channel (a second fd, Java's "reliable" descriptors) is refused.
    pub fn read_parcel_fd(&mut self) -> Result<Option<i32>, ParcelError> {
        match self.read_i32()? {
            0 => return Ok(None),
            1 => {}
            other => {
                return Err(ParcelError::Invalid(format!(
                    "ParcelFileDescriptor present flag {other}"
                )))
            }
        }
        if self.read_i32()? != 0 {
            return Err(ParcelError::Invalid(
                "a ParcelFileDescriptor with a comm channel".into(),
            ));
        }
        self.read_fd().map(Some)
    }

    /// Reads an AIDL reply's status: `Ok` when the results follow, the exception otherwise.
    pub fn read_status(&mut self) -> Result<(), ParcelError> {
        let mut code = self.read_i32()?;
        if code == exception::HAS_REPLY_HEADER {
            // A sized header (counting its own size word) to skip; then the results.
            let start = self.pos;
            let size = self.read_i32()?;
            let size = usize::try_from(size)
                .map_err(|_| ParcelError::Invalid(format!("reply header size {size}")))?;
            self.pos = start.saturating_add(size).min(self.data.len());
            code = exception::NONE;
        }
        if code == exception::NONE {
            return Ok(());
        }
        let message = self.read_str()?.unwrap_or_default();
        Err(ParcelError::Exception { code, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_little_endian_words() {
        let mut p = Parcel::new();
        p.write_i32(-2).write_u32(7).write_bool(true);
        assert_eq!(p.data(), &[0xfe, 0xff, 0xff, 0xff, 7, 0, 0, 0, 1, 0, 0, 0]);
        let mut r = ParcelReader::new(p.data(), p.offsets());
        assert_eq!(r.read_i32(), Ok(-2));
        assert_eq!(r.read_u32(), Ok(7));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.remaining(), 0);
        assert!(matches!(r.read_i32(), Err(ParcelError::Truncated { .. })));
    }

    #[test]
    fn strings_are_string16_with_nul_and_padding() {
        let mut p = Parcel::new();
        p.write_str(Some("ab"))
            .write_str(Some("abc"))
            .write_str(None);
        // "ab": length 2, then a, b, NUL (6 bytes) padded to 8.
        assert_eq!(&p.data()[..12], &[2, 0, 0, 0, b'a', 0, b'b', 0, 0, 0, 0, 0]);
        // "abc": length 3, then 4 units, exactly 8 bytes.
        assert_eq!(p.data().len(), 12 + 12 + 4);
        let mut r = ParcelReader::new(p.data(), &[]);
        assert_eq!(r.read_str(), Ok(Some("ab".into())));
        assert_eq!(r.read_str(), Ok(Some("abc".into())));
        assert_eq!(r.read_str(), Ok(None));
    }

    #[test]
    fn non_ascii_strings_round_trip() {
        let mut p = Parcel::new();
        p.write_str_list(&["grüße", "日本", "🦀"]);
        let mut r = ParcelReader::new(p.data(), &[]);
        assert_eq!(
            r.read_str_list(),
            Ok(Some(vec!["grüße".into(), "日本".into(), "🦀".into()]))
        );
    }

    #[test]
    fn a_hostile_list_length_is_refused() {
        let mut p = Parcel::new();
        p.write_i32(i32::MAX);
        let mut r = ParcelReader::new(p.data(), &[]);
        assert!(r.read_str_list().is_err());
        let mut p = Parcel::new();
        p.write_i32(1 << 30);
        let mut r = ParcelReader::new(p.data(), &[]);
        assert!(r.read_str().is_err());
    }

    #[test]
    fn interface_token_matches_libbinder() {
        let mut p = Parcel::new();
        p.write_interface_token("a.B");
        let d = p.data();
        assert_eq!(&d[..4], &0x8000_0000u32.to_le_bytes());
        assert_eq!(&d[4..8], &(-1i32).to_le_bytes());
        assert_eq!(&d[8..12], b"TSYS", "'SYST' as a little-endian word");
        let mut r = ParcelReader::new(d, &[]);
        assert_eq!(r.read_interface_token(), Ok("a.B".into()));
        let mut r = ParcelReader::new(d, &[]);
        assert!(r.expect_interface("a.C").is_err());
    }

    #[test]
    fn objects_are_listed_in_the_offsets_and_followed_by_stability() {
        let mut p = Parcel::new();
        p.write_i32(5)
            .write_object(Object::Handle(3))
            .write_object(Object::Null)
            .write_object(Object::Binder {
                ptr: 0x10,
                cookie: 0x20,
            });
        assert_eq!(p.offsets(), &[4, 4 + 28 + 28]);
        assert_eq!(p.data().len(), 4 + 3 * 28);
        assert_eq!(&p.data()[4..8], &uapi::BINDER_TYPE_HANDLE.to_le_bytes());
        assert_eq!(&p.data()[28..32], &STABILITY_SYSTEM.to_le_bytes());
        let mut r = ParcelReader::new(p.data(), p.offsets());
        assert_eq!(r.read_i32(), Ok(5));
        assert_eq!(r.read_object(), Ok(Object::Handle(3)));
        assert_eq!(r.read_object(), Ok(Object::Null));
        assert_eq!(
            r.read_object(),
            Ok(Object::Binder {
                ptr: 0x10,
                cookie: 0x20
            })
        );
    }

    #[test]
    fn parcelables_are_flagged_and_sized() {
        let mut p = Parcel::new();
        p.write_i32(7).write_parcelable(|p| {
            p.write_object(Object::Handle(2)).write_bool(true);
        });
        let d = p.data();
        assert_eq!(&d[4..8], &1i32.to_le_bytes(), "present");
        assert_eq!(
            &d[8..12],
            &(4 + 28 + 4i32).to_le_bytes(),
            "size, its own word included"
        );
        assert_eq!(
            p.offsets(),
            &[12],
            "the object's offset is in the whole parcel"
        );
        let mut r = ParcelReader::new(d, p.offsets());
        assert_eq!(r.read_i32(), Ok(7));
        assert_eq!(r.read_i32(), Ok(1));
        assert_eq!(r.read_i32(), Ok(36));
        assert_eq!(r.read_object(), Ok(Object::Handle(2)));
        assert_eq!(r.read_bool(), Ok(true));
    }

    #[test]
    fn an_object_missing_from_the_offsets_is_refused() {
        let mut p = Parcel::new();
        p.write_object(Object::Handle(1));
        let mut r = ParcelReader::new(p.data(), &[]);
        assert!(matches!(r.read_object(), Err(ParcelError::Invalid(_))));
    }

    #[test]
    fn status_ok_exception_and_reply_header() {
        let mut p = Parcel::new();
        p.write_ok_status().write_i32(9);
        let mut r = ParcelReader::new(p.data(), &[]);
        assert_eq!(r.read_status(), Ok(()));
        assert_eq!(r.read_i32(), Ok(9));

        let mut p = Parcel::new();
        p.write_exception(exception::UNSUPPORTED_OPERATION, "nope");
        let mut r = ParcelReader::new(p.data(), &[]);
        assert_eq!(
            r.read_status(),
            Err(ParcelError::Exception {
                code: exception::UNSUPPORTED_OPERATION,
                message: "nope".into()
            })
        );

        let mut p = Parcel::new();
        p.write_i32(exception::HAS_REPLY_HEADER)
            .write_i32(8)
            .write_i32(0x55)
            .write_i32(42);
        let mut r = ParcelReader::new(p.data(), &[]);
        assert_eq!(r.read_status(), Ok(()));
        assert_eq!(r.read_i32(), Ok(42));
    }

    #[test]
    fn transaction_codes_match_libbinder() {
        assert_eq!(INTERFACE_TRANSACTION, 0x5f4e_5446);
        assert_eq!(PING_TRANSACTION, 0x5f50_4e47);
        assert_eq!(UNKNOWN_TRANSACTION, -74);
    }

    #[test]
    fn fds_are_listed_fd_objects() {
        let mut p = Parcel::new();
        p.write_i32(1).write_fd(9, true);
        assert_eq!(p.offsets(), &[4]);
        assert_eq!(&p.data()[4..8], &uapi::BINDER_TYPE_FD.to_le_bytes());
        let mut r = ParcelReader::new(p.data(), p.offsets());
        assert_eq!(r.read_i32(), Ok(1));
        assert_eq!(r.read_fd(), Ok(9));
        let mut r = ParcelReader::new(p.data(), &[]);
        r.read_i32().unwrap();
        assert!(r.read_fd().is_err(), "an fd the offsets do not list");
    }

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn owned_fds_stay_open_while_the_parcel_lives() {
        let fd = dev_null();
        let raw = fd.as_raw_fd();
        let mut p = Parcel::new();
        p.write_owned_fd(fd);
        let copy = p.clone();
        assert_eq!(p, copy);
        drop(p);
        // SAFETY: F_GETFD only asks about the fd.
        assert_ne!(
            unsafe { libc::fcntl(raw, libc::F_GETFD) },
            -1,
            "the clone still holds it"
        );
        let mut r = ParcelReader::new(copy.data(), copy.offsets());
        assert_eq!(r.read_fd(), Ok(raw));
        // The cookie says the receiver owns its copy, as libbinder writes it.
        assert_eq!(&copy.data()[16..24], &1u64.to_le_bytes());
    }

    #[test]
    fn parcel_fds_are_present_no_comm_then_the_fd() {
        let fd = dev_null();
        let raw = fd.as_raw_fd();
        let mut p = Parcel::new();
        p.write_parcel_fd(fd).write_i32(0);
        assert_eq!(&p.data()[..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p.offsets(), &[8]);
        let mut r = ParcelReader::new(p.data(), p.offsets());
        assert_eq!(r.read_parcel_fd(), Ok(Some(raw)));
        assert_eq!(r.read_parcel_fd(), Ok(None), "the null one");

        let mut p = Parcel::new();
        p.write_i32(1).write_i32(1).write_fd(3, true);
        let mut r = ParcelReader::new(p.data(), p.offsets());
        assert!(r.read_parcel_fd().is_err(), "a comm channel");
    }
}
