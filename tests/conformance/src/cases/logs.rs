//! The binder log files in debugfs (`/sys/kernel/debug/binder/`): `state`, `stats`,
//! `transactions`, the transaction logs, the hashed variants and `proc/<pid>`.
//!
//! Readers of these files (dumpsys, bugreports, their parsers) expect the C driver's lines.
//! For the same scripted traffic (a manager, a service with a node, a client with handles, a
//! blocked call, one-way transactions waiting, a death request and a failed call), every file
//! must have C's sections and line shapes on both drivers. Numbers that differ from run to run
//! (debug ids, addresses, times) are only checked for their shape.

use std::{fs, thread};

use binder_client::{uapi, Binder, Commands, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{eventually, notice, park, spawn_ready, Case, Child, Env, Outcome, Step, BINDER},
};

use super::{
    context_mgr::become_manager_ext,
    peer::{spawn_manager, Peer},
};

pub const CASES: &[Case] = &[
    Case::new("logs_debugfs_files_have_c_formats", files_have_c_formats),
    Case::new(
        "logs_failed_call_in_transaction_logs",
        failed_call_in_transaction_logs,
    ),
    Case::new(
        "logs_reply_to_a_caller_that_left_in_transaction_logs",
        reply_to_caller_that_left_in_transaction_logs,
    ),
    Case::new(
        "logs_call_refused_for_the_callers_stack_names_no_receiver",
        call_refused_for_stack_names_no_receiver,
    ),
    Case::new(
        "logs_proc_file_goes_when_the_device_is_closed",
        proc_file_goes_when_closed,
    ),
    Case::new(
        "logs_state_lists_a_dead_node_until_its_last_handle_goes",
        state_lists_dead_node_until_last_handle_goes,
    ),
    Case::new(
        "logs_transaction_logs_read_while_threads_fail_calls",
        transaction_logs_read_while_threads_fail_calls,
    ),
];

/// The driver's debugfs directory.
const DEBUGFS: &str = "/sys/kernel/debug/binder";

/// The code of the service's call to the manager that publishes its node.
const REGISTER: u32 = 0x10;
/// The code of the client's call to the manager that gets a handle to the service.
const LOOKUP: u32 = 0x11;
/// The code of the client's call that the service keeps unanswered.
const BLOCKED: u32 = 0x42;
/// The codes of the client's one-way transactions to the service, which it never reads.
const ONEWAY_QUEUED: u32 = 0x51;
const ONEWAY_WAITING: u32 = 0x52;
/// A handle the client does not have.
const BAD_HANDLE: u32 = 77;
/// `BR_FAILED_REPLY` as the logs print it (a C `int`).
const FAILED_REPLY: i64 = uapi::BR_FAILED_REPLY as i32 as i64;
/// `BR_DEAD_REPLY` as the logs print it.
const DEAD_REPLY: i64 = uapi::BR_DEAD_REPLY as i32 as i64;

/// The service's node.
const SERVICE_PTR: u64 = 0x5000;
const SERVICE_COOKIE: u64 = 0x6000;

/// Whether `line` has the shape of `pattern`: its text, where `#` stands for a decimal number
/// (maybe negative), `%` for hex digits, `@` for a word (no spaces), and a final `*` for
/// anything at all.
fn shaped(line: &str, pattern: &str) -> bool {
    fn go(line: &[u8], pattern: &[u8]) -> bool {
        let Some((&p, pattern_rest)) = pattern.split_first() else {
            return line.is_empty();
        };
        // A number or word of any length the rest of the pattern accepts after it.
        let run = |ok: &dyn Fn(u8) -> bool, from: usize| {
            let longest = line[from..].iter().take_while(|&&c| ok(c)).count();
            (1..=longest)
                .rev()
                .any(|len| go(&line[from + len..], pattern_rest))
        };
        match p {
            b'*' if pattern_rest.is_empty() => true,
            b'#' => {
                let from = usize::from(line.first() == Some(&b'-'));
                run(&|c: u8| c.is_ascii_digit(), from)
            }
            b'%' => run(&|c: u8| c.is_ascii_hexdigit(), 0),
            b'@' => run(&|c: u8| c != b' ', 0),
            _ => line.first() == Some(&p) && go(&line[1..], pattern_rest),
        }
    }
    go(line.as_bytes(), pattern.as_bytes())
}

