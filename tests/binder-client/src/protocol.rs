//! The `BINDER_WRITE_READ` protocol: commands to write and the returns read back.

use crate::{uapi, Payload};

/// A write buffer of `BC_*` commands, built one command at a time.
#[derive(Clone, Debug, Default)]
pub struct Commands {
    bytes: Vec<u8>,
}

impl Commands {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a raw 32-bit word (a command code or an argument).
    pub fn word(mut self, value: u32) -> Self {
        self.bytes.extend_from_slice(&value.to_ne_bytes());
        self
    }

    /// Appends a raw 64-bit value (a pointer or cookie argument).
    pub fn pointer(mut self, value: u64) -> Self {
        self.bytes.extend_from_slice(&value.to_ne_bytes());
        self
    }

    /// `BC_INCREFS handle`: take a weak reference.
    pub fn increfs(self, handle: u32) -> Self {
        self.word(uapi::BC_INCREFS).word(handle)
    }

    /// `BC_ACQUIRE handle`: take a strong reference.
    pub fn acquire(self, handle: u32) -> Self {
        self.word(uapi::BC_ACQUIRE).word(handle)
    }

    /// `BC_RELEASE handle`: drop a strong reference.
    pub fn release(self, handle: u32) -> Self {
        self.word(uapi::BC_RELEASE).word(handle)
    }

    /// `BC_DECREFS handle`: drop a weak reference.
    pub fn decrefs(self, handle: u32) -> Self {
        self.word(uapi::BC_DECREFS).word(handle)
    }

    /// `BC_FREE_BUFFER ptr`: give back a buffer the driver delivered.
    pub fn free_buffer(self, data_ptr: u64) -> Self {
        self.word(uapi::BC_FREE_BUFFER).pointer(data_ptr)
    }

    /// `BC_ENTER_LOOPER`: this thread serves the process's incoming work.
    pub fn enter_looper(self) -> Self {
        self.word(uapi::BC_ENTER_LOOPER)
    }

    /// `BC_REGISTER_LOOPER`: this thread was started because of `BR_SPAWN_LOOPER`.
    pub fn register_looper(self) -> Self {
        self.word(uapi::BC_REGISTER_LOOPER)
    }

    /// `BC_EXIT_LOOPER`: this thread leaves the loop.
    pub fn exit_looper(self) -> Self {
        self.word(uapi::BC_EXIT_LOOPER)
    }

    /// `BC_TRANSACTION` (or `BC_REPLY` with `reply`) of `data` with `code` to `handle`.
    ///
    /// The command holds the address of `data`, which must stay alive until it is written.
    pub fn transaction(self, reply: bool, handle: u32, code: u32, flags: u32, data: &[u8]) -> Self {
        let tr = transaction_data(handle, code, flags, data);
        self.word(if reply {
            uapi::BC_REPLY
        } else {
            uapi::BC_TRANSACTION
        })
        .raw(&tr)
    }

    /// `BC_TRANSACTION` (or `BC_REPLY` with `reply`) of `data` whose binder objects sit at
    /// the byte `offsets`.
    ///
    /// The command holds the addresses of `data` and `offsets`, which must stay alive until it
    /// is written.
    pub fn transaction_with_objects(
        self,
        reply: bool,
        handle: u32,
        code: u32,
        flags: u32,
        data: &[u8],
        offsets: &[u64],
    ) -> Self {
        self.transaction_offsets(
            reply,
            transaction_data(handle, code, flags, data),
            offsets.as_ptr() as u64,
            size_of_val(offsets) as u64,
        )
    }

    /// `BC_TRANSACTION` (or `BC_REPLY`) of raw `data` and `offsets` bytes: the object offsets
    /// as the driver reads them, right or (on purpose) wrong.
    ///
    /// Both slices must stay alive until the command is written.
    pub fn transaction_raw(
        self,
        reply: bool,
        handle: u32,
        code: u32,
        flags: u32,
        data: &[u8],
        offsets: &[u8],
    ) -> Self {
        self.transaction_offsets(
            reply,
            transaction_data(handle, code, flags, data),
            offsets.as_ptr() as u64,
            offsets.len() as u64,
        )
    }

