// SPDX-License-Identifier: GPL-2.0

//! `BINDER_WRITE_READ`: the one ioctl binder traffic goes through.
//!
//! Its argument names two user buffers: commands to carry out (`BC_*`, the write half) and room
//! for returns (`BR_*`, the read half). The write half runs first. Each half reports how far it
//! got in its `*_consumed` field, which is copied back to userspace also when a half fails.

use kernel::{
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};

use crate::{
    process::Process,
    thread::Thread,
    user_word, //
};

/// The room the largest return takes: a code and a `binder_transaction_data_secctx`.
const MAX_RETURN_SIZE: usize = size_of::<u32>() + size_of::<uapi::binder_transaction_data_secctx>();

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
    process: ArcBorrow<'_, Process>,
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
        let mut returns = Returns::new(&bwr.0, &process);
        result = thread.read(&process, &mut returns, nonblock);
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
///
/// Codes and word arguments are read as C's `get_user` reads them ([`user_word`]), structs
/// with a copy.
pub(crate) struct Commands {
    /// The user address of the next value.
    next: usize,
    /// The bytes left from `next` to the end of the buffer.
    left: usize,
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
        Self {
            next: usize::try_from(addr).unwrap_or(usize::MAX),
            left: len,
            start,
            len,
            done: 0,
        }
    }

    /// Whether there is another command to read.
    pub(crate) fn has_more(&self) -> bool {
        self.left > 0
    }

    /// The address of the next `size` bytes, which are taken; `EFAULT` if the buffer ends
    /// before them.
    fn take(&mut self, size: usize) -> Result<usize> {
        let addr = self.next;
        self.left = self.left.checked_sub(size).ok_or(EFAULT)?;
        self.next = addr.wrapping_add(size);
        Ok(addr)
    }

    /// Reads the next word of a command (its code, or a handle).
    pub(crate) fn read_u32(&mut self) -> Result<u32> {
        user_word::get_u32(self.take(size_of::<u32>())?)
    }

    /// Reads the next 64-bit argument of a command (a pointer or cookie).
    pub(crate) fn read_u64(&mut self) -> Result<u64> {
        user_word::get_u64(self.take(size_of::<u64>())?)
    }

    /// Reads the next struct argument of a command.
    pub(crate) fn read<T: FromBytes>(&mut self) -> Result<T> {
        let addr = self.take(size_of::<T>())?;
        UserSlice::new(UserPtr::from_addr(addr), size_of::<T>())
            .reader()
            .read()
    }

    /// Marks everything read so far as consumed: the current command is complete.
    pub(crate) fn commit(&mut self) {
        self.done = self.len - self.left;
    }

    /// `write_consumed` to report.
    fn consumed(&self) -> u64 {
        self.start.saturating_add(self.done as u64)
    }
}

/// The read half: room for the returns the thread delivers.
///
/// Each return is written as soon as it is made, codes and word arguments as C's `put_user`
/// writes them ([`user_word`]), structs with a copy: a fault in the user buffer fails the same
/// item, at the same point, as in C, and no later item is taken off its list. A code is counted
/// (and traced) by [`Returns::count_written`] once its arguments are out too, as C counts a
/// return only after writing it.
pub(crate) struct Returns<'a> {
    /// The start of the whole read buffer (not of the room after `read_consumed`).
    base: usize,
    /// The user address of the next return.
    next: usize,
    /// The room left from `next` to the end of the buffer.
    room: usize,
    /// `read_consumed` before this call.
    start: u64,
    /// The bytes written by this call.
    written: usize,
    /// The code written last, not counted yet.
    pending: Option<u32>,
    /// The reading process, whose counters of returns ([`crate::stats`]) the codes count in.
    process: &'a Process,
}

impl<'a> Returns<'a> {
    fn new(bwr: &uapi::binder_write_read, process: &'a Process) -> Self {
        let start = bwr.read_consumed;
        let room = bwr.read_size.saturating_sub(start);
        let base = usize::try_from(bwr.read_buffer).unwrap_or(usize::MAX);
        let next = bwr.read_buffer.wrapping_add(start);
        Self {
            base,
            next: usize::try_from(next).unwrap_or(usize::MAX),
            room: usize::try_from(room).unwrap_or(usize::MAX),
            start,
            written: 0,
            pending: None,
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
        self.room >= MAX_RETURN_SIZE
    }

    /// Whether the buffer holds just one word, the `BR_NOOP` every fresh buffer starts with
    /// (the C driver's test is the same: four bytes used in all).
    pub(crate) fn only_noop(&self) -> bool {
        self.consumed() == size_of::<u32>() as u64
    }

    /// The address of the next `size` bytes, which are taken; `EFAULT` if they do not fit.
    fn take(&mut self, size: usize) -> Result<usize> {
        let addr = self.next;
        self.room = self.room.checked_sub(size).ok_or(EFAULT)?;
        self.next = addr.wrapping_add(size);
        self.written += size;
        Ok(addr)
    }

    /// Writes one return code, counted by the next [`Returns::count_written`] (all but
    /// `BR_NOOP`, which is written with [`Returns::put_u32`], as C counts them).
    pub(crate) fn put_code(&mut self, code: u32) -> Result {
        // An item writes one code and its arguments before it is counted (a node counts each
        // of its codes): nothing is pending here. Should something be, it counts first.
        self.count_written();
        self.put_u32(code)?;
        self.pending = Some(code);
        Ok(())
    }

    /// Writes a word that is not a code to count.
    pub(crate) fn put_u32(&mut self, value: u32) -> Result {
        let addr = self.take(size_of::<u32>())?;
        user_word::put_u32(addr, value)
    }

    /// Writes a 64-bit argument of a return (a pointer or cookie).
    pub(crate) fn put_u64(&mut self, value: u64) -> Result {
        let addr = self.take(size_of::<u64>())?;
        user_word::put_u64(addr, value)
    }

    /// Writes a struct argument of a return.
    pub(crate) fn put<T: AsBytes>(&mut self, value: &T) -> Result {
        let addr = self.take(size_of::<T>())?;
        UserSlice::new(UserPtr::from_addr(addr), size_of::<T>())
            .writer()
            .write(value)
    }

    /// The last code's arguments are out: traces and counts the code.
    pub(crate) fn count_written(&mut self) {
        if let Some(code) = self.pending.take() {
            crate::trace::binder_return(code);
            crate::stats::returned(&self.process.stats, code);
        }
    }

    /// `read_consumed` to report.
    fn consumed(&self) -> u64 {
        self.start.saturating_add(self.written as u64)
    }

    /// Replaces the first word of the whole read buffer with `code`; it is where the C driver
    /// puts `BR_SPAWN_LOOPER`, over the leading `BR_NOOP`.
    pub(crate) fn overwrite_first_word(&mut self, code: u32) -> Result {
        user_word::put_u32(self.base, code)?;
        crate::trace::binder_return(code);
        crate::stats::returned(&self.process.stats, code);
        Ok(())
    }
}
