//! Freezing: `BINDER_FREEZE` and `BINDER_GET_FROZEN_INFO`, what a frozen process's callers
//! read (`BR_FROZEN_REPLY`, `BR_TRANSACTION_PENDING_FROZEN`), `TF_UPDATE_TXN`, and freeze
//! notifications (`BR_FROZEN_BINDER`).
//!
//! The C driver does not stop a frozen process from reading: one-way work is queued and its
//! threads are woken as usual (Android freezes the process's cgroup too, so it does not
//! read). The cases that look at queued one-way transactions therefore keep the frozen
//! process from reading until they thaw it.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use binder_client::{uapi, Binder, Commands, FlatObject, Mapping, Payload, Return, Txn};

use crate::{
    ensure,
    harness::{
        eventually, expect_errno, notice, park, spawn_ready, Case, Child, Env, Outcome, Step,
        BINDER, HWBINDER,
    },
};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::new(
        "freeze_pid_without_binder_is_einval",
        freeze_pid_without_binder_is_einval,
    ),
    Case::new(
        "freeze_dead_process_is_einval",
        freeze_dead_process_is_einval,
    ),
    Case::new(
        "freeze_call_gets_frozen_reply_until_thawed",
        freeze_call_gets_frozen_reply_until_thawed,
    ),
    Case::new(
        "freeze_oneways_pending_then_delivered_in_order",
        freeze_oneways_pending_then_delivered_in_order,
    ),
    Case::new(
        "freeze_does_not_hide_oneway_from_a_reader",
        freeze_does_not_hide_oneway_from_a_reader,
    ),
    Case::new(
        "freeze_with_unanswered_call_is_eagain",
        freeze_with_unanswered_call_is_eagain,
    ),
    Case::new(
        "freeze_wait_ends_when_the_call_is_answered",
        freeze_wait_ends_when_the_call_is_answered,
    ),
    Case::new(
        "freeze_wait_interrupted_by_signal",
        freeze_wait_interrupted_by_signal,
    ),
    Case::new(
        "freeze_after_the_receiving_thread_exits",
        freeze_after_the_receiving_thread_exits,
    ),
    Case::new(
        "freeze_every_process_of_the_pid",
        freeze_every_process_of_the_pid,
    ),
    Case::new(
        "freeze_update_txn_replaces_queued_oneway",
        freeze_update_txn_replaces_queued_oneway,
    ),
    Case::new(
        "freeze_update_txn_only_while_frozen",
        freeze_update_txn_only_while_frozen,
    ),
    Case::new(
        "freeze_notification_reports_each_change",
        freeze_notification_reports_each_change,
    ),
    Case::new(
        "freeze_notification_request_while_frozen",
        freeze_notification_request_while_frozen,
    ),
    Case::new(
        "freeze_notification_clear_queued_or_unacknowledged",
        freeze_notification_clear_queued_or_unacknowledged,
    ),
    Case::new(
        "freeze_notification_misuse_is_einval",
        freeze_notification_misuse_is_einval,
    ),
    Case::new(
        "freeze_notification_on_weak_handle",
        freeze_notification_on_weak_handle,
    ),
    Case::new(
        "freeze_notification_after_owner_death_is_silent",
        freeze_notification_after_owner_death_is_silent,
    ),
    Case::new(
        "freeze_notifications_queued_in_node_order",
        freeze_notifications_queued_in_node_order,
    ),
    Case::new(
        "freeze_report_queued_goes_with_its_handle",
        freeze_report_queued_goes_with_its_handle,
    ),
    Case::new(
        "freeze_killed_while_frozen_with_queued_work",
        freeze_killed_while_frozen_with_queued_work,
    ),
    Case::new(
        "freeze_races_calls_oneways_and_notifications",
        freeze_races_calls_oneways_and_notifications,
    ),
];

const MAP_SIZE: usize = 1 << 20;

/// `TF_ONE_WAY | TF_UPDATE_TXN`.
const UPDATE: u32 = uapi::TF_ONE_WAY | uapi::TF_UPDATE_TXN;

/// The pid of a child, as `BINDER_FREEZE` takes it.
fn pid_of(child: &Child) -> u32 {
    child.pid() as u32
}

/// Opens and maps `device`: a caller needs the mapping for its replies.
fn open_mapped(device: &str) -> Outcome<(Binder, Mapping)> {
    let binder = Binder::open(device).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    Ok((binder, mapping))
}

/// Becomes the manager of `device`, mapped, on a looper thread.
fn manager_of(device: &str) -> Outcome<(Binder, Mapping)> {
    let (binder, mapping) = open_mapped(device)?;
    become_manager(&binder)?;
    binder
        .send(&Commands::new().enter_looper())
        .step("enter looper")?;
    Ok((binder, mapping))
}

/// Answers every call with an empty reply and frees every one-way transaction, for ever.
fn serve(binder: &Binder) -> Outcome {
    loop {
        for ret in binder.read().step("server read")? {
            if let Return::Transaction(txn) = ret {
                answer(binder, &txn)?;
            }
        }
    }
}

/// Frees `txn`'s buffer, replying first if it is a call.
fn answer(binder: &Binder, txn: &Txn) -> Outcome {
    let mut commands = Commands::new().free_buffer(txn.buffer);
    if txn.flags & uapi::TF_ONE_WAY == 0 {
        commands = commands.transaction(true, 0, txn.code, 0, b"");
    }
    binder.send(&commands).step("answer")
}

/// A context manager of BINDER that [serves](serve) on `threads` looper threads.
fn serving_manager(threads: usize) -> Outcome<Child> {
    spawn_ready(move |ready| {
        let (binder, _mapping) = manager_of(BINDER)?;
        ready();
        thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(|| {
                    binder
                        .send(&Commands::new().enter_looper())
                        .step("enter looper")?;
                    serve(&binder)
                });
            }
            serve(&binder)
        })
    })
}

/// Calls handle 0 and reads until the call ends; returns what was read, without `BR_NOOP`s.
/// A reply's buffer is freed.
fn call(binder: &Binder, code: u32) -> Outcome<Vec<Return>> {
    binder
        .send(&Commands::new().transaction(false, 0, code, 0, b"call"))
        .step("call")?;
    let mut seen = Vec::new();
    loop {
        for ret in binder.read().step("read the call's end")? {
            let done = matches!(
                ret,
                Return::Reply(_) | Return::FrozenReply | Return::FailedReply | Return::DeadReply
            );
            if let Return::Reply(txn) = &ret {
                binder
                    .send(&Commands::new().free_buffer(txn.buffer))
                    .step("free the reply")?;
            }
            if ret != Return::Noop {
                seen.push(ret);
            }
            if done {
                return Ok(seen);
            }
        }
    }
}