    /// `BC_TRANSACTION` (or `BC_REPLY`) of `data` whose `offsets_size` claims `size` bytes at
    /// `offsets`, however few it has: for sizes that no buffer can hold.
    ///
    /// Both slices must stay alive until the command is written.
    #[allow(clippy::too_many_arguments)]
    pub fn transaction_claiming_offsets(
        self,
        reply: bool,
        handle: u32,
        code: u32,
        flags: u32,
        data: &[u8],
        offsets: &[u8],
        size: u64,
    ) -> Self {
        self.transaction_offsets(
            reply,
            transaction_data(handle, code, flags, data),
            offsets.as_ptr() as u64,
            size,
        )
    }

    /// `BC_TRANSACTION` (or `BC_REPLY`) of `tr` with the offsets at `addr`, `size` bytes.
    fn transaction_offsets(
        self,
        reply: bool,
        mut tr: uapi::binder_transaction_data,
        addr: u64,
        size: u64,
    ) -> Self {
        tr.offsets_size = size;
        tr.data.ptr.offsets = addr;
        self.word(if reply {
            uapi::BC_REPLY
        } else {
            uapi::BC_TRANSACTION
        })
        .raw(&tr)
    }

    /// `BC_INCREFS_DONE ptr cookie`: this process took the weak reference `BR_INCREFS` asked for.
    pub fn increfs_done(self, ptr: u64, cookie: u64) -> Self {
        self.word(uapi::BC_INCREFS_DONE)
            .pointer(ptr)
            .pointer(cookie)
    }

    /// `BC_ACQUIRE_DONE ptr cookie`: this process took the strong reference `BR_ACQUIRE` asked
    /// for.
    pub fn acquire_done(self, ptr: u64, cookie: u64) -> Self {
        self.word(uapi::BC_ACQUIRE_DONE)
            .pointer(ptr)
            .pointer(cookie)
    }

    /// `BC_TRANSACTION_SG` (or `BC_REPLY_SG`): a transaction with `buffers_size` bytes of room
    /// for scatter-gather buffers.
    pub fn transaction_sg(
        self,
        reply: bool,
        handle: u32,
        code: u32,
        data: &[u8],
        buffers_size: u64,
    ) -> Self {
        self.transaction_sg_offsets(reply, transaction_data(handle, code, 0, data), buffers_size)
    }

    /// The transaction (or reply, with `reply`) of `payload` with `code` and the `TF_*`
    /// `flags` to `handle`: `BC_TRANSACTION_SG`/`BC_REPLY_SG` if the payload has
    /// scatter-gather buffers ([`Payload::buffers_size`]), else `BC_TRANSACTION`/`BC_REPLY`.
    ///
    /// The command holds the addresses of the payload's data, offsets and buffers: the payload
    /// must stay alive, unchanged, until the command is written.
    pub fn payload(
        self,
        reply: bool,
        handle: u32,
        code: u32,
        flags: u32,
        payload: &Payload,
    ) -> Self {
        let mut tr = transaction_data(handle, code, flags, &payload.data);
        tr.offsets_size = size_of_val(payload.offsets.as_slice()) as u64;
        tr.data.ptr.offsets = payload.offsets.as_ptr() as u64;
        match payload.buffers_size() {
            Some(buffers_size) => self.transaction_sg_offsets(reply, tr, buffers_size),
            None => self
                .word(if reply {
                    uapi::BC_REPLY
                } else {
                    uapi::BC_TRANSACTION
                })
                .raw(&tr),
        }
    }

    fn transaction_sg_offsets(
        self,
        reply: bool,
        tr: uapi::binder_transaction_data,
        buffers_size: u64,
    ) -> Self {
        let tr = uapi::binder_transaction_data_sg {
            transaction_data: tr,
            buffers_size,
        };
        self.word(if reply {
            uapi::BC_REPLY_SG
        } else {
            uapi::BC_TRANSACTION_SG
        })
        .raw(&tr)
    }

    /// `BC_TRANSACTION` (or `BC_REPLY` with `reply`) of `tr` exactly as given: for data and
    /// offsets at addresses no slice can describe (unmapped, or running into a guard page).
    pub fn transaction_as_given(self, reply: bool, tr: &uapi::binder_transaction_data) -> Self {
        self.word(if reply {
            uapi::BC_REPLY
        } else {
            uapi::BC_TRANSACTION
        })
        .raw(tr)
    }

