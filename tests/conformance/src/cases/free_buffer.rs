//! BC_FREE_BUFFER of the wrong thing: the CVE-2019-2025 class, where a buffer the driver
//! still used could be freed from userspace. The C driver frees only the exact start of a
//! buffer it delivered to this process, once; anything else (an address inside a buffer, a
//! buffer queued but not yet read, a second free) is ignored without an error.
//!
//! One-way calls to one node are the detector: the driver holds back the next until the
//! previous one's buffer is freed, so a free that was wrongly taken would release it early.

use binder_client::{uapi, Commands, Payload, Return, Txn};

use crate::{
    ensure,
    harness::{notice, Case, Env, Outcome, Step},
};

use super::{
    peer::{spawn_manager, Peer},
    sg::{pattern, sg_start},
};

pub const CASES: &[Case] = &[
    Case::new(
        "cve_2019_2025_free_before_reply_still_replies",
        free_before_reply,
    ),
    Case::new("cve_2019_2025_double_free_ignored", double_free),
    Case::new(
        "cve_2019_2025_free_inside_buffer_ignored",
        free_inside_buffer,
    ),
    Case::new(
        "cve_2019_2025_free_of_undelivered_call_ignored",
        free_undelivered_call,
    ),
    Case::new(
        "cve_2019_2025_free_of_undelivered_reply_ignored",
        free_undelivered_reply,
    ),
];

/// A payload with data and a scatter-gather buffer, told apart by `seed`.
fn payload(seed: u8) -> Payload {
    Payload::new()
        .bytes(&pattern(seed, 64))
        .buffer(&pattern(seed.wrapping_add(100), 32))
}

/// Checks that `txn` holds [`payload`]`(seed)`.
fn expect_intact(peer: &Peer, txn: &Txn, seed: u8) -> Outcome {
    let received = peer.received(txn);
    let data = received.data().step("data")?;
    ensure!(
        data[..64] == pattern(seed, 64)[..],
        "the data of call {seed} reads {data:?}"
    );
    let sg = peer
        .mapping
        .bytes_at(sg_start(txn), 32)
        .ok_or("the scatter-gather area is outside the mapping")?;
    ensure!(
        sg == pattern(seed.wrapping_add(100), 32),
        "the buffer of call {seed} reads {sg:?}"
    );
    Ok(())
}

/// A call's buffer may be freed before the call is answered: the reply still goes out.
fn free_before_reply(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        expect_intact(m, &call, 1)?;
        m.free(&call)?;
        m.reply(&call, &Payload::new().bytes(b"answer"))?;
        m.free(&call)?;
        let (next, _) = m.next_call()?;
        expect_intact(m, &next, 2)?;
        m.reply_and_free(&next, &Payload::new())
    })?;
    let c = Peer::open()?;
    let reply = c.call_for_reply(0, 1, &payload(1))?;
    let data = c.received(&reply).data().step("reply")?;
    ensure!(data == b"answer", "the reply reads {data:?}");
    c.free(&reply)?;
    let reply = c.call_for_reply(0, 2, &payload(2))?;
    c.free(&reply)?;
    manager.join()
}

/// Freeing a buffer twice in one write: the second is ignored, and the write goes through.
fn double_free(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        m.send(
            Commands::new()
                .free_buffer(call.buffer)
                .free_buffer(call.buffer),
            "free twice",
        )?;
        let (next, _) = m.next_call()?;
        expect_intact(m, &next, 2)?;
        m.free(&next)
    })?;
    let c = Peer::open()?;
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &payload(1))?;
    c.send_call_flags(0, 2, uapi::TF_ONE_WAY, &payload(2))?;
    manager.join()
}

/// Addresses inside a delivered buffer, around it and outside the mapping are no buffer: the
/// buffer stays (its contents intact, the next one-way still held back) until its own start
/// is freed.
fn free_inside_buffer(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let base = m.mapping.addr() as u64;
        let guesses = [
            call.buffer + 8,
            call.buffer + 1,
            call.buffer + call.data_size,
            call.offsets,
            sg_start(&call),
            sg_start(&call) + 8,
            base + m.mapping.len() as u64,
            base.wrapping_sub(4096),
            0,
        ];
        let frees = guesses
            .iter()
            .fold(Commands::new(), |cmds, &at| cmds.free_buffer(at));
        m.send(frees, "free guessed addresses")?;
        let early = m.pending()?;
        ensure!(
            !early.iter().any(|r| matches!(r, Return::Transaction(_))),
            "the next one-way came after freeing only guessed addresses: {early:?}"
        );
        expect_intact(m, &call, 1)?;
        m.free(&call)?;
        let (next, _) = m.next_call()?;
        expect_intact(m, &next, 2)?;
        m.free(&next)
    })?;
    let c = Peer::open()?;
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &payload(1))?;
    c.send_call_flags(0, 2, uapi::TF_ONE_WAY, &payload(2))?;
    manager.join()
}

/// A buffer queued for the receiver but not yet read cannot be freed by guessing its address
/// (here: where the previous call's buffer was, the space it most likely reuses).
fn free_undelivered_call(_: &Env) -> Outcome {
    let (freed, await_freed) = notice()?;
    let (sent, await_sent) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        m.free(&first)?;
        freed.notify()?;
        await_sent.wait()?;
        m.send(
            Commands::new().free_buffer(first.buffer),
            "free where the next call probably is",
        )?;
        let (second, _) = m.next_call()?;
        expect_intact(m, &second, 2)?;
        m.reply_and_free(&second, &Payload::new())
    })?;
    let c = Peer::open()?;
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &payload(1))?;
    await_freed.wait()?;
    c.send_call(0, 2, &payload(2))?;
    sent.notify()?;
    let exchange = c.await_reply()?;
    c.free(&exchange.reply.ok_or("the second call failed")?)?;
    manager.join()
}

/// The caller cannot free its reply before reading it, at the address a reply most likely
/// gets (the start of its mapping).
fn free_undelivered_reply(_: &Env) -> Outcome {
    let (replied, await_replied) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        m.reply_and_free(&call, &payload(3))?;
        replied.notify()
    })?;
    let c = Peer::open()?;
    c.send_call(0, 1, &Payload::new())?;
    await_replied.wait()?;
    let guess = c.mapping.addr() as u64;
    c.send(Commands::new().free_buffer(guess), "free the unread reply")?;
    let reply = c.await_reply()?.reply.ok_or("the call failed")?;
    expect_intact(&c, &reply, 3)?;
    c.free(&reply)?;
    manager.join()
}