/// Sends a one-way transaction to handle 0 and returns what the sender read for it.
fn oneway(binder: &Binder, code: u32, flags: u32, data: &[u8]) -> Outcome<Return> {
    let commands = Commands::new().transaction(false, 0, code, flags, data);
    let returns = binder
        .write_then_read(&commands)
        .step("one-way transaction")?;
    match returns.as_slice() {
        [Return::Noop, ret] => Ok(ret.clone()),
        other => Err(format!("after a one-way transaction read {other:?}")),
    }
}

/// Checks `BINDER_GET_FROZEN_INFO` of `pid`.
fn expect_info(binder: &Binder, pid: u32, expected: (u32, u32), what: &str) -> Outcome {
    let info = binder
        .frozen_info(pid)
        .step(&format!("BINDER_GET_FROZEN_INFO {what}"))?;
    ensure!(
        info == expected,
        "{what}: (sync_recv, async_recv) is {info:?}, expected {expected:?}"
    );
    Ok(())
}

/// Waits until `pid` has nothing outstanding, as `BINDER_GET_FROZEN_INFO` reports it: (0, 0)
/// while not frozen.
///
/// A call's end is not atomic for the callee's process: the C driver wakes the caller with
/// its `BR_REPLY` (or `BR_DEAD_REPLY`) first and only then frees the finished transaction,
/// which is what takes it off the callee's count of outstanding transactions. For a moment
/// after the caller has read its reply, the callee's info still says 2 ("a call is pending")
/// and a freeze with a timeout of 0 fails with `EAGAIN`.
fn settled(binder: &Binder, pid: u32, what: &str) -> Outcome {
    let mut last = None;
    eventually(&format!("{what}: nothing outstanding"), || {
        let info = binder
            .frozen_info(pid)
            .step(&format!("BINDER_GET_FROZEN_INFO {what}"))?;
        last = Some(info);
        Ok((info == (0, 0)).then_some(()))
    })
    .map_err(|why| match last {
        Some(info) => format!("{why}; the info stayed {info:?}"),
        None => why,
    })
}

/// Reads what is ready without waiting, without `BR_NOOP`s.
fn pending(binder: &Binder) -> Outcome<Vec<Return>> {
    binder.read_pending().step("read what is pending")
}

/// Checks that the next read returns exactly `expected` (after its `BR_NOOP`).
fn expect_read(binder: &Binder, expected: &[Return], what: &str) -> Outcome {
    let returns = binder.read().step(what)?;
    let got: Vec<Return> = returns.into_iter().filter(|r| *r != Return::Noop).collect();
    ensure!(
        got == expected,
        "{what}: read {got:?}, expected {expected:?}"
    );
    Ok(())
}

/// A forked child that never opens a binder device has no binder process: `EINVAL`, as for
/// pid 0 and a negative pid, for both ioctls and for a thaw as well.
fn freeze_pid_without_binder_is_einval(_: &Env) -> Outcome {
    let (done, await_done) = notice()?;
    let bystander = spawn_ready(move |ready| {
        ready();
        await_done.wait()?;
        Ok(())
    })?;
    let binder = Binder::open(BINDER).step("open")?;
    for pid in [pid_of(&bystander), 0, -1i32 as u32, i32::MIN as u32] {
        expect_errno(
            binder.freeze(pid, true, 0),
            libc::EINVAL,
            &format!("BINDER_FREEZE of pid {pid}"),
        )?;
        expect_errno(
            binder.freeze(pid, false, 0),
            libc::EINVAL,
            &format!("thaw of pid {pid}"),
        )?;
        expect_errno(
            binder.frozen_info(pid),
            libc::EINVAL,
            &format!("BINDER_GET_FROZEN_INFO of pid {pid}"),
        )?;
    }
    done.notify()?;
    bystander.join()
}

/// Once a process that had the device open is gone and released, its pid is unknown again.
fn freeze_dead_process_is_einval(_: &Env) -> Outcome {
    let gone = spawn_ready(|ready| {
        let _binder = Binder::open(BINDER).step("open")?;
        ready();
        Ok(())
    })?;
    let pid = pid_of(&gone);
    gone.join()?;
    let binder = Binder::open(BINDER).step("open")?;
    // The driver releases a closed process later, from a workqueue.
    eventually("the dead process's release", || {
        match binder.frozen_info(pid) {
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Some(())),
            Err(e) => Err(format!("BINDER_GET_FROZEN_INFO: {e}")),
        }
    })?;
    expect_errno(
        binder.freeze(pid, true, 100),
        libc::EINVAL,
        "BINDER_FREEZE of a dead process",
    )
}

