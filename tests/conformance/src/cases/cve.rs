//! The races behind binder's CVEs, built on purpose with many threads and rounds: a thread's
//! wait queue freed under epoll (CVE-2019-2215), a buffer freed while the driver still works
//! with it (CVE-2019-2025), a thread leaving with a transaction on its stack or node work on
//! its todo list (CVE-2020-0423), and the death list of a dying node changing under it
//! (CVE-2025-68260). Each case checks what userspace must see (every call ends, with the right
//! answer); the use-after-free or list corruption a lost race would cause shows in the kernel
//! log (KASAN, list debugging) and in rust_binder's census when the suite unloads it, which
//! fail the run.

use std::{os::fd::AsRawFd, sync::mpsc, thread, time::Duration};

use binder_client::{
    uapi, Binder, BinderObject, Commands, FlatObject, Mapping, Payload, Return, Txn,
};

use crate::{
    ensure,
    harness::{park, spawn_ready, Case, Child, Env, Epoll, Exit, Outcome, Step, BINDER},
};

use super::{context_mgr::become_manager, peer::MAP_SIZE, sg::pattern};

pub const CASES: &[Case] = &[
    Case::new(
        "cve_2019_2215_epoll_outlives_exited_threads",
        epoll_outlives_exited_threads,
    ),
    Case::new(
        "cve_2019_2025_free_races_reply_and_delivery",
        free_races_reply_and_delivery,
    ),
    Case::new(
        "cve_2020_0423_caller_exits_with_call_on_stack",
        caller_exits_with_call_on_stack,
    ),
    Case::new(
        "cve_2020_0423_server_exits_with_call_on_stack",
        server_exits_with_call_on_stack,
    ),
    Case::new(
        "cve_2025_68260_death_clear_races_owner_death",
        death_clear_races_owner_death,
    ),
];

/// The code of the call that ends one looper of a [`serve`] loop.
pub(super) const STOP: u32 = 0x7f00_0000;

/// Runs `body` on `threads` threads at once (numbered from 0) and fails with the first
/// thread's failure.
pub(super) fn on_threads(threads: usize, body: impl Fn(usize) -> Outcome + Sync) -> Outcome {
    thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|t| {
                let body = &body;
                s.spawn(move || body(t))
            })
            .collect();
        running
            .into_iter()
            .try_for_each(|thread| thread.join().map_err(|_| "a thread panicked".to_string())?)
    })
}

/// Opens and maps BINDER and becomes its context manager, without entering the looper: each
/// serving thread does that itself.
fn threaded_manager() -> Outcome<(Binder, Mapping)> {
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    become_manager(&binder)?;
    Ok((binder, mapping))
}

/// Serves on the calling thread as a looper: hands each transaction to `handle`, which says
/// whether to go on. Replies' BR_TRANSACTION_COMPLETE and BR_NOOP are skipped; any other
/// return fails.
pub(super) fn serve(binder: &Binder, mut handle: impl FnMut(&Txn) -> Outcome<bool>) -> Outcome {
    binder
        .send(&Commands::new().enter_looper())
        .step("enter looper")?;
    loop {
        for ret in binder.read().step("looper read")? {
            match ret {
                Return::Transaction(txn) => {
                    if !handle(&txn)? {
                        return Ok(());
                    }
                }
                Return::Noop | Return::TransactionComplete | Return::SpawnLooper => {}
                other => return Err(format!("a looper read {other:?}")),
            }
        }
    }
}

/// Reads on the calling thread until the reply to its call, or its failure, comes; answers
/// the refcount requests read on the way.
pub(super) fn await_reply(binder: &Binder) -> Outcome<Result<Txn, Return>> {
    loop {
        let returns = binder.read().step("read")?;
        answer_refcounts(binder, &returns)?;
        for ret in returns {
            match ret {
                Return::Reply(txn) => return Ok(Ok(txn)),
                Return::FailedReply | Return::DeadReply => return Ok(Err(ret)),
                _ => {}
            }
        }
    }
}

/// Answers the BR_INCREFS and BR_ACQUIRE among `returns`.
fn answer_refcounts(binder: &Binder, returns: &[Return]) -> Outcome {
    let mut dones = Commands::new();
    for ret in returns {
        dones = match *ret {
            Return::Increfs(ptr, cookie) => dones.increfs_done(ptr, cookie),
            Return::Acquire(ptr, cookie) => dones.acquire_done(ptr, cookie),
            _ => dones,
        };
    }
    if !dones.is_empty() {
        binder.send(&dones).step("refcount dones")?;
    }
    Ok(())
}

