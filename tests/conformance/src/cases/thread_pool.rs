//! The thread pool: BR_SPAWN_LOOPER asks a process for another looper thread, within the
//! limit set by BINDER_SET_MAX_THREADS. Which thread takes the process's work: each call or
//! one-way goes to a looper that waits for work, a different one for each while there are
//! several; a thread that never said it is a looper still takes work; and a reply's read
//! takes none of the process's work.

use std::{
    sync::{mpsc, Arc, Barrier, Condvar, Mutex},
    thread,
    time::Duration,
};

use binder_client::{uapi, Binder, Commands, FlatObject, Payload, Return, Txn};

use crate::{
    ensure,
    harness::{Case, Env, Outcome, Step, BINDER},
};

use super::{
    concurrency::{await_sleeping_in_binder_read, gettid, spawn_linked, Link},
    context_mgr::become_manager,
    peer::Peer,
};

pub const CASES: &[Case] = &[
    Case::new(
        "spawn_looper_within_max_threads",
        spawn_looper_within_max_threads,
    ),
    Case::new(
        "no_spawn_looper_without_max_threads",
        no_spawn_looper_without_max_threads,
    ),
    Case::new(
        "no_spawn_looper_for_non_looper",
        no_spawn_looper_for_non_looper,
    ),
    Case::new(
        "spawn_looper_register_after_enter_takes_no_request",
        register_after_enter_takes_no_request,
    ),
    Case::new(
        "waiting_loopers_take_one_call_each",
        waiting_loopers_take_one_call_each,
    ),
    Case::new(
        "waiting_loopers_take_one_oneway_each",
        waiting_loopers_take_one_oneway_each,
    ),
    Case::new(
        "non_looper_manager_reads_queued_oneway",
        non_looper_reads_queued_oneway,
    ),
    Case::new(
        "non_looper_manager_reads_queued_call",
        non_looper_reads_queued_call,
    ),
    Case::new(
        "non_looper_manager_woken_for_oneway",
        non_looper_woken_for_oneway,
    ),
    Case::new(
        "latest_waiting_looper_takes_call",
        latest_waiting_looper_takes_call,
    ),
    Case::new(
        "thread_exit_then_read_takes_queued_oneway",
        thread_exit_then_read_takes_queued_oneway,
    ),
    Case::new(
        "reply_read_leaves_queued_call_for_next_read",
        reply_read_leaves_queued_call,
    ),
    Case::new(
        "reply_read_leaves_queued_oneway_for_next_read",
        reply_read_leaves_queued_oneway,
    ),
];

/// Writes `commands` and reads, in one ioctl, on a new thread of `binder`. A new thread's
/// first read returns at once (it has "return to userspace" set until its first ioctl ends),
/// which is what these cases rely on.
fn on_new_thread(binder: &Binder, commands: Commands) -> Outcome<Vec<Return>> {
    thread::scope(|s| {
        s.spawn(|| binder.write_then_read(&commands).step("write and read"))
            .join()
            .map_err(|_| "thread panicked".to_string())?
    })
}

/// One request at a time: the next comes only once a thread registered for the last, and
/// none once max_threads threads did.
fn spawn_looper_within_max_threads(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.set_max_threads(2).step("BINDER_SET_MAX_THREADS")?;
    let steps = [
        (
            Commands::new().enter_looper(),
            Return::SpawnLooper,
            "main looper",
        ),
        (
            Commands::new().enter_looper(),
            Return::Noop,
            "second looper, request outstanding",
        ),
        (
            Commands::new().register_looper(),
            Return::SpawnLooper,
            "first requested thread",
        ),
        (
            Commands::new().register_looper(),
            Return::Noop,
            "second requested thread, at max",
        ),
        (
            Commands::new().enter_looper(),
            Return::Noop,
            "another looper, at max",
        ),
    ];
    expect_one_return_per_thread(&binder, steps)
}