/// The shapes of a transaction line after its prefix; what follows `elapsed #ms` depends on
/// whose section it is in (checked where that matters).
const TRANSACTION: &str = " #: @ from #:# to #:# code % flags % pri # a# r# elapsed #ms*";

/// The lines `state`, `transactions` and `proc/<pid>` may have after their header: those of
/// a process's section, and the line that opens `state`'s dead nodes.
fn process_line_shapes() -> Vec<String> {
    let mut shapes: Vec<String> = [
        // Heads the nodes of released processes that others still refer to; each node line
        // has a shape below.
        "dead nodes:",
        "proc #",
        "context @",
        "  thread #: l % need_return # tr #",
        "  node #: u@ c@ hs # hw # ls # lw # is # iw # tr #",
        "  node #: u@ c@ hs # hw # ls # lw # is # iw # tr # proc*",
        "  ref #: desc # node # s # w # d @",
        "  ref #: desc # dead node # s # w # d @",
        "  buffer #: % size #:#:# @",
        "  has delivered dead binder",
        "  has delivered freeze binder",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for prefix in ["    outgoing transaction", "    incoming transaction"] {
        shapes.push(format!("{prefix}{TRANSACTION}"));
    }
    for prefix in [
        "    pending transaction",
        "  pending transaction",
        "    pending async transaction",
    ] {
        shapes.push(format!("{prefix}{TRANSACTION}"));
    }
    for indent in ["  ", "    "] {
        for work in [
            "transaction complete",
            "transaction error: #",
            "node work #: u@ c@",
            "has dead binder",
            "has cleared dead binder",
            "has cleared death notification",
            "has frozen binder",
            "has cleared freeze notification",
        ] {
            shapes.push(format!("{indent}{work}"));
        }
    }
    shapes
}

/// The shapes of a line of the transaction logs, one per kind of transaction; a line read
/// while its transaction is going ends in ` (incomplete)`.
fn log_line_shapes() -> Vec<String> {
    ["call ", "async", "reply"]
        .iter()
        .map(|kind| {
            format!("#: {kind} from #:# to #:# context @ node # handle # size #:# ret #/# l=#*")
        })
        .collect()
}

/// Checks that every line of the transaction log `name`, read as `log`, has one of `shapes`.
fn expect_log_shapes(name: &str, log: &str, shapes: &[String]) -> Outcome {
    for line in log.lines() {
        ensure!(
            shapes.iter().any(|shape| shaped(line, shape)),
            "{name}: the line {line:?} has no shape of the C driver's:\n{log}"
        );
    }
    Ok(())
}

/// Reads a file of the driver's debugfs directory.
fn read_log(name: &str) -> Outcome<String> {
    fs::read_to_string(format!("{DEBUGFS}/{name}")).step(&format!("read {DEBUGFS}/{name}"))
}

/// Checks that `text` starts with `header` and that every other line has one of `shapes`.
fn expect_shapes(name: &str, text: &str, header: &str, shapes: &[String]) -> Outcome {
    let mut lines = text.lines();
    ensure!(
        lines.next() == Some(header),
        "{name} does not start with {header:?}:\n{text}"
    );
    for line in lines {
        ensure!(
            shapes.iter().any(|shape| shaped(line, shape)),
            "{name}: the line {line:?} has no shape of the C driver's:\n{text}"
        );
    }
    Ok(())
}

/// The section of process `pid` in `text` (from its `proc` line to the next one), or an
/// error that shows the file.
fn section<'a>(name: &str, text: &'a str, pid: i32) -> Outcome<Vec<&'a str>> {
    let head = format!("proc {pid}");
    let mut lines = text.lines().skip_while(|line| *line != head);
    let first = lines
        .next()
        .ok_or_else(|| format!("{name} has no section for process {pid}:\n{text}"))?;
    let mut found = vec![first];
    found.extend(lines.take_while(|line| !line.starts_with("proc ")));
    ensure!(
        found.get(1) == Some(&"context binder"),
        "{name}: the section of process {pid} does not name its context:\n{text}"
    );
    Ok(found)
}

