//! What a driver tells about itself besides the uapi: trace events in system `binder`, the
//! generic netlink transaction reports, and the debug messages `debug_mask` lets into the
//! kernel log. Debugging tools (perfetto, systrace, crash reporters) read these by name, so
//! the names, the fields and their values must be the C driver's.

use std::{
    fs::{self, OpenOptions},
    io::{self, Read, Write},
    os::{fd::AsRawFd, unix::fs::PermissionsExt},
    path::Path,
    thread,
    time::Duration,
};

use binder_client::{
    reports::{Report, ReportListener},
    uapi, Binder, BinderObject, Commands, FdObject, FlatObject, Payload, Return,
};

use crate::{
    ensure,
    harness::{spawn_ready, Case, Driver, Env, Outcome, Step, BINDER},
    kmod,
};

use super::{
    concurrency::gettid,
    context_mgr::become_manager,
    files::pipe,
    oneway::{flood, FLOOD_COUNT, SMALL_MAP_SIZE},
    peer::{spawn_fd_manager, spawn_manager, Peer},
};

pub const CASES: &[Case] = &[
    Case::new("trace_events_have_c_names_and_fields", trace_formats),
    Case::new("trace_events_of_one_call", trace_one_call),
    Case::new("netlink_reports_failed_transactions", netlink_reports),
    Case::new("netlink_reports_oneway_spam", netlink_reports_spam),
    Case::new("debug_mask_gates_user_error_messages", debug_mask_messages),
    Case::only(
        Driver::Rust,
        "module_unload_with_tracing_and_report_listener",
        unload_while_observed,
    ),
];

/// Where tracefs is mounted (mounted there by the case if it is not yet).
const TRACEFS: &str = "/sys/kernel/tracing";

/// The events every driver must have, each with its fields (type and name, as the event's
/// `format` file lists them after the common fields).
const EVENTS: &[(&str, &[&str])] = &[
    ("binder_ioctl", &["unsigned int cmd", "unsigned long arg"]),
    ("binder_ioctl_done", &["int ret"]),
    ("binder_write_done", &["int ret"]),
    ("binder_read_done", &["int ret"]),
    (
        "binder_wait_for_work",
        &[
            "bool proc_work",
            "bool transaction_stack",
            "bool thread_todo",
        ],
    ),
    (
        "binder_txn_latency_free",
        &[
            "int debug_id",
            "int from_proc",
            "int from_thread",
            "int to_proc",
            "int to_thread",
            "unsigned int code",
            "unsigned int flags",
        ],
    ),
    (
        "binder_transaction",
        &[
            "int debug_id",
            "int target_node",
            "int to_proc",
            "int to_thread",
            "int reply",
            "unsigned int code",
            "unsigned int flags",
        ],
    ),
    ("binder_transaction_received", &["int debug_id"]),
    (
        "binder_transaction_node_to_ref",
        &[
            "int debug_id",
            "int node_debug_id",
            "binder_uintptr_t node_ptr",
            "int ref_debug_id",
            "uint32_t ref_desc",
        ],
    ),
    (
        "binder_transaction_ref_to_node",
        &[
            "int debug_id",
            "int ref_debug_id",
            "uint32_t ref_desc",
            "int node_debug_id",
            "binder_uintptr_t node_ptr",
        ],
    ),
    (
        "binder_transaction_ref_to_ref",
        &[
            "int debug_id",
            "int node_debug_id",
            "int src_ref_debug_id",
            "uint32_t src_ref_desc",
            "int dest_ref_debug_id",
            "uint32_t dest_ref_desc",
        ],
    ),
    (
        "binder_transaction_fd_send",
        &["int debug_id", "int fd", "size_t offset"],
    ),
    (
        "binder_transaction_fd_recv",
        &["int debug_id", "int fd", "size_t offset"],
    ),
    (
        "binder_transaction_alloc_buf",
        &[
            "int debug_id",
            "size_t data_size",
            "size_t offsets_size",
            "size_t extra_buffers_size",
        ],
    ),
    ("binder_command", &["uint32_t cmd"]),
    ("binder_return", &["uint32_t cmd"]),
];

