//! Binder objects in transactions: a sender's object arrives as a handle, a handle going
//! back to its owner arrives as the object, handles are the lowest free numbers from 1, and
//! the owner hears of references coming and going (BR_INCREFS, BR_ACQUIRE, BR_RELEASE,
//! BR_DECREFS). Then the ways a payload's objects can be wrong.

use binder_client::{Commands, FlatObject, ObjectKind, Payload, Return, Txn};

use crate::{
    ensure,
    harness::{park, spawn_ready, Case, Env, Outcome, Step},
};

use super::peer::{refcount_returns, spawn_manager, Peer};

pub const CASES: &[Case] = &[
    Case::new(
        "object_arrives_as_handle_and_returns_as_binder",
        object_round_trip,
    ),
    Case::new("object_handles_lowest_free_from_one", handles_lowest_free),
    Case::new(
        "object_new_handles_fill_the_gaps_in_order",
        handles_fill_gaps,
    ),
    Case::new("object_handle_forwarded_to_third_process", handle_forwarded),
    Case::new(
        "object_weak_handle_is_no_call_target",
        weak_handle_no_target,
    ),
    Case::new(
        "object_failed_reply_fails_the_caller",
        failed_reply_fails_caller,
    ),
    Case::new(
        "object_owner_death_notifies_handle_holder",
        owner_death_notifies,
    ),
    Case::new("object_holder_death_releases_owner", holder_death_releases),
    Case::new(
        "object_refcount_dones_without_request_ignored",
        stray_dones_ignored,
    ),
    Case::new(
        "object_offsets_size_unaligned_einval",
        offsets_size_unaligned,
    ),
    Case::new(
        "object_offsets_size_beyond_any_buffer_enospc",
        offsets_size_beyond_any_buffer,
    ),
    Case::new("object_offset_beyond_data_efault", offset_beyond_data),
    Case::new("object_offset_misaligned_einval", offset_misaligned),
    Case::new("object_truncated_einval", object_truncated),
    Case::new("object_unknown_type_einval", unknown_type),
    Case::new("object_overlapping_efault", objects_overlap),
    Case::new("object_offsets_pointer_bad_efault", offsets_pointer_bad),
    Case::new("object_unknown_handle_einval", unknown_handle),
    Case::new("object_cookie_mismatch_einval", cookie_mismatch),
    Case::new(
        "object_failed_translation_releases_earlier_objects",
        failed_translation_releases,
    ),
    Case::new("transaction_sg_buffers_size_unaligned_einval", sg_unaligned),
    Case::new("transaction_sg_without_buffers_delivered", sg_delivered),
];

const PING: &[u8] = b"ping";
const OWNER_PTR: u64 = 0xb1d0;
const OWNER_COOKIE: u64 = 0xc0c0;
const ACCEPTS_FDS: u32 = 0x100;

fn object() -> FlatObject {
    FlatObject::binder(OWNER_PTR, OWNER_COOKIE)
}

fn handle_object(kind: ObjectKind, handle: u32) -> FlatObject {
    FlatObject::handle(handle).with_kind(kind)
}

/// Reads (as a looper) until the owner has been told that both kinds of reference to its
/// object went.
fn await_release(peer: &Peer) -> Outcome {
    let mut seen = Vec::new();
    while !(seen.contains(&Return::Release(OWNER_PTR, OWNER_COOKIE))
        && seen.contains(&Return::Decrefs(OWNER_PTR, OWNER_COOKIE)))
    {
        seen.extend(refcount_returns(&peer.read()?));
    }
    Ok(())
}

