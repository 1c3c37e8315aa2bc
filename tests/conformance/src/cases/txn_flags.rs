//! Transaction flags with effects on buffers, or none at all: TF_CLEAR_BUF zeroes the whole
//! buffer (data, offsets and scatter-gather area) when the receiver frees it; TF_ROOT_OBJECT,
//! TF_STATUS_CODE and bits without a meaning reach the receiver as sent.

use binder_client::{uapi, Payload, Txn};

use crate::{
    ensure,
    harness::{notice, Case, Env, Outcome, Step},
};

use super::{
    peer::{spawn_manager, Peer},
    sg::{pattern, sg_start},
};

pub const CASES: &[Case] = &[
    Case::new("flag_clear_buf_zeroes_call_buffer_on_free", clear_buf_call),
    Case::new(
        "flag_clear_buf_zeroes_oneway_buffer_on_free",
        clear_buf_oneway,
    ),
    Case::new(
        "flag_clear_buf_zeroes_reply_buffer_on_free",
        clear_buf_reply,
    ),
    Case::new(
        "flag_root_object_and_status_code_passed_through",
        flags_passed_through,
    ),
    Case::new(
        "flag_unknown_bits_passed_through",
        unknown_bits_passed_through,
    ),
];

const SG_LENGTH: usize = 64;

/// A payload that fills data, offsets and a scatter-gather buffer with non-zero bytes.
fn busy_payload() -> Payload {
    Payload::new()
        .bytes(&pattern(1, 64))
        .buffer(&[0xcd; SG_LENGTH])
}

/// The whole buffer of a transaction sent with [`busy_payload`]: (address, length).
fn whole_buffer(txn: &Txn) -> (u64, u64) {
    let end = sg_start(txn) + SG_LENGTH as u64;
    (txn.buffer, end - txn.buffer)
}

/// Checks that `peer`'s buffer at `region` reads zero, except for the bytes of `live` (a
/// buffer delivered since, which may reuse the space: address and length).
fn expect_zeroed(peer: &Peer, region: (u64, u64), live: Option<(u64, u64)>) -> Outcome {
    let bytes = peer
        .mapping
        .bytes_at(region.0, region.1)
        .ok_or("the freed buffer is outside the mapping")?;
    let in_live = |address: u64| live.is_some_and(|(at, len)| (at..at + len).contains(&address));
    let dirty: Vec<u64> = (region.0..region.0 + region.1)
        .zip(bytes)
        .filter(|&(address, &byte)| byte != 0 && !in_live(address))
        .map(|(address, _)| address - region.0)
        .collect();
    ensure!(
        dirty.is_empty(),
        "{} bytes of the freed buffer ({} bytes at {:#x}; live since: {live:x?}) are not \
         zero, at offsets {:?}...",
        dirty.len(),
        region.1,
        region.0,
        &dirty[..dirty.len().min(8)]
    );
    Ok(())
}

/// Checks that the scatter-gather bytes of a transaction sent with [`busy_payload`] arrived,
/// before it is freed.
fn expect_busy(peer: &Peer, txn: &Txn) -> Outcome {
    let bytes = peer
        .mapping
        .bytes_at(sg_start(txn), SG_LENGTH as u64)
        .ok_or("the buffer is outside the mapping")?;
    ensure!(
        bytes == [0xcd; SG_LENGTH],
        "the scatter-gather bytes arrived as {bytes:?}"
    );
    Ok(())
}