/// The one line of `lines` that starts with `prefix` and contains every one of `parts`.
fn line_with<'a>(lines: &[&'a str], prefix: &str, parts: &[&str]) -> Option<&'a str> {
    lines
        .iter()
        .find(|line| line.starts_with(prefix) && parts.iter().all(|part| line.contains(part)))
        .copied()
}

/// The three processes of the scripted traffic.
struct Traffic {
    manager: Child,
    service: Child,
    client: Child,
}

impl Traffic {
    /// Starts the manager, the service (which publishes a node through the manager and then
    /// takes the client's call without answering it) and the client (which looks the service
    /// up, takes a strong reference, asks for death notification, makes a call that fails,
    /// makes the blocked call on a second thread, and sends two one-way transactions that
    /// stay queued). Returns once all of that happened.
    fn start() -> Outcome<Self> {
        let manager = spawn_manager(|m| {
            let (register, _) = m.next_call()?;
            let objects = m.objects(&register)?;
            let [service] = objects[..] else {
                return Err(format!("the service sent objects {objects:?}"));
            };
            // The manager keeps a strong reference, as a service manager does, or the
            // handle would go with the buffer.
            m.send(
                Commands::new().acquire(service.handle_value()),
                "acquire the service",
            )?;
            m.reply_and_free(&register, &Payload::new())?;
            let (lookup, _) = m.next_call()?;
            ensure!(lookup.code == LOOKUP, "the manager got {lookup:?}");
            m.reply_and_free(
                &lookup,
                &Payload::new().object(FlatObject::handle(service.handle_value())),
            )?;
            park()
        })?;
        let (has_call, await_has_call) = notice()?;
        let service = spawn_ready(move |ready| {
            let s = Peer::open()?;
            let register = Payload::new().object(FlatObject::binder(SERVICE_PTR, SERVICE_COOKIE));
            let reply = s.call_for_reply(0, REGISTER, &register)?;
            s.free(&reply)?;
            ready();
            let (call, _) = s.next_call()?;
            ensure!(call.code == BLOCKED, "the service got {call:?}");
            has_call.notify()?;
            park()
        })?;
        let client = spawn_ready(move |ready| {
            let c = Peer::open()?;
            let reply = c.call_for_reply(0, LOOKUP, &Payload::new())?;
            let objects = c.objects(&reply)?;
            let [service] = objects[..] else {
                return Err(format!("the lookup brought objects {objects:?}"));
            };
            let handle = service.handle_value();
            c.send(
                Commands::new()
                    .acquire(handle)
                    .request_death_notification(handle, 0xdead)
                    .free_buffer(reply.buffer),
                "acquire, ask for death notification, free",
            )?;
            let failed = c.call(BAD_HANDLE, 1, &Payload::new())?;
            ensure!(
                failed.returns.contains(&Return::FailedReply),
                "a call to a bad handle read {:?}",
                failed.returns
            );
            let caller = c.binder.try_clone().step("dup the binder fd")?;
            thread::spawn(move || blocked_call(&caller, handle));
            await_has_call.wait()?;
            for code in [ONEWAY_QUEUED, ONEWAY_WAITING] {
                c.send_call_flags(handle, code, uapi::TF_ONE_WAY, &Payload::new())?;
                let returns = c.read()?;
                ensure!(
                    returns.contains(&Return::TransactionComplete),
                    "a one-way transaction read {returns:?}"
                );
            }
            ready();
            park()
        })?;
        Ok(Self {
            manager,
            service,
            client,
        })
    }

    fn end(self) -> Outcome {
        self.client.kill()?;
        self.service.kill()?;
        self.manager.kill()
    }
}

/// Calls `handle` and waits for an answer that never comes (the process is killed first).
fn blocked_call(binder: &Binder, handle: u32) {
    let sent = binder.send(&Commands::new().payload(false, handle, BLOCKED, 0, &Payload::new()));
    if sent.is_ok() {
        while let Ok(returns) = binder.read() {
            if returns.iter().any(|r| {
                matches!(
                    r,
                    Return::Reply(_) | Return::FailedReply | Return::DeadReply
                )
            }) {
                break;
            }
        }
    }
}

