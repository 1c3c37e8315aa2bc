//! One-way transactions: BR_TRANSACTION_COMPLETE at once, one outstanding buffer per node
//! (the next delivered after BC_FREE_BUFFER, oldest first), and half the receive buffer for
//! one-way payloads while synchronous calls still get through.

use binder_client::{uapi, Binder, Commands, Payload, Return, Txn};

use crate::{
    ensure,
    harness::{expect_errno, notice, spawn_ready, Case, Driver, Env, Outcome, Step, BINDER},
};

use super::{
    context_mgr::become_manager, peer::Peer, transaction_errors::read_into_guard,
    transactions::serving_manager,
};

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
    Case::new(
        "oneway_spam_suspect_once_per_episode_for_the_sender",
        oneway_spam_suspect_once_per_episode,
    ),
    Case::only(
        Driver::C,
        "oneway_lost_to_unwritable_read_buffer_holds_node_queue",
        oneway_lost_to_unwritable_read_buffer_holds_node_queue,
    ),
    Case::only(
        Driver::Rust,
        "oneway_lost_to_unwritable_read_buffer_frees_node_queue",
        oneway_lost_to_unwritable_read_buffer_frees_node_queue,
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

/// A one-way transaction comes to a server whose read buffer runs into a page it cannot
/// write, so the BR_TRANSACTION cannot be copied out and the read fails with EFAULT. On both
/// drivers the transaction is gone, its buffer was never returned to userspace and so cannot be
/// freed by it, and a synchronous call still gets through.
///
/// What becomes of the buffer differs, deliberately (the README says so). The C driver keeps
/// it where it is, at the start of the mapping, until the process closes the device, and the
/// node's one-way queue, which waits for that buffer to be freed, holds every later one-way
/// transaction back for good: BC_FREE_BUFFER of its address is skipped and changes nothing.
fn oneway_lost_to_unwritable_read_buffer_holds_node_queue(_: &Env) -> Outcome {
    lost_oneway(LostOneway::HoldsQueue)
}

/// As [`oneway_lost_to_unwritable_read_buffer_holds_node_queue`]; rust_binder gives the lost
/// transaction's buffer back at once, and the node's next one-way transaction is delivered.
fn oneway_lost_to_unwritable_read_buffer_frees_node_queue(_: &Env) -> Outcome {
    lost_oneway(LostOneway::FreesQueue)
}

/// What a driver does with the node's one-way queue after a one-way was lost.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LostOneway {
    /// The C driver: the lost buffer stays, the queue waits for it for good.
    HoldsQueue,
    /// rust_binder: the lost buffer goes back, the queue moves on.
    FreesQueue,
}

fn lost_oneway(driver: LostOneway) -> Outcome {
    const LOST: &[u8] = b"the lost one-way";
    let server = Peer::manager()?;
    let (server_failed, failure_seen) = notice()?;
    let (more_sent, more_seen) = notice()?;
    let client = spawn_ready(|ready| {
        let c = Peer::open()?;
        let ret = send_oneway(&c.binder, 1, LOST)?;
        ensure!(ret == Return::TransactionComplete, "first one-way: {ret:?}");
        ready();
        failure_seen.wait()?;
        let ret = send_oneway(&c.binder, 2, b"the next one-way")?;
        ensure!(
            ret == Return::TransactionComplete,
            "second one-way: {ret:?}"
        );
        c.send_call(0, 3, &Payload::new().bytes(b"call"))?;
        more_sent.notify()?;
        let reply = c.await_reply()?.reply.ok_or("the call failed")?;
        c.free(&reply)
    })?;
    read_into_guard(&server)?;
    let start = server.mapping.addr() as u64;
    if driver == LostOneway::HoldsQueue {
        let kept = server.mapping.bytes_at(start, LOST.len() as u64);
        ensure!(
            kept == Some(LOST),
            "the start of the mapping holds {kept:?}, not the lost one-way's payload"
        );
    }
    // Freeing the buffer that was never returned does nothing: with nothing else delivered
    // yet, there is no buffer there that userspace may free.
    server.send(
        Commands::new().free_buffer(start),
        "BC_FREE_BUFFER of the buffer never returned",
    )?;
    server_failed.notify()?;
    more_seen.wait()?;

    let returns = server.pending()?;
    let (oneways, calls): (Vec<_>, Vec<_>) = returns
        .iter()
        .filter_map(|ret| match ret {
            Return::Transaction(txn) => Some(txn),
            _ => None,
        })
        .partition(|txn| txn.flags & uapi::TF_ONE_WAY != 0);
    let [call] = calls.as_slice() else {
        return Err(format!(
            "with a one-way and a call sent after the lost one-way, the server read {returns:?} \
             (expected one call)"
        ));
    };
    ensure!(
        call.code == 3,
        "the server got {call:?} where the call was due"
    );
    match driver {
        LostOneway::HoldsQueue => {
            ensure!(
                oneways.is_empty() && returns.len() == 1,
                "the lost one-way's node let through {returns:?} (expected the call alone)"
            );
            ensure!(
                call.buffer != start,
                "the call's buffer took the lost one-way's place at the start of the mapping"
            );
        }
        LostOneway::FreesQueue => {
            let [next] = oneways.as_slice() else {
                return Err(format!(
                    "the node's next one-way did not come after the lost one: {returns:?}"
                ));
            };
            ensure!(
                next.code == 2,
                "the server got {next:?} as the next one-way"
            );
            server.free(next)?;
        }
    }
    server.reply_and_free(call, &Payload::new())?;
    client.join()
}