/// A call to a frozen process fails at once with `BR_FROZEN_REPLY` alone (no
/// `BR_TRANSACTION_COMPLETE`), its extended error names `BR_FROZEN_REPLY` with errno 0, and
/// `sync_recv` says a call came. Thawed, calls go through again. Each freeze resets the info.
fn freeze_call_gets_frozen_reply_until_thawed(_: &Env) -> Outcome {
    let server = serving_manager(1)?;
    let pid = pid_of(&server);
    let (binder, _mapping) = open_mapped(BINDER)?;
    let before = call(&binder, 1)?;
    ensure!(
        matches!(
            before.as_slice(),
            [Return::TransactionComplete, Return::Reply(_)]
        ),
        "call before the freeze: {before:?}"
    );
    settled(&binder, pid, "before any freeze")?;
    binder.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    expect_info(&binder, pid, (0, 0), "frozen, nothing sent")?;
    let frozen = call(&binder, 2)?;
    ensure!(
        frozen == [Return::FrozenReply],
        "call to the frozen process: {frozen:?}"
    );
    let ee = binder.extended_error().step("BINDER_GET_EXTENDED_ERROR")?;
    ensure!(
        ee.command == uapi::BR_FROZEN_REPLY && ee.param == 0 && ee.id != 0,
        "extended error after BR_FROZEN_REPLY: {ee:?}"
    );
    expect_info(&binder, pid, (1, 0), "after a call while frozen")?;
    // Freezing again resets what was received.
    binder.freeze(pid, true, 0).step("BINDER_FREEZE again")?;
    expect_info(&binder, pid, (0, 0), "frozen again")?;
    ensure!(
        call(&binder, 3)? == [Return::FrozenReply],
        "second call while frozen"
    );
    binder.freeze(pid, false, 0).step("thaw")?;
    expect_info(&binder, pid, (0, 0), "thawed")?;
    let after = call(&binder, 4)?;
    ensure!(
        matches!(
            after.as_slice(),
            [Return::TransactionComplete, Return::Reply(_)]
        ),
        "call after the thaw: {after:?}"
    );
    // Thawing a process that is not frozen is fine too.
    binder.freeze(pid, false, 0).step("thaw again")?;
    settled(&binder, pid, "after the call after the thaw")?;
    // From 2^31 ms on, C's timeout is MAX_JIFFY_OFFSET jiffies, and the C driver keeps what
    // its wait leaves of it in an int: with nothing outstanding that reads as -2, and the
    // freeze fails with ENOENT, leaving the process thawed.
    for timeout in [u32::MAX, 1 << 31] {
        expect_errno(
            binder.freeze(pid, true, timeout),
            libc::ENOENT,
            &format!("BINDER_FREEZE of an idle process with a timeout of {timeout} ms"),
        )?;
        let returns = call(&binder, 5)?;
        ensure!(
            matches!(
                returns.as_slice(),
                [Return::TransactionComplete, Return::Reply(_)]
            ),
            "call after a freeze with a timeout of {timeout} ms: {returns:?}"
        );
        // Otherwise C's wait for the call's end leaves another negative int: not ENOENT.
        settled(
            &binder,
            pid,
            &format!("after the call after the {timeout} ms freeze"),
        )?;
    }
    // Just below, the timeout is only a bound: an idle process freezes at once.
    let start = Instant::now();
    binder
        .freeze(pid, true, (1 << 31) - 1)
        .step("BINDER_FREEZE with a timeout of 2^31 - 1 ms")?;
    let waited = start.elapsed();
    ensure!(
        waited < Duration::from_secs(10),
        "an idle process took {waited:?} to freeze"
    );
    ensure!(
        call(&binder, 6)? == [Return::FrozenReply],
        "call after a freeze with a timeout of 2^31 - 1 ms"
    );
    binder.freeze(pid, false, 0).step("thaw")?;
    server.kill()
}

/// One-way transactions to a frozen process that does not read are queued: each sender reads
/// `BR_TRANSACTION_PENDING_FROZEN`, the info says one-way work came and is pending; thawed
/// and reading, the process gets them in order, and then nothing is pending.
fn freeze_oneways_pending_then_delivered_in_order(_: &Env) -> Outcome {
    let (go, await_go) = notice()?;
    let (read_all, await_read_all) = notice()?;
    let (finish, await_finish) = notice()?;
    let server = spawn_ready(move |ready| {
        let (binder, mapping) = manager_of(BINDER)?;
        ready();
        await_go.wait()?;
        for code in 1..=3u32 {
            let returns = binder.read().step("server read")?;
            let [Return::Noop, Return::Transaction(txn)] = returns.as_slice() else {
                return Err(format!("server read {returns:?}, expected one-way {code}"));
            };
            ensure!(
                txn.code == code,
                "one-way {} came where {code} was due",
                txn.code
            );
            let data = mapping.bytes_at(txn.buffer, txn.data_size);
            ensure!(
                data == Some(&[code as u8; 8][..]),
                "one-way {code} carried {data:?}"
            );
            answer(&binder, txn)?;
        }
        read_all.notify()?;
        await_finish.wait()?;
        Ok(())
    })?;
    let pid = pid_of(&server);
    let binder = Binder::open(BINDER).step("open")?;
    binder.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    for code in 1..=3u32 {
        let ret = oneway(&binder, code, uapi::TF_ONE_WAY, &[code as u8; 8])?;
        ensure!(
            ret == Return::TransactionPendingFrozen,
            "one-way {code} to the frozen process: {ret:?}"
        );
    }
    expect_info(&binder, pid, (2, 1), "frozen with one-way work queued")?;
    binder.freeze(pid, false, 0).step("thaw")?;
    expect_info(&binder, pid, (2, 0), "thawed, the work still queued")?;
    go.notify()?;
    await_read_all.wait()?;
    expect_info(&binder, pid, (0, 0), "thawed, everything read")?;
    // With nothing outstanding, a freeze succeeds at once.
    binder
        .freeze(pid, true, 0)
        .step("BINDER_FREEZE when idle")?;
    binder.freeze(pid, false, 0).step("thaw")?;
    finish.notify()?;
    server.join()
}

/// As in the C driver, a frozen process that keeps reading still gets its one-way work; the
/// sender reads `BR_TRANSACTION_PENDING_FROZEN` all the same.
fn freeze_does_not_hide_oneway_from_a_reader(_: &Env) -> Outcome {
    let (got, await_got) = notice()?;
    let (finish, await_finish) = notice()?;
    let server = spawn_ready(move |ready| {
        let (binder, _mapping) = manager_of(BINDER)?;
        ready();
        let returns = binder.read().step("server read")?;
        let [Return::Noop, Return::Transaction(txn)] = returns.as_slice() else {
            return Err(format!("the frozen reader read {returns:?}"));
        };
        ensure!(txn.code == 7, "code {}", txn.code);
        answer(&binder, txn)?;
        got.notify()?;
        await_finish.wait()?;
        Ok(())
    })?;
    let pid = pid_of(&server);
    let binder = Binder::open(BINDER).step("open")?;
    binder.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    let ret = oneway(&binder, 7, uapi::TF_ONE_WAY, b"seven")?;
    ensure!(
        ret == Return::TransactionPendingFrozen,
        "one-way to the frozen reader: {ret:?}"
    );
    await_got.wait()?;
    expect_info(&binder, pid, (0, 1), "frozen, the one-way read")?;
    finish.notify()?;
    server.join()
}

/// A server that reads one call and holds it until told to reply, then serves for ever.
/// Returns the child, and the notices "the call came" (to wait on) and "reply now".
fn holding_server() -> Outcome<(Child, crate::harness::AwaitNotice, crate::harness::Notify)> {
    let (got, await_got) = notice()?;
    let (reply_now, await_reply_now) = notice()?;
    let server = spawn_ready(move |ready| {
        let (binder, _mapping) = manager_of(BINDER)?;
        ready();
        let txn = loop {
            let returns = binder.read().step("server read")?;
            if let Some(Return::Transaction(txn)) = returns
                .into_iter()
                .find(|r| matches!(r, Return::Transaction(_)))
            {
                break txn;
            }
        };
        got.notify()?;
        await_reply_now.wait()?;
        answer(&binder, &txn)?;
        serve(&binder)
    })?;
    Ok((server, await_got, reply_now))
}