fn files_have_c_formats(_: &Env) -> Outcome {
    let traffic = Traffic::start()?;
    let result = check_files(&traffic);
    traffic.end()?;
    result
}

/// Checks every file for the running [`Traffic`].
fn check_files(traffic: &Traffic) -> Outcome {
    let (m, s, c) = (
        traffic.manager.pid(),
        traffic.service.pid(),
        traffic.client.pid(),
    );
    let shapes = process_line_shapes();

    for name in ["state", "state_hashed"] {
        let text = read_log(name)?;
        expect_shapes(name, &text, "binder state:", &shapes)?;
        check_sections(name, &text, m, s, c, true)?;
    }
    for name in ["transactions", "transactions_hashed"] {
        let text = read_log(name)?;
        expect_shapes(name, &text, "binder transactions:", &shapes)?;
        check_sections(name, &text, m, s, c, false)?;
    }
    for pid in [m, s, c] {
        let name = format!("proc/{pid}");
        let text = read_log(&name)?;
        expect_shapes(&name, &text, "binder proc state:", &shapes)?;
        let own = section(&name, &text, pid)?;
        ensure!(
            text.lines().filter(|l| l.starts_with("proc ")).count() == 1,
            "{name} shows other processes:\n{text}"
        );
        if pid == s {
            ensure!(
                line_with(&own, "    incoming transaction", &[&format!("from {c}:")]).is_some(),
                "{name} does not show the blocked call:\n{text}"
            );
        }
    }
    check_stats(&read_log("stats")?, m, s, c)?;

    let log_shapes = log_line_shapes();
    let log = read_log("transaction_log")?;
    expect_log_shapes("transaction_log", &log, &log_shapes)?;
    let from_client = format!("from {c}:");
    let to_service = format!("to {s}:");
    let log_lines: Vec<&str> = log.lines().collect();
    ensure!(
        log_lines
            .iter()
            .filter(|l| l.contains(": async ")
                && l.contains(&from_client)
                && l.contains(&to_service))
            .count()
            == 2,
        "transaction_log lacks the two one-way transactions from {c} to {s}:\n{log}"
    );
    ensure!(
        log_lines
            .iter()
            .any(|l| l.contains(": call  ") && l.contains(&from_client) && l.contains(&to_service)),
        "transaction_log lacks the call from {c} to {s}:\n{log}"
    );
    let failed = read_log("failed_transaction_log")?;
    expect_log_shapes("failed_transaction_log", &failed, &log_shapes)?;
    ensure!(
        failed
            .lines()
            .any(|l| l.contains(&from_client) && l.contains(&format!("handle {BAD_HANDLE} "))),
        "failed_transaction_log lacks the failed call of {c}:\n{failed}"
    );
    Ok(())
}