    /// Appends the bytes of a plain-data uapi struct.
    fn raw<T: Copy>(mut self, value: &T) -> Self {
        // SAFETY: `T` is a uapi struct of integers; its bytes are initialised and readable.
        let bytes =
            unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) };
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// `BC_REQUEST_DEATH_NOTIFICATION handle cookie`: ask to hear when the node dies.
    pub fn request_death_notification(self, handle: u32, cookie: u64) -> Self {
        // `struct binder_handle_cookie` is packed: the cookie follows the handle directly.
        self.word(uapi::BC_REQUEST_DEATH_NOTIFICATION)
            .word(handle)
            .pointer(cookie)
    }

    /// `BC_CLEAR_DEATH_NOTIFICATION handle cookie`: withdraw that request.
    pub fn clear_death_notification(self, handle: u32, cookie: u64) -> Self {
        self.word(uapi::BC_CLEAR_DEATH_NOTIFICATION)
            .word(handle)
            .pointer(cookie)
    }

    /// `BC_DEAD_BINDER_DONE cookie`: the `BR_DEAD_BINDER` with `cookie` was handled.
    pub fn dead_binder_done(self, cookie: u64) -> Self {
        self.word(uapi::BC_DEAD_BINDER_DONE).pointer(cookie)
    }

    /// `BC_REQUEST_FREEZE_NOTIFICATION handle cookie`: ask to hear when the process owning
    /// the node is frozen or thawed.
    pub fn request_freeze_notification(self, handle: u32, cookie: u64) -> Self {
        self.word(uapi::BC_REQUEST_FREEZE_NOTIFICATION)
            .word(handle)
            .pointer(cookie)
    }

    /// `BC_CLEAR_FREEZE_NOTIFICATION handle cookie`: withdraw that request.
    pub fn clear_freeze_notification(self, handle: u32, cookie: u64) -> Self {
        self.word(uapi::BC_CLEAR_FREEZE_NOTIFICATION)
            .word(handle)
            .pointer(cookie)
    }

    /// `BC_FREEZE_NOTIFICATION_DONE cookie`: the `BR_FROZEN_BINDER` with `cookie` was handled.
    pub fn freeze_notification_done(self, cookie: u64) -> Self {
        self.word(uapi::BC_FREEZE_NOTIFICATION_DONE).pointer(cookie)
    }

    /// The encoded commands.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The length of the encoded commands.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no command was added.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A `binder_transaction_data` for `data` without objects.
fn transaction_data(
    handle: u32,
    code: u32,
    flags: u32,
    data: &[u8],
) -> uapi::binder_transaction_data {
    let mut tr = uapi::binder_transaction_data {
        code,
        flags,
        data_size: data.len() as u64,
        ..Default::default()
    };
    tr.target.handle = handle;
    tr.data.ptr.buffer = data.as_ptr() as u64;
    tr
}

/// A delivered transaction or reply (`BR_TRANSACTION`, `BR_REPLY`), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// The target node's pointer, as its owner gave it (0 for a reply).
    pub target_ptr: u64,
    /// The target node's cookie (0 for a reply).
    pub cookie: u64,
    /// The transaction code.
    pub code: u32,
    /// The `TF_*` flags.
    pub flags: u32,
    /// The sender's pid (0 for one-way transactions and replies).
    pub sender_pid: i32,
    /// The sender's effective uid.
    pub sender_euid: u32,
    /// The payload's user address in the receiver's mapping.
    pub buffer: u64,
    /// The payload's length.
    pub data_size: u64,
    /// The user address of the object offsets.
    pub offsets: u64,
    /// The length of the object offsets.
    pub offsets_size: u64,
    /// The user address of the sender's security context, for a transaction delivered as
    /// `BR_TRANSACTION_SEC_CTX` (to a node that asked for it with
    /// `FLAT_BINDER_FLAG_TXN_SECURITY_CTX`); `None` for `BR_TRANSACTION` and `BR_REPLY`.
    pub secctx: Option<u64>,
}

impl Txn {
    pub(crate) fn from_raw(tr: &uapi::binder_transaction_data) -> Self {
        // SAFETY: Both union members are plain integers.
        let (target_ptr, buffer, offsets) =
            unsafe { (tr.target.ptr, tr.data.ptr.buffer, tr.data.ptr.offsets) };
        Self {
            target_ptr,
            cookie: tr.cookie,
            code: tr.code,
            flags: tr.flags,
            sender_pid: tr.sender_pid,
            sender_euid: tr.sender_euid,
            buffer,
            data_size: tr.data_size,
            offsets,
            offsets_size: tr.offsets_size,
            secctx: None,
        }
    }
}