fn object_round_trip(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let objects = m.objects(&call)?;
        let expected = FlatObject {
            flags: ACCEPTS_FDS,
            ..handle_object(ObjectKind::Handle, 1)
        };
        ensure!(objects == [expected], "the manager got {objects:?}");
        m.reply_and_free(&call, &Payload::new().object(FlatObject::handle(1)))
    })?;
    let c = Peer::open()?;
    let sent = FlatObject {
        flags: ACCEPTS_FDS,
        ..object()
    };
    let exchange = c.call(0, 1, &Payload::new().bytes(PING).object(sent))?;
    let told = refcount_returns(&exchange.returns);
    ensure!(
        told == [
            Return::Increfs(OWNER_PTR, OWNER_COOKIE),
            Return::Acquire(OWNER_PTR, OWNER_COOKIE)
        ],
        "the owner was told {told:?} (all: {:?})",
        exchange.returns
    );
    let reply = exchange.reply.ok_or("no reply")?;
    let objects = c.objects(&reply)?;
    ensure!(
        objects == [object()],
        "the handle came back to its owner as {objects:?}"
    );
    c.free(&reply)?;
    manager.join()?;
    // The manager's handle and the reply's reference are gone: the owner hears so.
    c.send(Commands::new().enter_looper(), "enter looper")?;
    await_release(&c)
}

fn handles_lowest_free(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (first, _) = m.next_call()?;
        let handles: Vec<u32> = m
            .objects(&first)?
            .iter()
            .map(|o| o.handle_value())
            .collect();
        ensure!(handles == [1, 2, 3], "first handles {handles:?}");
        // Keep 1 and 3; 2 goes with the buffer.
        m.send(
            Commands::new()
                .acquire(1)
                .acquire(3)
                .free_buffer(first.buffer),
            "keep 1 and 3",
        )?;
        m.reply(&first, &Payload::new())?;
        let (second, _) = m.next_call()?;
        let handles: Vec<u32> = m
            .objects(&second)?
            .iter()
            .map(|o| o.handle_value())
            .collect();
        ensure!(
            handles == [2, 1],
            "a new object got {:?}, an old one {:?}",
            handles.first(),
            handles.get(1)
        );
        m.reply_and_free(&second, &Payload::new())
    })?;
    let c = Peer::open()?;
    let objects = Payload::new()
        .object(FlatObject::binder(1, 1))
        .object(FlatObject::binder(2, 2))
        .object(FlatObject::binder(3, 3));
    let reply = c.call_for_reply(0, 1, &objects)?;
    c.free(&reply)?;
    let objects = Payload::new()
        .object(FlatObject::binder(4, 4))
        .object(FlatObject::binder(1, 1));
    let reply = c.call_for_reply(0, 2, &objects)?;
    c.free(&reply)?;
    manager.join()
}

/// The handles of `txn`'s objects, in order.
fn handle_values(m: &Peer, txn: &Txn) -> Outcome<Vec<u32>> {
    Ok(m.objects(txn)?.iter().map(|o| o.handle_value()).collect())
}

/// Several gaps among the handles in use: new handles fill them lowest first, then go on
/// past the highest, while an object with a handle keeps it.
fn handles_fill_gaps(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (first, _) = m.next_call()?;
        let handles = handle_values(m, &first)?;
        ensure!(handles == [1, 2, 3, 4, 5], "first handles {handles:?}");
        // Keep 2 and 4; 1, 3 and 5 go with the buffer.
        m.send(
            Commands::new()
                .acquire(2)
                .acquire(4)
                .free_buffer(first.buffer),
            "keep 2 and 4",
        )?;
        m.reply(&first, &Payload::new())?;
        let (second, _) = m.next_call()?;
        let handles = handle_values(m, &second)?;
        ensure!(
            handles == [1, 3, 5, 6, 2],
            "new objects and an old one got {handles:?}"
        );
        m.reply_and_free(&second, &Payload::new())
    })?;
    let c = Peer::open()?;
    let objects = (1..=5).fold(Payload::new(), |p, i| p.object(FlatObject::binder(i, i)));
    let reply = c.call_for_reply(0, 1, &objects)?;
    c.free(&reply)?;
    let objects = [6, 7, 8, 9, 2]
        .into_iter()
        .fold(Payload::new(), |p, i| p.object(FlatObject::binder(i, i)));
    let reply = c.call_for_reply(0, 2, &objects)?;
    c.free(&reply)?;
    manager.join()
}

