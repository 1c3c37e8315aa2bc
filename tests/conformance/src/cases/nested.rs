//! Nested calls and the transaction stack: a call back into a process waiting further down
//! the chain arrives on the very thread that waits there, and a thread may not start a call
//! while its own call waits for a reply or while a transaction waits at the head of its todo
//! list (EPROTO, BR_FAILED_REPLY).

use std::os::fd::AsRawFd;

use binder_client::{parse_returns, uapi, Commands, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{notice, park, Case, Env, Epoll, Outcome, Step},
};

use super::peer::{spawn_manager, Peer};

pub const CASES: &[Case] = &[
    Case::new(
        "nested_call_arrives_on_the_waiting_thread",
        callback_on_waiting_thread,
    ),
    Case::new(
        "nested_reply_complete_comes_before_the_answer",
        reply_complete_before_the_answer,
    ),
    Case::new(
        "nested_second_call_while_waiting_eproto",
        second_call_while_waiting,
    ),
    Case::new(
        "nested_call_with_reply_at_todo_head_eproto",
        reply_at_todo_head,
    ),
];

const CALLBACK_PTR: u64 = 0xca11;
const CALLBACK_COOKIE: u64 = 0xbac4;

/// The answer of whichever thread of the client took the callback.
const MAIN_THREAD: &[u8] = b"main";
const LOOPER_THREAD: &[u8] = b"looper";

/// A manager that answers one call by calling back the object that came with it, and
/// replies with what the callback answered.
fn calling_back_manager() -> Outcome<crate::harness::Child> {
    spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let [callback] = m.objects(&call)?[..] else {
            return Err("no callback object".into());
        };
        let answer = m.call(callback.handle_value(), 2, &Payload::new().bytes(b"who?"))?;
        let reply = answer
            .reply
            .ok_or_else(|| format!("the callback failed: {:?}", answer.returns))?;
        let who = m
            .mapping
            .bytes_at(reply.buffer, reply.data_size)
            .unwrap_or(&[])
            .to_vec();
        m.free(&reply)?;
        m.reply_and_free(&call, &Payload::new().bytes(&who))
    })
}

/// Serves calls on a looper thread of `peer`, answering LOOPER_THREAD; runs until the
/// process ends.
fn spawn_looper(peer: &Peer) -> Outcome {
    let binder = peer.binder.try_clone().step("dup")?;
    std::thread::spawn(move || -> Outcome {
        binder
            .send(&Commands::new().enter_looper())
            .step("looper enter")?;
        loop {
            for ret in binder.read().step("looper read")? {
                if let Return::Transaction(txn) = ret {
                    binder
                        .send(
                            &Commands::new()
                                .transaction(true, 0, txn.code, 0, LOOPER_THREAD)
                                .free_buffer(txn.buffer),
                        )
                        .step("looper reply")?;
                }
            }
        }
    });
    Ok(())
}

fn callback_on_waiting_thread(_: &Env) -> Outcome {
    let manager = calling_back_manager()?;
    let a = Peer::open()?;
    spawn_looper(&a)?;
    let payload = Payload::new().object(FlatObject::binder(CALLBACK_PTR, CALLBACK_COOKIE));
    let offsets = payload.offsets_bytes();
    a.send(
        Commands::new().transaction_raw(false, 0, 1, 0, &payload.data, &offsets),
        "call",
    )?;
    let reply = loop {
        let returns = a.read()?;
        if let Some(reply) = returns.iter().find_map(|ret| match ret {
            Return::Reply(txn) => Some(txn.clone()),
            _ => None,
        }) {
            break reply;
        }
        for ret in &returns {
            match ret {
                Return::Transaction(callback) => {
                    ensure!(
                        callback.target_ptr == CALLBACK_PTR && callback.cookie == CALLBACK_COOKIE,
                        "the callback {callback:?}"
                    );
                    a.reply_and_free(callback, &Payload::new().bytes(MAIN_THREAD))?;
                }
                Return::FailedReply | Return::DeadReply => {
                    return Err(format!("the call failed: {returns:?}"))
                }
                _ => {}
            }
        }
    };
    let who = a
        .mapping
        .bytes_at(reply.buffer, reply.data_size)
        .unwrap_or(&[]);
    ensure!(
        who == MAIN_THREAD,
        "the callback was answered by the {} thread",
        String::from_utf8_lossy(who)
    );
    a.free(&reply)?;
    manager.join()
}

/// A manager that answers one call, and then (with `linger`) stays until it is killed.
fn answering_manager(linger: bool) -> Outcome<crate::harness::Child> {
    spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        m.reply_and_free(&call, &Payload::new().bytes(b"answer"))?;
        if linger {
            park()
        }
        Ok(())
    })
}