/// A process with a call it has not answered cannot be frozen: `EAGAIN` at once with no
/// timeout and after the timeout with one, and it stays thawed. Neither can the caller, whose
/// thread waits for the reply: here the process making the ioctl itself.
fn freeze_with_unanswered_call_is_eagain(_: &Env) -> Outcome {
    let (server, await_got, reply_now) = holding_server()?;
    let pid = pid_of(&server);
    let (binder, _mapping) = open_mapped(BINDER)?;
    thread::scope(|s| {
        let caller = s.spawn(|| call(&binder, 1));
        await_got.wait()?;
        expect_errno(
            binder.freeze(pid, true, 0),
            libc::EAGAIN,
            "BINDER_FREEZE of a process holding a call, no timeout",
        )?;
        let start = Instant::now();
        expect_errno(
            binder.freeze(pid, true, 100),
            libc::EAGAIN,
            "BINDER_FREEZE of a process holding a call, 100 ms",
        )?;
        let waited = start.elapsed();
        ensure!(
            waited >= Duration::from_millis(90),
            "BINDER_FREEZE with a 100 ms timeout gave up after {waited:?}"
        );
        expect_info(&binder, pid, (2, 0), "after the failed freeze")?;
        // SAFETY: Plain syscall.
        let own = unsafe { libc::getpid() } as u32;
        expect_errno(
            binder.freeze(own, true, 0),
            libc::EAGAIN,
            "BINDER_FREEZE of the caller waiting for the reply",
        )?;
        // Not frozen: a one-way is accepted as usual.
        let ret = oneway(&binder, 2, uapi::TF_ONE_WAY, b"thawed")?;
        ensure!(
            ret == Return::TransactionComplete,
            "one-way after the failed freeze: {ret:?}"
        );
        reply_now.notify()?;
        let returns = caller.join().map_err(|_| "the caller panicked")??;
        ensure!(
            matches!(
                returns.as_slice(),
                [Return::TransactionComplete, Return::Reply(_)]
            ),
            "the held call ended with {returns:?}"
        );
        Ok(())
    })?;
    server.kill()
}

/// A freeze with a timeout waits for the outstanding call to be answered (and the one-way
/// queued behind it to be read), then succeeds; the process is frozen then.
fn freeze_wait_ends_when_the_call_is_answered(_: &Env) -> Outcome {
    let (server, await_got, reply_now) = holding_server()?;
    let pid = pid_of(&server);
    let (binder, _mapping) = open_mapped(BINDER)?;
    let (caller, _caller_mapping) = open_mapped(BINDER)?;
    thread::scope(|s| {
        let call_thread = s.spawn(|| call(&caller, 1));
        await_got.wait()?;
        let ret = oneway(&binder, 2, uapi::TF_ONE_WAY, b"behind the call")?;
        ensure!(ret == Return::TransactionComplete, "one-way: {ret:?}");
        let freezer = s.spawn(|| {
            let start = Instant::now();
            let result = binder.freeze(pid, true, 20_000);
            (result, start.elapsed())
        });
        thread::sleep(Duration::from_millis(200));
        reply_now.notify()?;
        let (result, waited) = freezer.join().map_err(|_| "the freezer panicked")?;
        result.step("BINDER_FREEZE with a 20 s timeout")?;
        ensure!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(15),
            "BINDER_FREEZE returned after {waited:?}"
        );
        let returns = call_thread.join().map_err(|_| "the caller panicked")??;
        ensure!(
            matches!(
                returns.as_slice(),
                [Return::TransactionComplete, Return::Reply(_)]
            ),
            "the held call ended with {returns:?}"
        );
        ensure!(
            call(&binder, 3)? == [Return::FrozenReply],
            "call after the freeze succeeded"
        );
        Ok(())
    })?;
    binder.freeze(pid, false, 0).step("thaw")?;
    server.kill()
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// A freeze waiting (with the longest timeout there is) for a call that is never answered
/// ends with `EINTR` when a signal comes to a handler without `SA_RESTART`, and leaves the
/// process thawed.
fn freeze_wait_interrupted_by_signal(_: &Env) -> Outcome {
    let (server, await_got, reply_now) = holding_server()?;
    let pid = pid_of(&server);
    // SAFETY: Installs a handler that does nothing, without SA_RESTART.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) != 0 {
            return Err("sigaction".to_string());
        }
    }
    let (binder, _mapping) = open_mapped(BINDER)?;
    let (caller, _caller_mapping) = open_mapped(BINDER)?;
    // SAFETY: Plain call. Kept as an integer, so that another thread may hold it.
    let me = unsafe { libc::pthread_self() } as usize;
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let call_thread = s.spawn(|| call(&caller, 1));
        await_got.wait()?;
        let stop = &stop;
        let kicker = s.spawn(move || {
            thread::sleep(Duration::from_millis(300));
            // Repeated, in case the first came before the ioctl began to wait.
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: `me` is this case's main thread, alive until the scope ends.
                unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) };
                thread::sleep(Duration::from_millis(100));
            }
        });
        let result = binder.freeze(pid, true, u32::MAX);
        stop.store(true, Ordering::Relaxed);
        kicker.join().map_err(|_| "the kicker panicked")?;
        expect_errno(result, libc::EINTR, "BINDER_FREEZE interrupted by a signal")?;
        let ret = oneway(&binder, 2, uapi::TF_ONE_WAY, b"thawed")?;
        ensure!(
            ret == Return::TransactionComplete,
            "one-way after the interrupted freeze: {ret:?}"
        );
        reply_now.notify()?;
        call_thread.join().map_err(|_| "the caller panicked")??;
        Ok(())
    })?;
    server.kill()
}

/// A thread that leaves the driver (`BINDER_THREAD_EXIT`) with a call it has not answered
/// fails the call (the caller reads `BR_DEAD_REPLY`), and the call no longer counts as
/// outstanding: the process can be frozen at once.
fn freeze_after_the_receiving_thread_exits(_: &Env) -> Outcome {
    let (left, await_left) = notice()?;
    let (finish, await_finish) = notice()?;
    let server = spawn_ready(move |ready| {
        let (binder, _mapping) = manager_of(BINDER)?;
        ready();
        loop {
            let returns = binder.read().step("server read")?;
            if returns.iter().any(|r| matches!(r, Return::Transaction(_))) {
                break;
            }
        }
        binder.thread_exit().step("BINDER_THREAD_EXIT")?;
        left.notify()?;
        await_finish.wait()
    })?;
    let pid = pid_of(&server);
    let (binder, _mapping) = open_mapped(BINDER)?;
    thread::scope(|s| {
        let caller = s.spawn(|| call(&binder, 1));
        await_left.wait()?;
        let returns = caller.join().map_err(|_| "the caller panicked")??;
        ensure!(
            returns.last() == Some(&Return::DeadReply),
            "the call whose thread exited ended with {returns:?}"
        );
        Ok(())
    })?;
    expect_info(&binder, pid, (0, 0), "after the thread exited")?;
    binder
        .freeze(pid, true, 0)
        .step("BINDER_FREEZE after the thread exited")?;
    binder.freeze(pid, false, 0).step("thaw")?;
    finish.notify()?;
    server.join()
}

