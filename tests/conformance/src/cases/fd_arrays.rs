//! Arrays of fds inside scatter-gather buffers (`BINDER_TYPE_FDA`): the fd numbers sit in a
//! parent `PTR` buffer; the driver carries each file, installs it when the receiver reads and
//! writes the receiver's numbers over the sender's in the receiver's copy of the parent. Unlike
//! a lone fd object, these fds belong to the buffer: the driver closes them when the receiver
//! frees it. Then the rules on the parent, each with C's errno.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

use binder_client::{uapi, BinderObject, BufferObject, Commands, FdArrayObject, Payload, Return};

use crate::{
    ensure,
    harness::{Case, Env, Outcome, Step},
};

use super::{
    files::{await_eof, expect_same_fds, file_id, is_cloexec, is_open, open_fds, pipe, write_fd},
    peer::{expect_payload_refused, expect_refused, spawn_fd_manager, spawn_manager, Peer},
    sg::{buffers, sg_start, word},
    transaction_errors::expect_extended_error,
};

pub const CASES: &[Case] = &[
    Case::new("fda_fds_arrive_in_parent_and_close_on_free", fds_arrive),
    Case::new(
        "fda_free_with_blocking_read_returns_to_close_the_fds",
        free_with_blocking_read,
    ),
    Case::new(
        "cve_2020_0041_fda_free_closes_only_its_own_fds",
        free_closes_only_own,
    ),
    Case::new("fda_native_handle_fds_between_ints", native_handle),
    Case::new("fda_zero_fds_accepted", zero_fds),
    Case::new("fda_child_pointer_after_fds_accepted", child_after_fds),
    Case::new("fda_in_reply_closed_when_caller_frees", fda_in_reply),
    Case::new(
        "fda_in_reply_without_accept_fds_eperm",
        fda_in_reply_refused,
    ),
    Case::new("fda_parent_offset_misaligned_einval", misaligned),
    Case::new("fda_sender_buffer_misaligned_einval", sender_misaligned),
    Case::new("fda_parent_not_a_buffer_einval", parent_not_buffer),
    Case::new("cve_2020_0041_fda_parent_is_itself", parent_is_itself),
    Case::new("cve_2020_0041_fda_parent_is_later_object", parent_is_later),
    Case::new("fda_outside_parent_einval", outside_parent),
    Case::new("fda_num_fds_overflow_einval", num_fds_overflow),
    Case::new("fda_child_pointer_over_fds_einval", child_over_fds),
    Case::new("fda_fd_invalid_ebadf", fd_invalid),
    Case::new("fda_to_node_without_accepts_fds_eperm", without_accepts_fds),
];

const LEAD: &[u8] = b"fda-lead";
const MARK: u64 = 0x6d61_726b_6d61_726b;

/// A parent buffer holding `fds` at offset 0, then two marker words.
fn parent_bytes(fds: &[i32]) -> Vec<u8> {
    let mut bytes: Vec<u8> = fds
        .iter()
        .flat_map(|&fd| (fd as u32).to_ne_bytes())
        .collect();
    bytes.resize(bytes.len().next_multiple_of(8), 0);
    bytes.extend_from_slice(&MARK.to_ne_bytes());
    bytes.extend_from_slice(&(!MARK).to_ne_bytes());
    bytes
}

/// The payload of the FDA cases: the lead, the file identities of `fds` (16 bytes each),
/// then the parent (object 0) and the fd array (object 1).
fn fda_payload(fds: &[i32]) -> Outcome<Payload> {
    let mut payload = Payload::new().bytes(LEAD);
    for &fd in fds {
        let (dev, ino) = file_id(fd)?;
        payload = payload.bytes(&dev.to_ne_bytes()).bytes(&ino.to_ne_bytes());
    }
    let parent = payload.next_index();
    Ok(payload
        .buffer(&parent_bytes(fds))
        .fd_array(parent, 0, fds.len() as u64))
}

