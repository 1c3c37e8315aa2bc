//! Security contexts: a node created with FLAT_BINDER_FLAG_TXN_SECURITY_CTX (an object with
//! that flag, or a context manager set with it through BINDER_SET_CONTEXT_MGR_EXT) gets every
//! call and one-way transaction as BR_TRANSACTION_SEC_CTX, with the address of the sender's
//! security context. The context is in the delivered buffer, after the data, the offsets and
//! the scatter-gather room, each rounded up to 8 bytes; the driver copies the bytes the LSM
//! gives and no more (Smack's label has no NUL; SELinux's context has one).
//!
//! The test kernel runs Smack (scripts/kernel/debug.config), which labels every task "_"
//! without a policy. Each sender puts its own context, as it reads it from
//! /proc/self/attr/current (the same bytes the LSM gives the driver), at the end of its
//! payload, and the receiver compares it with what the driver delivered.

use binder_client::{object::FLAT_OBJECT_SIZE, uapi, Commands, FlatObject, Payload, Return, Txn};

use crate::{
    ensure,
    harness::{spawn_ready, Case, Child, Env, Outcome, Step},
};

use super::{
    context_mgr::become_manager_ext,
    peer::{spawn_manager, Peer, MAP_SIZE},
};

pub const CASES: &[Case] = &[
    Case::new("security_ctx_node_call", node_call),
    Case::new("security_ctx_node_oneway", node_oneway),
    Case::new("security_ctx_after_sg_buffers", after_sg_buffers),
    Case::new(
        "security_ctx_counts_in_the_logged_extra_size",
        logged_extra_size,
    ),
    Case::new("security_ctx_only_the_lsm_bytes", only_the_lsm_bytes),
    Case::new("security_ctx_context_manager_ext", context_manager_ext),
];

const NODE_PTR: u64 = 0x5ec0;
const NODE_COOKIE: u64 = 0x5ec1;
const CALL: u32 = 3;

/// This process's security context as the LSM gives it to the driver.
fn own_context() -> Outcome<Vec<u8>> {
    let context = std::fs::read("/proc/self/attr/current").map_err(|e| {
        format!(
            "reading /proc/self/attr/current: {e} (the kernel needs an LSM that gives every \
             task a context, such as Smack: see scripts/kernel/debug.config)"
        )
    })?;
    ensure!(!context.is_empty(), "/proc/self/attr/current is empty");
    Ok(context)
}

/// A payload of `objects` and then the sender's context.
fn payload_with_context(objects: &[FlatObject]) -> Outcome<Payload> {
    let payload = objects
        .iter()
        .fold(Payload::new(), |payload, object| payload.object(*object));
    Ok(payload.bytes(&own_context()?))
}

fn align8(n: u64) -> u64 {
    n.next_multiple_of(8)
}

/// Shows bytes as text, with anything unprintable escaped.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Checks that `txn` (with `buffers_size` bytes of scatter-gather room) came with the sender's
/// context where the C driver puts it: right after the data, the offsets and the buffers, each
/// rounded up to 8 bytes. The sender's payload ends with its context, after its objects.
/// Returns the context's bytes.
fn check_context<'a>(peer: &'a Peer, txn: &Txn, buffers_size: u64) -> Outcome<&'a [u8]> {
    let secctx = txn
        .secctx
        .ok_or_else(|| format!("delivered as BR_TRANSACTION, without a context: {txn:?}"))?;
    let expected =
        txn.buffer + align8(txn.data_size) + align8(txn.offsets_size) + align8(buffers_size);
    ensure!(
        secctx == expected,
        "the context is at buffer + {}, expected buffer + {} (data {}, offsets {}, buffers {})",
        secctx.wrapping_sub(txn.buffer),
        expected - txn.buffer,
        txn.data_size,
        txn.offsets_size,
        buffers_size
    );
    let data = peer
        .mapping
        .bytes_at(txn.buffer, txn.data_size)
        .ok_or("the data lies outside the mapping")?;
    let objects_end = usize::try_from(txn.offsets_size / 8)
        .unwrap_or(usize::MAX)
        .saturating_mul(FLAT_OBJECT_SIZE);
    let sent = data
        .get(objects_end..)
        .filter(|sent| !sent.is_empty())
        .ok_or("the payload has no context after its objects")?;
    let delivered = peer
        .mapping
        .bytes_at(secctx, sent.len() as u64)
        .ok_or("the context lies outside the mapping")?;
    ensure!(
        delivered == sent,
        "the delivered context starts \"{}\", the sender's is \"{}\"",
        shown(delivered),
        shown(sent)
    );
    Ok(delivered)
}