/// The events directory of system `binder`, mounting tracefs first if needed.
fn binder_events() -> Outcome<&'static Path> {
    let events = Path::new("/sys/kernel/tracing/events/binder");
    if !Path::new(TRACEFS).join("events").exists() {
        // SAFETY: Plain syscall with NUL-terminated strings.
        let mounted = unsafe {
            libc::mount(
                c"tracefs".as_ptr(),
                c"/sys/kernel/tracing".as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if mounted != 0 {
            return Err(format!(
                "mount tracefs on {TRACEFS}: {} (a kernel without tracing?)",
                io::Error::last_os_error()
            ));
        }
    }
    ensure!(
        events.is_dir(),
        "{} does not exist: the driver has no trace events",
        events.display()
    );
    Ok(events)
}

/// The fields of an event's `format` file, without the common ones: "type name" each.
fn event_fields(events: &Path, event: &str) -> Outcome<Vec<String>> {
    let format = fs::read_to_string(events.join(event).join("format"))
        .step(&format!("the format of {event}"))?;
    Ok(format
        .lines()
        .filter_map(|line| {
            let field = line.trim().strip_prefix("field:")?;
            let field = field.split(';').next()?.trim();
            (!field.contains("common_")).then(|| field.to_string())
        })
        .collect())
}

/// Every event has the C driver's fields, with their types, in the C driver's order.
fn trace_formats(_: &Env) -> Outcome {
    let events = binder_events()?;
    for (event, expected) in EVENTS {
        let fields = event_fields(events, event)?;
        ensure!(
            fields == *expected,
            "{event} has the fields {fields:?}, expected {expected:?}"
        );
    }
    Ok(())
}

/// Writes `value` into the tracefs file `file`.
fn tracefs_write(file: &str, value: &str) -> Outcome {
    let path = Path::new(TRACEFS).join(file);
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .step(&format!("write {value:?} to {}", path.display()))
}

/// One line of the `trace` file.
#[derive(Debug)]
struct Event {
    /// The thread that emitted it.
    tid: i32,
    name: String,
    /// Its text, after the event name.
    text: String,
}

impl Event {
    /// The value of `key=value` in the text.
    fn field(&self, key: &str) -> Option<&str> {
        self.text
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    /// The value of `key=` as a number (decimal, or hex with `0x`).
    fn number(&self, key: &str) -> Option<i64> {
        let value = self.field(key)?;
        match value.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => value.parse().ok(),
        }
    }

    fn is(&self, name: &str, tid: i32) -> bool {
        self.name == name && self.tid == tid
    }
}

/// Parses the `trace` file: lines such as
/// `  conformance-123  [000] .....  1.234: binder_ioctl: cmd=0xc0306201 arg=0x...`.
fn parse_trace(text: &str) -> Vec<Event> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (head, rest) = line.split_once(": binder_")?;
            let task = head.split_whitespace().next()?;
            let tid = task.rsplit('-').next()?.parse().ok()?;
            let (name, text) = rest.split_once(':')?;
            Some(Event {
                tid,
                name: format!("binder_{name}"),
                text: text.trim().to_string(),
            })
        })
        .collect()
}

/// Finds the first event after index `from` that `wanted` accepts.
fn find<'a>(
    events: &'a [Event],
    from: usize,
    what: &str,
    wanted: impl Fn(&Event) -> bool,
) -> Outcome<(usize, &'a Event)> {
    events
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, event)| wanted(event))
        .ok_or_else(|| format!("no {what} in the trace (from event {from})"))
}

const CALL_CODE: u32 = 0x7ace;
const NODE_PTR: u64 = 0x5eed_0000;
const NODE_COOKIE: u64 = 0xc00c;

/// One call, client to server and back, with a binder object and an fd in it, traced: each
/// event of the call is there, from the right thread, with the right values, in C's order.
fn trace_one_call(_: &Env) -> Outcome {
    binder_events()?;
    tracefs_write("events/binder/enable", "0")?;
    tracefs_write("trace", "")?;
    tracefs_write("tracing_on", "1")?;
    tracefs_write("events/binder/enable", "1")?;
    let result = traced_call();
    tracefs_write("events/binder/enable", "0")?;
    let (server_pid, fd, fd_recv) = result?;
    let text = fs::read_to_string(Path::new(TRACEFS).join("trace")).step("read trace")?;
    tracefs_write("trace", "")?;
    check_call_events(&parse_trace(&text), server_pid, fd, fd_recv)
}

