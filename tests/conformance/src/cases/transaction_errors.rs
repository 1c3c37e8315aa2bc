//! Transactions that cannot reach a target: BR_DEAD_REPLY / BR_FAILED_REPLY instead of an
//! ioctl error, BINDER_GET_EXTENDED_ERROR, and the pending error that holds back the write
//! half until it is read.

use binder_client::{uapi, Binder, Commands, Return};

use crate::{
    ensure,
    harness::{expect_null_arg_errno, Case, Env, Outcome, Step, BINDER},
};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::new("extended_error_starts_clear", extended_error_starts_clear),
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
];

/// Checks the extended error, which the read also resets.
fn expect_extended_error(binder: &Binder, command: u32, errno: i32) -> Outcome {
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