/// Checks the sections of the three processes in `state` (`all`) or `transactions`.
fn check_sections(name: &str, text: &str, m: i32, s: i32, c: i32, all: bool) -> Outcome {
    let service = section(name, text, s)?;
    let client = section(name, text, c)?;
    let blocked = format!("code {BLOCKED:x} ");
    let incoming = line_with(
        &service,
        "    incoming transaction",
        &[&format!("from {c}:"), &format!("to {s}:"), &blocked],
    )
    .ok_or_else(|| format!("{name}: the service does not show the blocked call:\n{text}"))?;
    // The service is the receiver: its line tells the target node and the buffer.
    ensure!(
        shaped(
            incoming,
            &format!("    incoming transaction{TRANSACTION}")
                .replace("ms*", "ms node # size #:# offset %")
        ),
        "{name}: the incoming call has no buffer details: {incoming:?}"
    );
    let outgoing = line_with(
        &client,
        "    outgoing transaction",
        &[&format!("from {c}:"), &format!("to {s}:"), &blocked],
    )
    .ok_or_else(|| format!("{name}: the client does not show the blocked call:\n{text}"))?;
    ensure!(
        outgoing.ends_with("ms"),
        "{name}: the caller's line shows buffer details: {outgoing:?}"
    );
    ensure!(
        line_with(
            &service,
            "  pending transaction",
            &[&format!("code {ONEWAY_QUEUED:x} ")]
        )
        .is_some(),
        "{name}: the first one-way transaction is not pending for the service:\n{text}"
    );
    ensure!(
        line_with(
            &service,
            "    pending async transaction",
            &[&format!("code {ONEWAY_WAITING:x} ")]
        )
        .is_some(),
        "{name}: the second one-way transaction does not wait on the node:\n{text}"
    );
    ensure!(
        service
            .iter()
            .filter(|l| l.starts_with("  buffer "))
            .count()
            >= 3,
        "{name}: the service's buffers are not all shown:\n{text}"
    );
    let node = line_with(&service, "  node ", &[" proc "])
        .ok_or_else(|| format!("{name}: the service's node names no holder:\n{text}"))?;
    if all {
        let holders: Vec<&str> = node
            .split(" proc ")
            .nth(1)
            .unwrap_or_default()
            .split(' ')
            .collect();
        let mut holders: Vec<i32> = holders.iter().filter_map(|p| p.parse().ok()).collect();
        holders.sort_unstable();
        let mut expected = vec![m, c];
        expected.sort_unstable();
        ensure!(
            holders == expected,
            "{name}: the service's node names holders {holders:?}, expected {expected:?}: {node:?}"
        );
        section(name, text, m)?;
        let refs: Vec<&str> = client
            .iter()
            .copied()
            .filter(|l| l.starts_with("  ref "))
            .collect();
        // Calls to handle 0 make no handle; the lookup made handle 1.
        ensure!(
            refs.len() == 1 && refs[0].contains(": desc 1 node "),
            "{name}: the client's handle 1 is not shown: {refs:?}"
        );
    } else {
        ensure!(
            !client.iter().any(|l| l.starts_with("  ref ")),
            "{name} shows handles:\n{text}"
        );
    }
    Ok(())
}

/// Checks `stats`: the driver's counters, then one section per process.
fn check_stats(text: &str, m: i32, s: i32, c: i32) -> Outcome {
    let mut lines = text.lines();
    ensure!(
        lines.next() == Some("binder stats:"),
        "stats has no header:\n{text}"
    );
    let global: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("proc "))
        .collect();
    for line in &global {
        ensure!(
            shaped(line, "@: #") || shaped(line, "@: active # total #"),
            "stats: the line {line:?} has no shape of the C driver's:\n{text}"
        );
    }
    for counter in [
        "BC_TRANSACTION: ",
        "BC_REPLY: ",
        "BC_FREE_BUFFER: ",
        "BC_ACQUIRE: ",
        "BC_REQUEST_DEATH_NOTIFICATION: ",
        "BR_TRANSACTION: ",
        "BR_REPLY: ",
        "BR_TRANSACTION_COMPLETE: ",
        "BR_FAILED_REPLY: ",
        "proc: active ",
        "thread: active ",
        "node: active ",
        "ref: active ",
        "death: active ",
        "transaction: active ",
        "transaction_complete: active ",
    ] {
        ensure!(
            global.iter().any(|l| l.starts_with(counter)),
            "stats lacks {counter:?}:\n{text}"
        );
    }
    let fixed = [
        "proc #",
        "context @",
        "  threads: #",
        "  requested threads: #+#/#",
        "  ready threads #",
        "  free async space #",
        "  nodes: #",
        "  refs: # s # w #",
        "  buffers: #",
        "  pages: #:#:#",
        "  pages high watermark: #",
        "  pending transactions: #",
    ];
    for pid in [m, s, c] {
        let own = section("stats", text, pid)?;
        ensure!(
            own.len() >= fixed.len(),
            "stats: the section of {pid} is short:\n{text}"
        );
        for (line, shape) in own.iter().zip(fixed) {
            ensure!(
                shaped(line, shape),
                "stats: {line:?} is not {shape:?} in the section of {pid}:\n{text}"
            );
        }
        for line in &own[fixed.len()..] {
            ensure!(
                shaped(line, "  B@: #"),
                "stats: the counter {line:?} of {pid} has no shape of the C driver's:\n{text}"
            );
        }
        if pid == s {
            ensure!(
                own.contains(&"  pending transactions: 1") && own.contains(&"  nodes: 1"),
                "stats: the service's counts are wrong:\n{text}"
            );
        }
        if pid == c {
            ensure!(
                own.iter().any(|l| l.starts_with("  refs: 1 ")),
                "stats: the client does not count its handle:\n{text}"
            );
        }
    }
    Ok(())
}

