//! Behaviours on which the fuzzer (`make fuzz`, tests/fuzz) found rust_binder to differ from
//! the C driver, each pinned to the C driver's behaviour. Each case says what found it.

use std::thread;

use binder_client::{uapi, Binder, Commands, FlatObject, ObjectKind, Payload, Return};

use crate::{
    ensure,
    harness::{expect_errno, notice, park, Case, Env, GuardedPage, Outcome, Step, BINDER},
};

use super::introspection::info_for_ref;
use super::objects::{serve_one_registration, LOOKUP, REGISTER};
use super::peer::{refcount_returns, spawn_manager, Peer};
use crate::harness::{spawn_ready, Child};

pub const CASES: &[Case] = &[
    Case::new(
        "call_from_a_thread_that_left_has_no_sender",
        call_from_a_thread_that_left,
    ),
    Case::new(
        "write_read_write_size_that_wraps_does_nothing",
        write_size_that_wraps,
    ),
    Case::new(
        "first_strong_reference_moves_node_returns_after_earlier_complete",
        first_strong_reference_moves_node_returns,
    ),
    Case::new(
        "call_to_dead_node_is_dead_reply_before_stack_check",
        call_to_dead_node_before_stack_check,
    ),
    Case::new(
        "last_handle_gone_with_strong_left_queues_empty_node_work",
        last_handle_gone_with_strong_left,
    ),
    Case::new(
        "freed_buffer_releases_its_handle_by_number",
        freed_buffer_releases_handle_by_number,
    ),
    Case::new(
        "leaving_thread_fails_only_the_call_on_top_of_its_stack",
        leaving_thread_fails_only_its_top_call,
    ),
    Case::new(
        "reply_to_caller_that_left_is_dead_before_its_objects_are_read",
        reply_to_left_caller_dead_before_objects,
    ),
    Case::new(
        "death_queued_for_a_handle_that_goes_is_not_delivered",
        death_queued_for_a_handle_that_goes,
    ),
    Case::new(
        "first_strong_reference_takes_node_work_off_the_process_list",
        strong_reference_takes_node_work_off_process_list,
    ),
    Case::new(
        "first_strong_reference_takes_node_work_off_another_thread",
        strong_reference_takes_node_work_off_another_thread,
    ),
    Case::new(
        "dead_node_forgets_the_references_of_its_owners_buffers",
        dead_node_forgets_its_own_references,
    ),
    Case::new(
        "reply_left_on_a_leaving_thread_keeps_its_handles",
        reply_left_on_leaving_thread_keeps_handles,
    ),
    Case::new(
        "first_weak_reference_on_a_strong_handle_tells_the_owner",
        first_weak_reference_on_a_strong_handle,
    ),
    Case::new(
        "error_return_that_faults_holds_the_threads_commands_back",
        error_return_that_faults,
    ),
];

/// A thread sends a call and leaves the driver (`BINDER_THREAD_EXIT`) before the manager
/// reads the call. The C driver forgets the sender of every call on a leaving thread's stack
/// (`t->from`): the call arrives with `sender_pid` 0, and the reply to it has nowhere to go,
/// so the replier reads only its `BR_TRANSACTION_COMPLETE`. (Found by the fuzzer, seed 1: a
/// call read after its sender's `BINDER_THREAD_EXIT` still named the sender's pid.)
fn call_from_a_thread_that_left(_: &Env) -> Outcome {
    let (left, await_left) = notice()?;
    let manager = spawn_manager(move |m| {
        await_left.wait()?;
        let (call, _) = m.next_call()?;
        ensure!(
            call.sender_pid == 0,
            "the call of a thread that left names sender pid {}, expected 0",
            call.sender_pid
        );
        m.send(
            Commands::new().transaction(true, 0, call.code, 0, &[]),
            "reply",
        )?;
        let mut returns = m.pending()?;
        returns.retain(|r| {
            !matches!(
                r,
                Return::Increfs(..)
                    | Return::Acquire(..)
                    | Return::Release(..)
                    | Return::Decrefs(..)
            )
        });
        ensure!(
            returns == [Return::TransactionComplete],
            "the reply to a caller that left read {returns:?}, expected only BR_TRANSACTION_COMPLETE"
        );
        m.free(&call)
    })?;
    let client = Peer::open()?;
    client.send_call(0, 1, &Payload::new().bytes(b"bye"))?;
    client.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
    left.notify()?;
    manager.join()
}

/// `BINDER_WRITE_READ` with a `write_size` so large that `write_buffer + write_size` wraps
/// around. The C driver carries out commands while their address is below that end, so here
/// it carries out none and succeeds, `write_consumed` unchanged; the same when
/// `write_consumed` is past `write_size`. (Found by the fuzzer, seed 1: rust_binder read on
/// past the buffer and failed with EFAULT or EINVAL.)
fn write_size_that_wraps(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let commands = Commands::new().enter_looper();
    let bytes = commands.as_bytes();
    for (size, consumed) in [(u64::MAX, 0), (u64::MAX - 4, 4), (4, 8)] {
        let mut bwr = uapi::binder_write_read {
            write_size: size,
            write_consumed: consumed,
            write_buffer: bytes.as_ptr() as u64,
            ..Default::default()
        };
        binder.write_read_raw(&mut bwr).step(&format!(
            "BINDER_WRITE_READ, write_size {size:#x}, write_consumed {consumed}"
        ))?;
        ensure!(
            bwr.write_consumed == consumed,
            "write_size {size:#x}: write_consumed went from {consumed} to {}",
            bwr.write_consumed
        );
    }
    Ok(())
}

