//! The introspection ioctls: BINDER_GET_NODE_DEBUG_INFO walks a process's own nodes in
//! pointer order, and BINDER_GET_NODE_INFO_FOR_REF gives the context manager the reference
//! counts of the node behind one of its handles.

use binder_client::{uapi, Commands, FlatObject, Payload};

use crate::{
    ensure,
    harness::{expect_errno, Case, Env, Outcome, Step},
};

use super::peer::{spawn_manager, Peer};

pub const CASES: &[Case] = &[
    Case::new("node_debug_info_walks_own_nodes", node_debug_info_walks),
    Case::new("node_info_for_ref_counts", node_info_for_ref_counts),
    Case::new(
        "node_info_for_ref_manager_only_eperm",
        node_info_for_ref_eperm,
    ),
    Case::new(
        "node_info_for_ref_checks_fields_einval",
        node_info_for_ref_fields,
    ),
];

fn debug_info(peer: &Peer, after: u64) -> Outcome<uapi::binder_node_debug_info> {
    let mut info = uapi::binder_node_debug_info {
        ptr: after,
        ..Default::default()
    };
    peer.binder
        .ioctl(uapi::BINDER_GET_NODE_DEBUG_INFO, &mut info)
        .step("BINDER_GET_NODE_DEBUG_INFO")?;
    Ok(info)
}

pub(super) fn info_for_ref(
    peer: &Peer,
    handle: u32,
) -> std::io::Result<uapi::binder_node_info_for_ref> {
    let mut info = uapi::binder_node_info_for_ref {
        handle,
        ..Default::default()
    };
    peer.binder
        .ioctl(uapi::BINDER_GET_NODE_INFO_FOR_REF, &mut info)
        .map(|_| info)
}

/// A manager that keeps the handles of the objects of one call, then answers one more call
/// (the client's sign that it answered the refcount returns) after `check`, then exits.
fn keeping_manager(check: fn(&Peer) -> Outcome) -> Outcome<crate::harness::Child> {
    spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let mut keep = Commands::new();
        for object in m.objects(&call)? {
            keep = keep.acquire(object.handle_value());
        }
        m.send(keep.free_buffer(call.buffer), "keep the handles")?;
        m.reply(&call, &Payload::new())?;
        let (second, _) = m.next_call()?;
        check(m)?;
        m.reply_and_free(&second, &Payload::new())
    })
}

/// Sends `objects` to the manager, then the second call.
fn send_objects(objects: &[FlatObject]) -> Outcome<Peer> {
    let a = Peer::open()?;
    let payload = objects
        .iter()
        .fold(Payload::new(), |payload, object| payload.object(*object));
    let reply = a.call_for_reply(0, 1, &payload)?;
    a.free(&reply)?;
    let reply = a.call_for_reply(0, 2, &Payload::new())?;
    a.free(&reply)?;
    Ok(a)
}

fn node_debug_info_walks(_: &Env) -> Outcome {
    let manager = keeping_manager(|_| Ok(()))?;
    let a = send_objects(&[FlatObject::binder(0x20, 2), FlatObject::binder(0x10, 1)])?;
    manager.join()?;
    let first = debug_info(&a, 0)?;
    ensure!(
        (
            first.ptr,
            first.cookie,
            first.has_strong_ref,
            first.has_weak_ref
        ) == (0x10, 1, 1, 1),
        "first node {first:?}"
    );
    let second = debug_info(&a, 0x10)?;
    ensure!(
        (second.ptr, second.cookie) == (0x20, 2),
        "second node {second:?}"
    );
    let none = debug_info(&a, 0x20)?;
    ensure!(
        (
            none.ptr,
            none.cookie,
            none.has_strong_ref,
            none.has_weak_ref
        ) == (0, 0, 0, 0),
        "past the last node {none:?}"
    );
    Ok(())
}

fn node_info_for_ref_counts(_: &Env) -> Outcome {
    let manager = keeping_manager(|m| {
        let info = info_for_ref(m, 1).step("BINDER_GET_NODE_INFO_FOR_REF")?;
        ensure!(
            (info.strong_count, info.weak_count) == (1, 0),
            "one strong handle, nothing local: {info:?}"
        );
        expect_errno(info_for_ref(m, 7), libc::EINVAL, "an unknown handle")
    })?;
    send_objects(&[FlatObject::binder(0x10, 1)])?;
    manager.join()
}

fn node_info_for_ref_eperm(_: &Env) -> Outcome {
    let a = Peer::open()?;
    expect_errno(
        info_for_ref(&a, 0),
        libc::EPERM,
        "a process that is not the manager",
    )
}

fn node_info_for_ref_fields(_: &Env) -> Outcome {
    let a = Peer::open()?;
    let mut info = uapi::binder_node_info_for_ref {
        handle: 0,
        reserved2: 1,
        ..Default::default()
    };
    expect_errno(
        a.binder
            .ioctl(uapi::BINDER_GET_NODE_INFO_FOR_REF, &mut info),
        libc::EINVAL,
        "a reserved field set",
    )
}