pub(super) const REGISTER: u32 = 1;
pub(super) const LOOKUP: u32 = 2;
const SERVICE_PTR: u64 = 0x5e7;
const SERVICE_COOKIE: u64 = 0xc00c;

/// A context manager that keeps the object of one REGISTER call and hands it out to one
/// LOOKUP call: the smallest service manager.
fn registry() -> Outcome<crate::harness::Child> {
    spawn_manager(serve_one_registration)
}

/// The manager `m` keeps the object of one REGISTER call and hands it out to one LOOKUP call.
pub(super) fn serve_one_registration(m: &Peer) -> Outcome {
    let (register, _) = m.next_call()?;
    ensure!(register.code == REGISTER, "first call {register:?}");
    let [service] = m.objects(&register)?[..] else {
        return Err("REGISTER without one object".into());
    };
    let handle = service.handle_value();
    m.send(Commands::new().acquire(handle), "keep the service")?;
    m.reply_and_free(&register, &Payload::new())?;
    let (lookup, _) = m.next_call()?;
    ensure!(lookup.code == LOOKUP, "second call {lookup:?}");
    m.reply_and_free(&lookup, &Payload::new().object(FlatObject::handle(handle)))
}

fn handle_forwarded(_: &Env) -> Outcome {
    let registry = registry()?;
    let server = spawn_ready(|ready| {
        let s = Peer::open()?;
        let service = FlatObject::binder(SERVICE_PTR, SERVICE_COOKIE);
        let reply = s.call_for_reply(0, REGISTER, &Payload::new().object(service))?;
        s.free(&reply)?;
        s.send(Commands::new().enter_looper(), "enter looper")?;
        ready();
        let (call, _) = s.next_call()?;
        ensure!(
            call.target_ptr == SERVICE_PTR && call.cookie == SERVICE_COOKIE && call.code == 7,
            "the service got {call:?}"
        );
        let question = s
            .mapping
            .bytes_at(call.buffer, call.data_size)
            .unwrap_or(&[]);
        ensure!(question == b"add", "the service got {question:?}");
        s.reply_and_free(&call, &Payload::new().bytes(b"sum!"))
    })?;
    let c = Peer::open()?;
    let reply = c.call_for_reply(0, LOOKUP, &Payload::new())?;
    let objects = c.objects(&reply)?;
    ensure!(
        objects == [FlatObject::handle(1)],
        "the client got {objects:?} (its first handle is 1)"
    );
    c.send(
        Commands::new().acquire(1).free_buffer(reply.buffer),
        "keep the handle",
    )?;
    let answer = c.call(1, 7, &Payload::new().bytes(b"add"))?;
    let reply = answer
        .reply
        .ok_or_else(|| format!("call failed: {:?}", answer.returns))?;
    let bytes = c
        .mapping
        .bytes_at(reply.buffer, reply.data_size)
        .unwrap_or(&[]);
    ensure!(bytes == b"sum!", "the client got {bytes:?}");
    c.send(
        Commands::new().free_buffer(reply.buffer).release(1),
        "let go",
    )?;
    server.join()?;
    registry.join()
}

