//! Transactions that cannot reach a target: BR_DEAD_REPLY / BR_FAILED_REPLY instead of an
//! ioctl error, BINDER_GET_EXTENDED_ERROR, and the pending error that holds back the write
//! half until it is read.

use binder_client::{uapi, Binder, Commands, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{
        expect_errno, expect_null_arg_errno, notice, spawn_ready, Case, Env, GuardedPage, Outcome,
        Step, BINDER,
    },
};

use super::{
    context_mgr::become_manager,
    peer::{spawn_manager, Peer},
};

pub const CASES: &[Case] = &[
    Case::new("extended_error_starts_clear", extended_error_starts_clear),
    Case::new(
        "sent_transactions_clear_the_extended_error",
        sent_transactions_clear_the_extended_error,
    ),
    Case::new(
        "transaction_without_manager_dead_reply",
        transaction_without_manager_dead_reply,
    ),
    Case::new(
        "transaction_to_unknown_handle_failed_reply",
        transaction_to_unknown_handle_failed_reply,
    ),
    Case::new(
        "transaction_sg_to_unknown_handle_failed_reply",
        transaction_sg_to_unknown_handle_failed_reply,
    ),
    Case::new(
        "reply_without_transaction_failed_reply",
        reply_without_transaction_failed_reply,
    ),
    Case::new(
        "manager_transaction_to_itself_failed_reply",
        manager_transaction_to_itself_failed_reply,
    ),
    Case::new(
        "failed_transaction_holds_back_commands",
        failed_transaction_holds_back_commands,
    ),
    Case::new(
        "manager_call_from_own_second_open_failed_reply",
        manager_call_from_own_second_open_failed_reply,
    ),
    Case::new(
        "transaction_lost_to_unwritable_read_buffer_fails_caller",
        transaction_lost_to_unwritable_read_buffer_fails_caller,
    ),
    Case::new(
        "second_failed_call_before_the_first_is_read_keeps_the_first_error",
        second_failure_keeps_the_first,
    ),
];

/// Checks the extended error, which the read also resets.
pub(super) fn expect_extended_error(binder: &Binder, command: u32, errno: i32) -> Outcome {
    let error = binder.extended_error().step("BINDER_GET_EXTENDED_ERROR")?;
    ensure!(
        error.command == command && error.param == -errno && error.id != 0,
        "extended error {error:?}, expected command {command:#x} param {}",
        -errno
    );
    let error = binder
        .extended_error()
        .step("second BINDER_GET_EXTENDED_ERROR")?;
    ensure!(
        error.command == uapi::BR_OK && error.param == 0 && error.id == 0,
        "extended error not reset: {error:?}"
    );
    Ok(())
}

/// Sends `commands`, then reads and expects exactly `code` after the BR_NOOP.
fn expect_failure(binder: &Binder, commands: &Commands, code: Return) -> Outcome {
    binder.send(commands).step("transaction")?;
    let returns = binder.read().step("read")?;
    ensure!(
        returns == [Return::Noop, code.clone()],
        "read {returns:?}, expected {code:?}"
    );
    Ok(())
}

fn extended_error_starts_clear(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let error = binder.extended_error().step("BINDER_GET_EXTENDED_ERROR")?;
    ensure!(
        error.command == uapi::BR_OK && error.param == 0 && error.id == 0,
        "fresh thread has extended error {error:?}"
    );
    expect_null_arg_errno(BINDER, uapi::BINDER_GET_EXTENDED_ERROR, libc::EFAULT)
}

/// A transaction that goes out leaves its sender's extended error at "this transaction, no
/// error", as C sets it when a transaction starts: an error not read yet is gone after a call
/// or a one-way transaction that went out, and a replier has no error after its reply, even
/// one that failed for the caller (who has the error).
fn sent_transactions_clear_the_extended_error(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        m.reply_and_free(&call, &Payload::new())?;
        expect_no_error(&m.binder, "the replier")?;
        let (oneway, _) = m.next_call()?;
        m.free(&oneway)?;
        let (call, _) = m.next_call()?;
        // A handle the replier does not have: the reply fails for the caller.
        let unknown = Payload::new().object(FlatObject::handle(7));
        let offsets = unknown.offsets_bytes();
        m.send(
            Commands::new().transaction_raw(true, 0, 1, 0, &unknown.data, &offsets),
            "reply with an unknown handle",
        )?;
        let returns = m.read()?;
        ensure!(
            returns == [Return::Noop, Return::TransactionComplete],
            "the replier of a failed reply read {returns:?}"
        );
        m.free(&call)?;
        expect_no_error(&m.binder, "the replier of a failed reply")
    })?;
    let c = Peer::open()?;
    let fail = || -> Outcome {
        let data = [0u8; 8];
        c.send(
            Commands::new().transaction(false, 7, 1, 0, &data),
            "call to an unknown handle",
        )?;
        let returns = c.pending()?;
        ensure!(returns == [Return::FailedReply], "read {returns:?}");
        Ok(())
    };
    fail()?;
    let reply = c.call_for_reply(0, 1, &Payload::new())?;
    c.free(&reply)?;
    expect_no_error(&c.binder, "the caller")?;
    fail()?;
    c.send_call_flags(0, 2, uapi::TF_ONE_WAY, &Payload::new())?;
    let returns = c.pending()?;
    ensure!(
        returns == [Return::TransactionComplete],
        "the one-way sender read {returns:?}"
    );
    expect_no_error(&c.binder, "the one-way sender")?;
    let exchange = c.call(0, 3, &Payload::new())?;
    ensure!(
        exchange.reply.is_none() && exchange.returns.contains(&Return::FailedReply),
        "the caller of a failed reply read {:?}",
        exchange.returns
    );
    expect_extended_error(&c.binder, uapi::BR_FAILED_REPLY, libc::EINVAL)?;
    manager.join()
}