/// In one write, a client sends the manager two one-way calls: the first carries a new object
/// of the client's as a weak binder, the second the same object as a strong binder. The first
/// queues the node's `BR_INCREFS` for the sender, then its `BR_TRANSACTION_COMPLETE`; the
/// second's strong reference, of which the client has not been told, moves the node's returns
/// behind that complete in the C driver (`binder_inc_node_nilocked` dequeues the node's work
/// and queues it again): the client reads `BR_TRANSACTION_COMPLETE`, `BR_INCREFS`,
/// `BR_ACQUIRE`, `BR_TRANSACTION_COMPLETE`. (Found by the fuzzer, seed 1: rust_binder gave
/// the node's returns first.) The manager frees the first call only once the client has read:
/// freeing both would release the manager's handle, and a node with no reference left has
/// nothing to tell its owner, on either driver.
fn first_strong_reference_moves_node_returns(_: &Env) -> Outcome {
    const PTR: u64 = 0x100;
    const COOKIE: u64 = 0x101;
    let (read, await_read) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        await_read.wait()?;
        m.free(&call)?;
        let (call, _) = m.next_call()?;
        m.free(&call)
    })?;
    let client = Peer::open()?;
    let (strong, weak) = (
        one_binder(PTR, COOKIE, ObjectKind::Binder),
        one_binder(PTR, COOKIE, ObjectKind::WeakBinder),
    );
    let ours = (|| -> Outcome {
        client.send(
            Commands::new()
                .payload(false, 0, 1, uapi::TF_ONE_WAY, &weak)
                .payload(false, 0, 2, uapi::TF_ONE_WAY, &strong),
            "two one-way calls with the same new object, weak then strong",
        )?;
        sender_reads(
            &client,
            &[
                Return::TransactionComplete,
                Return::Increfs(PTR, COOKIE),
                Return::Acquire(PTR, COOKIE),
                Return::TransactionComplete,
            ],
        )
    })();
    finish(manager, ours, read.notify())
}

/// A payload of one object of the sender's, `(ptr, cookie)`, as a binder of `kind`.
fn one_binder(ptr: u64, cookie: u64, kind: ObjectKind) -> Payload {
    Payload::new().object(FlatObject::binder(ptr, cookie).with_kind(kind))
}

/// Ends a case whose own part came out as `ours` and whose `manager` was then told to go on
/// (`told`). If our part failed, the manager may be waiting for a call that never came: it
/// is killed, and our error is the case's.
fn finish(manager: Child, ours: Outcome, told: Outcome) -> Outcome {
    if ours.is_err() {
        manager.kill().ok();
        return ours;
    }
    manager.join_after(told)
}

/// Checks that what is pending for `sender` is `expected`, `BR_NOOP`s aside. The sender's
/// own writes queued all of it, so nothing is waited for: a missing return fails the case
/// instead of blocking it.
fn sender_reads(sender: &Peer, expected: &[Return]) -> Outcome {
    let returns = sender.pending()?;
    ensure!(
        returns == expected,
        "the sender read {returns:?}, expected {expected:?}"
    );
    Ok(())
}

/// A thread whose own call is still unanswered sends a second call, which the C driver
/// refuses (`BR_FAILED_REPLY`, a bad transaction stack), but to a handle whose node died: C
/// looks the target up first and fails the call with `BR_DEAD_REPLY` before it looks at the
/// sender's stack. (Found by the fuzzer, seed 1: rust_binder checked the stack first.)
fn call_to_dead_node_before_stack_check(_: &Env) -> Outcome {
    const HOLD: u32 = 3;
    let (answer, await_answer) = notice()?;
    let manager = spawn_manager(move |m| {
        serve_one_registration(m)?;
        let (hold, _) = m.next_call()?;
        ensure!(hold.code == HOLD, "third call {hold:?}");
        await_answer.wait()?;
        m.reply_and_free(&hold, &Payload::new())
    })?;
    let server = spawn_registered_server()?;
    let c = Peer::open()?;
    let reply = c.call_for_reply(0, LOOKUP, &Payload::new())?;
    c.send(
        Commands::new()
            .acquire(1)
            .free_buffer(reply.buffer)
            .request_death_notification(1, 0xd1e),
        "keep the handle, ask for its death",
    )?;
    server.kill()?;
    loop {
        let returns = c.read()?;
        if returns.contains(&Return::DeadBinder(0xd1e)) {
            break;
        }
    }
    c.send(Commands::new().dead_binder_done(0xd1e), "dead binder done")?;
    c.send_call(0, HOLD, &Payload::new())?;
    c.send(
        Commands::new().transaction(false, 1, 4, 0, &[]),
        "a second call, to the dead node",
    )?;
    let returns = c.pending()?;
    let expected = [Return::TransactionComplete, Return::DeadReply];
    let ours = if returns == expected {
        Ok(())
    } else {
        Err(format!(
            "with its call unanswered, a call to a dead node read {returns:?}, expected {expected:?}"
        ))
    };
    answer.notify()?;
    let ours = ours.and_then(|()| {
        let exchange = c.await_reply()?;
        let reply = exchange
            .reply
            .ok_or_else(|| format!("the held call failed: {:?}", exchange.returns))?;
        c.free(&reply)
    });
    manager.join_after(ours)
}