/// A weak reference does not let its holder call the object. (The manager makes its call
/// when the client's second call shows that the client has read its first reply: a node's
/// BR_INCREFS is worked out when it is read, and would come to nothing if the manager's
/// handle went first.)
fn weak_handle_no_target(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let objects = m.objects(&call)?;
        ensure!(
            objects == [handle_object(ObjectKind::WeakHandle, 1)],
            "the manager got {objects:?}"
        );
        m.send(
            Commands::new().increfs(1).free_buffer(call.buffer),
            "keep it weakly",
        )?;
        m.reply(&call, &Payload::new())?;
        let (second, _) = m.next_call()?;
        let attempt = m.call(1, 1, &Payload::new())?;
        ensure!(
            attempt.reply.is_none() && attempt.returns.contains(&Return::FailedReply),
            "calling a weak handle: {:?}",
            attempt.returns
        );
        let error = m.binder.extended_error().step("extended error")?;
        ensure!(error.param == -libc::EINVAL, "extended error {error:?}");
        m.reply_and_free(&second, &Payload::new())
    })?;
    let c = Peer::open()?;
    let weak = object().with_kind(ObjectKind::WeakBinder);
    let exchange = c.call(0, 1, &Payload::new().object(weak))?;
    let told = refcount_returns(&exchange.returns);
    ensure!(
        told == [Return::Increfs(OWNER_PTR, OWNER_COOKIE)],
        "a weak object told the owner {told:?}"
    );
    c.free(&exchange.reply.ok_or("no reply")?)?;
    let reply = c.call_for_reply(0, 2, &Payload::new())?;
    c.free(&reply)?;
    manager.join()
}

/// A reply that cannot be carried (here: a weak handle sent as a strong one) fails for the
/// caller, which reads BR_FAILED_REPLY and has the errno in its extended error; the replier
/// reads only BR_TRANSACTION_COMPLETE.
fn failed_reply_fails_caller(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        m.send(
            Commands::new().increfs(1).free_buffer(call.buffer),
            "keep it weakly",
        )?;
        let strong = Payload::new().object(FlatObject::handle(1));
        let offsets = strong.offsets_bytes();
        m.send(
            Commands::new().transaction_raw(true, 0, 1, 0, &strong.data, &offsets),
            "reply",
        )?;
        let returns = m.read()?;
        ensure!(
            returns == [Return::Noop, Return::TransactionComplete],
            "the replier read {returns:?}"
        );
        Ok(())
    })?;
    let c = Peer::open()?;
    let weak = object().with_kind(ObjectKind::WeakBinder);
    let exchange = c.call(0, 1, &Payload::new().object(weak))?;
    ensure!(
        exchange.reply.is_none() && exchange.returns.contains(&Return::FailedReply),
        "the caller read {:?}",
        exchange.returns
    );
    let error = c.binder.extended_error().step("extended error")?;
    ensure!(
        error.command == binder_client::uapi::BR_FAILED_REPLY && error.param == -libc::EINVAL,
        "the caller's extended error {error:?}"
    );
    manager.join()
}

fn owner_death_notifies(_: &Env) -> Outcome {
    let m = Peer::manager()?;
    let client = spawn_ready(|ready| {
        ready();
        let c = Peer::open()?;
        let reply = c.call_for_reply(0, 1, &Payload::new().object(object()))?;
        c.free(&reply)
    })?;
    let (call, _) = m.next_call()?;
    m.send(
        Commands::new()
            .acquire(1)
            .request_death_notification(1, 0xdead)
            .free_buffer(call.buffer),
        "keep the handle, watch it",
    )?;
    m.reply(&call, &Payload::new())?;
    client.join()?;
    loop {
        if m.read()?.contains(&Return::DeadBinder(0xdead)) {
            break;
        }
    }
    m.send(
        Commands::new().dead_binder_done(0xdead).release(1),
        "done with the death",
    )
}

fn holder_death_releases(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        m.send(
            Commands::new().acquire(1).free_buffer(call.buffer),
            "keep the handle",
        )?;
        m.reply(&call, &Payload::new())?;
        // The manager holds the handle until it is killed.
        park()
    })?;
    let c = Peer::open()?;
    let reply = c.call_for_reply(0, 1, &Payload::new().object(object()))?;
    c.free(&reply)?;
    c.send(Commands::new().enter_looper(), "enter looper")?;
    manager.kill()?;
    await_release(&c)
}