/// The flooded receiver's mapping: 128 KiB, of which one-way payloads may use 64 KiB.
pub(super) const SMALL_MAP_SIZE: usize = 128 << 10;
/// The payload of each one-way transaction of a flood: 64 of them fill the one-way half.
const FLOOD_PAYLOAD: [u8; 1024] = [0x5a; 1024];
/// One more than fits.
pub(super) const FLOOD_COUNT: usize = 65;

/// Sends [`FLOOD_COUNT`] one-way transactions to the manager, which reads none of them, and
/// returns what the sender read after each.
pub(super) fn flood(binder: &Binder) -> Outcome<Vec<Return>> {
    (0..FLOOD_COUNT)
        .map(|i| send_oneway(binder, i as u32, &FLOOD_PAYLOAD))
        .collect()
}

/// What a flooding sender reads: BR_TRANSACTION_COMPLETE, except for the 65th transaction,
/// which finds no room (BR_FAILED_REPLY), and, if `reported`, the 52nd: it is the first to
/// leave less than a tenth of the buffer for one-way payloads while its sender holds more
/// than 50 of them, and the sender hears BR_ONEWAY_SPAM_SUSPECT in its place.
fn expected_flood(reported: bool) -> Vec<Return> {
    (1..=FLOOD_COUNT)
        .map(|n| match n {
            52 if reported => Return::OnewaySpamSuspect,
            FLOOD_COUNT => Return::FailedReply,
            _ => Return::TransactionComplete,
        })
        .collect()
}

/// One-way spam detection, as the C driver does it. A receiver whose one-way room runs low
/// suspects a sender that holds more than 50 of its one-way buffers (or more than a quarter of
/// the buffer), once, until the room recovers; the sender hears of it only if the *sender*
/// enabled BINDER_ENABLE_ONEWAY_SPAM_DETECTION. Three floods: the receiver alone enabled it
/// (nothing reported), then the sender too (one report), then again after the receiver freed
/// every buffer (one report again).
fn oneway_spam_suspect_once_per_episode(_: &Env) -> Outcome {
    let (flooded, await_flood) = notice()?;
    let (drained, await_drain) = notice()?;
    let receiver = spawn_ready(|ready| {
        let binder = Binder::open(BINDER).step("open")?;
        let _mapping = binder.map(SMALL_MAP_SIZE, libc::PROT_READ).step("mmap")?;
        binder
            .enable_oneway_spam_detection(true)
            .step("BINDER_ENABLE_ONEWAY_SPAM_DETECTION in the receiver")?;
        become_manager(&binder)?;
        binder
            .send(&Commands::new().enter_looper())
            .step("enter looper")?;
        ready();
        for _ in 0..3 {
            await_flood.wait()?;
            // The node's one-way transactions come one at a time, each after the one
            // before was freed.
            for _ in 0..FLOOD_COUNT - 1 {
                let returns = binder.read().step("receiver read")?;
                let [Return::Noop, Return::Transaction(txn)] = returns.as_slice() else {
                    return Err(format!("the receiver read {returns:?}"));
                };
                binder
                    .send(&Commands::new().free_buffer(txn.buffer))
                    .step("free")?;
            }
            drained.notify()?;
        }
        Ok(())
    })?;
    let sender = Binder::open(BINDER).step("open")?;
    let rounds = [
        (false, "the receiver enabled detection, the sender did not"),
        (true, "the sender enabled detection"),
        (true, "again, after the receiver freed everything"),
    ];
    for (sender_enabled, what) in rounds {
        sender
            .enable_oneway_spam_detection(sender_enabled)
            .step("BINDER_ENABLE_ONEWAY_SPAM_DETECTION in the sender")?;
        let returns = flood(&sender)?;
        let expected = expected_flood(sender_enabled);
        ensure!(
            returns == expected,
            "{what}: the sender read {returns:?}, expected {expected:?}"
        );
        flooded.notify()?;
        await_drain.wait()?;
    }
    receiver.join()
}