/// A client sends the manager a new object of its own in a one-way call, reads the node's
/// `BR_INCREFS` and `BR_ACQUIRE`, and confirms only the first: the `BR_ACQUIRE`'s local strong
/// reference stays. The manager frees the call, and with it its only handle to the node. The C
/// driver checks a node's weak side whenever a weak reference goes (`binder_dec_node_nilocked`
/// with `strong` 0) without looking at its strong references: no handle and no local weak
/// reference left, and its owner told of references, so it queues the node's work on the
/// owner's todo list, although that work has nothing to say (strong references imply a weak
/// one). A non-blocking read that starts past the `BR_NOOP` (`read_consumed` 8) takes that
/// work, delivers nothing, and returns at once with nothing read, where a read with nothing
/// to take fails with `EAGAIN`: the next one does. (Found by the fuzzer, seed 1, operation
/// 1074: rust_binder queued no work there and failed the first read with EAGAIN.)
fn last_handle_gone_with_strong_left(_: &Env) -> Outcome {
    const PTR: u64 = 0x700;
    const COOKIE: u64 = 0x701;
    const CONSUMED: u64 = 8;
    let (read, await_read) = notice()?;
    let (freed, await_freed) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        await_read.wait()?;
        m.free(&call)?;
        freed.notify()
    })?;
    let client = Peer::open()?;
    client.send(Commands::new().enter_looper(), "enter looper")?;
    client.send(
        Commands::new().payload(
            false,
            0,
            1,
            uapi::TF_ONE_WAY,
            &Payload::new().object(FlatObject::binder(PTR, COOKIE)),
        ),
        "a one-way call carrying a new object",
    )?;
    // The raw device, not Peer::read: the BR_ACQUIRE must stay unconfirmed.
    let returns = client
        .binder
        .read_pending()
        .step("read the call's returns")?;
    let ours = if returns.contains(&Return::Increfs(PTR, COOKIE))
        && returns.contains(&Return::Acquire(PTR, COOKIE))
    {
        client.send(
            Commands::new().increfs_done(PTR, COOKIE),
            "BC_INCREFS_DONE only",
        )
    } else {
        Err(format!(
            "the sender read {returns:?}, expected BR_INCREFS and BR_ACQUIRE among them"
        ))
    };
    read.notify()?;
    let ours = ours.and_then(|()| {
        await_freed.wait()?;
        client.binder.set_nonblocking(true).step("O_NONBLOCK")?;
        let mut buffer = [0u8; 256];
        let first = client.binder.write_read_at(&[], 0, &mut buffer, CONSUMED);
        let second = client.binder.write_read_at(&[], 0, &mut buffer, CONSUMED);
        client.binder.set_nonblocking(false).step("blocking again")?;
        match &first.result {
            Ok(()) => ensure!(
                first.read_consumed == CONSUMED,
                "the read that takes the node's empty work moved read_consumed from {CONSUMED} to {}",
                first.read_consumed
            ),
            Err(e) => {
                return Err(format!(
                    "the read with the node's work queued failed ({e}), expected success with nothing read"
                ))
            }
        }
        ensure!(
            second.result.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EAGAIN),
            "the next read gave {:?} (read_consumed {}), expected EAGAIN",
            second.result,
            second.read_consumed
        );
        client.send(
            Commands::new().acquire_done(PTR, COOKIE),
            "BC_ACQUIRE_DONE",
        )
    });
    manager.join_after(ours)
}

