//! Fds, fd arrays and scatter-gather chains in flight while processes die, in both
//! directions, and while many threads send them at once. Every file sent is one end of a pipe
//! whose other end the case keeps: once the processes that could hold the sent end are gone or
//! done, the kept end must see EOF, or someone (the driver) leaked a reference.

use std::{
    os::fd::{AsRawFd, OwnedFd},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    thread,
};

use binder_client::{uapi, Call, Payload, Process, Response, Return, Service};

use crate::{
    ensure,
    harness::{notice, park, spawn_ready, Case, Child, Env, Outcome, Step, BINDER},
};

use super::{
    context_mgr::become_manager_ext,
    files::{
        await_eof, expect_no_new_fds, expect_same_fds, file_id, open_fds, pipe, read_exact_fd,
        write_fd,
    },
    peer::{spawn_fd_manager, spawn_manager, Peer},
    sg::{word, Chain},
};

pub const CASES: &[Case] = &[
    Case::new(
        "teardown_fd_sender_dies_before_receiver_reads",
        sender_dies_before_read,
    ),
    Case::new(
        "teardown_fd_receiver_dies_without_reading",
        receiver_dies_without_reading,
    ),
    Case::new(
        "teardown_fd_receiver_dies_holding_delivered_buffers",
        receiver_dies_holding_buffers,
    ),
    Case::new(
        "teardown_fd_caller_dies_before_reading_reply",
        caller_dies_before_reply,
    ),
    Case::new(
        "concurrency_fds_and_sg_chains_to_threaded_server",
        fds_and_chains_to_threaded_server,
    ),
];

/// The files one transaction of these cases carries: a lone fd and an fd in an array, each
/// the write end of a pipe whose read end the case keeps.
struct Files {
    lone: (OwnedFd, OwnedFd),
    in_array: (OwnedFd, OwnedFd),
}

impl Files {
    fn new() -> Outcome<Self> {
        Ok(Self {
            lone: pipe()?,
            in_array: pipe()?,
        })
    }

    /// Closes the write ends (the files live on only where they were sent) and returns the
    /// read ends.
    fn kept(self) -> [OwnedFd; 2] {
        [self.lone.0, self.in_array.0]
    }
}

/// The payload of these cases: `tag` (8 bytes), a lone fd (object 0), a parent holding one fd
/// (object 1), its fd array (object 2), then a [`Chain`] (root at object 3).
fn objects_payload(tag: u64, lone: i32, in_array: i32) -> Payload {
    let mut parent = (in_array as u32).to_ne_bytes().to_vec();
    parent.extend_from_slice(&[0; 12]);
    let payload = Payload::new()
        .bytes(&tag.to_ne_bytes())
        .fd(lone)
        .buffer(&parent)
        .fd_array(1, 0, 1);
    Chain::new(tag as u8).append(payload)
}

fn files_payload(tag: u64, files: &Files) -> Payload {
    objects_payload(tag, files.lone.1.as_raw_fd(), files.in_array.1.as_raw_fd())
}

/// Checks a transaction built by [`objects_payload`] and returns its tag and the receiver's
/// two fds (the lone one, the one in the array).
fn check_objects(received: &binder_client::Received<'_>) -> Outcome<(u64, [i32; 2])> {
    let data = received.data().step("data")?;
    let tag = word(data, 0);
    Chain::new(tag as u8).check(received, 3)?;
    let fds = received.fds().step("fds")?;
    let [lone, in_array] = fds[..] else {
        return Err(format!("the transaction brought fds {fds:?}"));
    };
    Ok((tag, [lone, in_array]))
}

fn close(fd: i32) {
    // SAFETY: The driver installed `fd` in this process, and this is its only user.
    unsafe { libc::close(fd) };
}

/// Waits for EOF on each kept read end, expecting `message` in each first.
fn expect_released(kept: &[OwnedFd], message: &[u8], what: &str) -> Outcome {
    for read_end in kept {
        let bytes = await_eof(read_end.as_raw_fd(), what)?;
        ensure!(
            bytes == message,
            "{what}: the pipe carried {bytes:?}, expected {message:?}"
        );
    }
    Ok(())
}