/// Runs each step's commands on a new thread of `binder` (see [`on_new_thread`]) and checks
/// that its read returns just the step's return.
fn expect_one_return_per_thread(
    binder: &Binder,
    steps: impl IntoIterator<Item = (Commands, Return, &'static str)>,
) -> Outcome {
    for (commands, expected, what) in steps {
        let returns = on_new_thread(binder, commands)?;
        ensure!(
            returns == [expected.clone()],
            "{what}: read {returns:?}, expected {expected:?}"
        );
    }
    Ok(())
}

fn no_spawn_looper_without_max_threads(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let returns = on_new_thread(&binder, Commands::new().enter_looper())?;
    ensure!(
        returns == [Return::Noop],
        "read {returns:?} with max_threads 0"
    );
    Ok(())
}

fn no_spawn_looper_for_non_looper(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.set_max_threads(4).step("BINDER_SET_MAX_THREADS")?;
    let returns = on_new_thread(&binder, Commands::new())?;
    ensure!(
        returns == [Return::Noop],
        "read {returns:?} by a thread that is no looper"
    );
    Ok(())
}

/// `BC_REGISTER_LOOPER` on a thread that sent `BC_ENTER_LOOPER` marks the thread invalid and
/// answers no request: with max_threads 2, the request the main looper got stays outstanding
/// (no BR_SPAWN_LOOPER for that thread), the next registered thread takes it (and gets a new
/// request), and the one after it reaches max_threads.
fn register_after_enter_takes_no_request(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.set_max_threads(2).step("BINDER_SET_MAX_THREADS")?;
    let steps = [
        (
            Commands::new().enter_looper(),
            Return::SpawnLooper,
            "main looper",
        ),
        (
            Commands::new().enter_looper().register_looper(),
            Return::Noop,
            "a looper that registers after entering, request outstanding",
        ),
        (
            Commands::new().register_looper(),
            Return::SpawnLooper,
            "first requested thread",
        ),
        (
            Commands::new().register_looper(),
            Return::Noop,
            "second requested thread, at max",
        ),
    ];
    expect_one_return_per_thread(&binder, steps)
}

/// How long a case waits for work that a sleeping thread should have been given, before it
/// calls the driver stuck. Only a hang ends that way: on a working driver the wait lasts as
/// long as scheduling takes.
const HANG: Duration = Duration::from_secs(20);

/// The rounds of the two-looper cases.
const ROUNDS: u32 = 20;

/// The second node of the server in the two-looper cases, besides the manager's.
const NODE_PTR: u64 = 0x2_10de;
const LOOKUP: u32 = 0x100;
const PING: &[u8] = b"ping";

/// What the two loopers of a server took: (looper, transaction code) in the order taken. The
/// code of each transaction is twice its round, plus one for the round's second.
#[derive(Default)]
struct Meeting {
    state: Mutex<Taken>,
    changed: Condvar,
}

#[derive(Default)]
struct Taken {
    by: Vec<(usize, u32)>,
    failure: Option<String>,
}

impl Taken {
    fn in_round(&self, round: u32) -> Vec<(usize, u32)> {
        self.by
            .iter()
            .copied()
            .filter(|(_, code)| code / 2 == round)
            .collect()
    }
}

impl Meeting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Taken> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `looper` took the transaction `code`, and waits until the round's other
    /// transaction was taken too (by the other looper, since this one waits here).
    fn take(&self, looper: usize, code: u32) {
        let mut taken = self.lock();
        taken.by.push((looper, code));
        self.changed.notify_all();
        let round = code / 2;
        let _unused = self
            .changed
            .wait_while(taken, |t| t.in_round(round).len() < 2);
    }

    fn fail(&self, why: String) {
        self.lock().failure.get_or_insert(why);
        self.changed.notify_all();
    }

    /// Waits until both transactions of `round` were taken, for at most [`HANG`].
    fn await_round(&self, round: u32, tids: &[i32; 2]) -> Outcome {
        let taken = self.lock();
        let (taken, _) = self
            .changed
            .wait_timeout_while(taken, HANG, |t| {
                t.failure.is_none() && t.in_round(round).len() < 2
            })
            .unwrap_or_else(|e| e.into_inner());
        if let Some(why) = &taken.failure {
            return Err(why.clone());
        }
        match taken.in_round(round)[..] {
            [_, _] => Ok(()),
            [(looper, code)] => Err(format!(
                "round {round}: looper {looper} (tid {}) took transaction {code} and waits for \
                 the other; the round's other transaction reached no thread in {} s, while \
                 looper {} (tid {}) sleeps in its read",
                tids[looper],
                HANG.as_secs(),
                1 - looper,
                tids[1 - looper]
            )),
            _ => Err(format!(
                "round {round}: neither transaction reached one of the two waiting loopers in \
                 {} s",
                HANG.as_secs()
            )),
        }
    }
}