/// Ends `loopers` loopers of the manager with one STOP call each, from a fresh process (the
/// calls are synchronous: each is answered by a looper that then stops reading, so the next
/// goes to another).
pub(super) fn stop_loopers(loopers: usize) -> Outcome {
    let binder = Binder::open(BINDER).step("open to stop the loopers")?;
    let _mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    for _ in 0..loopers {
        binder
            .send(&Commands::new().transaction(false, 0, STOP, 0, b"stop"))
            .step("stop call")?;
        let reply = await_reply(&binder)?.map_err(|ret| format!("the stop call got {ret:?}"))?;
        binder
            .send(&Commands::new().free_buffer(reply.buffer))
            .step("free the stop reply")?;
    }
    Ok(())
}

/// CVE-2019-2215: BINDER_THREAD_EXIT freed a binder thread while an epoll still had an entry
/// on the thread's wait queue, and the epoll later unlinked that entry from freed memory.
///
/// Four threads share one binder file and, round after round, each makes its binder thread
/// wait-queue holder of an epoll (EPOLL_CTL_ADD polls the file from that thread) and then
/// lets the binder thread go in a different order each round: BINDER_THREAD_EXIT then
/// EPOLL_CTL_DEL; BINDER_THREAD_EXIT then closing the epoll without a DEL; BINDER_THREAD_EXIT
/// while another thread sleeps in epoll_wait on it; or a thread that polls and ends without
/// BINDER_THREAD_EXIT, on a file of its own that is closed before the epoll. Every path must
/// take the epoll entry off the queue before the queue's memory goes.
fn epoll_outlives_exited_threads(_: &Env) -> Outcome {
    const THREADS: usize = 4;
    const ROUNDS: usize = 32;
    let shared = Binder::open(BINDER).step("open")?;
    on_threads(THREADS, |t| {
        for round in 0..ROUNDS {
            match (t + round) % 4 {
                0 => {
                    let epoll = Epoll::watch(shared.as_raw_fd())?;
                    shared.thread_exit().step("BINDER_THREAD_EXIT")?;
                    epoll.unwatch();
                }
                1 => {
                    let epoll = Epoll::watch(shared.as_raw_fd())?;
                    shared.thread_exit().step("BINDER_THREAD_EXIT")?;
                    drop(epoll);
                }
                2 => {
                    let epoll = Epoll::watch(shared.as_raw_fd())?;
                    thread::scope(|s| -> Outcome {
                        let waiter = s.spawn(|| -> Outcome {
                            for _ in 0..5 {
                                epoll.wait_timeout(2)?;
                            }
                            Ok(())
                        });
                        shared.thread_exit().step("BINDER_THREAD_EXIT")?;
                        waiter
                            .join()
                            .map_err(|_| "the epoll waiter panicked".to_string())?
                    })?;
                    epoll.unwatch();
                }
                _ => {
                    let own = Binder::open(BINDER).step("open a file of its own")?;
                    let epoll = thread::scope(|s| {
                        s.spawn(|| Epoll::watch(own.as_raw_fd()))
                            .join()
                            .map_err(|_| "the polling thread panicked".to_string())?
                    })?;
                    drop(own);
                    drop(epoll);
                }
            }
        }
        Ok(())
    })?;
    // The file and its (new) threads still work.
    let epoll = Epoll::watch(shared.as_raw_fd())?;
    epoll.wait_timeout(0)?;
    shared.thread_exit().step("the last BINDER_THREAD_EXIT")?;
    drop(epoll);
    shared.version().step("BINDER_VERSION at the end").map(drop)
}

/// The seed and data length of the call with `code`, so the receiver can check what came.
fn call_shape(code: u32) -> (u8, usize) {
    let seed = (code ^ (code >> 8) ^ (code >> 16)) as u8;
    (seed, 64 + (code as usize % 13) * 40)
}

/// The payload of the call with `code`: data of [`call_shape`] and a scatter-gather buffer.
fn call_payload(code: u32) -> Payload {
    let (seed, len) = call_shape(code);
    Payload::new()
        .bytes(&pattern(seed, len))
        .buffer(&pattern(seed ^ 0x55, 32))
}