/// A process with binder open on two devices has two binder processes; one BINDER_FREEZE
/// freezes both, and the info covers both.
fn freeze_every_process_of_the_pid(_: &Env) -> Outcome {
    let server = spawn_ready(|ready| {
        let (binder, _m1) = manager_of(BINDER)?;
        let (hwbinder, _m2) = manager_of(HWBINDER)?;
        // A third open that does nothing.
        let _idle = Binder::open(BINDER).step("open a third time")?;
        ready();
        thread::scope(|s| {
            s.spawn(|| {
                hwbinder
                    .send(&Commands::new().enter_looper())
                    .step("enter looper on hwbinder")?;
                serve(&hwbinder)
            });
            serve(&binder)
        })
    })?;
    let pid = pid_of(&server);
    let (binder, _mapping) = open_mapped(BINDER)?;
    let (hwbinder, _hw_mapping) = open_mapped(HWBINDER)?;
    binder.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    ensure!(call(&binder, 1)? == [Return::FrozenReply], "call on binder");
    ensure!(
        call(&hwbinder, 1)? == [Return::FrozenReply],
        "call on hwbinder"
    );
    expect_info(&hwbinder, pid, (1, 0), "both frozen, both called")?;
    hwbinder
        .freeze(pid, false, 0)
        .step("thaw through hwbinder")?;
    for (device, b) in [("binder", &binder), ("hwbinder", &hwbinder)] {
        let returns = call(b, 2)?;
        ensure!(
            matches!(
                returns.as_slice(),
                [Return::TransactionComplete, Return::Reply(_)]
            ),
            "call on {device} after the thaw: {returns:?}"
        );
    }
    server.kill()
}

/// A server that does not read until told to, then reads `expected` one-way transactions
/// (code and payload), in order, freeing each; notifies when done and stays until the case
/// ends.
fn late_reader(
    expected: Vec<(u32, Vec<u8>)>,
) -> Outcome<(
    Child,
    crate::harness::Notify,
    crate::harness::AwaitNotice,
    crate::harness::Notify,
)> {
    let (go, await_go) = notice()?;
    let (read_all, await_read_all) = notice()?;
    let (finish, await_finish) = notice()?;
    let server = spawn_ready(move |ready| {
        let (binder, mapping) = manager_of(BINDER)?;
        ready();
        await_go.wait()?;
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            let returns = binder.read().step("server read")?;
            let [Return::Noop, Return::Transaction(txn)] = returns.as_slice() else {
                return Err(format!("server read {returns:?} after {got:?}"));
            };
            let data = mapping
                .bytes_at(txn.buffer, txn.data_size)
                .ok_or("payload outside the mapping")?;
            got.push((txn.code, data.to_vec()));
            answer(&binder, txn)?;
        }
        ensure!(
            got == expected,
            "the server read {got:?}, expected {expected:?}"
        );
        binder.set_nonblocking(true).step("O_NONBLOCK")?;
        expect_errno(binder.read(), libc::EAGAIN, "read after the last one-way")?;
        read_all.notify()?;
        await_finish.wait()?;
        Ok(())
    })?;
    Ok((server, go, await_read_all, finish))
}

/// The one-way transactions of [`freeze_update_txn_replaces_queued_oneway`] and
/// [`freeze_update_txn_only_while_frozen`]: code, flags, payload.
const UPDATES: [(u32, u32, &[u8]); 6] = [
    (1, UPDATE, b"a"),
    (1, UPDATE, b"b"),
    (1, UPDATE, b"c"),
    (2, UPDATE, b"d"),
    (1, uapi::TF_ONE_WAY, b"e"),
    (1, UPDATE, b"f"),
];

/// Sends [`UPDATES`] and then, from another process, one more like the last; checks what the
/// sender read for each.
fn send_updates(binder: &Binder, expected: Return) -> Outcome {
    for (code, flags, data) in UPDATES {
        let ret = oneway(binder, code, flags, data)?;
        ensure!(ret == expected, "one-way {data:?}: {ret:?}");
    }
    let other = spawn_ready(move |ready| {
        let b = Binder::open(BINDER).step("open in the other sender")?;
        let ret = oneway(&b, 1, UPDATE, b"g")?;
        ensure!(
            ret == expected,
            "one-way \"g\" from another process: {ret:?}"
        );
        ready();
        Ok(())
    })?;
    other.join()
}

/// `TF_UPDATE_TXN` to a frozen process: a one-way waiting in the node's queue (behind the
/// outstanding first one) is replaced by a newer one with the same code and flags from the
/// same sender, which takes its place at the end of the queue. The first one (already on the
/// process's list) is never replaced, and neither is one with another code, other flags, or
/// from another process. Replaced ones no longer count as pending.
fn freeze_update_txn_replaces_queued_oneway(_: &Env) -> Outcome {
    let expected = [(1, "a"), (2, "d"), (1, "e"), (1, "f"), (1, "g")]
        .iter()
        .map(|(code, data)| (*code, data.as_bytes().to_vec()))
        .collect();
    let (server, go, await_read_all, finish) = late_reader(expected)?;
    let pid = pid_of(&server);
    let binder = Binder::open(BINDER).step("open")?;
    binder.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    send_updates(&binder, Return::TransactionPendingFrozen)?;
    binder.freeze(pid, false, 0).step("thaw")?;
    go.notify()?;
    await_read_all.wait()?;
    expect_info(&binder, pid, (0, 0), "everything read")?;
    binder
        .freeze(pid, true, 0)
        .step("BINDER_FREEZE with nothing outstanding")?;
    binder.freeze(pid, false, 0).step("thaw")?;
    finish.notify()?;
    server.join()
}

/// The same one-way transactions to a process that is not frozen: none is replaced.
fn freeze_update_txn_only_while_frozen(_: &Env) -> Outcome {
    let expected = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .zip([1, 1, 1, 2, 1, 1, 1])
        .map(|(data, code)| (code, data.as_bytes().to_vec()))
        .collect();
    let (server, go, await_read_all, finish) = late_reader(expected)?;
    let binder = Binder::open(BINDER).step("open")?;
    send_updates(&binder, Return::TransactionComplete)?;
    go.notify()?;
    await_read_all.wait()?;
    finish.notify()?;
    server.join()
}