/// A looper of the two-looper server: takes transactions, meets the other looper, and then
/// answers (a call) or frees (a one-way).
fn meeting_looper(binder: &Binder, looper: usize, meeting: &Meeting) -> Outcome {
    binder
        .send(&Commands::new().enter_looper())
        .step("enter looper")?;
    loop {
        for ret in binder.read().step("looper read")? {
            match ret {
                Return::Transaction(txn) => {
                    meeting.take(looper, txn.code);
                    let answer = if txn.flags & uapi::TF_ONE_WAY != 0 {
                        Commands::new()
                    } else {
                        Commands::new().transaction(true, 0, txn.code, 0, PING)
                    };
                    binder
                        .send(&answer.free_buffer(txn.buffer))
                        .step("answer")?;
                }
                Return::Increfs(ptr, cookie) => binder
                    .send(&Commands::new().increfs_done(ptr, cookie))
                    .step("BC_INCREFS_DONE")?,
                Return::Acquire(ptr, cookie) => binder
                    .send(&Commands::new().acquire_done(ptr, cookie))
                    .step("BC_ACQUIRE_DONE")?,
                Return::Noop
                | Return::TransactionComplete
                | Return::Release(..)
                | Return::Decrefs(..) => {}
                other => return Err(format!("looper {looper} read {other:?}")),
            }
        }
    }
}

/// Which transactions the client sends in each round of the two-looper cases.
#[derive(Clone, Copy)]
enum Pair {
    /// Two calls, from two client processes released together by a barrier.
    Calls,
    /// Two one-ways to two nodes of the server, in one write.
    Oneways,
}

/// The two-looper cases: this process is the context manager, with a second node, and two
/// looper threads waiting in their reads. In each round, once both sleep in the driver, a
/// client sends two transactions at once; each looper that takes one waits, before answering,
/// until the other looper took the other.
///
/// C hands work for the process to a waiting looper and takes that looper off the list of
/// waiting threads at once, so two transactions arriving together go to two loopers, and every
/// round ends. A driver that gives both to the same looper, or leaves the second queued while
/// the other looper sleeps, stops the round; the case fails after 20 s.
fn two_waiting_loopers(pair: Pair) -> Outcome {
    let (client, mut link) = spawn_linked(|link| two_looper_client(link, pair))?;
    let outcome = two_looper_server(&mut link);
    match outcome {
        Ok(()) => client.join(),
        Err(why) => {
            let _ = client.kill();
            Err(why)
        }
    }
}

fn waiting_loopers_take_one_call_each(_: &Env) -> Outcome {
    two_waiting_loopers(Pair::Calls)
}

fn waiting_loopers_take_one_oneway_each(_: &Env) -> Outcome {
    two_waiting_loopers(Pair::Oneways)
}