/// A call to a handle the caller does not have is in both logs, as C records it: a call from
/// the caller's pid and thread, to no process, with the handle, the sizes and the error.
fn failed_call_in_transaction_logs(_: &Env) -> Outcome {
    let peer = Peer::open()?;
    let exchange = peer.call(BAD_HANDLE, 3, &Payload::new().bytes(&[0; 8]))?;
    ensure!(
        exchange.returns.contains(&Return::FailedReply),
        "the call read {:?}",
        exchange.returns
    );
    let id = peer.binder.extended_error().step("extended error")?.id;
    let pid = std::process::id();
    let tid = super::concurrency::gettid();
    let expected = format!(
        "{id}: call  from {pid}:{tid} to 0:0 context binder node 0 handle {BAD_HANDLE} size 8:0 \
         ret {FAILED_REPLY}/-22 l="
    );
    for name in ["failed_transaction_log", "transaction_log"] {
        let log = read_log(name)?;
        let line = log
            .lines()
            .find(|l| l.starts_with(&expected))
            .ok_or_else(|| format!("{name} lacks {expected:?}:\n{log}"))?;
        ensure!(
            shaped(&line[expected.len()..], "#"),
            "{name}: the entry has no line number, or is incomplete: {line:?}"
        );
    }
    Ok(())
}

/// A reply to a caller that left the driver (`BINDER_THREAD_EXIT`) before it was answered is
/// in both logs as C records it: a reply to no process (`to 0:0`, the caller was not found),
/// failed with `BR_DEAD_REPLY` and no errno. The replier reads only its
/// `BR_TRANSACTION_COMPLETE`, and its extended error names the reply with no error.
fn reply_to_caller_that_left_in_transaction_logs(_: &Env) -> Outcome {
    let (left, await_left) = notice()?;
    let manager = spawn_manager(move |m| {
        await_left.wait()?;
        let (call, _) = m.next_call()?;
        m.send(
            Commands::new().transaction(true, 0, call.code, 0, &[0; 8]),
            "reply",
        )?;
        let returns = m.pending()?;
        ensure!(
            returns.contains(&Return::TransactionComplete)
                && !returns
                    .iter()
                    .any(|r| matches!(r, Return::FailedReply | Return::DeadReply)),
            "the reply to a caller that left read {returns:?}"
        );
        let error = m.binder.extended_error().step("extended error")?;
        ensure!(
            error.id != 0 && error.command == uapi::BR_OK && error.param == 0,
            "the replier's extended error is {error:?}, expected the reply's id and no error"
        );
        let (pid, tid) = (std::process::id(), super::concurrency::gettid());
        let expected = format!(
            "{}: reply from {pid}:{tid} to 0:0 context binder node 0 handle 0 size 8:0 \
             ret {DEAD_REPLY}/0 l=",
            error.id
        );
        for name in ["failed_transaction_log", "transaction_log"] {
            let log = read_log(name)?;
            ensure!(
                log.lines().any(|l| l.starts_with(&expected)),
                "{name} lacks {expected:?}:\n{log}"
            );
        }
        m.free(&call)
    })?;
    let client = Peer::open()?;
    client.send_call(0, 1, &Payload::new().bytes(b"bye"))?;
    client.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
    left.notify()?;
    manager.join()
}