/// The manager receives a call carrying the client's node N1 (its handle 1, whose strong
/// count the buffer holds), keeps the buffer, and lets the handle go itself (`BC_RELEASE`).
/// A second call brings the client's node N2, and the lowest free number again: handle 1.
/// Freeing the first buffer now releases the handle by the number written in it, as the C
/// driver does (`binder_dec_ref_for_handle(proc, fp->handle, ...)`): handle 1, N2's, loses
/// its count and goes, and the client reads N2's `BR_RELEASE` and `BR_DECREFS`. (Found by the
/// fuzzer, seed 1, operation 1643: rust_binder released by node, found N1's handle gone, and
/// kept N2's.)
///
/// The manager lets a node's last reference go only after the client has read the reply,
/// and with it the node's `BR_INCREFS`/`BR_ACQUIRE` (answered before the reply is read): a
/// node whose owner has not read them yet is deleted quietly when its references go, and its
/// owner reads nothing of it at all. The node work of a release is queued before the
/// manager's command returns, so one read that does not wait finds it.
fn freed_buffer_releases_handle_by_number(_: &Env) -> Outcome {
    const N1: (u64, u64) = (0x800, 0x801);
    const N2: (u64, u64) = (0x810, 0x811);
    let (replied, await_replied) = notice()?;
    let (released, await_released) = notice()?;
    let (freed, await_freed) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        let handle = m.first_handle(&first, "the first call")?;
        m.reply(&first, &Payload::new())?;
        await_replied.wait()?;
        m.send(Commands::new().release(handle), "BC_RELEASE of the handle")?;
        released.notify()?;
        let (second, _) = m.next_call()?;
        let again = m.objects(&second)?.first().map(FlatObject::handle_value);
        ensure!(
            again == Some(handle),
            "the second node got handle {again:?}, expected the freed number {handle}"
        );
        m.reply(&second, &Payload::new())?;
        await_replied.wait()?;
        m.free(&first)?;
        freed.notify()
    })?;
    let client = Peer::open()?;
    let ours = (|| -> Outcome {
        let call_with = |code: u32, node: (u64, u64)| -> Outcome {
            let exchange = client.call(
                0,
                code,
                &Payload::new().object(FlatObject::binder(node.0, node.1)),
            )?;
            let returns = refcount_returns(&exchange.returns);
            let reply = exchange
                .reply
                .ok_or_else(|| format!("call {code} failed: {:?}", exchange.returns))?;
            client.free(&reply)?;
            let expected = [
                Return::Increfs(node.0, node.1),
                Return::Acquire(node.0, node.1),
            ];
            ensure!(
                returns == expected,
                "call {code} read {returns:?} before its reply, expected {expected:?}"
            );
            replied.notify()
        };
        call_with(1, N1)?;
        await_released.wait()?;
        expect_node_let_go(&client, N1, "after the manager's BC_RELEASE")?;
        call_with(2, N2)?;
        await_freed.wait()?;
        expect_node_let_go(&client, N2, "after the first buffer was freed")
    })();
    manager.join_after(ours)
}

/// Reads what `owner` has pending, and expects its refcount returns to be exactly those of
/// `node`'s last reference going: `BR_RELEASE`, then `BR_DECREFS`. `when` says when, for the
/// failure's message.
fn expect_node_let_go(owner: &Peer, node: (u64, u64), when: &str) -> Outcome {
    let returns = refcount_returns(&owner.pending()?);
    let expected = [
        Return::Release(node.0, node.1),
        Return::Decrefs(node.0, node.1),
    ];
    ensure!(
        returns == expected,
        "{when} the client read {returns:?}, expected {expected:?}"
    );
    Ok(())
}

/// The client calls the manager (call 1, carrying the client's node so that the manager can
/// call back). The manager's thread, answering call 1, calls the client back (call 2, which
/// goes to the client's thread waiting on call 1) and leaves the driver
/// (`BINDER_THREAD_EXIT`) before the client reads call 2. As in the C driver
/// (`binder_thread_release`), a leaving thread fails only the call on top of its stack, if it
/// received that one: here the top is its own call 2, so call 1 does not fail yet, and the
/// client reads call 2 and no `BR_DEAD_REPLY`. Its reply to call 2 fails, the caller having
/// left: the client reads `BR_TRANSACTION_COMPLETE`, and the failure goes down the chain of
/// calls (`binder_send_failed_reply` passes over a caller that left to the call it was
/// answering), so the client then reads `BR_DEAD_REPLY` for call 1. (Found by the fuzzer,
/// seed 1, operation 1702: rust_binder failed call 1 as soon as the manager's thread left.)
fn leaving_thread_fails_only_its_top_call(_: &Env) -> Outcome {
    call_back_then_leave(&Payload::new())
}

/// As [`leaving_thread_fails_only_its_top_call`], with a reply to the call-back that names a
/// handle the client does not have. The C driver finds the caller gone before it reads the
/// reply's objects (`binder_transaction`: "reply target not found"), so the reply fails
/// dead, and the client reads `BR_DEAD_REPLY` for its own call, not `BR_FAILED_REPLY`.
/// (Found by the fuzzer, seed 1, operation 1713.)
fn reply_to_left_caller_dead_before_objects(_: &Env) -> Outcome {
    call_back_then_leave(&Payload::new().object(FlatObject::handle(0x7777)))
}