fn two_looper_server(link: &mut Link) -> Outcome {
    let server = Peer::manager()?;
    link.signal()?;
    // The client's lookup of the second node: answered by this thread, a looper too, which
    // then reads no more.
    let (lookup, _) = server.next_call()?;
    ensure!(lookup.code == LOOKUP, "first call {lookup:?}");
    server.reply_and_free(
        &lookup,
        &Payload::new().object(FlatObject::binder(NODE_PTR, NODE_PTR)),
    )?;
    link.wait()?;
    let meeting = Arc::new(Meeting::default());
    let (tids_sender, tids) = mpsc::channel();
    for looper in 0..2 {
        let binder = server.binder.try_clone().step("dup")?;
        let meeting = Arc::clone(&meeting);
        let tids_sender = tids_sender.clone();
        // Detached: a looper the driver never wakes again must not hold the case up.
        thread::spawn(move || {
            let _ = tids_sender.send((looper, gettid()));
            if let Err(why) = meeting_looper(&binder, looper, &meeting) {
                meeting.fail(why);
            }
        });
    }
    let mut looper_tids = [0; 2];
    for _ in 0..2 {
        let (looper, tid) = tids.recv().map_err(|e| e.to_string())?;
        looper_tids[looper] = tid;
    }
    for round in 0..ROUNDS {
        for tid in looper_tids {
            await_sleeping_in_binder_read(tid)?;
        }
        link.signal()?;
        meeting.await_round(round, &looper_tids)?;
        // The client has its replies, or its one-ways' completes.
        link.wait()?;
    }
    Ok(())
}

/// Reads `peer`'s returns until `count` BR_TRANSACTION_COMPLETEs came.
fn await_completes(peer: &Peer, count: usize) -> Outcome {
    let mut completes = 0;
    while completes < count {
        for ret in peer.read()? {
            match ret {
                Return::TransactionComplete => completes += 1,
                Return::Noop => {}
                other => return Err(format!("waiting for completes, read {other:?}")),
            }
        }
    }
    Ok(())
}

fn two_looper_client(mut link: Link, pair: Pair) -> Outcome {
    link.wait()?;
    let first = Peer::open()?;
    let second = Peer::open()?;
    let reply = first.call_for_reply(0, LOOKUP, &Payload::new())?;
    let [node] = first.objects(&reply)?[..] else {
        return Err(format!("the lookup answered {reply:?}"));
    };
    let handle = node.handle_value();
    first.send(
        Commands::new()
            .increfs(handle)
            .acquire(handle)
            .free_buffer(reply.buffer),
        "keep the second node",
    )?;
    link.signal()?;
    match pair {
        Pair::Oneways => {
            for round in 0..ROUNDS {
                link.wait()?;
                let oneways = Commands::new()
                    .transaction(false, 0, 2 * round, uapi::TF_ONE_WAY, PING)
                    .transaction(false, handle, 2 * round + 1, uapi::TF_ONE_WAY, PING);
                first.send(oneways, "two one-ways")?;
                await_completes(&first, 2)?;
                link.signal()?;
            }
            Ok(())
        }
        Pair::Calls => calls_in_pairs(link, [first, second]),
    }
}

/// Each round, two threads (each with a client process of its own) call the manager at once.
fn calls_in_pairs(mut link: Link, peers: [Peer; 2]) -> Outcome {
    let start = Barrier::new(3);
    let finish = Barrier::new(3);
    let failure = Mutex::new(None);
    thread::scope(|s| {
        for (index, peer) in peers.into_iter().enumerate() {
            let (start, finish, failure) = (&start, &finish, &failure);
            s.spawn(move || {
                for round in 0..ROUNDS {
                    start.wait();
                    let code = 2 * round + index as u32;
                    let outcome = peer
                        .call_for_reply(0, code, &Payload::new().bytes(PING))
                        .and_then(|reply| peer.free(&reply));
                    if let Err(why) = outcome {
                        let mut failure = failure.lock().unwrap_or_else(|e| e.into_inner());
                        failure.get_or_insert(format!("call {code}: {why}"));
                    }
                    finish.wait();
                }
            });
        }
        for _ in 0..ROUNDS {
            link.wait()?;
            start.wait();
            finish.wait();
            if let Some(why) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(why);
            }
            link.signal()?;
        }
        Ok(())
    })
}