/// The buffer of a call with TF_CLEAR_BUF reads zero once freed, also when the next call
/// reuses its space. (The caller sends the next call only once the manager checked the freed
/// buffer: sent earlier, it may land there in between.)
fn clear_buf_call(_: &Env) -> Outcome {
    let (checked, await_checked) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let region = whole_buffer(&call);
        expect_busy(m, &call)?;
        m.reply_and_free(&call, &Payload::new())?;
        expect_zeroed(m, region, None)?;
        checked.notify()?;
        let (next, _) = m.next_call()?;
        let data = m.received(&next).data().step("data")?;
        ensure!(data == b"reuse!!!", "the next call brought {data:?}");
        expect_zeroed(m, region, Some((next.buffer, 8)))?;
        m.reply_and_free(&next, &Payload::new())
    })?;
    let calls = (|| {
        let c = Peer::open()?;
        let exchange = c.call_flags(0, 1, uapi::TF_CLEAR_BUF, &busy_payload())?;
        c.free(&exchange.reply.ok_or("the call failed")?)?;
        await_checked.wait()?;
        let reply = c.call_for_reply(0, 2, &Payload::new().bytes(b"reuse!!!"))?;
        c.free(&reply)
    })();
    manager.join_after(calls)
}

fn clear_buf_oneway(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        ensure!(
            call.flags == uapi::TF_ONE_WAY | uapi::TF_CLEAR_BUF,
            "the one-way call came with flags {:#x}",
            call.flags
        );
        let region = whole_buffer(&call);
        expect_busy(m, &call)?;
        m.free(&call)?;
        expect_zeroed(m, region, None)
    })?;
    let c = Peer::open()?;
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY | uapi::TF_CLEAR_BUF, &busy_payload())?;
    manager.join()
}

/// A reply sent with TF_CLEAR_BUF is zeroed when the caller frees it.
fn clear_buf_reply(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        m.reply_flags(&call, uapi::TF_CLEAR_BUF, &busy_payload())?;
        m.free(&call)
    })?;
    let c = Peer::open()?;
    let reply = c.call_for_reply(0, 1, &Payload::new())?;
    ensure!(
        reply.flags == uapi::TF_CLEAR_BUF,
        "the reply came with flags {:#x}",
        reply.flags
    );
    let region = whole_buffer(&reply);
    expect_busy(&c, &reply)?;
    c.free(&reply)?;
    expect_zeroed(&c, region, None)?;
    manager.join()
}

fn flags_passed_through(_: &Env) -> Outcome {
    const CALL: u32 = uapi::TF_ROOT_OBJECT | uapi::TF_STATUS_CODE | uapi::TF_ACCEPT_FDS;
    const REPLY: u32 = uapi::TF_ROOT_OBJECT | uapi::TF_STATUS_CODE;
    const ONEWAY: u32 = uapi::TF_ONE_WAY | uapi::TF_ROOT_OBJECT | uapi::TF_STATUS_CODE;
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        ensure!(
            call.flags == CALL,
            "the call came with flags {:#x}",
            call.flags
        );
        m.reply_flags(&call, REPLY, &Payload::new().bytes(&(-1i32).to_le_bytes()))?;
        m.free(&call)?;
        let (oneway, _) = m.next_call()?;
        ensure!(
            oneway.flags == ONEWAY,
            "the one-way call came with flags {:#x}",
            oneway.flags
        );
        m.free(&oneway)
    })?;
    let c = Peer::open()?;
    let reply = c
        .call_flags(0, 1, CALL, &Payload::new())?
        .reply
        .ok_or("the call failed")?;
    ensure!(
        reply.flags == REPLY,
        "the reply came with flags {:#x}",
        reply.flags
    );
    c.free(&reply)?;
    c.send_call_flags(0, 2, ONEWAY, &Payload::new())?;
    manager.join()
}

/// The C driver hands the receiver the flags word as the sender wrote it, bits it gives no
/// meaning included.
fn unknown_bits_passed_through(_: &Env) -> Outcome {
    const FLAGS: u32 = 0x80 | 0x100 | 0x8000_0000;
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        ensure!(
            call.flags == FLAGS,
            "the call came with flags {:#x}, sent {FLAGS:#x}",
            call.flags
        );
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let reply = c
        .call_flags(0, 1, FLAGS, &Payload::new())?
        .reply
        .ok_or("the call failed")?;
    c.free(&reply)?;
    manager.join()
}