/// The sender dies (sync call and one-way) before the receiver reads: the receiver still gets
/// the files, taken at send time, and nothing is left once it lets them go.
fn sender_dies_before_read(_: &Env) -> Outcome {
    let (go, await_go) = notice()?;
    let manager = spawn_fd_manager(move |m| {
        await_go.wait()?;
        for _ in 0..2 {
            let (call, _) = m.next_call()?;
            let (_, [lone, in_array]) = check_objects(&m.received(&call))?;
            write_fd(lone, b"x")?;
            write_fd(in_array, b"x")?;
            close(lone);
            if call.flags & uapi::TF_ONE_WAY == 0 {
                // The caller is dead, or dying: the reply's fate is not this case's business.
                m.send(
                    binder_client::Commands::new().payload(true, 0, 0, 0, &Payload::new()),
                    "reply to the dead",
                )?;
                m.pending()?;
            }
            m.free(&call)?;
        }
        Ok(())
    })?;
    let (oneway, call) = (Files::new()?, Files::new()?);
    let (sent, await_sent) = notice()?;
    let sender = spawn_ready(|ready| {
        let c = Peer::open()?;
        c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &files_payload(1, &oneway))?;
        c.send_call(0, 2, &files_payload(2, &call))?;
        sent.notify()?;
        ready();
        park()
    })?;
    await_sent.wait()?;
    let kept: Vec<OwnedFd> = [oneway, call].into_iter().flat_map(Files::kept).collect();
    sender.kill()?;
    go.notify()?;
    expect_released(&kept, b"x", "a file sent by a process that died")?;
    manager.join()
}

/// The receiver dies without reading a one-way and a sync call: the caller gets
/// BR_DEAD_REPLY and the files go back.
fn receiver_dies_without_reading(_: &Env) -> Outcome {
    let manager = spawn_ready(|ready| {
        let _m = Peer::manager_accepting_fds()?;
        ready();
        park()
    })?;
    let before = open_fds()?;
    let c = Peer::open()?;
    let (oneway, call) = (Files::new()?, Files::new()?);
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &files_payload(1, &oneway))?;
    c.send_call(0, 2, &files_payload(2, &call))?;
    let kept: Vec<OwnedFd> = [oneway, call].into_iter().flat_map(Files::kept).collect();
    manager.kill()?;
    let exchange = c.await_reply()?;
    ensure!(
        exchange.returns.contains(&Return::DeadReply),
        "the caller of a receiver that died read {:?}",
        exchange.returns
    );
    expect_released(&kept, b"", "a file sent to a process that died")?;
    drop(kept);
    drop(c);
    // The killed manager's pipe to this process is gone too.
    expect_no_new_fds(&before, "after the teardown")
}

/// The receiver dies holding the buffers it read (not freed, the call not answered): its
/// fds go with it, and the caller gets BR_DEAD_REPLY.
fn receiver_dies_holding_buffers(_: &Env) -> Outcome {
    let (read, await_read) = notice()?;
    let manager = spawn_ready(move |ready| {
        let m = Peer::manager_accepting_fds()?;
        ready();
        for _ in 0..2 {
            let (call, _) = m.next_call()?;
            let (_, fds) = check_objects(&m.received(&call))?;
            for fd in fds {
                write_fd(fd, b"y")?;
            }
        }
        read.notify()?;
        park()
    })?;
    let c = Peer::open()?;
    let (oneway, call) = (Files::new()?, Files::new()?);
    c.send_call_flags(0, 1, uapi::TF_ONE_WAY, &files_payload(1, &oneway))?;
    c.send_call(0, 2, &files_payload(2, &call))?;
    let kept: Vec<OwnedFd> = [oneway, call].into_iter().flat_map(Files::kept).collect();
    await_read.wait()?;
    manager.kill()?;
    let exchange = c.await_reply()?;
    ensure!(
        exchange.returns.contains(&Return::DeadReply),
        "the caller of a receiver that died read {:?}",
        exchange.returns
    );
    expect_released(&kept, b"y", "a file held by a process that died")
}

/// The other direction: a reply carrying a lone fd and an fd array is on its way when the
/// caller dies without reading it; the files go back.
fn caller_dies_before_reply(_: &Env) -> Outcome {
    let (replied, await_replied) = notice()?;
    let (killed, await_killed) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let files = Files::new()?;
        m.reply(&call, &files_payload(9, &files))?;
        m.free(&call)?;
        let kept = files.kept();
        replied.notify()?;
        await_killed.wait()?;
        expect_released(&kept, b"", "a file replied to a process that died")
    })?;
    let caller = spawn_ready(|ready| {
        let c = Peer::open()?;
        c.send_call_flags(0, 1, uapi::TF_ACCEPT_FDS, &Payload::new())?;
        ready();
        // The caller never reads its reply.
        park()
    })?;
    await_replied.wait()?;
    caller.kill()?;
    killed.notify()?;
    manager.join()
}

const SENDER_PROCESSES: u64 = 2;
const THREADS_PER_SENDER: u64 = 2;
const CALLS_PER_THREAD: u64 = 100;
const CODE_CHECK_FDS: u32 = 2;

/// The threaded server of the concurrency case: checks every call's chain and files, writes
/// into the lone fd and closes it, and replies with the array's fd (which the driver closes
/// in the server when the call's buffer is freed, right after the reply).
struct ChainServer {
    start_fds: usize,
    calls: AtomicUsize,
}