/// A call refused for the caller's own state (here a second call while its first awaits a
/// reply: `EPROTO`) is logged as C logs it: C names the target node, found by then, but no
/// receiving process or thread, which it records only once these checks have passed.
fn call_refused_for_stack_names_no_receiver(_: &Env) -> Outcome {
    let (refused, await_refused) = notice()?;
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        await_refused.wait()?;
        m.reply_and_free(&call, &Payload::new())
    })?;
    let client = Peer::open()?;
    let ours = (|| -> Outcome {
        client.send_call(0, 1, &Payload::new().bytes(&[0; 8]))?;
        client.send_call(0, 2, &Payload::new().bytes(&[0; 8]))?;
        let id = client.binder.extended_error().step("extended error")?.id;
        refused.notify()?;
        let exchange = client.await_reply()?;
        ensure!(
            exchange.returns.contains(&Return::FailedReply),
            "the second call read {:?}",
            exchange.returns
        );
        let pid = std::process::id();
        let tid = super::concurrency::gettid();
        let expected = format!(
            "{id}: call  from {pid}:{tid} to 0:0 context binder node # handle 0 size 8:0 \
             ret {FAILED_REPLY}/-71 l=#"
        );
        for name in ["failed_transaction_log", "transaction_log"] {
            let log = read_log(name)?;
            ensure!(
                log.lines()
                    .any(|l| l.starts_with(&format!("{id}: ")) && shaped(l, &expected)),
                "{name} lacks {expected:?}:\n{log}"
            );
        }
        client.await_reply().map(|_| ())
    })();
    manager.join_after(ours)
}

/// `proc/<pid>` appears when a process opens the device and goes when it closes it.
fn proc_file_goes_when_closed(_: &Env) -> Outcome {
    let path = format!("{DEBUGFS}/proc/{}", std::process::id());
    let binder = Binder::open(BINDER).step("open")?;
    let text = fs::read_to_string(&path).step(&format!("read {path} while open"))?;
    ensure!(
        text.starts_with(&format!(
            "binder proc state:\nproc {}\ncontext binder\n",
            std::process::id()
        )),
        "{path} reads:\n{text}"
    );
    drop(binder);
    eventually(&format!("{path} removed"), || {
        Ok((!std::path::Path::new(&path).exists()).then_some(()))
    })
}

