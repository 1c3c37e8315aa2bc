//! One-way transactions: BR_TRANSACTION_COMPLETE at once, one outstanding buffer per node
//! (the next delivered after BC_FREE_BUFFER, oldest first), and half the receive buffer for
//! one-way payloads while synchronous calls still get through.

use binder_client::{uapi, Binder, Commands, Return, Txn};

use crate::{
    ensure,
    harness::{expect_errno, spawn_ready, Case, Env, Outcome, Step, BINDER},
};

use super::transactions::serving_manager;

pub const CASES: &[Case] = &[
    Case::new("oneway_completes_at_once", oneway_completes_at_once),
    Case::new(
        "oneway_one_at_a_time_in_order",
        oneway_one_at_a_time_in_order,
    ),
    Case::new(
        "oneway_space_is_half_the_buffer",
        oneway_space_is_half_the_buffer,
    ),
];

const MAP_SIZE: usize = 1 << 20;

/// Sends a one-way transaction and checks the immediate BR_TRANSACTION_COMPLETE (or `other`).
fn send_oneway(binder: &Binder, code: u32, data: &[u8]) -> Outcome<Return> {
    let commands = Commands::new().transaction(false, 0, code, uapi::TF_ONE_WAY, data);
    let returns = binder
        .write_then_read(&commands)
        .step("one-way transaction")?;
    match returns.as_slice() {
        [Return::Noop, ret] => Ok(ret.clone()),
        other => Err(format!("after a one-way transaction read {other:?}")),
    }
}

/// Reads one BR_TRANSACTION (a one-way one) on a non-blocking `binder`, or None.
fn try_next(binder: &Binder) -> Outcome<Option<Txn>> {
    match binder.read() {
        Ok(returns) => match returns.as_slice() {
            [Return::Noop, Return::Transaction(txn)] => Ok(Some(txn.clone())),
            other => Err(format!("server read {other:?}")),
        },
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) => Err(format!("server read: {e}")),
    }
}

fn oneway_completes_at_once(_: &Env) -> Outcome {
    let child = spawn_ready(|ready| {
        let (binder, mapping) = serving_manager()?;
        ready();
        let returns = binder.read().step("server read")?;
        let [Return::Noop, Return::Transaction(txn)] = returns.as_slice() else {
            return Err(format!("server read {returns:?}"));
        };
        ensure!(txn.flags & uapi::TF_ONE_WAY != 0, "flags {:#x}", txn.flags);
        ensure!(txn.sender_pid == 0, "one-way sender_pid {}", txn.sender_pid);
        ensure!(txn.code == 5, "code {}", txn.code);
        let data = mapping
            .bytes_at(txn.buffer, txn.data_size)
            .ok_or("payload outside")?;
        ensure!(data == b"fire and forget", "payload {data:?}");
        binder
            .send(&Commands::new().free_buffer(txn.buffer))
            .step("free")
    })?;
    let binder = Binder::open(BINDER).step("open")?;
    let ret = send_oneway(&binder, 5, b"fire and forget")?;
    ensure!(ret == Return::TransactionComplete, "got {ret:?}");
    child.join()
}

/// Three one-way transactions: the second is delivered only after the first's buffer is
/// freed, and so on, oldest first.
fn oneway_one_at_a_time_in_order(_: &Env) -> Outcome {
    let (binder, _mapping) = serving_manager()?;
    let child = spawn_ready(|ready| {
        let client = Binder::open(BINDER).step("open in client")?;
        for code in 1..=3 {
            let ret = send_oneway(&client, code, &[code as u8; 16])?;
            ensure!(
                ret == Return::TransactionComplete,
                "one-way {code}: {ret:?}"
            );
        }
        ready();
        Ok(())
    })?;
    child.join()?;
    binder.set_nonblocking(true).step("O_NONBLOCK")?;
    for code in 1..=3 {
        let txn = try_next(&binder)?.ok_or(format!("one-way {code} not delivered"))?;
        ensure!(
            txn.code == code,
            "delivered code {} where {code} was due",
            txn.code
        );
        ensure!(
            try_next(&binder)?.is_none(),
            "a second one-way came before the free"
        );
        binder
            .send(&Commands::new().free_buffer(txn.buffer))
            .step("free")?;
    }
    expect_errno(binder.read(), libc::EAGAIN, "read after the last one")
}

/// Unfreed one-way payloads fill half the buffer, then fail; a call still gets through.
fn oneway_space_is_half_the_buffer(_: &Env) -> Outcome {
    let child = spawn_ready(|ready| {
        let (binder, _mapping) = serving_manager()?;
        ready();
        // Hold the first one-way; the rest wait behind it with their buffers allocated.
        let first = loop {
            match binder.read().step("server read")?.as_slice() {
                [Return::Noop, Return::Transaction(txn)] => break txn.clone(),
                [Return::Noop] => continue,
                other => return Err(format!("server read {other:?}")),
            }
        };
        ensure!(first.flags & uapi::TF_ONE_WAY != 0, "first is not one-way");
        // Then the call: answer it.
        let call = loop {
            match binder.read().step("server read")?.as_slice() {
                [Return::Noop, Return::Transaction(txn)] => break txn.clone(),
                [Return::Noop] => continue,
                other => return Err(format!("server read {other:?}")),
            }
        };
        ensure!(
            call.flags & uapi::TF_ONE_WAY == 0,
            "expected the call, got a one-way"
        );
        binder
            .send(
                &Commands::new()
                    .free_buffer(call.buffer)
                    .transaction(true, 0, 0, 0, b"ok"),
            )
            .step("reply")
    })?;
    let binder = Binder::open(BINDER).step("open")?;
    let _mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    let chunk = vec![1u8; 100 << 10];
    let mut sent = 0;
    loop {
        match send_oneway(&binder, sent, &chunk)? {
            Return::TransactionComplete => sent += 1,
            Return::FailedReply => break,
            other => return Err(format!("one-way {sent}: {other:?}")),
        }
        ensure!(
            sent <= 6,
            "{sent} one-way payloads of 100 KiB fit in half of 1 MiB"
        );
    }
    ensure!(
        sent >= 4,
        "only {sent} one-way payloads of 100 KiB fit in half of 1 MiB"
    );
    binder
        .send(&Commands::new().transaction(false, 0, 9, 0, &chunk))
        .step("call")?;
    let returns = binder.read().step("read the reply")?;
    ensure!(
        matches!(
            returns.as_slice(),
            [Return::Noop, Return::TransactionComplete, Return::Reply(_)]
        ),
        "call after the one-way space filled: {returns:?}"
    );
    child.join()
}