/// The data of the reply to the call with `code`.
fn reply_data(code: u32) -> Vec<u8> {
    pattern(call_shape(code).0 ^ 0x5a, 48)
}

/// Checks that the call `txn` delivered into `mapping` holds [`call_payload`] of its code.
fn expect_call_intact(mapping: &Mapping, txn: &Txn) -> Outcome {
    let (seed, len) = call_shape(txn.code);
    let data = mapping
        .bytes_at(txn.buffer, txn.data_size)
        .ok_or("a call's data is outside the mapping")?;
    ensure!(
        data.len() >= len && data[..len] == pattern(seed, len)[..],
        "call {:#x} arrived as {data:?}",
        txn.code
    );
    Ok(())
}

/// CVE-2019-2025: BC_FREE_BUFFER raced the driver's own use of a buffer (the transaction
/// still pointing at it while its reply went out), and a buffer was freed twice.
///
/// The context manager has two looper threads and a third thread that only frees: each
/// looper checks a call's contents, hands its buffer to the freeing thread and replies at the
/// same moment, so the free races the reply (which releases the transaction the buffer still
/// points to), and one-way calls are freed while the next one-way to the node is being queued
/// and delivered. The freeing thread also frees an address inside each buffer, which must
/// be ignored. Two client processes of two threads each send synchronous and one-way calls
/// of varied sizes with a scatter-gather buffer; every call and every reply must arrive
/// intact, every call must be answered.
fn free_races_reply_and_delivery(_: &Env) -> Outcome {
    const LOOPERS: usize = 2;
    const CLIENTS: u32 = 2;
    const THREADS: usize = 2;
    const CALLS: u32 = 120;
    let manager = spawn_ready(|ready| {
        let (binder, mapping) = threaded_manager()?;
        ready();
        let (to_freer, freer_gets) = mpsc::channel::<u64>();
        thread::scope(|s| {
            let freer = s.spawn(|| -> Outcome {
                for addr in freer_gets {
                    binder
                        .send(&Commands::new().free_buffer(addr + 1).free_buffer(addr))
                        .step("free")?;
                }
                Ok(())
            });
            let loopers: Vec<_> = (0..LOOPERS)
                .map(|_| {
                    let to_freer = to_freer.clone();
                    let (binder, mapping) = (&binder, &mapping);
                    s.spawn(move || {
                        serve(binder, |txn| {
                            if txn.code != STOP {
                                expect_call_intact(mapping, txn)?;
                            }
                            to_freer
                                .send(txn.buffer)
                                .map_err(|_| "the freeing thread is gone".to_string())?;
                            if txn.flags & uapi::TF_ONE_WAY != 0 {
                                return Ok(true);
                            }
                            let data = reply_data(txn.code);
                            let reply = Payload::new().bytes(&data).buffer(&data[..24]);
                            binder
                                .send(&Commands::new().payload(true, 0, txn.code, 0, &reply))
                                .step("reply")?;
                            Ok(txn.code != STOP)
                        })
                    })
                })
                .collect();
            drop(to_freer);
            for looper in loopers {
                looper
                    .join()
                    .map_err(|_| "a looper panicked".to_string())??;
            }
            freer
                .join()
                .map_err(|_| "the freeing thread panicked".to_string())?
        })
    })?;
    let clients = (0..CLIENTS)
        .map(|c| {
            Child::spawn(move || {
                let binder = Binder::open(BINDER).step("open")?;
                let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
                on_threads(THREADS, |t| {
                    let first = 0x1000 * (1 + c * THREADS as u32 + t as u32);
                    for code in first..first + CALLS {
                        let oneway = code % 3 == 2;
                        let flags = if oneway { uapi::TF_ONE_WAY } else { 0 };
                        let payload = call_payload(code);
                        binder
                            .send(&Commands::new().payload(false, 0, code, flags, &payload))
                            .step("call")?;
                        if oneway {
                            await_complete(&binder)?;
                            continue;
                        }
                        let reply = await_reply(&binder)?
                            .map_err(|ret| format!("call {code:#x} got {ret:?}"))?;
                        // The reply's data, then its scatter-gather buffer's object.
                        let expected = reply_data(code);
                        let data = mapping
                            .bytes_at(reply.buffer, expected.len() as u64)
                            .ok_or("a reply is outside the mapping")?;
                        ensure!(
                            data == expected,
                            "the reply to call {code:#x} reads {data:?}"
                        );
                        binder
                            .send(&Commands::new().free_buffer(reply.buffer))
                            .step("free the reply")?;
                    }
                    Ok(())
                })
            })
        })
        .collect::<Outcome<Vec<_>>>()?;
    for client in clients {
        client.join()?;
    }
    stop_loopers(LOOPERS)?;
    manager.join()
}