impl ChainServer {
    fn answer(&self, call: &Call<'_>) -> Outcome<Response> {
        if call.code() == CODE_CHECK_FDS {
            let now = open_fds()?.len();
            ensure!(
                now == self.start_fds,
                "the server has {now} fds after {} calls, {} at the start",
                self.calls.load(Ordering::SeqCst),
                self.start_fds
            );
            return Ok(Response::Payload(Payload::new()));
        }
        let (tag, [lone, in_array]) = check_objects(&call.received())?;
        write_fd(lone, &tag.to_ne_bytes())?;
        close(lone);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::Payload(
            Payload::new().bytes(&tag.to_ne_bytes()).fd(in_array),
        ))
    }
}

impl Service for ChainServer {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        self.answer(call).unwrap_or_else(|e| {
            eprintln!("chain server: {e}");
            Response::Status(-libc::EBADMSG)
        })
    }
}

fn spawn_chain_server() -> Outcome<Child> {
    spawn_ready(|ready| {
        let process = Arc::new(Process::open(BINDER).step("open")?);
        become_manager_ext(process.binder(), 0, 0, uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS)?;
        process.binder().set_max_threads(4).step("max threads")?;
        let service = Arc::new(ChainServer {
            start_fds: open_fds()?.len(),
            calls: AtomicUsize::new(0),
        });
        ready();
        process.serve(service).step("serve")
    })
}

/// One sender thread's calls: each sends two fresh pipes' write ends and a chain, and checks
/// that the lone fd brought the tag back, that the reply's fd is the array's file, and that
/// both pipes see EOF once everyone let go.
fn send_chains(process: &Process, sender: u64) -> Outcome {
    for i in 0..CALLS_PER_THREAD {
        let tag = sender << 32 | i;
        let files = Files::new()?;
        let payload = files_payload(tag, &files);
        let reply = process
            .transact_payload(0, 1, &payload)
            .map_err(|e| format!("sender {sender} call {i}: {e}"))?;
        drop(payload);
        let [lone_kept, array_kept] = files.kept();
        let received = reply.received();
        let data = received.data().step("reply data")?;
        ensure!(
            word(data, 0) == tag,
            "sender {sender} call {i}: the reply is for {:#x}",
            word(data, 0)
        );
        let fds = received.fds().step("reply fds")?;
        let [back] = fds[..] else {
            return Err(format!(
                "sender {sender} call {i}: the reply brought {fds:?}"
            ));
        };
        ensure!(
            file_id(back)? == file_id(array_kept.as_raw_fd())?,
            "sender {sender} call {i}: the fd that came back is another file"
        );
        write_fd(back, b"r")?;
        close(back);
        drop(reply);
        let bytes = read_exact_fd(lone_kept.as_raw_fd(), 8, "the lone fd's pipe")?;
        ensure!(
            word(&bytes, 0) == tag,
            "sender {sender} call {i}: the lone fd's pipe carried {bytes:?}"
        );
        await_eof(lone_kept.as_raw_fd(), "the lone fd's pipe")?;
        let back = await_eof(array_kept.as_raw_fd(), "the array fd's pipe")?;
        ensure!(
            back == b"r",
            "sender {sender} call {i}: the array's pipe carried {back:?}"
        );
    }
    Ok(())
}

/// A sender process: its threads call at once; its fds are as before at the end.
fn spawn_sender(index: u64) -> Outcome<Child> {
    spawn_ready(move |ready| {
        let process = Arc::new(Process::open(BINDER).step("open")?);
        let before = open_fds()?;
        ready();
        let threads: Vec<_> = (0..THREADS_PER_SENDER)
            .map(|t| {
                let process = Arc::clone(&process);
                thread::spawn(move || send_chains(&process, index * 16 + t))
            })
            .collect();
        for thread in threads {
            thread.join().map_err(|_| "a sender thread panicked")??;
        }
        expect_same_fds(&before, "a sender after its calls")
    })
}

/// Four senders (two processes of two threads), a hundred calls each, every call with a lone
/// fd, an fd array and a three-level chain, to a server with a thread pool that answers with
/// an fd. Every file must arrive and be let go; the server's fd table ends as it began.
fn fds_and_chains_to_threaded_server(_: &Env) -> Outcome {
    let server = spawn_chain_server()?;
    let senders = (0..SENDER_PROCESSES)
        .map(spawn_sender)
        .collect::<Outcome<Vec<_>>>()?;
    for sender in senders {
        sender.join()?;
    }
    let checker = Process::open(BINDER).step("open")?;
    checker
        .transact_payload(0, CODE_CHECK_FDS, &Payload::new())
        .map_err(|e| format!("the server's fd check: {e}"))?;
    drop(checker);
    server.kill()
}