/// Checks that `binder`'s extended error names a transaction and no error.
fn expect_no_error(binder: &Binder, who: &str) -> Outcome {
    let error = binder.extended_error().step("BINDER_GET_EXTENDED_ERROR")?;
    ensure!(
        error.command == uapi::BR_OK && error.param == 0 && error.id != 0,
        "{who}'s extended error {error:?}, expected a transaction's id and no error"
    );
    Ok(())
}

/// With no context manager, a transaction to handle 0 has nowhere to go.
fn transaction_without_manager_dead_reply(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let data = [0u8; 8];
    let call = Commands::new().transaction(false, 0, 1, 0, &data);
    expect_failure(&binder, &call, Return::DeadReply)?;
    expect_extended_error(&binder, uapi::BR_DEAD_REPLY, libc::EINVAL)
}

fn transaction_to_unknown_handle_failed_reply(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let data = [0u8; 8];
    let call = Commands::new().transaction(false, 7, 1, 0, &data);
    expect_failure(&binder, &call, Return::FailedReply)?;
    expect_extended_error(&binder, uapi::BR_FAILED_REPLY, libc::EINVAL)
}

fn transaction_sg_to_unknown_handle_failed_reply(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let data = [0u8; 8];
    let call = Commands::new().transaction_sg(false, 9, 1, &data, 64);
    expect_failure(&binder, &call, Return::FailedReply)?;
    expect_extended_error(&binder, uapi::BR_FAILED_REPLY, libc::EINVAL)
}

/// A reply needs a transaction to reply to.
fn reply_without_transaction_failed_reply(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let data = [0u8; 8];
    let reply = Commands::new().transaction(true, 0, 0, 0, &data);
    expect_failure(&binder, &reply, Return::FailedReply)?;
    expect_extended_error(&binder, uapi::BR_FAILED_REPLY, libc::EPROTO)
}

/// The context manager cannot call itself through handle 0.
fn manager_transaction_to_itself_failed_reply(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    become_manager(&binder)?;
    let data = [0u8; 8];
    let call = Commands::new().transaction(false, 0, 1, 0, &data);
    expect_failure(&binder, &call, Return::FailedReply)?;
    expect_extended_error(&binder, uapi::BR_FAILED_REPLY, libc::EINVAL)
}

/// While a failed transaction's error waits to be read, no further command is carried out:
/// the write stops short without an ioctl error.
fn failed_transaction_holds_back_commands(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let data = [0u8; 8];
    let call = Commands::new().transaction(false, 7, 1, 0, &data);
    let batch = call.clone().enter_looper();
    let done = binder.write(&batch);
    done.result.step("transaction, then enter looper")?;
    ensure!(
        done.write_consumed == call.len() as u64,
        "write_consumed {}, expected {} (the transaction only)",
        done.write_consumed,
        call.len()
    );
    let done = binder.write(&Commands::new().enter_looper());
    done.result.step("enter looper with an error pending")?;
    ensure!(
        done.write_consumed == 0,
        "write_consumed {} with an error pending",
        done.write_consumed
    );
    let returns = binder.read().step("read")?;
    ensure!(
        returns == [Return::Noop, Return::FailedReply],
        "read {returns:?}"
    );
    let done = binder.write(&Commands::new().enter_looper());
    done.result.step("enter looper after the read")?;
    ensure!(
        done.write_consumed == 4,
        "write_consumed {} after the read",
        done.write_consumed
    );
    Ok(())
}

/// The process that is the context manager through one open file calls handle 0 through a
/// second open file of its own. The C driver tells the manager's process by its pid, not by
/// the file, and refuses the call as one from the manager itself: BR_FAILED_REPLY, at once,
/// and EINVAL in the extended error.
fn manager_call_from_own_second_open_failed_reply(_: &Env) -> Outcome {
    // Mapped and a looper, so that a call let through would be taken.
    let _manager = Peer::manager()?;
    let second = Binder::open(BINDER).step("second open")?;
    let data = [0u8; 8];
    second
        .send(&Commands::new().transaction(false, 0, 1, 0, &data))
        .step("call handle 0 through the second file")?;
    let returns = second.read_pending().step("read")?;
    ensure!(
        returns == [Return::FailedReply],
        "the second file read {returns:?}, expected [FailedReply]"
    );
    expect_extended_error(&second, uapi::BR_FAILED_REPLY, libc::EINVAL)
}