/// The traced call. Returns the server's pid, the fd the client sent and the one the server
/// got.
fn traced_call() -> Outcome<(i32, i32, i32)> {
    let (read_end, write_end) = pipe()?;
    let server = spawn_fd_manager(|m| {
        let (call, _) = m.next_call()?;
        let objects = m.received(&call).objects().step("objects")?;
        let Some(BinderObject::Fd(fd)) = objects.get(1) else {
            return Err(format!("objects {objects:?}"));
        };
        // Tell the client which fd arrived, in the reply.
        m.reply_and_free(&call, &Payload::new().bytes(&fd.fd.to_ne_bytes()))
    })?;
    let server_pid = server.pid();
    let client = Peer::open()?;
    let payload = Payload::new()
        .bytes(&[7; 8])
        .object(FlatObject::binder(NODE_PTR, NODE_COOKIE))
        .any(FdObject {
            fd: write_end.as_raw_fd() as u32,
            cookie: 0,
        });
    let exchange = client.call_flags(0, CALL_CODE, uapi::TF_ACCEPT_FDS, &payload)?;
    let reply = exchange
        .reply
        .ok_or_else(|| format!("the call failed: {:?}", exchange.returns))?;
    let data = client.received(&reply).data().step("reply data")?;
    let received = i32::from_ne_bytes(data.get(..4).ok_or("short reply")?.try_into().unwrap());
    client.free(&reply)?;
    server.join()?;
    drop(client);
    drop(read_end);
    Ok((server_pid, write_end.as_raw_fd(), received))
}