/// Checks a transaction sent with [`fda_payload`] of `count` fds and returns the receiver's
/// fds: open, close-on-exec, the sender's files, written over the sender's numbers in the
/// parent, whose other bytes arrived as sent.
fn received_fds(m: &Peer, txn: &binder_client::Txn, count: usize) -> Outcome<Vec<i32>> {
    let received = m.received(txn);
    let data = received.data().step("data")?;
    let objects = received.objects().step("objects")?;
    let [BinderObject::Buffer(parent), BinderObject::FdArray(array)] = objects[..] else {
        return Err(format!(
            "expected a buffer and an fd array, got {objects:?}"
        ));
    };
    ensure!(
        array
            == FdArrayObject {
                num_fds: count as u64,
                parent: 0,
                parent_offset: 0
            },
        "the fd array arrived as {array:?}"
    );
    let fds = received.fd_array(&array).step("fd array")?;
    for (i, &fd) in fds.iter().enumerate() {
        ensure!(is_open(fd), "fd {i} ({fd}) is not open in the receiver");
        ensure!(is_cloexec(fd)?, "fd {i} ({fd}) lacks FD_CLOEXEC");
        let sent = (word(data, 8 + 16 * i), word(data, 16 + 16 * i));
        let got = file_id(fd)?;
        ensure!(
            got == sent,
            "fd {i} is file {got:?}, the sender sent {sent:?}"
        );
    }
    let bytes = received.buffer(&parent).step("parent")?;
    ensure!(
        bytes[bytes.len() - 16..] == parent_bytes(&[])[..],
        "the parent's markers arrived as {bytes:?}"
    );
    ensure!(
        bytes[..4 * count] == parent_bytes(&fds)[..4 * count],
        "the parent holds {:?}, the receiver's fds are {fds:?}",
        &bytes[..4 * count]
    );
    Ok(fds)
}

/// Pipes for `n` fds: the read ends, and the write ends as the fds to send.
fn pipes(n: usize) -> Outcome<(Vec<OwnedFd>, Vec<OwnedFd>)> {
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (read_end, write_end) = pipe()?;
        reads.push(read_end);
        writes.push(write_end);
    }
    Ok((reads, writes))
}

fn raw(fds: &[OwnedFd]) -> Vec<i32> {
    fds.iter().map(|fd| fd.as_raw_fd()).collect()
}

/// Checks that each read end got its message, and EOF after it.
fn expect_messages(reads: &[OwnedFd], messages: &[&[u8]]) -> Outcome {
    for (read_end, message) in reads.iter().zip(messages) {
        let bytes = await_eof(read_end.as_raw_fd(), "a pipe sent in the fd array")?;
        ensure!(
            bytes == *message,
            "the pipe carried {bytes:?}, expected {message:?}"
        );
    }
    Ok(())
}

const MESSAGES: [&[u8]; 3] = [b"one", b"two", b"three"];

fn fds_arrive(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let before = open_fds()?;
        let (call, _) = m.next_call()?;
        let fds = received_fds(m, &call, 3)?;
        for (&fd, message) in fds.iter().zip(MESSAGES) {
            write_fd(fd, message)?;
        }
        m.reply_and_free(&call, &Payload::new())?;
        // C closes them with task work that runs before the free's ioctl returns.
        expect_same_fds(&before, "after freeing the fd array's buffer")
    })?;
    let c = Peer::open()?;
    let (reads, writes) = pipes(3)?;
    let reply = c.call_for_reply(0, 1, &fda_payload(&raw(&writes))?)?;
    c.free(&reply)?;
    drop(writes);
    expect_messages(&reads, &MESSAGES)?;
    manager.join()
}