/// A context manager of BINDER that stays until it is killed, reading nothing.
fn idle_manager() -> Outcome<Child> {
    spawn_ready(|ready| {
        let (_binder, _mapping) = manager_of(BINDER)?;
        ready();
        park()
    })
}

/// A holder of a strong reference to handle 0, on a looper thread.
fn holder() -> Outcome<Binder> {
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .send(&Commands::new().enter_looper().acquire(0))
        .step("enter looper, acquire 0")?;
    Ok(binder)
}

fn frozen_binder(cookie: u64, is_frozen: u32) -> Return {
    Return::FrozenBinder { cookie, is_frozen }
}

/// The request is answered at once with the current state; after that, each freeze or thaw
/// ioctl that succeeds is reported, but only once the report before it was acknowledged
/// (`BC_FREEZE_NOTIFICATION_DONE`); a failed freeze reports nothing. A change while a report
/// is unacknowledged is sent after the done. Clearing is confirmed.
fn freeze_notification_reports_each_change(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let pid = pid_of(&target);
    let h = holder()?;
    h.send(&Commands::new().request_freeze_notification(0, 0x77))
        .step("request")?;
    expect_read(&h, &[frozen_binder(0x77, 0)], "the answer to the request")?;
    h.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    ensure!(pending(&h)?.is_empty(), "a report came before the done");
    h.send(&Commands::new().freeze_notification_done(0x77))
        .step("done")?;
    expect_read(&h, &[frozen_binder(0x77, 1)], "after the done")?;
    h.send(&Commands::new().freeze_notification_done(0x77))
        .step("done")?;
    ensure!(pending(&h)?.is_empty(), "a report with nothing changed");
    // Freezing again, already frozen, is reported again.
    h.freeze(pid, true, 0).step("BINDER_FREEZE again")?;
    expect_read(&h, &[frozen_binder(0x77, 1)], "after freezing again")?;
    // Thawed and frozen again before the done: one report after it, of the last state.
    h.freeze(pid, false, 0).step("thaw")?;
    h.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    ensure!(pending(&h)?.is_empty(), "a report came before the done");
    h.send(&Commands::new().freeze_notification_done(0x77))
        .step("done")?;
    expect_read(&h, &[frozen_binder(0x77, 1)], "after the done")?;
    h.send(&Commands::new().freeze_notification_done(0x77))
        .step("done")?;
    h.freeze(pid, false, 0).step("thaw")?;
    expect_read(&h, &[frozen_binder(0x77, 0)], "after the thaw")?;
    h.send(
        &Commands::new()
            .freeze_notification_done(0x77)
            .clear_freeze_notification(0, 0x77),
    )
    .step("done and clear")?;
    expect_read(
        &h,
        &[Return::ClearFreezeNotificationDone(0x77)],
        "after the clear",
    )?;
    h.freeze(pid, true, 0)
        .step("BINDER_FREEZE after the clear")?;
    ensure!(pending(&h)?.is_empty(), "a report after the clear");
    target.kill()
}

/// A request made while the owner is frozen reports it frozen.
fn freeze_notification_request_while_frozen(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let pid = pid_of(&target);
    let h = holder()?;
    h.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    h.send(&Commands::new().request_freeze_notification(0, 5))
        .step("request")?;
    expect_read(&h, &[frozen_binder(5, 1)], "the answer to the request")?;
    target.kill()
}

/// A clear while the report is still queued replaces it with the confirmation; a clear while
/// it awaits its done is confirmed after the done.
fn freeze_notification_clear_queued_or_unacknowledged(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let h = holder()?;
    h.send(
        &Commands::new()
            .request_freeze_notification(0, 1)
            .clear_freeze_notification(0, 1),
    )
    .step("request and clear")?;
    expect_read(
        &h,
        &[Return::ClearFreezeNotificationDone(1)],
        "request and clear at once",
    )?;
    h.send(&Commands::new().request_freeze_notification(0, 2))
        .step("request again")?;
    expect_read(&h, &[frozen_binder(2, 0)], "the answer to the request")?;
    h.send(&Commands::new().clear_freeze_notification(0, 2))
        .step("clear")?;
    ensure!(
        pending(&h)?.is_empty(),
        "the clear was confirmed before the done"
    );
    h.send(&Commands::new().freeze_notification_done(2))
        .step("done")?;
    expect_read(
        &h,
        &[Return::ClearFreezeNotificationDone(2)],
        "after the done",
    )?;
    target.kill()
}

/// Checks that writing `commands` fails the ioctl with `EINVAL` after consuming `consumed`
/// bytes.
fn expect_write_einval(binder: &Binder, commands: Commands, consumed: u64, what: &str) -> Outcome {
    let done = binder.write(&commands);
    expect_errno(done.result, libc::EINVAL, what)?;
    ensure!(
        done.write_consumed == consumed,
        "{what}: write_consumed {}, expected {consumed}",
        done.write_consumed
    );
    Ok(())
}

/// Unlike death notifications, misused freeze notifications fail the whole ioctl with
/// `EINVAL`: an unknown handle (handle 0 without a reference to the manager too), a second
/// request on a handle, a clear with the wrong cookie or with no request, a done for a report
/// that was not delivered or was acknowledged already.
fn freeze_notification_misuse_is_einval(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let h = Binder::open(BINDER).step("open")?;
    h.send(&Commands::new().enter_looper())
        .step("enter looper")?;
    expect_write_einval(
        &h,
        Commands::new().request_freeze_notification(0, 1),
        0,
        "request on handle 0 without a reference",
    )?;
    h.send(&Commands::new().acquire(0)).step("acquire 0")?;
    expect_write_einval(
        &h,
        Commands::new().request_freeze_notification(3, 1),
        0,
        "request on an unknown handle",
    )?;
    expect_write_einval(
        &h,
        Commands::new()
            .request_freeze_notification(0, 1)
            .request_freeze_notification(0, 2),
        16,
        "a second request on the handle",
    )?;
    expect_write_einval(
        &h,
        Commands::new().clear_freeze_notification(0, 2),
        0,
        "clear with the wrong cookie",
    )?;
    expect_write_einval(
        &h,
        Commands::new().clear_freeze_notification(3, 1),
        0,
        "clear on an unknown handle",
    )?;
    expect_write_einval(
        &h,
        Commands::new().freeze_notification_done(1),
        0,
        "done before the report was read",
    )?;
    expect_read(&h, &[frozen_binder(1, 0)], "the answer to the request")?;
    expect_write_einval(
        &h,
        Commands::new()
            .freeze_notification_done(1)
            .freeze_notification_done(1),
        12,
        "a second done",
    )?;
    h.send(&Commands::new().clear_freeze_notification(0, 1))
        .step("clear")?;
    expect_read(
        &h,
        &[Return::ClearFreezeNotificationDone(1)],
        "after the clear",
    )?;
    expect_write_einval(
        &h,
        Commands::new().clear_freeze_notification(0, 1),
        0,
        "clear with no request",
    )?;
    target.kill()
}