/// Reads until the BR_TRANSACTION_COMPLETE of a one-way call.
fn await_complete(binder: &Binder) -> Outcome {
    loop {
        let returns = binder.read().step("read")?;
        if let Some(failed) = returns
            .iter()
            .find(|ret| matches!(ret, Return::FailedReply | Return::DeadReply))
        {
            return Err(format!("a one-way call got {failed:?}"));
        }
        if returns.contains(&Return::TransactionComplete) {
            return Ok(());
        }
    }
}

/// CVE-2020-0423: a thread leaving the driver (BINDER_THREAD_EXIT) released the work on its
/// todo list while another thread freed what that work belonged to (a node whose last
/// reference went).
///
/// Three threads of a client call the context manager, each call carrying a new local
/// binder object: the driver puts the object's node work (BR_INCREFS, BR_ACQUIRE) on the
/// calling thread's todo list and the call on its transaction stack. The thread then exits
/// at a different point each round: at once; after BR_TRANSACTION_COMPLETE; after a short
/// spin that lands it near the reply; or after the reply, freeing the reply's buffer only
/// from its next binder thread. The manager's two loopers free each call's buffer (dropping
/// the only reference to the node) and reply in one write, some taking and dropping a
/// reference of their own on the way, so the node goes while the exiting thread's work list
/// is being emptied. Every reply must be taken (BR_TRANSACTION_COMPLETE for the replier,
/// whether or not the caller is still there), and the client's later calls must still work.
fn caller_exits_with_call_on_stack(_: &Env) -> Outcome {
    const LOOPERS: usize = 2;
    const THREADS: usize = 3;
    const ROUNDS: u32 = 60;
    let manager = spawn_ready(|ready| {
        let (binder, mapping) = threaded_manager()?;
        ready();
        on_threads(LOOPERS, |_| {
            serve(&binder, |txn| {
                if txn.code == STOP {
                    binder
                        .send(&Commands::new().transaction(true, 0, STOP, 0, b"stopped"))
                        .step("reply to stop")?;
                    return Ok(false);
                }
                let objects = mapping.received(txn).objects().step("objects")?;
                let [BinderObject::Flat(object)] = objects[..] else {
                    return Err(format!("call {:#x} brought {objects:?}", txn.code));
                };
                let handle = object.handle_value();
                // The reply comes last in the write: a reply to a caller that is gone fails,
                // and a failed reply holds back the rest of its write until it is read.
                let commands = if txn.code % 2 == 0 {
                    Commands::new()
                        .acquire(handle)
                        .free_buffer(txn.buffer)
                        .release(handle)
                } else {
                    Commands::new().free_buffer(txn.buffer)
                };
                binder
                    .send(&commands.transaction(true, 0, txn.code, 0, b"answer"))
                    .step("free and reply")?;
                Ok(true)
            })
        })
    })?;
    let binder = Binder::open(BINDER).step("open")?;
    let _mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    on_threads(THREADS, |t| {
        for round in 0..ROUNDS {
            let code = ((t as u32) << 16) | round;
            let ptr = 0x5000_0000 + u64::from(code) * 16;
            let payload = Payload::new()
                .bytes(b"lead....")
                .object(FlatObject::binder(ptr, ptr ^ 0xc0c0));
            binder
                .send(&Commands::new().payload(false, 0, code, 0, &payload))
                .step("call")?;
            let mut kept = None;
            match round % 4 {
                0 => {}
                1 => loop {
                    let returns = binder.read().step("read")?;
                    answer_refcounts(&binder, &returns)?;
                    for ret in &returns {
                        if let Return::Reply(reply) = ret {
                            binder
                                .send(&Commands::new().free_buffer(reply.buffer))
                                .step("free an early reply")?;
                        }
                    }
                    if returns.contains(&Return::TransactionComplete) {
                        break;
                    }
                },
                2 => {
                    for _ in 0..(round * 97 % 3000) {
                        std::hint::spin_loop();
                    }
                    thread::yield_now();
                }
                _ => {
                    kept = Some(
                        await_reply(&binder)?
                            .map_err(|ret| format!("call {code:#x} got {ret:?}"))?,
                    );
                }
            }
            binder.thread_exit().step("BINDER_THREAD_EXIT")?;
            if let Some(reply) = kept {
                binder
                    .send(&Commands::new().free_buffer(reply.buffer))
                    .step("free the reply from the next thread")?;
            }
        }
        Ok(())
    })?;
    // The client and the manager still work after all that.
    let payload = Payload::new()
        .bytes(b"lead....")
        .object(FlatObject::binder(0x4000, 0x4001));
    binder
        .send(&Commands::new().payload(false, 0, 0x4000, 0, &payload))
        .step("a last call")?;
    let reply = await_reply(&binder)?.map_err(|ret| format!("the last call got {ret:?}"))?;
    binder
        .send(&Commands::new().free_buffer(reply.buffer))
        .step("free the last reply")?;
    stop_loopers(LOOPERS)?;
    manager.join()
}