/// Checks the events of [`traced_call`].
fn check_call_events(events: &[Event], server: i32, fd: i32, fd_recv: i32) -> Outcome {
    // SAFETY: Plain syscall.
    let client = unsafe { libc::getpid() };
    let client_tid = gettid();
    let dump = || {
        events
            .iter()
            .map(|e| format!("{} {} {}", e.tid, e.name, e.text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let check = || -> Outcome {
        // The client's command and its transaction.
        let bc_transaction = i64::from(uapi::BC_TRANSACTION);
        let (at, _) = find(events, 0, "client BC_TRANSACTION", |e| {
            e.is("binder_command", client_tid) && e.number("cmd") == Some(bc_transaction)
        })?;
        let (at, call) = find(events, at, "the call's binder_transaction", |e| {
            e.is("binder_transaction", client_tid) && e.number("reply") == Some(0)
        })?;
        let id = call.number("transaction").ok_or("no transaction id")?;
        ensure!(
            call.number("dest_proc") == Some(server.into())
                && call.number("dest_thread") == Some(0)
                && call.number("code") == Some(CALL_CODE.into())
                && call.number("flags") == Some(uapi::TF_ACCEPT_FDS.into()),
            "the call's event: {call:?}"
        );
        let same = |e: &Event| e.number("transaction") == Some(id);
        let (at, buf) = find(events, at, "binder_transaction_alloc_buf", |e| {
            e.name == "binder_transaction_alloc_buf" && same(e)
        })?;
        ensure!(
            buf.number("data_size") == Some(8 + 24 + 24)
                && buf.number("offsets_size") == Some(16)
                && buf.number("extra_buffers_size") == Some(0),
            "the buffer's event: {buf:?}"
        );
        let (_, node) = find(events, at, "binder_transaction_node_to_ref", |e| {
            e.name == "binder_transaction_node_to_ref" && same(e)
        })?;
        ensure!(
            node.number("src_ptr") == Some(NODE_PTR as i64) && node.number("dest_desc") == Some(1),
            "the node's event: {node:?}"
        );
        let fd_offset = i64::from(8 + 24 + 8);
        let (_, sent) = find(events, at, "binder_transaction_fd_send", |e| {
            e.name == "binder_transaction_fd_send" && same(e)
        })?;
        ensure!(
            sent.number("src_fd") == Some(fd.into()) && sent.number("offset") == Some(fd_offset),
            "the fd's event: {sent:?}"
        );
        // The server's side.
        find(events, 0, "the server waiting for process work", |e| {
            e.is("binder_wait_for_work", server) && e.number("proc_work") == Some(1)
        })?;
        let (at, _) = find(
            events,
            at,
            "the server's binder_transaction_received",
            |e| e.is("binder_transaction_received", server) && same(e),
        )?;
        let (_, recv) = find(events, 0, "binder_transaction_fd_recv", |e| {
            e.is("binder_transaction_fd_recv", server) && same(e)
        })?;
        ensure!(
            recv.number("dest_fd") == Some(fd_recv.into())
                && recv.number("offset") == Some(fd_offset),
            "the received fd's event: {recv:?}"
        );
        let br_transaction = i64::from(uapi::BR_TRANSACTION);
        find(events, 0, "the server's BR_TRANSACTION", |e| {
            e.is("binder_return", server) && e.number("cmd") == Some(br_transaction)
        })?;
        let (_, reply) = find(events, at, "the reply's binder_transaction", |e| {
            e.is("binder_transaction", server) && e.number("reply") == Some(1)
        })?;
        let reply_id = reply.number("transaction").ok_or("no reply id")?;
        ensure!(
            reply.number("dest_proc") == Some(client.into())
                && reply.number("dest_thread") == Some(client_tid.into())
                && reply.number("code") == Some(CALL_CODE.into()),
            "the reply's event: {reply:?}"
        );
        // The client gets the reply.
        find(events, 0, "the client waiting on its call", |e| {
            e.is("binder_wait_for_work", client_tid)
                && e.number("proc_work") == Some(0)
                && e.number("transaction_stack") == Some(1)
        })?;
        find(events, 0, "the client's binder_transaction_received", |e| {
            e.is("binder_transaction_received", client_tid)
                && e.number("transaction") == Some(reply_id)
        })?;
        for ret in [uapi::BR_REPLY, uapi::BR_TRANSACTION_COMPLETE] {
            find(events, 0, &format!("the client's return {ret:#x}"), |e| {
                e.is("binder_return", client_tid) && e.number("cmd") == Some(ret.into())
            })?;
        }
        // The call's object is freed, naming the receiving thread. (The C driver has forgotten
        // the sender by then, and its text shows the code as "flags=" and the flags as
        // "code=".)
        let (_, free) = find(events, 0, "the call's binder_txn_latency_free", |e| {
            e.name == "binder_txn_latency_free" && same(e)
        })?;
        let ends = format!("from 0:0 to {server}:{server} ");
        ensure!(
            free.text.contains(&ends)
                && free.number("flags") == Some(CALL_CODE.into())
                && free.number("code") == Some(uapi::TF_ACCEPT_FDS.into()),
            "the call's free event: {free:?}, expected {ends:?}"
        );
        let (_, free) = find(events, 0, "the reply's binder_txn_latency_free", |e| {
            e.name == "binder_txn_latency_free" && e.number("transaction") == Some(reply_id)
        })?;
        let ends = format!("from 0:0 to {client}:{client_tid} ");
        ensure!(
            free.text.contains(&ends) && free.number("flags") == Some(CALL_CODE.into()),
            "the reply's free event: {free:?}, expected {ends:?}"
        );
        // The ioctls around it all.
        let write_read = i64::from(uapi::BINDER_WRITE_READ);
        find(events, 0, "the client's binder_ioctl", |e| {
            e.is("binder_ioctl", client_tid) && e.number("cmd") == Some(write_read)
        })?;
        for done in ["binder_ioctl_done", "binder_write_done", "binder_read_done"] {
            find(events, 0, done, |e| {
                e.is(done, client_tid) && e.number("ret") == Some(0)
            })?;
        }
        Ok(())
    };
    check().map_err(|why| format!("{why}; the trace:\n{}", dump()))
}

/// The failures reported over netlink, with their attributes, for a call to a handle that
/// does not exist, a call whose offsets are bad (its receiver known), and a reply with no
/// call to answer.
fn netlink_reports(_: &Env) -> Outcome {
    let listener = ReportListener::join().step("join the binder report group")?;
    // SAFETY: Plain syscall.
    let pid = unsafe { libc::getpid() } as u32;
    let tid = gettid() as u32;
    let server = spawn_manager(|_| loop {
        thread::sleep(Duration::from_secs(1));
    })?;
    let server_pid = server.pid() as u32;
    let binder = Binder::open(BINDER).step("open")?;
    let _mapping = binder.map(1 << 20, libc::PROT_READ).step("mmap")?;
    let data = [3u8; 12];
    let expected = |to_pid: Option<u32>, is_reply: bool, code: u32, flags: u32| Report {
        error: uapi::BR_FAILED_REPLY,
        context: "binder".to_string(),
        from_pid: pid,
        from_tid: tid,
        to_pid,
        to_tid: None,
        is_reply,
        flags,
        code,
        data_size: data.len() as u32,
    };
    let cases = [
        (
            "a call to a handle that does not exist",
            Commands::new().transaction(false, 77, 0x51, uapi::TF_ACCEPT_FDS, &data),
            expected(None, false, 0x51, uapi::TF_ACCEPT_FDS),
        ),
        (
            "a call with offsets that are not whole",
            Commands::new().transaction_raw(false, 0, 0x52, 0, &data, &[0; 4]),
            expected(Some(server_pid), false, 0x52, 0),
        ),
        (
            "a reply with no call to answer",
            Commands::new().transaction(true, 0, 0x53, 0, &data),
            expected(None, true, 0x53, 0),
        ),
    ];
    let outcome = (|| {
        for (what, commands, wanted) in cases {
            binder.send(&commands).step(what)?;
            let returns = binder.read().step("read")?;
            ensure!(
                returns.contains(&Return::FailedReply),
                "{what}: read {returns:?}"
            );
            let report = listener.next().step(&format!("the report of {what}"))?;
            ensure!(
                report == wanted,
                "{what}: reported {report:?}, expected {wanted:?}"
            );
        }
        let extra = listener.drain().step("drain the reports")?;
        ensure!(extra.is_empty(), "more reports: {extra:?}");
        Ok(())
    })();
    server.kill()?;
    outcome
}

/// A flood of one-way transactions to a receiver that reads none: the one that makes the
/// receiver suspect spam is reported (`BR_ONEWAY_SPAM_SUSPECT`), whether or not anyone enabled
/// spam detection, and so is the one that finds no room (`BR_FAILED_REPLY`).
fn netlink_reports_spam(_: &Env) -> Outcome {
    let listener = ReportListener::join().step("join the binder report group")?;
    let receiver = spawn_ready(|ready| {
        let binder = Binder::open(BINDER).step("open")?;
        let _mapping = binder.map(SMALL_MAP_SIZE, libc::PROT_READ).step("mmap")?;
        become_manager(&binder)?;
        ready();
        loop {
            thread::sleep(Duration::from_secs(1));
        }
    })?;
    let receiver_pid = receiver.pid() as u32;
    let outcome = (|| {
        let sender = Binder::open(BINDER).step("open")?;
        flood(&sender)?;
        let reports = listener.drain().step("read the reports")?;
        // SAFETY: Plain syscall.
        let pid = unsafe { libc::getpid() } as u32;
        let report = |error, code| Report {
            error,
            context: "binder".to_string(),
            from_pid: pid,
            from_tid: gettid() as u32,
            to_pid: Some(receiver_pid),
            to_tid: None,
            is_reply: false,
            flags: uapi::TF_ONE_WAY,
            code,
            data_size: 1024,
        };
        // The 52nd transaction (code 51) is the suspect one; the last finds no room.
        let expected = [
            report(uapi::BR_ONEWAY_SPAM_SUSPECT, 51),
            report(uapi::BR_FAILED_REPLY, FLOOD_COUNT as u32 - 1),
        ];
        ensure!(
            reports == expected,
            "reported {reports:?}, expected {expected:?}"
        );
        Ok(())
    })();
    receiver.kill()?;
    outcome
}

/// The `debug_mask` parameter of whichever driver is loaded.
fn debug_mask_path() -> Outcome<&'static Path> {
    ["rust_binder", "binder_linux"]
        .iter()
        .map(|module| match *module {
            "rust_binder" => Path::new("/sys/module/rust_binder/parameters/debug_mask"),
            _ => Path::new("/sys/module/binder_linux/parameters/debug_mask"),
        })
        .find(|path| path.exists())
        .ok_or_else(|| "no debug_mask parameter in /sys/module".to_string())
}

/// Reads the kernel log records added since `kmsg` was last read (or opened at its end).
fn new_log_lines(kmsg: &mut fs::File) -> Outcome<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut record = vec![0u8; 8192];
        match kmsg.read(&mut record) {
            Ok(0) => return Ok(lines),
            Ok(len) => lines.push(String::from_utf8_lossy(&record[..len]).into_owned()),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(lines),
            // Records overwritten meanwhile: go on with the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(format!("read /dev/kmsg: {e}")),
        }
    }
}