/// Forks a client process for the cases below: it waits until the context manager is in
/// place, then runs `body` with its own binder and the link.
///
/// The clients live in a process of their own: the C driver refuses a transaction to the
/// context manager from the process (pid) that owns it.
fn spawn_client(
    body: impl FnOnce(&Peer, &mut Link) -> Outcome,
) -> Outcome<(crate::harness::Child, Link)> {
    spawn_linked(|mut link| {
        link.wait()?;
        let client = Peer::open()?;
        body(&client, &mut link)
    })
}

/// The client of the cases below sends a transaction of code 7 to the manager.
fn send_to_manager(client: &Peer, flags: u32) -> Outcome {
    client.send(
        Commands::new().transaction(false, 0, 7, flags, PING),
        "transaction to the manager",
    )
}

/// Reads until the reply to the call `client` sent comes; checks it is `expected`.
fn await_reply_data(client: &Peer, expected: &[u8]) -> Outcome {
    let mut returns = Vec::new();
    let reply = loop {
        let read = client.read()?;
        if let Some(reply) = read.iter().find_map(|ret| match ret {
            Return::Reply(txn) => Some(txn.clone()),
            _ => None,
        }) {
            break reply;
        }
        ensure!(
            !read
                .iter()
                .any(|r| matches!(r, Return::FailedReply | Return::DeadReply)),
            "the call failed: {read:?}"
        );
        returns.extend(read);
    };
    let data = client
        .mapping
        .bytes_at(reply.buffer, reply.data_size)
        .ok_or("reply outside the mapping")?;
    ensure!(data == expected, "reply {data:?} after {returns:?}");
    client.free(&reply)
}

/// A read that must return `[BR_NOOP, BR_TRANSACTION]` at once on a non-blocking file.
fn read_transaction_now(peer: &Peer, what: &str) -> Outcome<Txn> {
    peer.binder.set_nonblocking(true).step("O_NONBLOCK")?;
    let returns = peer
        .binder
        .read()
        .map_err(|e| format!("{what}: read: {e}"))?;
    peer.binder.set_nonblocking(false).step("O_NONBLOCK off")?;
    match &returns[..] {
        [Return::Noop, Return::Transaction(txn)] => Ok(txn.clone()),
        other => Err(format!("{what}: read {other:?}")),
    }
}

/// Opens the context manager without a looper command, lets the client (in another process)
/// queue a transaction with `flags` for it, and reads it at once.
fn non_looper_reads_queued(flags: u32) -> Outcome {
    let oneway = flags & uapi::TF_ONE_WAY != 0;
    let (client, mut link) = spawn_client(move |client, link| {
        send_to_manager(client, flags)?;
        if oneway {
            await_completes(client, 1)?;
            link.signal()
        } else {
            link.signal()?;
            await_reply_data(client, b"pong")
        }
    })?;
    let manager = Peer::open()?;
    become_manager(&manager.binder)?;
    link.signal()?;
    link.wait()?;
    let txn = read_transaction_now(&manager, "the manager, no looper")?;
    ensure!(
        txn.code == 7 && txn.flags & uapi::TF_ONE_WAY == flags,
        "delivered {txn:?}"
    );
    if oneway {
        manager.free(&txn)?;
    } else {
        manager.reply_and_free(&txn, &Payload::new().bytes(b"pong"))?;
    }
    client.join()
}

/// The context manager opens, maps and becomes the manager, and never sends a looper command;
/// a client's one-way is queued for it. C gives the one-way to the manager's next read (it
/// logs that a thread waits for the process's work before a looper command, and goes on).
fn non_looper_reads_queued_oneway(_: &Env) -> Outcome {
    non_looper_reads_queued(uapi::TF_ONE_WAY)
}