/// Makes this process (`c`, a looper afterwards) the owner of a node that asks for security
/// contexts, and runs `caller` in a context manager that holds handle 1 to it.
fn context_node(caller: impl FnOnce(&Peer) -> Outcome) -> Outcome<(Peer, Child)> {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        ensure!(
            call.secctx.is_none(),
            "a manager set without FLAT_BINDER_FLAG_TXN_SECURITY_CTX got a context: {call:?}"
        );
        m.send(
            Commands::new().acquire(1).free_buffer(call.buffer),
            "keep the handle",
        )?;
        m.reply(&call, &Payload::new())?;
        caller(m)?;
        m.send(Commands::new().release(1), "let go")
    })?;
    let c = Peer::open()?;
    let node = FlatObject {
        flags: uapi::FLAT_BINDER_FLAG_TXN_SECURITY_CTX,
        ..FlatObject::binder(NODE_PTR, NODE_COOKIE)
    };
    let reply = c.call_for_reply(0, 1, &Payload::new().object(node))?;
    c.free(&reply)?;
    c.send(Commands::new().enter_looper(), "enter looper")?;
    Ok((c, manager))
}

/// The caller's side of a call that the node answers: the reply is a plain BR_REPLY, with no
/// context of the replier's.
fn expect_plain_reply(m: &Peer) -> Outcome {
    let exchange = m.await_reply()?;
    let reply = exchange
        .reply
        .ok_or_else(|| format!("the call failed: {:?}", exchange.returns))?;
    ensure!(
        !exchange
            .returns
            .iter()
            .any(|ret| matches!(ret, Return::Transaction(_))),
        "the caller read {:?}",
        exchange.returns
    );
    m.free(&reply)
}

/// A call to the node (with an object, so that the offsets count) arrives as
/// BR_TRANSACTION_SEC_CTX with the caller's context after the data and the offsets; the
/// reply to it is a plain BR_REPLY.
fn node_call(_: &Env) -> Outcome {
    let (c, manager) = context_node(|m| {
        // Handle 1 goes back to its owner as its node.
        let payload = payload_with_context(&[FlatObject::handle(1)])?;
        m.send_call(1, CALL, &payload)?;
        expect_plain_reply(m)
    })?;
    let (call, _) = c.next_call()?;
    ensure!(
        call.target_ptr == NODE_PTR
            && call.cookie == NODE_COOKIE
            && call.code == CALL
            && call.sender_pid != 0
            && call.offsets_size == 8,
        "the node got {call:?}"
    );
    check_context(&c, &call, 0)?;
    c.reply_and_free(&call, &Payload::new().bytes(b"pong"))?;
    manager.join()
}

/// A one-way transaction to the node gets the sender's context too.
fn node_oneway(_: &Env) -> Outcome {
    let (c, manager) = context_node(|m| {
        let payload = payload_with_context(&[])?;
        m.send(
            Commands::new().transaction(false, 1, CALL, uapi::TF_ONE_WAY, &payload.data),
            "one-way call",
        )?;
        while !m.read()?.contains(&Return::TransactionComplete) {}
        Ok(())
    })?;
    let (call, _) = c.next_call()?;
    ensure!(
        call.flags & uapi::TF_ONE_WAY != 0 && call.sender_pid == 0,
        "the node got {call:?}"
    );
    check_context(&c, &call, 0)?;
    c.free(&call)?;
    manager.join()
}

/// A call with `buffers` bytes of scatter-gather room from the manager to the node of this
/// process (`c`): returns `c`, the manager, and the call as `c` read it.
fn call_with_sg_room(buffers: u64) -> Outcome<(Peer, Child, Txn)> {
    let (c, manager) = context_node(move |m| {
        let payload = payload_with_context(&[])?;
        m.send(
            Commands::new().transaction_sg(false, 1, CALL, &payload.data, buffers),
            "call with room for buffers",
        )?;
        expect_plain_reply(m)
    })?;
    let (call, _) = c.next_call()?;
    Ok((c, manager, call))
}

