//! Priority inheritance, mainline style (nice values): a thread serving a call runs at the
//! caller's nice when that beats the node's minimum (the low byte of the node's flags), else
//! at the minimum; a one-way transaction only lifts the reader to the minimum; the reply
//! restores the reader's nice; a thread waiting for its process's work goes back to the nice
//! its process opened the device with.
//!
//! Each case reads the serving thread's nice from inside the handler. The VM runs the cases as
//! root, so every nice asked for is allowed.

use binder_client::{uapi, Commands, Payload, Txn};

use crate::{
    ensure,
    harness::{spawn_ready, Case, Child, Env, Outcome},
};

use super::{context_mgr::become_manager_ext, peer::Peer};

pub const CASES: &[Case] = &[
    Case::new(
        "priority_call_runs_at_the_better_caller_nice_until_the_reply",
        call_runs_at_caller_nice,
    ),
    Case::new(
        "priority_call_runs_at_the_node_minimum_when_the_caller_is_worse",
        call_runs_at_node_minimum,
    ),
    Case::new(
        "priority_oneway_lifts_only_to_the_node_minimum",
        oneway_lifts_to_minimum,
    ),
    Case::new(
        "priority_waiting_for_process_work_restores_the_open_nice",
        waiting_restores_open_nice,
    ),
    Case::new(
        "priority_without_cap_sys_nice_gets_the_best_rlimit_nice",
        nice_limited_by_rlimit,
    ),
];

/// The calling thread's nice value.
fn nice() -> Outcome<i32> {
    // The raw syscall returns 20 - nice, so that no valid answer looks like an error.
    // SAFETY: Plain syscall on the calling thread.
    let raw = unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) };
    ensure!(raw > 0, "getpriority: {}", std::io::Error::last_os_error());
    Ok(20 - raw as i32)
}

/// Sets the calling thread's nice value.
fn set_nice(value: i32) -> Outcome {
    // SAFETY: Plain syscall on the calling thread (`who` 0 is the calling task on Linux).
    let ret = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, value) };
    ensure!(
        ret == 0,
        "setpriority({value}): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// What the serving thread saw for one call: its nice while serving, and after its reply.
struct Seen {
    during: i32,
    after_reply: i32,
}

/// How a serving process is set up: it opens the device at nice `open_nice`, with node flags
/// `flags`; its thread sets its own nice to `own_nice` before it enters the looper; with a
/// `nice_limit` it then sets that `RLIMIT_NICE` and gives up root (and `CAP_SYS_NICE`).
#[derive(Clone, Copy, Default)]
struct Server {
    open_nice: i32,
    own_nice: i32,
    flags: u32,
    nice_limit: Option<u64>,
}

/// Sets `RLIMIT_NICE` to `limit` and becomes uid 1000, losing every capability.
fn limit_nice(limit: u64) -> Outcome {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: Plain syscalls on the calling process, with a valid `rlimit`.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_NICE, &rlimit) };
    ensure!(ret == 0, "setrlimit: {}", std::io::Error::last_os_error());
    // SAFETY: As above.
    let ret = unsafe { libc::setresuid(1000, 1000, 1000) };
    ensure!(ret == 0, "setresuid: {}", std::io::Error::last_os_error());
    Ok(())
}

/// A context manager set up as `server` says. It serves `calls` calls, answering each with
/// its nice while serving it and its nice after replying to the call before (0 for the
/// first).
fn nice_reporting_manager(server: Server, calls: usize) -> Outcome<Child> {
    spawn_ready(|ready| {
        set_nice(server.open_nice)?;
        let m = Peer::open()?;
        become_manager_ext(&m.binder, 0, 0, server.flags)?;
        set_nice(server.own_nice)?;
        if let Some(limit) = server.nice_limit {
            limit_nice(limit)?;
        }
        m.send(Commands::new().enter_looper(), "enter looper")?;
        ready();
        let mut after_reply: i32 = 0;
        for _ in 0..calls {
            let (call, _) = m.next_call()?;
            let during = nice()?;
            let mut answer = during.to_ne_bytes().to_vec();
            answer.extend_from_slice(&after_reply.to_ne_bytes());
            m.reply(&call, &Payload::new().bytes(&answer))?;
            after_reply = nice()?;
            m.free(&call)?;
        }
        Ok(())
    })
}

/// Reads what the manager reported in `reply`.
fn seen(client: &Peer, reply: &Txn) -> Outcome<(i32, i32)> {
    let bytes = client
        .mapping
        .bytes_at(reply.buffer, 8)
        .ok_or("reply outside the mapping")?;
    let word =
        |at: usize| i32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((word(0), word(4)))
}