/// BC_FREE_BUFFER of a buffer with an fd array and a blocking read in one BINDER_WRITE_READ,
/// as libbinder and rsbinder send them. The array's fds are closed with task work, which runs
/// only when the task goes back to userspace: the read half must therefore return at once,
/// with nothing but BR_NOOP, instead of sleeping with the files still held (C sets
/// `looper_need_return`). The sender, holding the read end of the pipe whose write end was
/// in the array, sees EOF while the receiver has nothing to do.
fn free_with_blocking_read(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let fds = received_fds(m, &call, 1)?;
        m.reply(&call, &Payload::new())?;
        let returns = m
            .binder
            .write_then_read(&Commands::new().free_buffer(call.buffer))
            .step("free, then a blocking read, in one ioctl")?;
        ensure!(
            returns == [Return::Noop],
            "the read after the free returned {returns:?}"
        );
        ensure!(!is_open(fds[0]), "fd {} survived the free", fds[0]);
        Ok(())
    })?;
    let c = Peer::open()?;
    let (reads, writes) = pipes(1)?;
    let reply = c.call_for_reply(0, 1, &fda_payload(&raw(&writes))?)?;
    c.free(&reply)?;
    drop(writes);
    expect_messages(&reads, &[b""])?;
    manager.join()
}

/// CVE-2020-0041: the fds closed when the buffer is freed are the array's, found through its
/// (earlier) parent, and nothing else: a later buffer full of small numbers that look like the
/// receiver's own fds leaves them alone.
fn free_closes_only_own(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let (_own_read, _own_write) = pipe()?;
        let before = open_fds()?;
        let (call, _) = m.next_call()?;
        let received = m.received(&call);
        let fds = received.fds().step("fds")?;
        ensure!(fds.len() == 1, "the receiver got fds {fds:?}");
        write_fd(fds[0], b"one")?;
        m.reply_and_free(&call, &Payload::new())?;
        expect_same_fds(&before, "after freeing the buffer")
    })?;
    let c = Peer::open()?;
    let (reads, writes) = pipes(1)?;
    let decoys: Vec<u8> = (0u32..32).flat_map(|fd| fd.to_ne_bytes()).collect();
    let payload = fda_payload(&raw(&writes))?.buffer(&decoys);
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    drop(writes);
    expect_messages(&reads, &[b"one"])?;
    manager.join()
}

/// A native_handle as HIDL sends it: version, numFds, numInts, then the fds, then the ints.
/// The fds sit at offset 12 of the parent; only they change on the way.
fn native_handle(_: &Env) -> Outcome {
    fn handle(fds: &[i32]) -> Vec<u8> {
        [12, fds.len() as u32, 2]
            .into_iter()
            .chain(fds.iter().map(|&fd| fd as u32))
            .chain([0x1111_1111, 0x2222_2222])
            .flat_map(u32::to_ne_bytes)
            .collect()
    }
    let manager = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let received = m.received(&call);
        let [parent] = buffers(&received)?[..] else {
            return Err("expected one buffer".into());
        };
        let fds = received.fds().step("fds")?;
        let bytes = received.buffer(&parent).step("the handle")?;
        ensure!(
            bytes == handle(&fds),
            "the handle arrived as {bytes:?}, the receiver's fds are {fds:?}"
        );
        for (&fd, message) in fds.iter().zip(MESSAGES) {
            write_fd(fd, message)?;
        }
        m.reply_and_free(&call, &Payload::new())?;
        ensure!(
            fds.iter().all(|&fd| !is_open(fd)),
            "fds {fds:?} survived the free"
        );
        Ok(())
    })?;
    let c = Peer::open()?;
    let (reads, writes) = pipes(2)?;
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&handle(&raw(&writes)))
        .fd_array(0, 12, 2);
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    drop(writes);
    expect_messages(&reads, &MESSAGES[..2])?;
    manager.join()
}