/// BC_TRANSACTION_SG's room for scatter-gather buffers comes before the context: the context
/// follows the whole of it.
fn after_sg_buffers(_: &Env) -> Outcome {
    const BUFFERS: u64 = 64;
    let (c, manager, call) = call_with_sg_room(BUFFERS)?;
    check_context(&c, &call, BUFFERS)?;
    c.reply_and_free(&call, &Payload::new())?;
    manager.join()
}

/// The log files show a buffer's scatter-gather room and its context's slot together as its
/// extra size, as C's `extra_buffers_size` holds both.
fn logged_extra_size(_: &Env) -> Outcome {
    const BUFFERS: u64 = 64;
    let (c, manager, call) = call_with_sg_room(BUFFERS)?;
    let context = check_context(&c, &call, BUFFERS)?.len() as u64;
    let path = format!("/sys/kernel/debug/binder/proc/{}", std::process::id());
    let text = std::fs::read_to_string(&path).step(&format!("read {path}"))?;
    let sizes = format!(" size {}:0:{} ", call.data_size, BUFFERS + align8(context));
    ensure!(
        text.lines()
            .any(|line| line.starts_with("  buffer ") && line.contains(&sizes)),
        "{path} shows no buffer of{sizes}(a {context}-byte context):\n{text}"
    );
    c.reply_and_free(&call, &Payload::new())?;
    manager.join()
}

/// The driver copies the context's bytes as the LSM gives them and nothing else: no NUL is
/// added, and the rest of the context's 8-byte slot keeps what the buffer held before. (With
/// Smack the label comes without a NUL, so a receiver that reads it as a C string depends on
/// those bytes.) A first call fills all but the last page of the receiver's buffer; a second,
/// small one is placed in that memory once the first is freed.
fn only_the_lsm_bytes(_: &Env) -> Outcome {
    const FILL: u8 = 0xa5;
    let (c, manager) = context_node(|m| {
        let fill = vec![FILL; MAP_SIZE - 4096];
        m.send_call(1, CALL, &Payload::new().bytes(&fill))?;
        expect_plain_reply(m)?;
        m.send_call(1, CALL + 1, &payload_with_context(&[])?)?;
        expect_plain_reply(m)
    })?;
    let (fill, _) = c.next_call()?;
    // Freed before the reply: the second call must find the filled memory free.
    c.free(&fill)?;
    c.reply(&fill, &Payload::new())?;
    let (call, _) = c.next_call()?;
    let context = check_context(&c, &call, 0)?;
    let len = context.len() as u64;
    let slot = c
        .mapping
        .bytes_at(call.secctx.unwrap_or_default(), align8(len))
        .ok_or("the context's slot lies outside the mapping")?;
    let (_, rest) = slot.split_at(context.len());
    ensure!(
        rest.iter().all(|&b| b == FILL),
        "after the {len} bytes of the context, its slot holds \"{}\" where the buffer held \
         {FILL:#x} bytes before",
        shown(rest)
    );
    c.reply_and_free(&call, &Payload::new())?;
    manager.join()
}

/// A context manager set with BINDER_SET_CONTEXT_MGR_EXT and FLAT_BINDER_FLAG_TXN_SECURITY_CTX
/// gets each call with the caller's context; the caller's reply is a plain BR_REPLY.
fn context_manager_ext(_: &Env) -> Outcome {
    let manager = spawn_ready(|ready| {
        let m = Peer::open()?;
        become_manager_ext(&m.binder, 0, 0, uapi::FLAT_BINDER_FLAG_TXN_SECURITY_CTX)?;
        m.send(Commands::new().enter_looper(), "enter looper")?;
        ready();
        let (call, _) = m.next_call()?;
        ensure!(
            call.target_ptr == 0 && call.code == CALL && call.sender_pid != 0,
            "the manager got {call:?}"
        );
        check_context(&m, &call, 0)?;
        m.reply_and_free(&call, &Payload::new().bytes(b"pong"))
    })?;
    let c = Peer::open()?;
    c.send_call(0, CALL, &payload_with_context(&[])?)?;
    expect_plain_reply(&c)?;
    manager.join()
}