/// A node whose owner died while another process still holds a handle to it heads `state`,
/// under `dead nodes:` and before every process, as C prints it: its pointer and cookie, no
/// local references any more, the holder's strong handle and pid. The holder's handle line
/// names it as a dead node, and the node leaves the file with that last handle.
fn state_lists_dead_node_until_last_handle_goes(_: &Env) -> Outcome {
    const PTR: u64 = 0xdead_5000;
    const COOKIE: u64 = 0xdead_6000;
    const DEATH: u64 = 0xd1;
    let manager = spawn_ready(|ready| {
        let binder = Binder::open(BINDER).step("open in manager")?;
        become_manager_ext(&binder, PTR, COOKIE, 0)?;
        ready();
        park()
    })?;
    let holder = Binder::open(BINDER).step("open")?;
    holder
        .send(
            &Commands::new()
                .enter_looper()
                .acquire(0)
                .request_death_notification(0, DEATH),
        )
        .step("acquire the manager's node, ask for its death")?;
    manager.kill()?;
    let returns = holder.read().step("read after the death")?;
    ensure!(
        returns.contains(&Return::DeadBinder(DEATH)),
        "the holder read {returns:?} after the manager died"
    );

    let text = read_log("state")?;
    let pid = std::process::id();
    let node_shape = format!(
        "  node #: u{PTR:016x} c{COOKIE:016x} hs # hw # ls 0 lw 0 is 1 iw 1 tr # proc {pid}"
    );
    let head: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("proc "))
        .collect();
    let node_line = head
        .iter()
        .skip_while(|l| **l != "dead nodes:")
        .find(|l| shaped(l, &node_shape))
        .ok_or_else(|| format!("state lists no dead node {node_shape:?}:\n{text}"))?;
    let id = node_line
        .trim_start_matches("  node ")
        .split(':')
        .next()
        .unwrap_or_default();
    let own = section("state", &text, pid as i32)?;
    ensure!(
        line_with(&own, "  ref ", &[&format!(" desc 0 dead node {id} s 1 ")]).is_some(),
        "state: the holder's handle does not name dead node {id}:\n{text}"
    );

    holder
        .send(
            &Commands::new()
                .dead_binder_done(DEATH)
                .clear_death_notification(0, DEATH)
                .release(0),
        )
        .step("done, clear, release the handle")?;
    // Waited for: C's release work holds a temporary reference on the node until after it
    // queued the death, and the node leaves the list only when that goes too.
    let named = format!("node {id}:");
    let mut text = String::new();
    let gone = eventually(&format!("node {id} gone from state"), || {
        text = read_log("state")?;
        Ok((!text.lines().any(|l| l.contains(&named))).then_some(()))
    });
    gone.map_err(|err| format!("{err}: still shown after its last handle went:\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::shaped;

    #[test]
    fn shapes() {
        assert!(shaped("proc 12", "proc #"));
        assert!(!shaped("proc x", "proc #"));
        assert!(shaped(
            "  ref 5: desc 1 node 3 s 1 w 0 d 0000000000000000",
            "  ref #: desc # node # s # w # d @"
        ));
        assert!(shaped(
            "1: call  from 1:2 to 0:0 ret 29201/-22 l=3",
            "#: call  from #:# to #:# ret #/# l=#*"
        ));
        assert!(shaped("a b", "a*"));
        assert!(shaped("BC_TRANSACTION: 5", "@: #"));
        assert!(shaped("  BR_REPLY: 5", "  B@: #"));
        assert!(!shaped(
            "  thread 3: l 12 need_return 0 tr 0 x",
            "  thread #: l % need_return # tr #"
        ));
    }
}

/// Threads of one process, each with its own file, send calls that fail (to a handle they do
/// not have) while both transaction logs are read over and over: every line keeps the C
/// driver's shape whatever it races with, and once the threads are done the last entries of
/// both logs are theirs, each complete.
fn transaction_logs_read_while_threads_fail_calls(_: &Env) -> Outcome {
    const THREADS: usize = 4;
    const CALLS: usize = 200;
    // C clears a slot it takes before it writes the entry, so a line read in between has no
    // context name (and zeros), and is incomplete.
    let shapes: Vec<String> = log_line_shapes()
        .into_iter()
        .chain(["call ", "async", "reply"].iter().map(|kind| {
            format!(
                "#: {kind} from #:# to #:# context  node # handle # size #:# ret #/# l=# \
                 (incomplete)"
            )
        }))
        .collect();
    thread::scope(|scope| {
        let callers: Vec<_> = (0..THREADS)
            .map(|_| scope.spawn(|| fail_calls(CALLS)))
            .collect();
        let mut read = Ok(());
        while read.is_ok() && !callers.iter().all(|caller| caller.is_finished()) {
            read = ["transaction_log", "failed_transaction_log"]
                .into_iter()
                .try_for_each(|name| expect_log_shapes(name, &read_log(name)?, &shapes));
        }
        for caller in callers {
            caller.join().map_err(|_| "a calling thread panicked")??;
        }
        read
    })?;
    let ours = format!("from {}:", std::process::id());
    let failed_call = format!(" handle {BAD_HANDLE} size 8:0 ret {FAILED_REPLY}/-22 l=");
    for name in ["transaction_log", "failed_transaction_log"] {
        let log = read_log(name)?;
        ensure!(
            log.lines().count() == 32,
            "{name} does not keep the last 32 entries:\n{log}"
        );
        for line in log.lines() {
            let complete = line
                .split_once(&failed_call)
                .is_some_and(|(_, number)| shaped(number, "#"));
            ensure!(
                line.contains(&ours) && complete,
                "{name}: {line:?} is not one of the threads' failed calls, complete:\n{log}"
            );
        }
    }
    Ok(())
}

/// Opens the device and makes `calls` calls to a handle it does not have, each of which must
/// fail with `BR_FAILED_REPLY`.
fn fail_calls(calls: usize) -> Outcome {
    let peer = Peer::open()?;
    for _ in 0..calls {
        let exchange = peer.call(BAD_HANDLE, 3, &Payload::new().bytes(&[0; 8]))?;
        ensure!(
            exchange.returns.contains(&Return::FailedReply),
            "a call read {:?}",
            exchange.returns
        );
    }
    Ok(())
}
