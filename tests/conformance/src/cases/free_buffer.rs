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
    Case::new(
        "cve_2019_2025_reply_sent_from_the_freed_call_buffer",
        reply_from_freed_call,
    ),
    Case::new(
        "cve_2019_2025_free_of_queued_oneways_ignored",
        free_queued_oneways,
    ),
    Case::new(
        "cve_2019_2025_free_of_call_on_stack_before_nested_call",
        free_before_nested_call,
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

/// The call's buffer is freed in the very write whose reply takes its data from that buffer
/// (the reply's data pointer is the call's buffer in the receiver's mapping), the free before
/// the reply and then after it. The driver copies the reply from the user's pages as they are:
/// freeing does not unmap them, so the caller gets the call's own bytes back, twice.
fn reply_from_freed_call(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        for free_first in [true, false] {
            let (call, _) = m.next_call()?;
            let data = m
                .mapping
                .bytes_at(call.buffer, call.data_size)
                .ok_or("the call is outside the mapping")?;
            let commands = if free_first {
                Commands::new()
                    .free_buffer(call.buffer)
                    .transaction(true, 0, call.code, 0, data)
            } else {
                Commands::new()
                    .transaction(true, 0, call.code, 0, data)
                    .free_buffer(call.buffer)
            };
            m.send(commands, "free and reply from the freed buffer")?;
        }
        Ok(())
    })?;
    let c = Peer::open()?;
    for code in [1, 2] {
        let sent = pattern(code as u8 * 16, 200);
        let reply = c.call_for_reply(0, code, &Payload::new().bytes(&sent))?;
        let data = c.received(&reply).data().step("reply")?;
        ensure!(
            data == sent,
            "the reply sent from the freed buffer reads {data:?}"
        );
        c.free(&reply)?;
    }
    manager.join()
}

/// One-way calls to one node wait in the node's queue until the previous one's buffer is
/// freed. While the first is delivered and two more wait (their buffers allocated, not
/// delivered), the receiver frees every 8-byte address of the 8 KiB after the first buffer's
/// start, which covers the waiting buffers: none of those frees may take. A fourth one-way
/// sent after that would reuse a wrongly freed buffer; the waiting calls must arrive intact,
/// one at a time, in order, as the receiver frees each.
fn free_queued_oneways(_: &Env) -> Outcome {
    let (first_read, await_first_read) = notice()?;
    let (queued, await_queued) = notice()?;
    let (swept, await_swept) = notice()?;
    let (fourth_sent, await_fourth_sent) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        expect_intact(m, &first, 1)?;
        first_read.notify()?;
        await_queued.wait()?;
        let sweep = (1..1024u64).fold(Commands::new(), |cmds, i| {
            cmds.free_buffer(first.buffer + 8 * i)
        });
        m.send(sweep, "free the addresses after the first buffer")?;
        swept.notify()?;
        await_fourth_sent.wait()?;
        let early = m.pending()?;
        ensure!(
            !early.iter().any(|r| matches!(r, Return::Transaction(_))),
            "a queued one-way came before the first was freed: {early:?}"
        );
        expect_intact(m, &first, 1)?;
        m.free(&first)?;
        for seed in 2..=4 {
            let (next, _) = m.next_call()?;
            ensure!(
                next.code == u32::from(seed),
                "one-way {} came where {seed} was due",
                next.code
            );
            expect_intact(m, &next, seed)?;
            m.free(&next)?;
        }
        Ok(())
    })?;
    let c = Peer::open()?;
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &payload(1))?;
    await_first_read.wait()?;
    c.send_call_flags(0, 2, uapi::TF_ONE_WAY, &payload(2))?;
    c.send_call_flags(0, 3, uapi::TF_ONE_WAY, &payload(3))?;
    queued.notify()?;
    await_swept.wait()?;
    c.send_call_flags(0, 4, uapi::TF_ONE_WAY, &payload(4))?;
    fourth_sent.notify()?;
    manager.join()
}

/// A call's buffer freed while the call is still on the server's transaction stack, and the
/// server then calls back into the waiting caller (a nested call that goes through that
/// stack) before replying: the callback is answered on the caller's waiting thread, and the
/// reply to the freed call still reaches the caller. (The server takes its own reference to
/// the callback first: the one the buffer held goes with the buffer.)
fn free_before_nested_call(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let [callback] = m.objects(&call)?[..] else {
            return Err("no callback object".into());
        };
        let handle = callback.handle_value();
        m.send(
            Commands::new().acquire(handle).free_buffer(call.buffer),
            "acquire the callback, free the call",
        )?;
        let answer = m.call_for_reply(handle, 2, &Payload::new().bytes(b"who?"))?;
        let who = m.received(&answer).data().step("callback answer")?.to_vec();
        m.free(&answer)?;
        m.reply(&call, &Payload::new().bytes(&who))?;
        m.send(Commands::new().release(handle), "release the callback")?;
        m.free(&call)
    })?;
    let c = Peer::open()?;
    c.send_call(
        0,
        1,
        &Payload::new().object(binder_client::FlatObject::binder(0xca11, 0xbac4)),
    )?;
    let reply = loop {
        let mut reply = None;
        for ret in c.read()? {
            match ret {
                Return::Transaction(callback) => {
                    ensure!(callback.code == 2, "the callback came as {callback:?}");
                    c.reply_and_free(&callback, &Payload::new().bytes(b"caller"))?;
                }
                Return::Reply(txn) => reply = Some(txn),
                Return::FailedReply | Return::DeadReply => {
                    return manager.join_after(Err(format!("the call got {ret:?}")))
                }
                _ => {}
            }
        }
        if let Some(reply) = reply {
            break reply;
        }
    };
    let data = c.received(&reply).data().step("reply")?;
    ensure!(data == b"caller", "the reply reads {data:?}");
    c.free(&reply)?;
    manager.join()
}