/// An array of no fds needs no room: C accepts it at the very end of its parent, and even
/// past it.
fn zero_fds(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let before = open_fds()?;
        for offset in [16, 4096] {
            let (call, _) = m.next_call()?;
            let objects = m.received(&call).objects().step("objects")?;
            ensure!(
                objects.get(1)
                    == Some(&BinderObject::FdArray(FdArrayObject {
                        num_fds: 0,
                        parent: 0,
                        parent_offset: offset
                    })),
                "the empty array arrived as {objects:?}"
            );
            m.reply_and_free(&call, &Payload::new())?;
        }
        expect_same_fds(&before, "after the empty arrays")
    })?;
    let c = Peer::open()?;
    for offset in [16, 4096] {
        let payload = Payload::new()
            .bytes(LEAD)
            .buffer(&[7; 16])
            .fd_array(0, offset, 0);
        let reply = c.call_for_reply(0, 1, &payload)?;
        c.free(&reply)?;
    }
    manager.join()
}

/// A child pointer in the parent after the fds is fine (fixups go up, and the fds end at 8).
fn child_after_fds(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let received = m.received(&call);
        let fds = received.fds().step("fds")?;
        ensure!(fds.len() == 2, "the receiver got fds {fds:?}");
        let found = buffers(&received)?;
        let [parent, child] = found[..] else {
            return Err(format!("buffers {found:?}"));
        };
        let bytes = received.buffer(&parent).step("parent")?;
        ensure!(
            word(bytes, 8) == child.buffer && child.buffer == sg_start(&call) + 24,
            "the parent points at {:#x}, the child is at {:#x}",
            word(bytes, 8),
            child.buffer
        );
        for (&fd, message) in fds.iter().zip(MESSAGES) {
            write_fd(fd, message)?;
        }
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let (reads, writes) = pipes(2)?;
    let fds = raw(&writes);
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&parent_bytes(&fds)[..24])
        .fd_array(0, 0, 2)
        .child_buffer(&[9; 8], 0, 8);
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    drop(writes);
    expect_messages(&reads, &MESSAGES[..2])?;
    manager.join()
}

/// An fd array in a reply (BC_REPLY_SG) to a call with TF_ACCEPT_FDS: the caller gets the
/// fds, and loses them when it frees the reply.
fn fda_in_reply(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let (reads, writes) = pipes(2)?;
        m.reply(&call, &fda_payload(&raw(&writes))?)?;
        m.free(&call)?;
        drop(writes);
        expect_messages(&reads, &MESSAGES[..2])
    })?;
    let c = Peer::open()?;
    let before = open_fds()?;
    let reply = c
        .call_flags(0, 1, uapi::TF_ACCEPT_FDS, &Payload::new())?
        .reply
        .ok_or("the call failed")?;
    let fds = received_fds(&c, &reply, 2)?;
    for (&fd, message) in fds.iter().zip(MESSAGES) {
        write_fd(fd, message)?;
    }
    c.free(&reply)?;
    expect_same_fds(&before, "after freeing the reply")?;
    manager.join()
}

fn fda_in_reply_refused(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let (reads, writes) = pipes(1)?;
        m.reply(&call, &fda_payload(&raw(&writes))?)?;
        m.free(&call)?;
        drop(writes);
        expect_messages(&reads, &[b""])
    })?;
    let c = Peer::open()?;
    let exchange = c.call(0, 1, &Payload::new())?;
    ensure!(
        exchange.reply.is_none() && exchange.returns.ends_with(&[Return::FailedReply]),
        "the caller read {:?}",
        exchange.returns
    );
    expect_extended_error(&c.binder, uapi::BR_FAILED_REPLY, libc::EPERM)?;
    manager.join()
}

/// A parent buffer with one valid fd (`fd`) somewhere in its 16 bytes.
fn one_fd_parent(fd: i32, at: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 16];
    bytes[at..at + 4].copy_from_slice(&(fd as u32).to_ne_bytes());
    bytes
}

