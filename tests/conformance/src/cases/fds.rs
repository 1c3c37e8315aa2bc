//! File descriptors in transactions (`BINDER_TYPE_FD`): the driver takes the sender's file
//! when the transaction is sent and installs it in the receiver, as a new close-on-exec fd,
//! when the receiver reads it. Only a node made with FLAT_BINDER_FLAG_ACCEPTS_FDS takes fds in
//! calls, and only a call sent with TF_ACCEPT_FDS takes them in its reply.
//!
//! Each case sends one end of a pipe and keeps the other, which proves that the same open file
//! arrived (data written through the received fd comes out) and that nobody, the driver
//! included, kept a reference (the read end sees EOF once the ends it knows of are closed).

use std::os::fd::{AsRawFd, IntoRawFd};

use binder_client::{uapi, BinderObject, FdObject, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{notice, spawn_ready, Case, Env, Outcome, Step},
};

use super::{
    files::{
        await_eof, exhaust_fds, file_id, is_cloexec, is_open, offset_of, pipe, read_exact_fd,
        temp_file, write_fd,
    },
    peer::{expect_refused, spawn_fd_manager, spawn_manager, Peer},
    transaction_errors::expect_extended_error,
};

pub const CASES: &[Case] = &[
    Case::new("fd_arrives_as_new_cloexec_fd_of_same_file", fd_arrives),
    Case::new("fd_shares_the_open_file_description", fd_shares_offset),
    Case::new(
        "fd_not_closed_when_receiver_frees_buffer",
        fd_kept_after_free,
    ),
    Case::new(
        "fd_closed_by_sender_after_send_still_arrives",
        fd_closed_after_send,
    ),
    Case::new(
        "fd_to_node_without_accepts_fds_eperm",
        fd_without_accepts_fds,
    ),
    Case::new(
        "fd_node_accepts_fds_fixed_at_creation",
        fd_flags_fixed_at_creation,
    ),
    Case::new("fd_invalid_at_send_ebadf", fd_invalid),
    Case::new("fd_in_reply_with_accept_fds_arrives", fd_in_reply),
    Case::new("fd_in_reply_without_accept_fds_eperm", fd_in_reply_refused),
    Case::new("fd_receiver_out_of_fds_fails_call", fd_receiver_out_of_fds),
];

const COOKIE: u64 = 0xf11e_c00c;

/// The payload the fd cases send: the file's identity (device, inode) in 16 bytes, then the
/// fd object.
fn fd_payload(fd: i32) -> Outcome<Payload> {
    let (dev, ino) = file_id(fd)?;
    Ok(Payload::new()
        .bytes(&dev.to_ne_bytes())
        .bytes(&ino.to_ne_bytes())
        .any(FdObject {
            fd: fd as u32,
            cookie: COOKIE,
        }))
}

/// Checks the one fd object of a call sent with [`fd_payload`] and returns the receiver's fd:
/// open, close-on-exec, the same file as the sender's, the cookie kept.
fn received_fd(m: &Peer, call: &binder_client::Txn) -> Outcome<i32> {
    let received = m.received(call);
    let data = received.data().step("data")?;
    let objects = received.objects().step("objects")?;
    let [BinderObject::Fd(object)] = objects[..] else {
        return Err(format!("expected one fd object, got {objects:?}"));
    };
    ensure!(
        object.cookie == COOKIE,
        "the cookie arrived as {:#x}",
        object.cookie
    );
    let fd = object.fd as i32;
    ensure!(is_open(fd), "the receiver's fd {fd} is not open");
    ensure!(is_cloexec(fd)?, "the receiver's fd {fd} lacks FD_CLOEXEC");
    let word = |at: usize| u64::from_ne_bytes(data[at..at + 8].try_into().unwrap_or_default());
    let sent = (word(0), word(8));
    let got = file_id(fd)?;
    ensure!(
        got == sent,
        "fd {fd} is file {got:?}, the sender sent {sent:?}"
    );
    Ok(fd)
}

fn close(fd: i32) {
    // SAFETY: The fd was installed in this process by the driver, and this is its only user.
    unsafe { libc::close(fd) };
}

fn fd_arrives(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let fd = received_fd(m, &call)?;
        // The driver clears the upper half of the fd's 8-byte field.
        let data = m.received(&call).data().step("data")?;
        ensure!(
            data[16 + 12..16 + 16] == [0; 4],
            "the word above the fd arrived as {:?}",
            &data[16 + 12..16 + 16]
        );
        write_fd(fd, b"through")?;
        close(fd);
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let (read_end, write_end) = pipe()?;
    let mut payload = fd_payload(write_end.as_raw_fd())?;
    payload.data[16 + 12..16 + 16].fill(0xff);
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    drop(write_end);
    let bytes = read_exact_fd(read_end.as_raw_fd(), 7, "the pipe")?;
    ensure!(bytes == b"through", "the pipe carried {bytes:?}");
    await_eof(
        read_end.as_raw_fd(),
        "the pipe after the receiver closed it",
    )?;
    manager.join()
}