/// CVE-2020-0423 from the other side: a server thread leaves (BINDER_THREAD_EXIT) with a call
/// on its stack that it has not answered. The caller must get BR_DEAD_REPLY, the buffer stays
/// the process's to free (before or after the thread left), and the server's next binder
/// thread on the same task serves on. Two client threads call two server loopers; every
/// third call is one the server walks out on.
fn server_exits_with_call_on_stack(_: &Env) -> Outcome {
    const LOOPERS: usize = 2;
    const THREADS: usize = 2;
    const ROUNDS: u32 = 60;
    let walks_out = |code: u32| code.is_multiple_of(3);
    let manager = spawn_ready(|ready| {
        let (binder, mapping) = threaded_manager()?;
        ready();
        on_threads(LOOPERS, |_| {
            serve(&binder, |txn| {
                if txn.code == STOP {
                    binder
                        .send(&Commands::new().transaction(true, 0, STOP, 0, b"stopped"))
                        .step("reply to stop")?;
                    return Ok(false);
                }
                expect_call_intact(&mapping, txn)?;
                if !walks_out(txn.code) {
                    binder
                        .send(&Commands::new().free_buffer(txn.buffer).transaction(
                            true,
                            0,
                            txn.code,
                            0,
                            &reply_data(txn.code),
                        ))
                        .step("reply")?;
                    return Ok(true);
                }
                let free = Commands::new().free_buffer(txn.buffer);
                if txn.code % 2 == 0 {
                    binder.send(&free).step("free before leaving")?;
                }
                binder
                    .thread_exit()
                    .step("BINDER_THREAD_EXIT with a call on the stack")?;
                binder
                    .send(&Commands::new().enter_looper())
                    .step("enter looper again")?;
                if txn.code % 2 != 0 {
                    binder.send(&free).step("free after leaving")?;
                }
                Ok(true)
            })
        })
    })?;
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    on_threads(THREADS, |t| {
        for round in 0..ROUNDS {
            let code = ((t as u32 + 1) << 16) | round;
            let payload = call_payload(code);
            binder
                .send(&Commands::new().payload(false, 0, code, 0, &payload))
                .step("call")?;
            match await_reply(&binder)? {
                Ok(reply) => {
                    ensure!(
                        !walks_out(code),
                        "call {code:#x} got a reply from a thread that left"
                    );
                    let data = mapping.bytes_at(reply.buffer, reply.data_size);
                    ensure!(
                        data == Some(&reply_data(code)[..]),
                        "the reply to call {code:#x} reads {data:?}"
                    );
                    binder
                        .send(&Commands::new().free_buffer(reply.buffer))
                        .step("free the reply")?;
                }
                Err(Return::DeadReply) if walks_out(code) => {}
                Err(ret) => return Err(format!("call {code:#x} got {ret:?}")),
            }
        }
        Ok(())
    })?;
    stop_loopers(LOOPERS)?;
    manager.join()
}