/// Opens `/dev/kmsg` at its end, for reading without waiting.
fn kmsg_at_end() -> Outcome<fs::File> {
    let kmsg = OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open("/dev/kmsg")
        .step("open /dev/kmsg")?;
    // SAFETY: Plain syscall on an open descriptor.
    if unsafe { libc::lseek(kmsg.as_raw_fd(), 0, libc::SEEK_END) } < 0 {
        return Err(format!("seek /dev/kmsg: {}", io::Error::last_os_error()));
    }
    Ok(kmsg)
}

/// `OpenOptions::custom_flags(O_NONBLOCK)`, by a name that says what it is for.
trait NonBlocking {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlocking for OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// `debug_mask` (0644, default 7 as in C) decides whether a user error reaches the kernel
/// log: with bit 0 set, `BC_FREE_BUFFER` of a buffer that was never delivered is logged,
/// naming the process and thread; with 0, nothing is. `stop_on_user_error` is there too.
fn debug_mask_messages(_: &Env) -> Outcome {
    let path = debug_mask_path()?;
    let mode = fs::metadata(path)
        .step("stat debug_mask")?
        .permissions()
        .mode()
        & 0o777;
    ensure!(mode == 0o644, "debug_mask has mode {mode:o}, expected 644");
    let stop = path.with_file_name("stop_on_user_error");
    let stop_mode = fs::metadata(&stop)
        .step("stat stop_on_user_error")?
        .permissions()
        .mode()
        & 0o777;
    ensure!(
        stop_mode == 0o644,
        "stop_on_user_error has mode {stop_mode:o}"
    );
    let stop_value = fs::read_to_string(&stop).step("read stop_on_user_error")?;
    ensure!(
        stop_value.trim() == "0",
        "stop_on_user_error is {stop_value:?}"
    );
    let original = fs::read_to_string(path).step("read debug_mask")?;
    ensure!(
        original.trim() == "7",
        "debug_mask is {original:?}, expected 7"
    );
    let outcome = logged_user_errors(path);
    fs::write(path, original.trim()).step("restore debug_mask")?;
    outcome
}

/// The two halves of [`debug_mask_messages`], with `debug_mask` writable at `path`.
fn logged_user_errors(path: &Path) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    // SAFETY: Plain syscall.
    let pid = unsafe { libc::getpid() };
    let marker = format!("{pid}:{} BC_FREE_BUFFER", gettid());
    let bad_free = || {
        binder
            .send(&Commands::new().free_buffer(0x1000))
            .step("BC_FREE_BUFFER of nothing")
    };
    fs::write(path, "1").step("set debug_mask to 1")?;
    let mut kmsg = kmsg_at_end()?;
    // Messages are rate limited (ten every five seconds, as C's): earlier cases may have
    // used them up, so try again for a while.
    let mut seen = false;
    for _ in 0..8 {
        bad_free()?;
        if new_log_lines(&mut kmsg)?
            .iter()
            .any(|l| l.contains(&marker))
        {
            seen = true;
            break;
        }
        thread::sleep(Duration::from_secs(1));
    }
    ensure!(seen, "no \"{marker}\" in the kernel log with debug_mask 1");
    fs::write(path, "0").step("set debug_mask to 0")?;
    new_log_lines(&mut kmsg)?;
    bad_free()?;
    let lines = new_log_lines(&mut kmsg)?;
    ensure!(
        !lines.iter().any(|l| l.contains(&marker)),
        "logged with debug_mask 0: {lines:?}"
    );
    Ok(())
}

