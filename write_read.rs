// SPDX-License-Identifier: GPL-2.0

//! `BINDER_WRITE_READ`: the one ioctl binder traffic goes through.
//!
//! Its argument names two user buffers: commands to carry out (`BC_*`, the write half) and room
//! for returns (`BR_*`, the read half). The write half runs first. Each half reports how far it
//! got in its `*_consumed` field, which is copied back to userspace also when a half fails.

use kernel::{
    prelude::*,
    sync::Arc,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
    uapi,
};

use crate::{
    defs::BR_NOOP,
    process::Process,
    thread::Thread, //
};

/// The room the largest return takes: a code and a `binder_transaction_data_secctx`.
const MAX_RETURN_SIZE: usize = size_of::<u32>() + size_of::<uapi::binder_transaction_data_secctx>();

/// How many bytes of returns [`Returns`] gathers before it copies them out: room for the
/// largest work item, a node's four refcount returns.
const PENDING_SIZE: usize = 4 * (size_of::<u32>() + 2 * size_of::<u64>());

/// How many return codes can wait in [`Returns`] to be traced and counted.
const PENDING_CODES: usize = 4;

/// `struct binder_write_read`, the argument of `BINDER_WRITE_READ`.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
struct BinderWriteRead(uapi::binder_write_read);

// SAFETY: The struct is six `u64`s; every byte pattern is a valid value.
unsafe impl FromBytes for BinderWriteRead {}
// SAFETY: The struct is six `u64`s, with no padding.
unsafe impl AsBytes for BinderWriteRead {}

/// Carries out `BINDER_WRITE_READ` for `thread`; `arg` is the user address of the argument.
pub(crate) fn write_read(
    process: &Arc<Process>,
    thread: &Arc<Thread>,
    arg: usize,
    nonblock: bool,
) -> Result {
    let user = UserSlice::new(UserPtr::from_addr(arg), size_of::<BinderWriteRead>());
    let (mut reader, mut writer) = user.reader_writer();
    let mut bwr: BinderWriteRead = reader.read()?;
    thread.equip_for_write_read()?;
    let mut result = Ok(());

    if bwr.0.write_size > 0 {
        let mut commands = Commands::new(&bwr.0);
        result = thread.write(process, &mut commands);
        crate::trace::write_done(&result);
        bwr.0.write_consumed = commands.consumed();
        if result.is_err() {
            // As in the C driver: a failed write half reads nothing.
            bwr.0.read_consumed = 0;
        }
    }
    if result.is_ok() && bwr.0.read_size > 0 {
        let mut returns = Returns::new(&bwr.0, process.clone());
        result = thread.read(process, &mut returns, nonblock);
        crate::trace::read_done(&result);
        process.wake_for_leftover_work();
        // As in the C driver, a failed read reports nothing read, not even its BR_NOOP.
        if result.is_ok() {
            bwr.0.read_consumed = returns.consumed();
        }
    }
    writer.write(&bwr)?;
    result
}

/// The write half: the commands userspace gave, read one at a time.
pub(crate) struct Commands {
    reader: UserSliceReader,
    /// `write_consumed` before the first command.
    start: u64,
    /// The length of the buffer after `start`.
    len: usize,
    /// The bytes of the whole commands carried out so far.
    done: usize,
}

impl Commands {
    fn new(bwr: &uapi::binder_write_read) -> Self {
        let start = bwr.write_consumed;
        // As in the C driver, the commands run from `write_buffer + write_consumed` while
        // their address is below `write_buffer + write_size`, addresses that wrap around:
        // nothing to do if the end is not past the start (a `write_consumed` at or past
        // `write_size`, or a `write_size` so large that the end wraps around).
        let addr = bwr.write_buffer.wrapping_add(start);
        let end = bwr.write_buffer.wrapping_add(bwr.write_size);
        let len = usize::try_from(end.saturating_sub(addr)).unwrap_or(usize::MAX);
        let reader = UserSlice::new(
            UserPtr::from_addr(usize::try_from(addr).unwrap_or(usize::MAX)),
            len,
        )
        .reader();
        Self {
            reader,
            start,
            len,
            done: 0,
        }
    }

    /// Whether there is another command to read.
    pub(crate) fn has_more(&self) -> bool {
        !self.reader.is_empty()
    }

    /// Reads the next value of a command (its code, then its arguments).
    pub(crate) fn read<T: FromBytes>(&mut self) -> Result<T> {
        self.reader.read()
    }

    /// Marks everything read so far as consumed: the current command is complete.
    pub(crate) fn commit(&mut self) {
        self.done = self.len - self.reader.len();
    }

    /// `write_consumed` to report.
    fn consumed(&self) -> u64 {
        self.start.saturating_add(self.done as u64)
    }
}