/// A weak handle is enough for freeze notifications.
fn freeze_notification_on_weak_handle(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let pid = pid_of(&target);
    let h = Binder::open(BINDER).step("open")?;
    h.send(&Commands::new().enter_looper().increfs(0))
        .step("enter looper, increfs 0")?;
    h.send(&Commands::new().request_freeze_notification(0, 3))
        .step("request on a weak handle")?;
    expect_read(&h, &[frozen_binder(3, 0)], "the answer to the request")?;
    h.send(&Commands::new().freeze_notification_done(3))
        .step("done")?;
    h.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    expect_read(&h, &[frozen_binder(3, 1)], "after the freeze")?;
    // Dropping the handle drops the notification: its done is unknown now.
    h.send(&Commands::new().decrefs(0)).step("decrefs 0")?;
    expect_write_einval(
        &h,
        Commands::new().freeze_notification_done(3),
        0,
        "done after the handle went",
    )?;
    h.freeze(pid, false, 0).step("thaw")?;
    ensure!(pending(&h)?.is_empty(), "a report after the handle went");
    target.kill()
}

/// A request on a handle whose node died succeeds and reports nothing; its clear is
/// confirmed.
fn freeze_notification_after_owner_death_is_silent(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let h = holder()?;
    h.send(&Commands::new().request_death_notification(0, 9))
        .step("request death notification")?;
    target.kill()?;
    expect_read(&h, &[Return::DeadBinder(9)], "the death")?;
    h.send(
        &Commands::new()
            .dead_binder_done(9)
            .request_freeze_notification(0, 4),
    )
    .step("request on the dead node")?;
    ensure!(pending(&h)?.is_empty(), "a report about a dead node");
    h.send(&Commands::new().clear_freeze_notification(0, 4))
        .step("clear")?;
    expect_read(
        &h,
        &[Return::ClearFreezeNotificationDone(4)],
        "after the clear",
    )
}

/// A report still queued when its handle goes (the holder released its last reference) goes
/// with it, as C's `binder_cleanup_ref_olocked` takes the request's work off the list: a
/// looper's read then finds no work and fails with `EAGAIN` when it may not wait, whatever the
/// size of its buffer. (Found by the fuzzer, seed 1 operation 28649: a read into 14 bytes
/// returned a lone `BR_NOOP` on rust_binder, which still had the report queued, delivering
/// nothing.)
fn freeze_report_queued_goes_with_its_handle(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let h = holder()?;
    h.send(
        &Commands::new()
            .request_freeze_notification(0, 0x31)
            .release(0),
    )
    .step("request, and release the handle")?;
    h.set_nonblocking(true).step("O_NONBLOCK")?;
    let mut small = [0u8; 14];
    let read = h.read_raw(small.as_mut_ptr() as u64, small.len() as u64);
    h.set_nonblocking(false).step("blocking again")?;
    ensure!(
        read.result.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EAGAIN)
            && read.read_consumed == 0,
        "a read into 14 bytes gave {:?} with {} bytes, not EAGAIN",
        read.result,
        read.read_consumed
    );
    ensure!(pending(&h)?.is_empty(), "a report for a handle gone");
    target.kill()
}

/// A freeze or thaw queues the reports of a holder's requests in the order of the owner's
/// node pointers (the C driver walks the owner's tree of nodes), not in the order they were
/// made. Userspace sees it when two requests share a cookie: a done acknowledges the report
/// delivered first, and the other request's clear is then confirmed only after its own done.
/// (Found by the fuzzer, seed 3: rust_binder queued them in the order of the requests.)
fn freeze_notifications_queued_in_node_order(_: &Env) -> Outcome {
    const COOKIE: u64 = 0x11;
    // The owner's nodes as the holder gets them: handle 1 first, at the higher pointer.
    const HIGH: u32 = 1;
    const LOW: u32 = 2;
    let (send, await_send) = notice()?;
    // Forked before the holder opens the device, so as not to share its file.
    let owner = spawn_ready(move |ready| {
        let binder = Binder::open(BINDER).step("open")?;
        ready();
        await_send.wait()?;
        let nodes = Payload::new()
            .object(FlatObject::binder(0x2000, 1))
            .object(FlatObject::binder(0x1000, 2));
        binder
            .send(&Commands::new().payload(false, 0, 1, uapi::TF_ONE_WAY, &nodes))
            .step("send two nodes to the manager")?;
        park()
    })?;
    let (h, _mapping) = manager_of(BINDER)?;
    send.notify()?;
    let ours = (|| -> Outcome {
        let got = h.read().step("read the owner's nodes")?;
        ensure!(
            got.iter().any(|r| matches!(r, Return::Transaction(_))),
            "the owner's transaction did not come: {got:?}"
        );
        // Its buffer is kept: it holds the two handles.
        h.send(
            &Commands::new()
                .request_freeze_notification(HIGH, COOKIE)
                .request_freeze_notification(LOW, COOKIE),
        )
        .step("two requests, one cookie")?;
        for what in ["the answer to the first request", "to the second"] {
            expect_read(&h, &[frozen_binder(COOKIE, 0)], what)?;
        }
        h.send(
            &Commands::new()
                .freeze_notification_done(COOKIE)
                .freeze_notification_done(COOKIE),
        )
        .step("both done")?;
        h.freeze(pid_of(&owner), false, 0).step("thaw the owner")?;
        for what in ["the thaw's first report", "its second"] {
            expect_read(&h, &[frozen_binder(COOKIE, 0)], what)?;
        }
        // The first report was the lower node's: acknowledged, its request is idle, and its
        // clear is confirmed at once.
        h.send(
            &Commands::new()
                .freeze_notification_done(COOKIE)
                .clear_freeze_notification(LOW, COOKIE),
        )
        .step("one done, then clear the lower node's request")?;
        let got = pending(&h)?;
        ensure!(
            got == [Return::ClearFreezeNotificationDone(COOKIE)],
            "after the done and the clear: read {got:?}, expected the clear's confirmation"
        );
        Ok(())
    })();
    let killed = owner.kill();
    ours.and(killed)
}