/// The receiver gets the sender's open file itself, not a new open of the same file: they
/// share the file offset.
fn fd_shares_offset(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let fd = received_fd(m, &call)?;
        let at = offset_of(fd)?;
        ensure!(at == 3, "the receiver's offset is {at}, the sender's was 3");
        write_fd(fd, b"defg")?;
        close(fd);
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let file = temp_file()?;
    write_fd(file.as_raw_fd(), b"abc")?;
    let reply = c.call_for_reply(0, 1, &fd_payload(file.as_raw_fd())?)?;
    c.free(&reply)?;
    let at = offset_of(file.as_raw_fd())?;
    ensure!(
        at == 7,
        "the sender's offset is {at} after the receiver wrote"
    );
    manager.join()
}

/// A BINDER_TYPE_FD belongs to the receiver: freeing the buffer leaves it open.
fn fd_kept_after_free(_: &Env) -> Outcome {
    let manager = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let fd = received_fd(m, &call)?;
        m.reply_and_free(&call, &Payload::new())?;
        ensure!(is_open(fd), "fd {fd} was closed when the buffer was freed");
        write_fd(fd, b"kept")?;
        close(fd);
        Ok(())
    })?;
    let c = Peer::open()?;
    let (read_end, write_end) = pipe()?;
    let reply = c.call_for_reply(0, 1, &fd_payload(write_end.as_raw_fd())?)?;
    c.free(&reply)?;
    drop(write_end);
    let bytes = await_eof(read_end.as_raw_fd(), "the pipe")?;
    ensure!(bytes == b"kept", "the pipe carried {bytes:?}");
    manager.join()
}

/// The file is taken when the transaction is sent: the sender may close its fd before the
/// receiver reads, and the receiver still gets the file.
fn fd_closed_after_send(_: &Env) -> Outcome {
    let (sent, await_sent) = notice()?;
    let manager = spawn_fd_manager(move |m| {
        await_sent.wait()?;
        let (call, _) = m.next_call()?;
        let fd = received_fd(m, &call)?;
        write_fd(fd, b"late")?;
        close(fd);
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let (read_end, write_end) = pipe()?;
    c.send_call(0, 1, &fd_payload(write_end.as_raw_fd())?)?;
    drop(write_end);
    sent.notify()?;
    let reply = c.await_reply()?;
    let reply = reply
        .reply
        .ok_or_else(|| format!("the call failed: {:?}", reply.returns))?;
    c.free(&reply)?;
    let bytes = await_eof(read_end.as_raw_fd(), "the pipe")?;
    ensure!(bytes == b"late", "the pipe carried {bytes:?}");
    manager.join()
}

/// A node made without ACCEPTS_FDS (here the manager's, from BINDER_SET_CONTEXT_MGR) refuses
/// fds with EPERM; that check comes before the fd is looked at, so an fd that is not even
/// open gets EPERM too. The refused file is not kept.
fn fd_without_accepts_fds(_: &Env) -> Outcome {
    let (read_end, write_end) = pipe()?;
    let payload = fd_payload(write_end.as_raw_fd())?;
    expect_refused(false, |c| c.send_call(0, 1, &payload), libc::EPERM)?;
    let closed = Payload::new().any(FdObject {
        fd: 1000,
        cookie: 0,
    });
    ensure!(!is_open(1000), "fd 1000 is open");
    expect_refused(false, |c| c.send_call(0, 1, &closed), libc::EPERM)?;
    drop(write_end);
    await_eof(read_end.as_raw_fd(), "the refused pipe").map(drop)
}

/// A node's ACCEPTS_FDS comes from the object that made it: sending the same object again
/// with the flag does not change it.
fn fd_flags_fixed_at_creation(_: &Env) -> Outcome {
    const PTR: u64 = 0xacce;
    let manager = spawn_manager(|m| {
        let (first, _) = m.next_call()?;
        m.send(
            binder_client::Commands::new()
                .acquire(1)
                .free_buffer(first.buffer),
            "keep the handle",
        )?;
        m.reply(&first, &Payload::new())?;
        let (second, _) = m.next_call()?;
        let handles: Vec<_> = m
            .objects(&second)?
            .iter()
            .map(|o| o.handle_value())
            .collect();
        ensure!(handles == [1], "the second object came as {handles:?}");
        m.reply_and_free(&second, &Payload::new())?;
        let (_read_end, write_end) = pipe()?;
        m.send_call(1, 1, &fd_payload(write_end.as_raw_fd())?)?;
        let returns = m.pending()?;
        ensure!(
            returns.contains(&Return::FailedReply),
            "an fd to a node made without ACCEPTS_FDS: {returns:?}"
        );
        expect_extended_error(&m.binder, uapi::BR_FAILED_REPLY, libc::EPERM)?;
        m.send(binder_client::Commands::new().release(1), "let go")
    })?;
    let c = Peer::open()?;
    let without = FlatObject::binder(PTR, PTR);
    let with = FlatObject {
        flags: uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS,
        ..without
    };
    let reply = c.call_for_reply(0, 1, &Payload::new().object(without))?;
    c.free(&reply)?;
    let reply = c.call_for_reply(0, 2, &Payload::new().object(with))?;
    c.free(&reply)?;
    manager.join()
}

fn fd_invalid(_: &Env) -> Outcome {
    let (read_end, write_end) = pipe()?;
    let number = write_end.into_raw_fd();
    close(number);
    drop(read_end);
    ensure!(!is_open(number), "fd {number} is still open");
    let payload = Payload::new().fd(number);
    expect_refused(true, |c| c.send_call(0, 1, &payload), libc::EBADF)?;
    let negative = Payload::new().fd(-1);
    expect_refused(true, |c| c.send_call(0, 1, &negative), libc::EBADF)
}

/// A call with TF_ACCEPT_FDS takes an fd in its reply, from any replier.
fn fd_in_reply(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        ensure!(
            call.flags == uapi::TF_ACCEPT_FDS,
            "the call came with flags {:#x}",
            call.flags
        );
        let (read_end, write_end) = pipe()?;
        m.reply(&call, &fd_payload(write_end.as_raw_fd())?)?;
        m.free(&call)?;
        drop(write_end);
        let bytes = await_eof(read_end.as_raw_fd(), "the replied pipe")?;
        ensure!(bytes == b"back", "the pipe carried {bytes:?}");
        Ok(())
    })?;
    let c = Peer::open()?;
    let reply = c
        .call_flags(0, 1, uapi::TF_ACCEPT_FDS, &Payload::new())?
        .reply
        .ok_or("the call failed")?;
    ensure!(
        reply.target_ptr == 0 && reply.cookie == 0,
        "the reply {reply:?}"
    );
    let fd = received_fd(&c, &reply)?;
    write_fd(fd, b"back")?;
    close(fd);
    c.free(&reply)?;
    manager.join()
}