fn misaligned(_: &Env) -> Outcome {
    let (_read_end, write_end) = pipe()?;
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&one_fd_parent(write_end.as_raw_fd(), 2))
        .fd_array(0, 2, 1);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// The receiver's copy of the parent is 8-aligned, but the sender's is not: C checks both.
fn sender_misaligned(_: &Env) -> Outcome {
    let (_read_end, write_end) = pipe()?;
    let storage = [0u64; 3];
    let base = storage.as_ptr() as u64 + 1;
    // SAFETY: The 16 bytes from `base` lie inside `storage`, which only this function uses.
    unsafe {
        std::ptr::copy_nonoverlapping(
            one_fd_parent(write_end.as_raw_fd(), 0).as_ptr(),
            base as *mut u8,
            16,
        )
    };
    let payload = Payload::new()
        .bytes(LEAD)
        .any(BufferObject::new(base, 16))
        .fd_array(0, 0, 1);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

fn parent_not_buffer(_: &Env) -> Outcome {
    let (_read_end, write_end) = pipe()?;
    let payload = Payload::new()
        .bytes(LEAD)
        .fd(write_end.as_raw_fd())
        .fd_array(0, 0, 1);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// CVE-2020-0041: the array's parent must be an earlier object, not the array itself.
fn parent_is_itself(_: &Env) -> Outcome {
    let (_read_end, write_end) = pipe()?;
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&one_fd_parent(write_end.as_raw_fd(), 0))
        .fd_array(1, 0, 1);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// CVE-2020-0041: nor a buffer after it.
fn parent_is_later(_: &Env) -> Outcome {
    let (_read_end, write_end) = pipe()?;
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .fd_array(2, 0, 1)
        .buffer(&one_fd_parent(write_end.as_raw_fd(), 0));
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// The fds must lie inside the parent: three fds in 8 bytes, one fd at the end of it, or at
/// an offset that wraps.
fn outside_parent(_: &Env) -> Outcome {
    let (_read_end, write_end) = pipe()?;
    let fd = write_end.as_raw_fd();
    let parent = one_fd_parent(fd, 0);
    for (num_fds, offset) in [(3, 0), (1, 8), (1, u64::MAX - 1)] {
        let payload = Payload::new()
            .bytes(LEAD)
            .buffer(&parent[..8])
            .fd_array(0, offset, num_fds);
        expect_payload_refused(0, &payload, libc::EINVAL)
            .map_err(|e| format!("{num_fds} fds at {offset}: {e}"))?;
    }
    Ok(())
}

fn num_fds_overflow(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .fd_array(0, 0, u64::MAX / 4);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// A child pointer written over the array's fds breaks the upward order of fixups.
fn child_over_fds(_: &Env) -> Outcome {
    let (_reads, writes) = pipes(2)?;
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&parent_bytes(&raw(&writes)))
        .fd_array(0, 0, 2)
        .child_buffer(&[9; 8], 0, 0);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// One fd of the array is not open: EBADF, and the file of the one before goes back.
fn fd_invalid(_: &Env) -> Outcome {
    let (read_end, first) = pipe()?;
    let closed = pipe()?.1.into_raw_fd();
    // SAFETY: `closed` came from `into_raw_fd` and nothing else uses it.
    unsafe { libc::close(closed) };
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&parent_bytes(&[first.as_raw_fd(), closed]))
        .fd_array(0, 0, 2);
    expect_payload_refused(0, &payload, libc::EBADF)?;
    drop(first);
    await_eof(read_end.as_raw_fd(), "the valid fd of a refused array").map(drop)
}

fn without_accepts_fds(_: &Env) -> Outcome {
    let (read_end, write_end) = pipe()?;
    let payload = fda_payload(&[write_end.as_raw_fd()])?;
    expect_refused(false, |c| c.send_call(0, 1, &payload), libc::EPERM)?;
    drop(write_end);
    await_eof(read_end.as_raw_fd(), "the refused pipe").map(drop)
}