/// Takes the payload of a `BR_TRANSACTION`, `BR_REPLY` or `BR_TRANSACTION_SEC_CTX` (`code`)
/// off the front of `rest`.
pub(crate) fn take_txn(code: u32, rest: &mut &[u8]) -> Result<Txn, Truncated> {
    if code == uapi::BR_TRANSACTION_SEC_CTX {
        let tr: uapi::binder_transaction_data_secctx = take_struct(rest)?;
        return Ok(Txn {
            secctx: Some(tr.secctx),
            ..Txn::from_raw(&tr.transaction_data)
        });
    }
    let tr: uapi::binder_transaction_data = take_struct(rest)?;
    Ok(Txn::from_raw(&tr))
}

/// Takes one `T` off the front of `rest`.
///
/// Only for the uapi structs of the returns: structs of integers, for which any bytes are a
/// valid value.
fn take_struct<T: Copy>(rest: &mut &[u8]) -> Result<T, Truncated> {
    let bytes = take(rest, size_of::<T>())?;
    // SAFETY: `bytes` holds exactly `size_of::<T>()` bytes, and `T` is a uapi struct of
    // integers (see above); the read does not need alignment.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// One `BR_*` return, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Return {
    /// `BR_TRANSACTION`, or `BR_TRANSACTION_SEC_CTX` (then with [`Txn::secctx`]).
    Transaction(Txn),
    /// `BR_REPLY`.
    Reply(Txn),
    /// `BR_NOOP`.
    Noop,
    /// `BR_SPAWN_LOOPER`: start another looper thread.
    SpawnLooper,
    /// `BR_TRANSACTION_COMPLETE`.
    TransactionComplete,
    /// `BR_ONEWAY_SPAM_SUSPECT`: a one-way transaction was accepted, and its receiver suspects
    /// the sender of flooding it (sent in place of `BR_TRANSACTION_COMPLETE`).
    OnewaySpamSuspect,
    /// `BR_DEAD_REPLY`.
    DeadReply,
    /// `BR_FAILED_REPLY`.
    FailedReply,
    /// `BR_DEAD_BINDER cookie`.
    DeadBinder(u64),
    /// `BR_INCREFS ptr cookie`: the driver holds a weak reference to the object.
    Increfs(u64, u64),
    /// `BR_ACQUIRE ptr cookie`: the driver holds a strong reference to the object.
    Acquire(u64, u64),
    /// `BR_RELEASE ptr cookie`: the last strong reference went.
    Release(u64, u64),
    /// `BR_DECREFS ptr cookie`: the last weak reference went.
    Decrefs(u64, u64),
    /// `BR_CLEAR_DEATH_NOTIFICATION_DONE cookie`.
    ClearDeathNotificationDone(u64),
    /// `BR_FROZEN_REPLY`: the call's target is frozen.
    FrozenReply,
    /// `BR_TRANSACTION_PENDING_FROZEN`: a one-way transaction was accepted, and waits for its
    /// frozen receiver (sent in place of `BR_TRANSACTION_COMPLETE`).
    TransactionPendingFrozen,
    /// `BR_FROZEN_BINDER`: the process owning a node this process asked about was frozen
    /// or thawed.
    FrozenBinder {
        /// The cookie of the request.
        cookie: u64,
        /// 1 if frozen, 0 if not.
        is_frozen: u32,
    },
    /// `BR_CLEAR_FREEZE_NOTIFICATION_DONE cookie`.
    ClearFreezeNotificationDone(u64),
    /// A return this decoder does not know, with its code.
    Other(u32),
}

/// The returns could not be decoded: the buffer ends inside one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncated;