/// The scenario of [`leaving_thread_fails_only_its_top_call`]; the client answers the
/// call-back with `reply`.
fn call_back_then_leave(reply: &Payload) -> Outcome {
    const NODE: (u64, u64) = (0x820, 0x821);
    let (left, await_left) = notice()?;
    let (done, await_done) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        let handle = m.first_handle(&first, "call 1")?;
        m.send_call(handle, 2, &Payload::new())?;
        m.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
        left.notify()?;
        // The process stays: only its thread has left.
        await_done.wait()
    })?;
    let client = Peer::open()?;
    let ours = (|| -> Outcome {
        client.send_call(
            0,
            1,
            &Payload::new().object(FlatObject::binder(NODE.0, NODE.1)),
        )?;
        await_left.wait()?;
        let returns = client.pending()?;
        let call = returns
            .iter()
            .find_map(|ret| match ret {
                Return::Transaction(txn) => Some(txn.clone()),
                _ => None,
            })
            .ok_or_else(|| format!("the client read {returns:?}, expected the manager's call"))?;
        ensure!(
            call.code == 2,
            "the client read call {}, expected 2",
            call.code
        );
        ensure!(
            !returns
                .iter()
                .any(|ret| matches!(ret, Return::DeadReply | Return::FailedReply)),
            "the client read {returns:?}: its call failed while the leaving thread had its \
             own call on top"
        );
        client.reply(&call, reply)?;
        client.free(&call)?;
        let after = client.pending()?;
        ensure!(
            after == [Return::DeadReply],
            "after its reply to the manager's call the client read {after:?}, expected \
             BR_DEAD_REPLY for its own call"
        );
        Ok(())
    })();
    // However the client fared: the manager, which holds a copy of this end too, would
    // otherwise wait for ever.
    let told = done.notify();
    manager.join_after(ours.and(told))
}

/// A client holds a handle to a node that died, and asks again for its death notification:
/// the node is dead already, so `BR_DEAD_BINDER` is queued on the client's todo list at once.
/// In the same write, before any read, the client lets the handle go (`BC_RELEASE` of its
/// only reference). The C driver deletes the handle and takes its death notification off
/// whatever list it is on (`binder_cleanup_ref_olocked`, `binder_dequeue_work`): nothing is
/// left to read. (Found by the fuzzer, seed 1, operation 1826: rust_binder delivered the
/// `BR_DEAD_BINDER` of a handle that had gone, queued at operation 1665 before the handle
/// went with the buffer holding it at operation 1701.) The first notification, read and
/// withdrawn, is only there to know when the node has died.
fn death_queued_for_a_handle_that_goes(_: &Env) -> Outcome {
    const FIRST: u64 = 0xd1;
    const SECOND: u64 = 0xd2;
    let manager = spawn_manager(serve_one_registration)?;
    let server = spawn_registered_server()?;
    let c = Peer::open()?;
    let ours = (|| {
        let reply = c.call_for_reply(0, LOOKUP, &Payload::new())?;
        c.send(
            Commands::new()
                .acquire(1)
                .free_buffer(reply.buffer)
                .request_death_notification(1, FIRST),
            "keep the handle, ask for its death",
        )?;
        Ok(())
    })();
    server.kill()?;
    let ours = ours.and_then(|()| {
        loop {
            let returns = c.read()?;
            if returns.contains(&Return::DeadBinder(FIRST)) {
                break;
            }
        }
        c.send(
            Commands::new()
                .dead_binder_done(FIRST)
                .clear_death_notification(1, FIRST),
            "answer the death and withdraw the request",
        )?;
        let returns = c.pending()?;
        ensure!(
            returns == [Return::ClearDeathNotificationDone(FIRST)],
            "withdrawing the answered death read {returns:?}, expected its confirmation"
        );
        c.send(
            Commands::new()
                .request_death_notification(1, SECOND)
                .release(1),
            "ask again for the dead node's death, and let the handle go",
        )?;
        let returns = c.pending()?;
        ensure!(
            returns.is_empty(),
            "the death notification of a handle that went was read: {returns:?}, expected nothing"
        );
        Ok(())
    });
    manager.join_after(ours)
}

/// The returns a thread reads until the reply to its call (or the call's failure), each read
/// blocking, with their `BR_NOOP`s left out.
fn returns_until_reply(binder: &Binder) -> Outcome<Vec<Return>> {
    let mut returns = Vec::new();
    loop {
        let read = binder.read().step("read until the reply")?;
        let done = read.iter().any(|ret| {
            matches!(
                ret,
                Return::Reply(_) | Return::FailedReply | Return::DeadReply
            )
        });
        returns.extend(read.into_iter().filter(|ret| *ret != Return::Noop));
        if done {
            return Ok(returns);
        }
    }
}