fn second_call_while_waiting(_: &Env) -> Outcome {
    let manager = answering_manager(false)?;
    let a = Peer::open()?;
    a.send(
        Commands::new()
            .transaction(false, 0, 1, 0, b"first")
            .transaction(false, 0, 2, 0, b"second"),
        "two calls",
    )?;
    let mut returns = a.read()?;
    // The manager may answer the first call before this read: its reply then follows in the
    // same read.
    let answered_early = matches!(returns.last(), Some(Return::Reply(_)));
    let early_reply = if answered_early { returns.pop() } else { None };
    ensure!(
        returns
            == [
                Return::Noop,
                Return::TransactionComplete,
                Return::FailedReply
            ],
        "after two calls: {returns:?}"
    );
    let error = a.binder.extended_error().step("extended error")?;
    ensure!(
        error.command == uapi::BR_FAILED_REPLY && error.param == -libc::EPROTO,
        "extended error {error:?}"
    );
    let reply = match early_reply {
        Some(Return::Reply(reply)) => reply,
        _ => {
            let returns = a.read()?;
            let [Return::Noop, Return::Reply(reply)] = &returns[..] else {
                return Err(format!("the first call's reply: {returns:?}"));
            };
            reply.clone()
        }
    };
    a.free(&reply)?;
    manager.join()
}

/// The room a read needs for BR_NOOP and one BR_TRANSACTION_COMPLETE, and not for the reply
/// after it: the driver takes an item only with room for the largest return left.
const ROOM_FOR_NOOP_AND_COMPLETE: usize = 80;

fn reply_at_todo_head(_: &Env) -> Outcome {
    // The manager stays: a call to handle 0 without one would fail for that reason first.
    let manager = answering_manager(true)?;
    let a = Peer::open()?;
    a.send(
        Commands::new().transaction(false, 0, 1, 0, b"first"),
        "call",
    )?;
    // Once the reply is queued, the thread is readable.
    Epoll::watch(a.binder.as_raw_fd())?.wait()?;
    let mut buffer = [0u8; ROOM_FOR_NOOP_AND_COMPLETE];
    let done = a.binder.write_read_at(&[], 0, &mut buffer, 0);
    done.result.step("short read")?;
    let returns = parse_returns(&buffer[..done.read_consumed as usize])
        .map_err(|_| "truncated returns".to_string())?;
    ensure!(
        returns == [Return::Noop, Return::TransactionComplete],
        "short read {returns:?}"
    );
    // The reply waits at the head of the todo list: no new call.
    a.send(
        Commands::new().transaction(false, 0, 2, 0, b"second"),
        "second call",
    )?;
    let mut seen = a.read()?;
    seen.extend(a.read()?);
    ensure!(
        seen.contains(&Return::FailedReply)
            && seen.iter().any(|ret| matches!(ret, Return::Reply(_))),
        "after the second call: {seen:?}"
    );
    let error = a.binder.extended_error().step("extended error")?;
    ensure!(
        error.command == uapi::BR_FAILED_REPLY && error.param == -libc::EPROTO,
        "extended error {error:?}"
    );
    manager.kill()
}

/// A calls B with an object; B calls the object back (a nested call, which reaches A's
/// waiting thread); A replies, writing only. B, once it has A's answer, answers A's call and
/// says so; only then does A read. The BR_TRANSACTION_COMPLETE of A's reply comes before B's
/// BR_REPLY, as in C, which queues the complete before it delivers a reply. Userspace that
/// waits for the complete of the reply it sent (rsbinder, libbinder) drops a BR_REPLY that
/// comes first, and its call then waits for ever: the hang behind issue 9's first finding.
/// That hang needs B to answer while A's BC_REPLY is still in the driver, a window this case
/// cannot hold open (it passed before the fix too); the interop checks
/// `interop_rsb_object_stress_*` catch it. This case pins the order the window must not
/// change.
fn reply_complete_before_the_answer(_: &Env) -> Outcome {
    let (answered, await_answer) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let [callback] = m.objects(&call)?[..] else {
            return Err("no callback object".into());
        };
        let answer =
            m.call_for_reply(callback.handle_value(), 2, &Payload::new().bytes(b"who?"))?;
        m.free(&answer)?;
        m.reply_and_free(&call, &Payload::new().bytes(b"done"))?;
        answered.notify()
    })?;
    let a = Peer::open()?;
    let payload = Payload::new().object(FlatObject::binder(CALLBACK_PTR, CALLBACK_COOKIE));
    a.send_call(0, 1, &payload)?;
    let (callback, _) = a.next_call()?;
    ensure!(
        callback.target_ptr == CALLBACK_PTR,
        "A's thread got {callback:?} where the callback was due"
    );
    // The reply alone, with no read in the same ioctl.
    a.send(
        Commands::new().transaction(true, 0, callback.code, 0, MAIN_THREAD),
        "reply to the callback",
    )?;
    await_answer.wait()?;
    let returns = a.pending()?;
    let complete = returns
        .iter()
        .position(|ret| *ret == Return::TransactionComplete);
    let reply = returns
        .iter()
        .position(|ret| matches!(ret, Return::Reply(_)));
    ensure!(
        matches!((complete, reply), (Some(c), Some(r)) if c < r),
        "after B answered, A read {returns:?}: the complete of A's reply must come first"
    );
    if let Some(Return::Reply(txn)) = reply.and_then(|r| returns.get(r)) {
        a.free(txn)?;
    }
    a.free(&callback)?;
    manager.join()
}