/// Decodes the returns in `bytes`.
pub fn parse_returns(bytes: &[u8]) -> Result<Vec<Return>, Truncated> {
    let mut returns = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let code = take_u32(&mut rest)?;
        let ret = match code {
            uapi::BR_NOOP => Return::Noop,
            uapi::BR_SPAWN_LOOPER => Return::SpawnLooper,
            uapi::BR_TRANSACTION_COMPLETE => Return::TransactionComplete,
            uapi::BR_ONEWAY_SPAM_SUSPECT => Return::OnewaySpamSuspect,
            uapi::BR_DEAD_REPLY => Return::DeadReply,
            uapi::BR_FAILED_REPLY => Return::FailedReply,
            uapi::BR_DEAD_BINDER => Return::DeadBinder(take_u64(&mut rest)?),
            uapi::BR_INCREFS | uapi::BR_ACQUIRE | uapi::BR_RELEASE | uapi::BR_DECREFS => {
                let (ptr, cookie) = (take_u64(&mut rest)?, take_u64(&mut rest)?);
                match code {
                    uapi::BR_INCREFS => Return::Increfs(ptr, cookie),
                    uapi::BR_ACQUIRE => Return::Acquire(ptr, cookie),
                    uapi::BR_RELEASE => Return::Release(ptr, cookie),
                    _ => Return::Decrefs(ptr, cookie),
                }
            }
            uapi::BR_CLEAR_DEATH_NOTIFICATION_DONE => {
                Return::ClearDeathNotificationDone(take_u64(&mut rest)?)
            }
            uapi::BR_FROZEN_REPLY => Return::FrozenReply,
            uapi::BR_TRANSACTION_PENDING_FROZEN => Return::TransactionPendingFrozen,
            uapi::BR_FROZEN_BINDER => {
                let cookie = take_u64(&mut rest)?;
                let is_frozen = take_u32(&mut rest)?;
                // The struct's reserved word.
                take_u32(&mut rest)?;
                Return::FrozenBinder { cookie, is_frozen }
            }
            uapi::BR_CLEAR_FREEZE_NOTIFICATION_DONE => {
                Return::ClearFreezeNotificationDone(take_u64(&mut rest)?)
            }
            uapi::BR_TRANSACTION | uapi::BR_TRANSACTION_SEC_CTX => {
                Return::Transaction(take_txn(code, &mut rest)?)
            }
            uapi::BR_REPLY => Return::Reply(take_txn(code, &mut rest)?),
            other => {
                // The size of a return's payload is encoded in its code, like an ioctl's.
                let size = ((other >> 16) & 0x3fff) as usize;
                take(&mut rest, size)?;
                Return::Other(other)
            }
        };
        returns.push(ret);
    }
    Ok(returns)
}