/// The read half: room for the returns the thread delivers.
///
/// Returns are gathered in `pending` and copied to userspace in one go by [`Returns::flush`]:
/// after each work item (the reading thread flushes before it takes the next one), and by an
/// item before anything it does that assumes its returns reached userspace. So a fault in
/// the user buffer fails the same item, at the same point, as a copy per word would (as C's
/// `put_user`s do), and no later item is taken off its list.
pub(crate) struct Returns {
    /// The start of the whole read buffer (not of the room after `read_consumed`).
    base: usize,
    writer: UserSliceWriter,
    /// `read_consumed` before this call.
    start: u64,
    /// The bytes written by this call, those still pending included.
    written: usize,
    /// Returns not copied out yet: the first `pending_len` bytes.
    pending: [u8; PENDING_SIZE],
    pending_len: usize,
    /// The codes in `pending` (the first `pending_codes` entries), traced and counted once
    /// they are copied out, as C counts a return only once it is written.
    codes: [u32; PENDING_CODES],
    pending_codes: usize,
    /// The reading process, whose counters of returns ([`crate::stats`]) the codes count in.
    process: Arc<Process>,
}

impl Returns {
    fn new(bwr: &uapi::binder_write_read, process: Arc<Process>) -> Self {
        let start = bwr.read_consumed;
        let len = bwr.read_size.saturating_sub(start);
        let base = usize::try_from(bwr.read_buffer).unwrap_or(usize::MAX);
        let addr = bwr.read_buffer.wrapping_add(start);
        let writer = UserSlice::new(
            UserPtr::from_addr(usize::try_from(addr).unwrap_or(usize::MAX)),
            usize::try_from(len).unwrap_or(usize::MAX),
        )
        .writer();
        Self {
            base,
            writer,
            start,
            written: 0,
            pending: [0; PENDING_SIZE],
            pending_len: 0,
            codes: [0; PENDING_CODES],
            pending_codes: 0,
            process,
        }
    }

    /// Whether nothing was in the buffer before this call (so it starts with `BR_NOOP`).
    pub(crate) fn is_fresh(&self) -> bool {
        self.start == 0
    }

    /// Whether another return of any kind fits: the C driver stops delivering when less than
    /// the largest return (`BR_TRANSACTION_SEC_CTX` and its payload) would fit.
    pub(crate) fn has_room_for_return(&self) -> bool {
        self.writer.len().saturating_sub(self.pending_len) >= MAX_RETURN_SIZE
    }

    /// Whether the buffer holds just one word, the `BR_NOOP` every fresh buffer starts with
    /// (the C driver's test is the same: four bytes used in all).
    pub(crate) fn only_noop(&self) -> bool {
        self.consumed() == size_of::<u32>() as u64
    }

    /// Writes one return code, and counts it once it is copied out (all but `BR_NOOP`, as C
    /// counts them).
    pub(crate) fn put_code(&mut self, code: u32) -> Result {
        if self.pending_codes == PENDING_CODES {
            self.flush()?;
        }
        self.put(&code)?;
        self.codes[self.pending_codes] = code;
        self.pending_codes += 1;
        Ok(())
    }

    /// Writes one value (a return code or its payload).
    pub(crate) fn put<T: AsBytes>(&mut self, value: &T) -> Result {
        let bytes = value.as_bytes();
        if bytes.len() > PENDING_SIZE - self.pending_len {
            self.flush()?;
        }
        match self
            .pending
            .get_mut(self.pending_len..self.pending_len + bytes.len())
        {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.pending_len += bytes.len();
            }
            // Larger than the whole of `pending` (nothing is): straight out.
            None => self.writer.write(value)?,
        }
        self.written += bytes.len();
        Ok(())
    }

    /// Copies the pending returns out to userspace, then traces and counts their codes.
    ///
    /// On a fault (`EFAULT`) the pending returns are dropped: the read fails, and its
    /// returns with it.
    pub(crate) fn flush(&mut self) -> Result {
        let pending = &self.pending[..self.pending_len];
        self.pending_len = 0;
        let codes = self.pending_codes;
        self.pending_codes = 0;
        if pending.is_empty() {
            return Ok(());
        }
        self.writer.write_slice(pending)?;
        for &code in &self.codes[..codes] {
            crate::trace::binder_return(code);
            if code != BR_NOOP {
                crate::stats::returned(&self.process.stats, code);
            }
        }
        Ok(())
    }

    /// `read_consumed` to report.
    fn consumed(&self) -> u64 {
        self.start.saturating_add(self.written as u64)
    }

    /// Replaces the first word of the whole read buffer with `code`; it is where the C driver
    /// puts `BR_SPAWN_LOOPER`, over the leading `BR_NOOP`.
    pub(crate) fn overwrite_first_word(&mut self, code: u32) -> Result {
        UserSlice::new(UserPtr::from_addr(self.base), size_of::<u32>())
            .writer()
            .write(&code)?;
        crate::trace::binder_return(code);
        crate::stats::returned(&self.process.stats, code);
        Ok(())
    }
}
