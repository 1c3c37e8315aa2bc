//! The thread pool: BR_SPAWN_LOOPER asks a process for another looper thread, within the
//! limit set by BINDER_SET_MAX_THREADS. Which thread takes the process's work: each call or
//! one-way goes to a looper that waits for work, a different one for each while there are
//! several.
use std::{
    sync::{mpsc, Arc, Barrier, Condvar, Mutex},
    thread,
    time::Duration,
};

use binder_client::{uapi, Binder, Commands, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{Case, Env, Outcome, Step, BINDER},
};

use super::{
    concurrency::{await_sleeping_in_binder_read, gettid, spawn_linked, Link},
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
    for (commands, expected, what) in steps {
        let returns = on_new_thread(&binder, commands)?;
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
    for (commands, expected, what) in steps {
        let returns = on_new_thread(&binder, commands)?;
        ensure!(
            returns == [expected.clone()],
            "{what}: read {returns:?}, expected {expected:?}"
        );
    }
    Ok(())
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