/// The owner of a node was told of a weak reference and not of a strong one, and the node's
/// work waits on the owner's process todo list to tell it that the weak one went: a client
/// sends the manager its new object as a weak binder in a one-way call and reads
/// `BR_INCREFS`, the manager frees the call (its handle goes), and only then does the client
/// confirm (`BC_INCREFS_DONE`), which drops the last weak reference and queues the node's
/// work on the process's list. The client's thread now sends the object as a strong binder in
/// a call. The C driver, for a strong reference the owner was not told of, takes the node's
/// work off whatever list holds it and queues it on the sending thread's
/// (`binder_inc_node_nilocked`: `binder_dequeue_work_ilocked`, then
/// `binder_enqueue_deferred_thread_work_ilocked`): the sender reads `BR_ACQUIRE` before its
/// `BR_TRANSACTION_COMPLETE`. (Found by the fuzzer, seed 1, operation 3511: rust_binder left
/// the work on the process's list, where a thread waiting for its reply does not look, and
/// the sender read no `BR_ACQUIRE`.)
fn strong_reference_takes_node_work_off_process_list(_: &Env) -> Outcome {
    const PTR: u64 = 0x900;
    const COOKIE: u64 = 0x901;
    let (read, await_read) = notice()?;
    let (freed, await_freed) = notice()?;
    let manager = spawn_manager(move |m| {
        let (weak, _) = m.next_call()?;
        await_read.wait()?;
        m.free(&weak)?;
        freed.notify()?;
        let (strong, _) = m.next_call()?;
        m.reply(&strong, &Payload::new())?;
        await_read.wait()?;
        m.free(&strong)
    })?;
    let client = Peer::open()?;
    let ours = (|| -> Outcome {
        let weak = FlatObject::binder(PTR, COOKIE).with_kind(ObjectKind::WeakBinder);
        client.send_call_flags(0, 1, uapi::TF_ONE_WAY, &Payload::new().object(weak))?;
        // The raw device, not Peer::pending: the BR_INCREFS must stay unconfirmed.
        let returns = client
            .binder
            .read_pending()
            .step("read the one-way call's returns")?;
        ensure!(
            returns.contains(&Return::Increfs(PTR, COOKIE)),
            "the one-way call with a weak binder read {returns:?}, expected BR_INCREFS among them"
        );
        read.notify()?;
        await_freed.wait()?;
        client.send(
            Commands::new().increfs_done(PTR, COOKIE),
            "BC_INCREFS_DONE after the manager's handle went",
        )?;
        client.send_call(
            0,
            2,
            &Payload::new().object(FlatObject::binder(PTR, COOKIE)),
        )?;
        let returns = returns_until_reply(&client.binder)?;
        let Some(Return::Reply(reply)) = returns.last() else {
            return Err(format!("the call failed: {returns:?}"));
        };
        let reply = reply.clone();
        let expected = [Return::Acquire(PTR, COOKIE), Return::TransactionComplete];
        let before = returns.get(..returns.len() - 1).unwrap_or_default();
        let ours = if before == expected {
            client.send(Commands::new().acquire_done(PTR, COOKIE), "BC_ACQUIRE_DONE")
        } else {
            Err(format!(
                "the call with a strong binder read {before:?} before its reply, expected {expected:?}"
            ))
        };
        client.free(&reply)?;
        ours
    })();
    // However the client fared: the manager waits for this.
    let told = read.notify();
    manager.join_after(ours.and(told))
}

/// As above, with the node's work on another thread's list: one thread of the client sends
/// the manager its new object as a weak binder in a one-way call and reads nothing, so the
/// node's `BR_INCREFS` waits on that thread's list; a second thread sends the object as a
/// strong binder in a call. The C driver moves the node's work to the second thread's list,
/// which reads `BR_INCREFS` and `BR_ACQUIRE` with its `BR_TRANSACTION_COMPLETE`; the first
/// thread reads only its own `BR_TRANSACTION_COMPLETE`.
fn strong_reference_takes_node_work_off_another_thread(_: &Env) -> Outcome {
    const PTR: u64 = 0x910;
    const COOKIE: u64 = 0x911;
    let (read, await_read) = notice()?;
    let manager = spawn_manager(move |m| {
        let (weak, _) = m.next_call()?;
        let (strong, _) = m.next_call()?;
        m.reply(&strong, &Payload::new())?;
        await_read.wait()?;
        m.free(&weak)?;
        m.free(&strong)
    })?;
    let client = Peer::open()?;
    let ours = (|| -> Outcome {
        let weak = FlatObject::binder(PTR, COOKIE).with_kind(ObjectKind::WeakBinder);
        client.send_call_flags(0, 1, uapi::TF_ONE_WAY, &Payload::new().object(weak))?;
        let binder = &client.binder;
        let strong = Payload::new().object(FlatObject::binder(PTR, COOKIE));
        let second = thread::scope(|s| {
            s.spawn(|| -> Outcome<Vec<Return>> {
                binder
                    .send(&Commands::new().payload(false, 0, 2, 0, &strong))
                    .step("the second thread's call with a strong binder")?;
                returns_until_reply(binder)
            })
            .join()
            .map_err(|_| "the second thread panicked".to_string())?
        })?;
        let first = binder
            .read_pending()
            .step("the first thread reads what it has")?;
        let Some(Return::Reply(reply)) = second.last() else {
            return Err(format!("the second thread's call failed: {second:?}"));
        };
        let reply = reply.clone();
        let expected = [
            Return::Increfs(PTR, COOKIE),
            Return::Acquire(PTR, COOKIE),
            Return::TransactionComplete,
        ];
        let before = second.get(..second.len() - 1).unwrap_or_default();
        let ours = if before != expected {
            Err(format!(
                "the second thread read {before:?} before its reply, expected {expected:?}"
            ))
        } else if first != [Return::TransactionComplete] {
            Err(format!(
                "the first thread read {first:?}, expected only its BR_TRANSACTION_COMPLETE"
            ))
        } else {
            client.send(
                Commands::new()
                    .increfs_done(PTR, COOKIE)
                    .acquire_done(PTR, COOKIE),
                "BC_INCREFS_DONE, BC_ACQUIRE_DONE",
            )
        };
        client.free(&reply)?;
        ours
    })();
    let told = read.notify();
    manager.join_after(ours.and(told))
}