/// Where the server's read starts: 40 bytes before the page it cannot write, so that the
/// BR_NOOP and the BR_TRANSACTION code fit and the transaction data runs into that page.
pub(super) const READ_BEFORE_GUARD: u64 = 40;

/// Reads on `server` into a buffer whose end it cannot write, and checks that the read fails
/// with EFAULT and reports nothing read, as the C driver does when a BR_TRANSACTION cannot be
/// copied out.
pub(super) fn read_into_guard(server: &Peer) -> Outcome {
    let guarded = GuardedPage::new()?;
    let done = server
        .binder
        .read_raw(guarded.guard() - READ_BEFORE_GUARD, 256);
    expect_errno(
        done.result,
        libc::EFAULT,
        "a read whose BR_TRANSACTION runs into an unwritable page",
    )?;
    ensure!(
        done.read_consumed == 0,
        "the failed read reports read_consumed {}",
        done.read_consumed
    );
    Ok(())
}

/// A call comes to a server whose read buffer runs into a page it cannot write, so the
/// BR_TRANSACTION cannot be copied out. The C driver fails that read with EFAULT (nothing
/// read), and fails the call for its caller before the read returns: the caller reads
/// BR_TRANSACTION_COMPLETE and BR_FAILED_REPLY. The server's thread is not left holding the
/// call: it takes the next call, from another client, and answers it.
fn transaction_lost_to_unwritable_read_buffer_fails_caller(_: &Env) -> Outcome {
    let server = Peer::manager()?;
    let (server_failed, failure_seen) = notice()?;
    let first = spawn_ready(|ready| {
        let c = Peer::open()?;
        c.send_call(0, 1, &Payload::new().bytes(b"first"))?;
        ready();
        failure_seen.wait()?;
        let returns = c.pending()?;
        ensure!(
            returns == [Return::TransactionComplete, Return::FailedReply],
            "the first caller read {returns:?}, expected [TransactionComplete, FailedReply]"
        );
        Ok(())
    })?;
    read_into_guard(&server)?;
    server_failed.notify()?;
    first.join()?;

    let second = spawn_ready(|ready| {
        let c = Peer::open()?;
        c.send_call(0, 2, &Payload::new().bytes(b"second"))?;
        ready();
        let reply = c.await_reply()?.reply.ok_or("the second call failed")?;
        let bytes = c.mapping.bytes_at(reply.buffer, reply.data_size);
        ensure!(
            bytes == Some(&b"served"[..]),
            "the second caller got {bytes:?}"
        );
        c.free(&reply)
    })?;
    let returns = server.pending()?;
    let [Return::Transaction(call)] = returns.as_slice() else {
        return Err(format!(
            "after the failed read, the server read {returns:?} where the second call was due"
        ));
    };
    ensure!(call.code == 2, "the server got {call:?}");
    server.reply_and_free(call, &Payload::new().bytes(b"served"))?;
    second.join()
}

/// A thread sends a call and, without reading, a second one once the first has failed: a
/// thread has room for one undelivered reply error, and the C driver keeps the first
/// (`binder_send_failed_reply` only warns about the second). The manager fails the first
/// call with a bad reply (an `offsets_size` that is no multiple of 8: `BR_FAILED_REPLY` for
/// the caller, `BR_TRANSACTION_COMPLETE` for the manager), then leaves the driver
/// (`BINDER_THREAD_EXIT`) with the second call on its stack, which would fail it with
/// `BR_DEAD_REPLY`. The caller reads each call's `BR_TRANSACTION_COMPLETE` and only the first
/// error. The first failure took the first call off the caller's stack, and a pending reply
/// error does not hold back commands, so the second call is allowed.
fn second_failure_keeps_the_first(_: &Env) -> Outcome {
    let (first_failed, await_first_failed) = notice()?;
    let (second_failed, await_second_failed) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        m.send(
            Commands::new().transaction_raw(true, 0, first.code, 0, &[0; 8], &[0; 4]),
            "reply with a bad offsets_size",
        )?;
        let returns = m.pending()?;
        ensure!(
            returns == [Return::TransactionComplete],
            "the manager's bad reply read {returns:?}, expected BR_TRANSACTION_COMPLETE"
        );
        m.free(&first)?;
        first_failed.notify()?;
        let (second, _) = m.next_call()?;
        m.binder
            .thread_exit()
            .step("BINDER_THREAD_EXIT with the second call on the stack")?;
        second_failed.notify()?;
        m.free(&second)
    })?;
    let client = Peer::open()?;
    client.send_call(0, 1, &Payload::new().bytes(b"first"))?;
    await_first_failed.wait()?;
    client.send_call(0, 2, &Payload::new().bytes(b"second"))?;
    await_second_failed.wait()?;
    let returns = client.pending()?;
    ensure!(
        returns
            == [
                Return::TransactionComplete,
                Return::FailedReply,
                Return::TransactionComplete
            ],
        "the caller read {returns:?}, expected BR_TRANSACTION_COMPLETE, BR_FAILED_REPLY (the \
         first call's error, kept), BR_TRANSACTION_COMPLETE"
    );
    manager.join()
}