/// As [`non_looper_reads_queued_oneway`], with a call: C delivers it the same way, and the
/// manager's reply reaches the client.
fn non_looper_reads_queued_call(_: &Env) -> Outcome {
    non_looper_reads_queued(0)
}

/// The context manager, without a looper command, sleeps in a blocking read when a client's
/// one-way comes. C wakes it with the one-way (it waits for the process's work like a looper).
/// A driver that leaves it asleep fails the case after 20 s.
fn non_looper_woken_for_oneway(_: &Env) -> Outcome {
    let (client, mut link) = spawn_client(|client, _| {
        send_to_manager(client, uapi::TF_ONE_WAY)?;
        await_completes(client, 1)
    })?;
    let manager = Peer::open()?;
    become_manager(&manager.binder)?;
    let (sender, delivered) = mpsc::channel();
    // Detached: a thread the driver never wakes must not hold the case up.
    thread::spawn(move || {
        let _ = sender.send(Ok(gettid()));
        let txn = manager.next_call().map(|(txn, _)| txn);
        let freed = txn.and_then(|txn| manager.free(&txn).map(|()| txn));
        let _ = sender.send(freed.map(|txn| txn.code as i32));
    });
    let tid = delivered.recv().map_err(|e| e.to_string())??;
    await_sleeping_in_binder_read(tid)?;
    link.signal()?;
    match delivered.recv_timeout(HANG) {
        Ok(code) => {
            let code = code?;
            ensure!(code == 7, "delivered code {code}");
            client.join()
        }
        Err(_) => Err(format!(
            "the one-way did not reach the manager's thread, asleep in its read without a \
             looper command, in {} s",
            HANG.as_secs()
        )),
    }
}

/// The context manager's thread enters the looper and leaves the driver (BINDER_THREAD_EXIT);
/// a client's one-way is queued; the same task reads again, as a new binder thread that sent
/// no looper command. C gives it the one-way in that first read.
fn thread_exit_then_read_takes_queued_oneway(_: &Env) -> Outcome {
    let (client, mut link) = spawn_client(|client, link| {
        send_to_manager(client, uapi::TF_ONE_WAY)?;
        await_completes(client, 1)?;
        link.signal()
    })?;
    let manager = Peer::manager()?;
    manager.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
    link.signal()?;
    link.wait()?;
    let txn = read_transaction_now(&manager, "after BINDER_THREAD_EXIT")?;
    ensure!(txn.code == 7, "delivered {txn:?}");
    manager.free(&txn)?;
    client.join()
}

/// The manager's looper thread holds one call, and a second transaction (`flags`) waits in the
/// process's queue; the looper replies and reads in one ioctl. C decides at the start of a read
/// whether the thread takes the process's work, and a thread with its reply's
/// BR_TRANSACTION_COMPLETE pending takes none: that read returns `[BR_NOOP,
/// BR_TRANSACTION_COMPLETE]`, and the next one `[BR_NOOP, BR_TRANSACTION]`.
fn reply_read_leaves_queued(flags: u32) -> Outcome {
    let (clients, mut link) = spawn_client(move |first, link| {
        let second = Peer::open()?;
        first.send(
            Commands::new().transaction(false, 0, 1, 0, PING),
            "the first call",
        )?;
        link.signal()?;
        link.wait()?;
        second.send(
            Commands::new().transaction(false, 0, 2, flags, PING),
            "the second transaction",
        )?;
        link.signal()?;
        await_reply_data(first, b"pong")?;
        if flags & uapi::TF_ONE_WAY == 0 {
            await_reply_data(&second, b"")
        } else {
            await_completes(&second, 1)
        }
    })?;
    let manager = Peer::manager()?;
    link.signal()?;
    link.wait()?;
    let returns = manager.binder.read().step("the manager's read")?;
    let [Return::Noop, Return::Transaction(call)] = &returns[..] else {
        return Err(format!("the manager read {returns:?}"));
    };
    ensure!(call.code == 1, "delivered {call:?}");
    link.signal()?;
    link.wait()?;
    let answer = Commands::new()
        .transaction(true, 0, 1, 0, b"pong")
        .free_buffer(call.buffer);
    let returns = manager
        .binder
        .write_then_read(&answer)
        .step("reply and read")?;
    ensure!(
        returns == [Return::Noop, Return::TransactionComplete],
        "the reply's read returned {returns:?}"
    );
    let returns = manager.binder.read().step("the next read")?;
    let [Return::Noop, Return::Transaction(next)] = &returns[..] else {
        return Err(format!("the next read returned {returns:?}"));
    };
    ensure!(next.code == 2, "delivered {next:?}");
    if flags & uapi::TF_ONE_WAY == 0 {
        manager.reply_and_free(next, &Payload::new())?;
    } else {
        manager.free(next)?;
    }
    clients.join()
}