fn stray_dones_ignored(_: &Env) -> Outcome {
    let c = Peer::open()?;
    c.send(
        Commands::new()
            .increfs_done(OWNER_PTR, OWNER_COOKIE)
            .acquire_done(OWNER_PTR, OWNER_COOKIE),
        "dones for nothing",
    )?;
    // The object exists now, but nothing awaits its dones.
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        m.reply_and_free(&call, &Payload::new())
    })?;
    let reply = c.call_for_reply(0, 1, &Payload::new().object(object()))?;
    c.send(
        Commands::new()
            .acquire_done(OWNER_PTR, OWNER_COOKIE)
            .acquire_done(OWNER_PTR, OWNER_COOKIE + 1)
            .free_buffer(reply.buffer),
        "a second done, and one with a wrong cookie",
    )?;
    manager.join()
}

/// A context manager that takes nothing: every call below must fail before reaching it.
fn idle_manager() -> Outcome<crate::harness::Child> {
    spawn_ready(|ready| {
        let _m = Peer::manager()?;
        ready();
        park()
    })
}

/// Sends a call to the manager with raw `data` and `offsets`; it must fail with
/// BR_FAILED_REPLY and `errno` in the extended error.
fn expect_bad_objects(data: &[u8], offsets: &[u8], errno: i32) -> Outcome {
    let manager = idle_manager()?;
    let c = Peer::open()?;
    c.send(
        Commands::new().transaction_raw(false, 0, 1, 0, data, offsets),
        "call",
    )?;
    expect_failed_with(&c, errno)?;
    manager.kill()
}

/// The call `c` just sent must fail with BR_FAILED_REPLY and `errno` in the extended error.
fn expect_failed_with(c: &Peer, errno: i32) -> Outcome {
    let returns = c.read()?;
    ensure!(
        returns.contains(&Return::FailedReply),
        "the caller read {returns:?}"
    );
    let error = c.binder.extended_error().step("extended error")?;
    ensure!(
        error.param == -errno,
        "extended error param {}, expected -{errno}",
        error.param
    );
    Ok(())
}

fn offsets(list: &[u64]) -> Vec<u8> {
    list.iter().flat_map(|o| o.to_ne_bytes()).collect()
}

fn object_bytes() -> Vec<u8> {
    object().to_bytes().to_vec()
}

fn offsets_size_unaligned(_: &Env) -> Outcome {
    expect_bad_objects(&object_bytes(), &offsets(&[0])[..4], libc::EINVAL)
}

/// `offsets_size` of 2^40 bytes: no receive buffer can hold the call, which fails with
/// C's `ENOSPC` before anything the size asks for is allocated. (Found by the fuzzer, seed 1:
/// rust_binder allocated room for the range's pages first, and the page allocator warned.)
fn offsets_size_beyond_any_buffer(_: &Env) -> Outcome {
    let manager = idle_manager()?;
    let c = Peer::open()?;
    let data = object_bytes();
    let offsets = offsets(&[0]);
    c.send(
        Commands::new().transaction_claiming_offsets(false, 0, 1, 0, &data, &offsets, 1 << 40),
        "call",
    )?;
    expect_failed_with(&c, libc::ENOSPC)?;
    manager.kill()
}

fn offset_beyond_data(_: &Env) -> Outcome {
    expect_bad_objects(&object_bytes(), &offsets(&[32]), libc::EFAULT)
}

fn offset_misaligned(_: &Env) -> Outcome {
    let mut data = vec![0u8; 2];
    data.extend(object_bytes());
    data.extend([0u8; 6]);
    expect_bad_objects(&data, &offsets(&[2]), libc::EINVAL)
}

fn object_truncated(_: &Env) -> Outcome {
    expect_bad_objects(&object_bytes()[..20], &offsets(&[0]), libc::EINVAL)
}