/// A server process that registers one binder (0x5e, cookie 0x5f) with the manager (see
/// `serve_one_registration`), then sleeps until it is killed: killing it kills the node.
fn spawn_registered_server() -> Outcome<Child> {
    spawn_ready(|ready| {
        let s = Peer::open()?;
        let reply = s.call_for_reply(
            0,
            REGISTER,
            &Payload::new().object(FlatObject::binder(0x5e, 0x5f)),
        )?;
        s.free(&reply)?;
        ready();
        park()
    })
}

/// A process owns a node N, to which the manager keeps a strong handle, asking for its
/// death. The manager sends N a one-way transaction carrying N itself as a weak handle; the
/// owner reads it and keeps the buffer, which holds N with references of the driver's own: a
/// strong one as the transaction's target, a weak one for the object (the owner's own node
/// arrives as a weak binder). Then the owner goes. The C driver forgets a dying node's own
/// references (`binder_node_release` sets `local_strong_refs` and `local_weak_refs` to 0), so
/// once the manager has read `BR_DEAD_BINDER`, BINDER_GET_NODE_INFO_FOR_REF on its handle
/// counts the handle alone: strong 1, weak 0. (Found by the fuzzer, seed 3, operation 6536:
/// a handle to a dead node read strong 2, weak 0 on C, strong 11, weak 1 on rust_binder.)
fn dead_node_forgets_its_own_references(_: &Env) -> Outcome {
    const N: (u64, u64) = (0x900, 0x901);
    const DEATH: u64 = 0xd1;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let handle = m.first_handle(&call, "the owner's call")?;
        m.send(
            Commands::new()
                .acquire(handle)
                .request_death_notification(handle, DEATH)
                .free_buffer(call.buffer),
            "keep the handle and ask for its death",
        )?;
        m.reply(&call, &Payload::new())?;
        let weak = FlatObject::handle(handle).with_kind(ObjectKind::WeakHandle);
        m.send_call_flags(handle, 5, uapi::TF_ONE_WAY, &Payload::new().object(weak))?;
        while !m.read()?.contains(&Return::DeadBinder(DEATH)) {}
        let info = info_for_ref(m, handle).step("BINDER_GET_NODE_INFO_FOR_REF")?;
        ensure!(
            (info.strong_count, info.weak_count) == (1, 0),
            "a handle to a dead node counts strong {}, weak {}; expected the handle alone \
             (strong 1, weak 0)",
            info.strong_count,
            info.weak_count
        );
        Ok(())
    })?;
    let ours = (|| -> Outcome {
        let owner = Peer::open()?;
        owner.send(Commands::new().enter_looper(), "enter looper")?;
        let payload = Payload::new().object(FlatObject::binder(N.0, N.1));
        let reply = owner.call_for_reply(0, 1, &payload)?;
        owner.free(&reply)?;
        let (oneway, _) = owner.next_call()?;
        ensure!(
            oneway.code == 5,
            "the owner read call {}, expected the one-way 5",
            oneway.code
        );
        // Gone with its buffer unfreed: closing the device releases the process.
        drop(owner);
        Ok(())
    })();
    manager.join_after(ours)
}

/// The manager answers a client's call with an object of its own, and the client's thread
/// leaves the driver (`BINDER_THREAD_EXIT`) before it reads the reply. The C driver drops the
/// transactions left on a leaving thread's list without freeing their buffers
/// (`binder_release_work`, `binder_cleanup_transaction`, `binder_free_transaction`): the
/// reply's buffer stays in the client, which never got it and cannot free it, until the
/// client is released, and so does the handle 1 its object took. The client's next handle is
/// 2, and the manager hears of no release of its first node. (Found by the fuzzer, seed 1,
/// operation 6947: a reply carried handle 2 on C, 1 on rust_binder, whose leaving thread had
/// freed such a reply's buffer at operation 6853.)
fn reply_left_on_leaving_thread_keeps_handles(_: &Env) -> Outcome {
    const FIRST: (u64, u64) = (0x830, 0x831);
    const SECOND: (u64, u64) = (0x840, 0x841);
    let (replied, await_replied) = notice()?;
    let (done, await_done) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        let object = FlatObject::binder(FIRST.0, FIRST.1);
        m.reply_and_free(&first, &Payload::new().object(object))?;
        replied.notify()?;
        let (second, _) = m.next_call()?;
        let object = FlatObject::binder(SECOND.0, SECOND.1);
        m.reply_and_free(&second, &Payload::new().object(object))?;
        await_done.wait()?;
        let released: Vec<Return> = refcount_returns(&m.pending()?)
            .into_iter()
            .filter(|ret| {
                matches!(ret, Return::Release(ptr, _) | Return::Decrefs(ptr, _)
                    if *ptr == FIRST.0)
            })
            .collect();
        ensure!(
            released.is_empty(),
            "the manager read {released:?} for the node in the reply the client never read; \
             expected nothing: the reply's buffer keeps the client's handle"
        );
        Ok(())
    })?;
    let client = Peer::open()?;
    let ours = (|| -> Outcome {
        client.send_call(0, 1, &Payload::new())?;
        await_replied.wait()?;
        client.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
        let reply = client.call_for_reply(0, 2, &Payload::new())?;
        let handle = client.first_handle(&reply, "the second reply")?;
        client.free(&reply)?;
        ensure!(
            handle == 2,
            "the second reply's object became handle {handle}, expected 2: handle 1 stays \
             with the unread first reply's buffer"
        );
        Ok(())
    })();
    let told = done.notify();
    manager.join_after(ours.and(told))
}