/// A reply with an fd to a call without TF_ACCEPT_FDS fails for the caller (BR_FAILED_REPLY,
/// EPERM in its extended error); the replier reads only BR_TRANSACTION_COMPLETE.
fn fd_in_reply_refused(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let (read_end, write_end) = pipe()?;
        m.reply(&call, &fd_payload(write_end.as_raw_fd())?)?;
        let rest = m.pending()?;
        ensure!(
            rest.is_empty(),
            "the replier read {rest:?} after its complete"
        );
        m.free(&call)?;
        drop(write_end);
        await_eof(read_end.as_raw_fd(), "the refused pipe").map(drop)
    })?;
    let c = Peer::open()?;
    let exchange = c.call(0, 1, &Payload::new())?;
    ensure!(
        exchange.reply.is_none()
            && exchange.returns.ends_with(&[Return::FailedReply])
            && exchange.returns.contains(&Return::TransactionComplete),
        "the caller read {:?}",
        exchange.returns
    );
    expect_extended_error(&c.binder, uapi::BR_FAILED_REPLY, libc::EPERM)?;
    manager.join()
}

/// The fd is installed when the receiver reads: a receiver without a free fd cannot take the
/// transaction, which fails for the caller (BR_FAILED_REPLY) and is gone for the receiver;
/// the file goes back.
fn fd_receiver_out_of_fds(_: &Env) -> Outcome {
    let (sent, await_sent) = notice()?;
    let manager = spawn_ready(|ready| {
        let m = Peer::manager_accepting_fds()?;
        exhaust_fds(&m.binder)?;
        ready();
        await_sent.wait()?;
        let returns = m.pending()?;
        ensure!(
            !returns.iter().any(|r| matches!(r, Return::Transaction(_))),
            "a receiver without free fds read {returns:?}"
        );
        Ok(())
    })?;
    let c = Peer::open()?;
    let (read_end, write_end) = pipe()?;
    c.send_call(0, 1, &fd_payload(write_end.as_raw_fd())?)?;
    drop(write_end);
    sent.notify()?;
    let exchange = c.await_reply()?;
    ensure!(
        exchange.reply.is_none() && exchange.returns.contains(&Return::FailedReply),
        "the caller read {:?}",
        exchange.returns
    );
    let error = c.binder.extended_error().step("extended error")?;
    ensure!(
        error.command == uapi::BR_OK && error.param == 0,
        "the caller's extended error after a failed install: {error:?}"
    );
    await_eof(read_end.as_raw_fd(), "the pipe that could not be installed")?;
    manager.join()
}