/// rust_binder unloads cleanly while its trace events are enabled and a netlink listener is
/// in the report group, and registers its family again when loaded back.
fn unload_while_observed(env: &Env) -> Outcome {
    let path = env.module.as_deref().ok_or("no --module given")?;
    binder_events()?;
    tracefs_write("events/binder/enable", "1")?;
    let listener = ReportListener::join().step("join the binder report group")?;
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .send(&Commands::new().transaction(false, 77, 1, 0, &[]))
        .step("a call to a handle that does not exist")?;
    listener.next().step("its report")?;
    drop(binder);
    let unloaded = kmod::unload("rust_binder").step("unload while observed");
    let reloaded = kmod::load(path, "").step("load again");
    tracefs_write("events/binder/enable", "0")?;
    unloaded?;
    reloaded?;
    ensure!(
        listener.drain().step("the old listener")?.is_empty(),
        "the old listener got reports"
    );
    let listener = ReportListener::join().step("join again after the reload")?;
    let binder = Binder::open(BINDER).step("open after the reload")?;
    binder
        .send(&Commands::new().transaction(false, 77, 2, 0, &[]))
        .step("a call to a handle that does not exist, again")?;
    let report = listener.next().step("the report after the reload")?;
    ensure!(report.code == 2, "report {report:?}");
    Ok(())
}