pub(crate) fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], Truncated> {
    if rest.len() < n {
        return Err(Truncated);
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

pub(crate) fn take_u32(rest: &mut &[u8]) -> Result<u32, Truncated> {
    let bytes = take(rest, 4)?;
    Ok(u32::from_ne_bytes(bytes.try_into().map_err(|_| Truncated)?))
}

pub(crate) fn take_u64(rest: &mut &[u8]) -> Result<u64, Truncated> {
    let bytes = take(rest, 8)?;
    Ok(u64::from_ne_bytes(bytes.try_into().map_err(|_| Truncated)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_code_then_arguments() {
        let commands = Commands::new()
            .acquire(3)
            .free_buffer(0x1122_3344_5566_7788);
        let mut expected = Vec::new();
        expected.extend_from_slice(&uapi::BC_ACQUIRE.to_ne_bytes());
        expected.extend_from_slice(&3u32.to_ne_bytes());
        expected.extend_from_slice(&uapi::BC_FREE_BUFFER.to_ne_bytes());
        expected.extend_from_slice(&0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(commands.as_bytes(), expected.as_slice());
    }

    #[test]
    fn transaction_command_carries_the_data_address() {
        let data = [1u8, 2, 3];
        let commands = Commands::new().transaction(false, 5, 9, 0, &data);
        let bytes = commands.as_bytes();
        assert_eq!(bytes.len(), 4 + 64);
        assert_eq!(&bytes[..4], &uapi::BC_TRANSACTION.to_ne_bytes());
        // target.handle is the first field, data_size the sixth word pair, buffer the seventh.
        assert_eq!(&bytes[4..8], &5u32.to_ne_bytes());
        assert_eq!(&bytes[4 + 32..4 + 40], &3u64.to_ne_bytes());
        assert_eq!(
            &bytes[4 + 48..4 + 56],
            &(data.as_ptr() as u64).to_ne_bytes()
        );
    }

    #[test]
    fn transaction_with_objects_points_at_the_offsets() {
        let payload = crate::Payload::new()
            .object(crate::FlatObject::binder(0x10, 1))
            .object(crate::FlatObject::binder(0x20, 2));
        let (data, offsets) = (&payload.data, &payload.offsets);
        assert_eq!(offsets, &[0u64, 24]);
        let commands = Commands::new().transaction_with_objects(false, 0, 1, 0, data, offsets);
        let bytes = commands.as_bytes();
        assert_eq!(data.len(), 48);
        assert_eq!(&data[..4], &uapi::BINDER_TYPE_BINDER.to_ne_bytes());
        assert_eq!(&data[32..40], &0x20u64.to_ne_bytes());
        // offsets_size is the seventh word pair, the offsets pointer the ninth.
        assert_eq!(&bytes[4 + 40..4 + 48], &16u64.to_ne_bytes());
        assert_eq!(
            &bytes[4 + 56..4 + 64],
            &(offsets.as_ptr() as u64).to_ne_bytes()
        );
    }

    #[test]
    fn death_commands_use_the_packed_handle_cookie() {
        let commands = Commands::new().request_death_notification(1, 2);
        assert_eq!(commands.len(), 4 + 12);
        assert_eq!(
            uapi::BC_REQUEST_DEATH_NOTIFICATION >> 16 & 0x3fff,
            12,
            "the command's size field must say 12 bytes"
        );
    }

    #[test]
    fn returns_decode_with_payloads() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&uapi::BR_NOOP.to_ne_bytes());
        bytes.extend_from_slice(&uapi::BR_DEAD_BINDER.to_ne_bytes());
        bytes.extend_from_slice(&7u64.to_ne_bytes());
        bytes.extend_from_slice(&uapi::BR_INCREFS.to_ne_bytes());
        bytes.extend_from_slice(&5u64.to_ne_bytes());
        bytes.extend_from_slice(&6u64.to_ne_bytes());
        bytes.extend_from_slice(&uapi::BR_FROZEN_BINDER.to_ne_bytes());
        bytes.extend_from_slice(&9u64.to_ne_bytes());
        bytes.extend_from_slice(&1u32.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&uapi::BR_TRANSACTION_COMPLETE.to_ne_bytes());
        assert_eq!(
            parse_returns(&bytes),
            Ok(vec![
                Return::Noop,
                Return::DeadBinder(7),
                Return::Increfs(5, 6),
                Return::FrozenBinder {
                    cookie: 9,
                    is_frozen: 1
                },
                Return::TransactionComplete
            ])
        );
    }

    #[test]
    fn a_transaction_with_a_security_context_keeps_its_address() {
        let mut tr = uapi::binder_transaction_data_secctx::default();
        tr.transaction_data.code = 9;
        tr.transaction_data.data_size = 3;
        tr.secctx = 0x7000_0008;
        let mut bytes = uapi::BR_TRANSACTION_SEC_CTX.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&Commands::new().raw(&tr).bytes);
        bytes.extend_from_slice(&uapi::BR_NOOP.to_ne_bytes());
        let returns = parse_returns(&bytes).unwrap();
        let [Return::Transaction(txn), Return::Noop] = &returns[..] else {
            panic!("decoded {returns:?}");
        };
        assert_eq!((txn.code, txn.data_size), (9, 3));
        assert_eq!(txn.secctx, Some(0x7000_0008));
        assert_eq!(
            parse_returns(&bytes[..4 + 64]),
            Err(Truncated),
            "a BR_TRANSACTION_SEC_CTX is 72 bytes, not 64"
        );
    }

    #[test]
    fn a_return_cut_short_is_an_error() {
        let mut bytes = uapi::BR_DEAD_BINDER.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_returns(&bytes), Err(Truncated));
    }

    #[test]
    fn a_payload_with_buffers_goes_as_sg() {
        let plain = Payload::new().fd(3);
        let commands = Commands::new().payload(true, 0, 1, uapi::TF_ACCEPT_FDS, &plain);
        assert_eq!(&commands.as_bytes()[..4], &uapi::BC_REPLY.to_ne_bytes());
        assert_eq!(commands.len(), 4 + 64);
        let sg = Payload::new().buffer(&[0; 12]);
        let commands = Commands::new().payload(false, 2, 1, 0, &sg);
        let bytes = commands.as_bytes();
        assert_eq!(&bytes[..4], &uapi::BC_TRANSACTION_SG.to_ne_bytes());
        assert_eq!(bytes.len(), 4 + 72);
        assert_eq!(&bytes[4 + 64..], &16u64.to_ne_bytes());
        assert_eq!(&bytes[4 + 40..4 + 48], &8u64.to_ne_bytes());
    }
}