/// Calls the manager twice from a thread at nice `caller_nice`: returns what it saw for the
/// first call (its nice after replying comes with the second).
fn call_twice(caller_nice: i32) -> Outcome<Seen> {
    set_nice(caller_nice)?;
    let client = Peer::open()?;
    let first = client.call_for_reply(0, 1, &Payload::new())?;
    let (during, _) = seen(&client, &first)?;
    client.free(&first)?;
    let second = client.call_for_reply(0, 2, &Payload::new())?;
    let (_, after_reply) = seen(&client, &second)?;
    client.free(&second)?;
    Ok(Seen {
        during,
        after_reply,
    })
}

/// Runs two calls from a caller at `caller_nice` to a manager set up as `server` says;
/// checks the serving thread's nice while serving (`during`) and after its reply
/// (`after_reply`).
fn expect_served_at(server: Server, caller_nice: i32, during: i32, after_reply: i32) -> Outcome {
    let Server {
        open_nice,
        own_nice,
        flags,
        ..
    } = server;
    let manager = nice_reporting_manager(server, 2)?;
    let seen = call_twice(caller_nice)?;
    manager.join()?;
    ensure!(
        seen.during == during,
        "the serving thread ran at nice {}, not {during} (caller at {caller_nice}, node \
         minimum {flags}, thread at {own_nice}, process opened at {open_nice})",
        seen.during
    );
    ensure!(
        seen.after_reply == after_reply,
        "after its reply the serving thread was at nice {}, not {after_reply}",
        seen.after_reply
    );
    Ok(())
}

/// A caller at nice -5 calls a node with minimum 0, served by a thread at nice 0: the thread
/// serves at -5, and is back at 0 once it replied.
fn call_runs_at_caller_nice(_: &Env) -> Outcome {
    expect_served_at(Server::default(), -5, -5, 0)
}

/// A caller at nice 10 calls a node with minimum 3: the serving thread, at 0 before, serves
/// at the minimum, 3 (worse than its own: C applies the minimum to every call the caller does
/// not beat).
fn call_runs_at_node_minimum(_: &Env) -> Outcome {
    let server = Server {
        flags: 3,
        ..Server::default()
    };
    expect_served_at(server, 10, 3, 0)
}

/// One-way transactions from a caller at nice -10 to a node with minimum 5: a reader opened at
/// nice 10 is lifted to 5, the caller's nice plays no part; a reader opened at nice 2, better
/// than the minimum, stays at 2.
fn oneway_lifts_to_minimum(_: &Env) -> Outcome {
    for (open_nice, expected) in [(10, 5), (2, 2)] {
        let manager: Child = spawn_ready(|ready| {
            set_nice(open_nice)?;
            let m = Peer::open()?;
            become_manager_ext(&m.binder, 0, 0, 5)?;
            m.send(Commands::new().enter_looper(), "enter looper")?;
            ready();
            let (call, _) = m.next_call()?;
            let during = nice()?;
            m.free(&call)?;
            ensure!(
                during == expected,
                "opened at nice {open_nice}, the reader of a one-way transaction to a node \
                 with minimum 5 ran at {during}, not {expected}"
            );
            Ok(())
        })?;
        set_nice(-10)?;
        let client = Peer::open()?;
        client.send(
            Commands::new().transaction(false, 0, 1, uapi::TF_ONE_WAY, b"one way"),
            "one-way transaction",
        )?;
        manager.join()?;
    }
    Ok(())
}

/// A manager process opened at nice 4 whose thread then sets itself to 12: waiting for the
/// process's work puts it back to 4, so after replying to a call (from a caller at 15, to a
/// node whose minimum, 0x7f, no nice reaches: it serves at 15) it returns to 4, not 12.
fn waiting_restores_open_nice(_: &Env) -> Outcome {
    let server = Server {
        open_nice: 4,
        own_nice: 12,
        flags: 0x7f,
        nice_limit: None,
    };
    expect_served_at(server, 15, 15, 4)
}

/// A serving thread at nice 10 without `CAP_SYS_NICE` and with `RLIMIT_NICE` 15 (nice 5 at
/// best) serves a caller at nice -5: it may not have -5, so it gets the best its limit allows,
/// 5, as C's `binder_set_nice` does; its reply restores 10, which it may have.
fn nice_limited_by_rlimit(_: &Env) -> Outcome {
    let server = Server {
        open_nice: 10,
        own_nice: 10,
        flags: 0,
        nice_limit: Some(15),
    };
    expect_served_at(server, -5, 5, 10)
}