fn unknown_type(_: &Env) -> Outcome {
    let mut data = object_bytes();
    data[..4].copy_from_slice(&0x1234_5678u32.to_ne_bytes());
    expect_bad_objects(&data, &offsets(&[0]), libc::EINVAL)
}

fn objects_overlap(_: &Env) -> Outcome {
    let mut data = object_bytes();
    data.extend(object_bytes());
    expect_bad_objects(&data, &offsets(&[0, 8]), libc::EFAULT)
}

fn offsets_pointer_bad(_: &Env) -> Outcome {
    let manager = idle_manager()?;
    let c = Peer::open()?;
    let data = object_bytes();
    // A valid slice for the builder, then the pointer replaced by one that faults.
    let mut commands = Commands::new()
        .transaction_raw(false, 0, 1, 0, &data, &offsets(&[0]))
        .as_bytes()
        .to_vec();
    // The command word, then binder_transaction_data: offsets pointer at byte 56 of it.
    commands[4 + 56..4 + 64].copy_from_slice(&16u64.to_ne_bytes());
    let raw = commands.chunks(4).fold(Commands::new(), |cmds, word| {
        cmds.word(u32::from_ne_bytes(word.try_into().unwrap_or([0; 4])))
    });
    c.send(raw, "call with a bad offsets pointer")?;
    expect_failed_with(&c, libc::EFAULT)?;
    manager.kill()
}

fn unknown_handle(_: &Env) -> Outcome {
    let data = FlatObject::handle(42).to_bytes();
    expect_bad_objects(&data, &offsets(&[0]), libc::EINVAL)
}

fn cookie_mismatch(_: &Env) -> Outcome {
    let mut data = object_bytes();
    data.extend(FlatObject::binder(OWNER_PTR, OWNER_COOKIE + 1).to_bytes());
    expect_bad_objects(&data, &offsets(&[0, 24]), libc::EINVAL)
}

/// A transaction whose second object is bad gives back what its first one took: the
/// receiver's handle for it is free again for the next object.
fn failed_translation_releases(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let handles: Vec<u32> = m.objects(&call)?.iter().map(|o| o.handle_value()).collect();
        ensure!(
            handles == [1],
            "after a failed transaction, a new object got {handles:?}"
        );
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let bad = Payload::new()
        .object(FlatObject::binder(1, 1))
        .object(FlatObject::handle(42))
        .object(FlatObject::binder(2, 2));
    let failed = c.call(0, 1, &bad)?;
    ensure!(
        failed.reply.is_none() && failed.returns.contains(&Return::FailedReply),
        "a bad second object: {:?}",
        failed.returns
    );
    let reply = c.call_for_reply(0, 2, &Payload::new().object(FlatObject::binder(3, 3)))?;
    c.free(&reply)?;
    manager.join()
}

fn sg_unaligned(_: &Env) -> Outcome {
    let manager = idle_manager()?;
    let c = Peer::open()?;
    c.send(
        Commands::new().transaction_sg(false, 0, 1, b"data", 4),
        "call with 4 bytes of buffers",
    )?;
    expect_failed_with(&c, libc::EINVAL)?;
    manager.kill()
}

/// BC_TRANSACTION_SG with room for buffers that no object uses is an ordinary call.
fn sg_delivered(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let data = m
            .mapping
            .bytes_at(call.buffer, call.data_size)
            .unwrap_or(&[]);
        ensure!(data == b"data", "the manager got {data:?}");
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    c.send(
        Commands::new().transaction_sg(false, 0, 1, b"data", 64),
        "call with 64 bytes of buffers",
    )?;
    loop {
        let returns = c.read()?;
        if let Some(reply) = returns.iter().find_map(|ret| match ret {
            Return::Reply(txn) => Some(txn.clone()),
            _ => None,
        }) {
            c.free(&reply)?;
            break;
        }
        ensure!(
            !returns.contains(&Return::FailedReply),
            "the caller read {returns:?}"
        );
    }
    manager.join()
}