/// A client sends the manager a new object of its own as a strong binder in a one-way call,
/// reads nothing, and its thread leaves the driver (`BINDER_THREAD_EXIT`): the node's
/// `BR_INCREFS` and `BR_ACQUIRE`, queued for that thread, go with it unread, so the client is
/// told of no reference, and the manager's handle holds a strong reference and no weak one
/// (the C driver counts them apart). The client's next thread sends the same object as a weak
/// binder in a second one-way call: the handle's first weak reference queues the node's work
/// for the sender (`binder_inc_node_nilocked`, weak, with the sender's list), which reads
/// `BR_INCREFS`, `BR_ACQUIRE` (a strong reference exists) and its `BR_TRANSACTION_COMPLETE`.
/// (Found by the fuzzer, seed 1, operation 13559: rust_binder counted the weak reference on
/// the handle without the node hearing of it, and the sender read only its complete.) The
/// manager keeps both buffers until the client has read: the handle's references are theirs.
fn first_weak_reference_on_a_strong_handle(_: &Env) -> Outcome {
    const PTR: u64 = 0x850;
    const COOKIE: u64 = 0x851;
    let (read, await_read) = notice()?;
    let manager = spawn_manager(move |m| {
        let (first, _) = m.next_call()?;
        await_read.wait()?;
        m.free(&first)?;
        let (second, _) = m.next_call()?;
        m.free(&second)
    })?;
    let client = Peer::open()?;
    let (strong, weak) = (
        one_binder(PTR, COOKIE, ObjectKind::Binder),
        one_binder(PTR, COOKIE, ObjectKind::WeakBinder),
    );
    let ours = (|| -> Outcome {
        client.send(
            Commands::new().payload(false, 0, 1, uapi::TF_ONE_WAY, &strong),
            "a one-way call with a new object, strong",
        )?;
        client.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
        client.send(
            Commands::new().payload(false, 0, 2, uapi::TF_ONE_WAY, &weak),
            "a one-way call with the same object, weak, from the next thread",
        )?;
        sender_reads(
            &client,
            &[
                Return::Increfs(PTR, COOKIE),
                Return::Acquire(PTR, COOKIE),
                Return::TransactionComplete,
            ],
        )
    })();
    finish(manager, ours, read.notify())
}

/// A call to a handle that does not exist leaves `BR_FAILED_REPLY` for the thread, which then
/// reads into a buffer with room for its `BR_NOOP` but not for the error's code. The C driver
/// takes the error off the thread's list before it copies the code out, and clears it only
/// after (`binder_thread_read`): the read fails with `EFAULT`, the error stays set but is no
/// longer queued, so the thread's later commands are not carried out (none consumed) and a
/// non-blocking read finds nothing. (Found by the fuzzer, seed 2, operation 31344:
/// rust_binder cleared the error before copying it out, and went on carrying out commands.)
fn error_return_that_faults(_: &Env) -> Outcome {
    let caller = Peer::open()?;
    caller.send(
        Commands::new().transaction(false, 77, 1, 0, &[]),
        "a call to handle 77, which does not exist",
    )?;
    // Non-blocking: a driver that never queued the error fails here rather than waits.
    caller
        .binder
        .set_nonblocking(true)
        .step("O_NONBLOCK for the read")?;
    let guarded = GuardedPage::new()?;
    let done = caller.binder.read_raw(guarded.guard() - 4, 256);
    expect_errno(
        done.result,
        libc::EFAULT,
        "a read with room for BR_NOOP but not for BR_FAILED_REPLY",
    )?;
    ensure!(
        done.read_consumed == 0,
        "the failed read reports read_consumed {}",
        done.read_consumed
    );
    caller
        .binder
        .set_nonblocking(false)
        .step("blocking again")?;
    let later = Commands::new().enter_looper();
    let done = caller.binder.write(&later);
    done.result.step("BC_ENTER_LOOPER after the failed read")?;
    ensure!(
        done.write_consumed == 0,
        "with the error still set, the driver consumed {} of {} bytes of commands, expected 0",
        done.write_consumed,
        later.len()
    );
    let returns = caller.pending()?;
    ensure!(
        returns.is_empty(),
        "after the failed read the thread read {returns:?}, expected nothing"
    );
    Ok(())
}