fn reply_read_leaves_queued_call(_: &Env) -> Outcome {
    reply_read_leaves_queued(0)
}

fn reply_read_leaves_queued_oneway(_: &Env) -> Outcome {
    reply_read_leaves_queued(uapi::TF_ONE_WAY)
}

/// Three loopers go to sleep in their reads one after the other, and a call comes: C gives it
/// to the one that went to sleep last (the head of its `waiting_threads`). That looper answers
/// and sleeps again, the latest once more, so the next call goes to it too.
fn latest_waiting_looper_takes_call(_: &Env) -> Outcome {
    const LOOPERS: usize = 3;
    let (client, mut link) = spawn_client(|client, link| {
        for round in 0..2 {
            link.wait()?;
            let reply = client.call_for_reply(0, round, &Payload::new().bytes(PING))?;
            client.free(&reply)?;
        }
        Ok(())
    })?;
    let server = Peer::manager()?;
    // The manager is in place: the client opens its binder.
    link.signal()?;
    let (taken_sender, taken) = mpsc::channel();
    let mut tids = Vec::new();
    for looper in 0..LOOPERS {
        let binder = server.binder.try_clone().step("dup")?;
        let taken_sender = taken_sender.clone();
        let (tid_sender, tid) = mpsc::channel();
        // Detached: a looper the driver never wakes again must not hold the case up.
        thread::spawn(move || {
            let _ = tid_sender.send(gettid());
            if let Err(why) = answering_looper(&binder, looper, &taken_sender) {
                let _ = taken_sender.send(Err(why));
            }
        });
        let tid = tid.recv().map_err(|e| e.to_string())?;
        await_sleeping_in_binder_read(tid)?;
        tids.push(tid);
    }
    for round in 0..2 {
        for &tid in &tids {
            await_sleeping_in_binder_read(tid)?;
        }
        link.signal()?;
        let (looper, code) = taken
            .recv_timeout(HANG)
            .map_err(|_| format!("round {round}: the call reached no looper"))??;
        ensure!(
            code == round && looper == LOOPERS - 1,
            "round {round}: call {code} went to looper {looper} (loopers' tids {tids:?}); the \
             one that went to sleep last is looper {}",
            LOOPERS - 1
        );
    }
    client.join()
}

/// A looper that answers every call it reads, telling `taken` which looper took which call.
fn answering_looper(
    binder: &Binder,
    looper: usize,
    taken: &mpsc::Sender<Outcome<(usize, u32)>>,
) -> Outcome {
    binder
        .send(&Commands::new().enter_looper())
        .step("enter looper")?;
    loop {
        for ret in binder.read().step("looper read")? {
            if let Return::Transaction(txn) = ret {
                let answer = Commands::new()
                    .transaction(true, 0, txn.code, 0, PING)
                    .free_buffer(txn.buffer);
                binder.send(&answer).step("answer")?;
                let _ = taken.send(Ok((looper, txn.code)));
            }
        }
    }
}