/// A frozen process with one-way work queued (on its list and in its node's queue) and
/// holders with reports queued and unacknowledged is killed; then a holder is killed too.
/// Everything goes (the module's census at unload checks that), and the survivors carry on.
fn freeze_killed_while_frozen_with_queued_work(_: &Env) -> Outcome {
    let target = idle_manager()?;
    let pid = pid_of(&target);
    let (asked, await_asked) = notice()?;
    let holder_child = spawn_ready(move |ready| {
        let h = holder()?;
        h.send(
            &Commands::new()
                .request_freeze_notification(0, 1)
                .acquire(0)
                .request_death_notification(0, 2),
        )
        .step("requests")?;
        ready();
        let _ = await_asked.wait();
        park()
    })?;
    let h = holder()?;
    h.send(&Commands::new().request_freeze_notification(0, 3))
        .step("request")?;
    expect_read(&h, &[frozen_binder(3, 0)], "the answer to the request")?;
    h.freeze(pid, true, 0).step("BINDER_FREEZE")?;
    for code in 0..5 {
        let ret = oneway(&h, code, UPDATE, &[code as u8; 64])?;
        ensure!(
            ret == Return::TransactionPendingFrozen,
            "one-way {code}: {ret:?}"
        );
    }
    asked.notify()?;
    target.kill()?;
    holder_child.kill()?;
    // The driver releases the killed process later, from a workqueue: until then a call
    // still finds it frozen.
    eventually("the killed manager's release", || {
        match call(&h, 9)?.as_slice() {
            [Return::DeadReply] => Ok(Some(())),
            [Return::FrozenReply] => Ok(None),
            other => Err(format!("call to the killed manager: {other:?}")),
        }
    })?;
    h.send(
        &Commands::new()
            .freeze_notification_done(3)
            .clear_freeze_notification(0, 3),
    )
    .step("done and clear after the death")?;
    let after = pending(&h)?;
    ensure!(
        after == [Return::ClearFreezeNotificationDone(3)],
        "after the death, done and clear: {after:?}"
    );
    eventually("the killed process's release", || {
        match h.frozen_info(pid) {
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Some(())),
            Err(e) => Err(format!("BINDER_GET_FROZEN_INFO: {e}")),
        }
    })
}

/// Several client processes call and send one-way transactions (some with `TF_UPDATE_TXN`)
/// to a threaded server, and holders keep acknowledging freeze notifications, while two
/// threads freeze and thaw the server and a third asks for its info. Each call ends with a
/// reply or `BR_FROZEN_REPLY`, each one-way with a complete or a pending-frozen, each freeze
/// with success or `EAGAIN`; nothing hangs. At the end, thawed and drained, a freeze succeeds.
fn freeze_races_calls_oneways_and_notifications(_: &Env) -> Outcome {
    const CLIENTS: usize = 3;
    const ROUNDS: u32 = 150;
    let server = serving_manager(4)?;
    let pid = pid_of(&server);
    let mut holders = Vec::new();
    for cookie in 0..2u64 {
        holders.push(spawn_ready(move |ready| {
            let h = holder()?;
            h.send(&Commands::new().request_freeze_notification(0, cookie))
                .step("request")?;
            ready();
            loop {
                for ret in h.read().step("holder read")? {
                    match ret {
                        Return::FrozenBinder { cookie: c, .. } if c == cookie => h
                            .send(&Commands::new().freeze_notification_done(c))
                            .step("done")?,
                        Return::Noop | Return::FrozenBinder { .. } => {}
                        other => return Err(format!("the holder read {other:?}")),
                    }
                }
            }
        })?);
    }
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(spawn_ready(move |ready| {
            let (binder, _mapping) = open_mapped(BINDER)?;
            ready();
            thread::scope(|s| {
                let workers: Vec<_> = (0..2u32)
                    .map(|t| {
                        let binder = &binder;
                        s.spawn(move || -> Outcome {
                            for round in 0..ROUNDS {
                                let returns = call(binder, round)?;
                                ensure!(
                                    matches!(
                                        returns.as_slice(),
                                        [Return::TransactionComplete, Return::Reply(_)]
                                            | [Return::FrozenReply]
                                    ),
                                    "call {round}: {returns:?}"
                                );
                                let flags = if round % 2 == 0 {
                                    UPDATE
                                } else {
                                    uapi::TF_ONE_WAY
                                };
                                let ret = oneway(binder, t, flags, &round.to_ne_bytes())?;
                                ensure!(
                                    matches!(
                                        ret,
                                        Return::TransactionComplete
                                            | Return::TransactionPendingFrozen
                                    ),
                                    "one-way {round}: {ret:?}"
                                );
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for worker in workers {
                    worker.join().map_err(|_| "a client thread panicked")??;
                }
                Ok(())
            })
        })?);
    }
    let binder = Binder::open(BINDER).step("open")?;
    let stop = AtomicBool::new(false);
    thread::scope(|s| -> Outcome {
        let mut togglers = Vec::new();
        for n in 0..2u32 {
            let (binder, stop) = (&binder, &stop);
            togglers.push(s.spawn(move || -> Outcome {
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    match binder.freeze(pid, true, i % 5) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                        Err(e) => return Err(format!("BINDER_FREEZE: {e}")),
                    }
                    thread::sleep(Duration::from_micros(u64::from(i % 3) * 500));
                    binder.freeze(pid, false, 0).step("thaw")?;
                    i = i.wrapping_add(1);
                }
                Ok(())
            }));
        }
        let info = s.spawn(|| -> Outcome {
            while !stop.load(Ordering::Relaxed) {
                binder.frozen_info(pid).step("BINDER_GET_FROZEN_INFO")?;
                thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        });
        let mut result = Ok(());
        for client in clients {
            if let Err(why) = client.join() {
                result = Err(format!("a client failed: {why}"));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for toggler in togglers {
            toggler.join().map_err(|_| "a toggler panicked")??;
        }
        info.join().map_err(|_| "the info thread panicked")??;
        result
    })?;
    binder.freeze(pid, false, 0).step("final thaw")?;
    binder
        .freeze(pid, true, 5_000)
        .step("BINDER_FREEZE once everything is done")?;
    expect_info(&binder, pid, (0, 0), "drained and frozen")?;
    binder.freeze(pid, false, 0).step("thaw")?;
    for holder in holders {
        holder.kill()?;
    }
    server.kill()
}