/// CVE-2025-68260 (rust_binder's own): releasing a dead node moved its list of death
/// notifications aside and walked it without the lock, while BC_CLEAR_DEATH_NOTIFICATION
/// from another process removed entries from that same list.
///
/// Round after round, a context manager is started, four holder processes of two threads
/// each take a reference to it and request and clear death notifications on it as fast as
/// they can (each thread with its own cookie, so most requests and clears of one holder's
/// threads collide and are skipped), and the manager is killed in the middle of that, and in
/// some rounds a holder with it, so the node's release, the holders' clears and a holder's own
/// release run at once. The holders answer every BR_DEAD_BINDER with BC_DEAD_BINDER_DONE.
/// Afterwards each surviving holder must still be told of the death by a new request.
fn death_clear_races_owner_death(_: &Env) -> Outcome {
    const ROUNDS: usize = 8;
    const HOLDERS: usize = 4;
    const THREADS: usize = 2;
    const ITERATIONS: usize = 300;
    const FINAL: u64 = 0xf1a1;
    for round in 0..ROUNDS {
        let manager = spawn_ready(|ready| {
            let binder = Binder::open(BINDER).step("open in manager")?;
            become_manager(&binder)?;
            ready();
            park()
        })?;
        let mut holders = (0..HOLDERS)
            .map(|h| {
                spawn_ready(move |ready| {
                    let binder = Binder::open_with_flags(BINDER, libc::O_NONBLOCK)
                        .step("open non-blocking")?;
                    binder
                        .send(&Commands::new().enter_looper().acquire(0))
                        .step("enter looper, acquire 0")?;
                    ready();
                    on_threads(THREADS, |t| {
                        binder
                            .send(&Commands::new().enter_looper())
                            .step("enter looper")?;
                        let cookie = 0xd000 + (h * THREADS + t) as u64;
                        let request = Commands::new().request_death_notification(0, cookie);
                        let clear = Commands::new().clear_death_notification(0, cookie);
                        for i in 0..ITERATIONS {
                            binder.send(&request).step("request")?;
                            binder.send(&clear).step("clear")?;
                            if i % 16 == 0 {
                                drain_deaths(&binder, None)?;
                            }
                        }
                        Ok(())
                    })?;
                    drain_deaths(&binder, None)?;
                    binder
                        .send(&Commands::new().request_death_notification(0, FINAL))
                        .step("request after the race")?;
                    let mut told = false;
                    for _ in 0..500 {
                        if drain_deaths(&binder, Some(FINAL))? {
                            told = true;
                            break;
                        }
                        thread::sleep(Duration::from_millis(10));
                    }
                    ensure!(told, "a request after the race was never told of the death");
                    Ok(())
                })
            })
            .collect::<Outcome<Vec<_>>>()?;
        thread::sleep(Duration::from_millis(2 * (round as u64 % 4)));
        // A holder cannot finish before the manager dies (it waits to be told): killed just
        // before the manager, it is still there to be killed.
        let victim = (round % 2 == 1).then(|| holders.remove(round % HOLDERS));
        if let Some(victim) = &victim {
            // SAFETY: Plain syscall on our own child, which is reaped below.
            unsafe { libc::kill(victim.pid(), libc::SIGKILL) };
        }
        manager.kill()?;
        if let Some(victim) = victim {
            match victim.wait()? {
                Exit::Signal(libc::SIGKILL) => {}
                other => return Err(format!("the holder to kill ended first: {other:?}")),
            }
        }
        for holder in holders {
            holder.join()?;
        }
    }
    Ok(())
}

/// Reads what the holder has without waiting (its file is non-blocking) and answers each
/// BR_DEAD_BINDER; returns whether one with the cookie `wanted` came.
fn drain_deaths(binder: &Binder, wanted: Option<u64>) -> Outcome<bool> {
    let mut seen = false;
    loop {
        let returns = match binder.read() {
            Ok(returns) => returns,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(seen),
            Err(e) => return Err(format!("read: {e}")),
        };
        for ret in returns {
            match ret {
                Return::DeadBinder(cookie) => {
                    seen |= Some(cookie) == wanted;
                    binder
                        .send(&Commands::new().dead_binder_done(cookie))
                        .step("dead binder done")?;
                }
                Return::Noop | Return::ClearDeathNotificationDone(_) => {}
                other => return Err(format!("a holder read {other:?}")),
            }
        }
    }
}
