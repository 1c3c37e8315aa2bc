// SPDX-License-Identifier: GPL-2.0

//! The driver's state printed in the C driver's formats: the `state`, `transactions`, `stats`
//! and `proc/<pid>` log files ([`crate::logs`]).
//!
//! The lines are those of C's debugfs files, field for field, so that the tools that read
//! them (dumpsys, bugreports and their parsers) read ours. Where rust_binder has no
//! counterpart of a field (a thread's or node's temporary references) it prints 0.
//!
//! Locking: the processes are a snapshot of the registry, walked without its lock. A
//! process's threads, handles and todo lists are printed under its `inner` lock (printing to
//! a seq_file only copies into its buffer, and never sleeps); its receive buffer under the
//! buffer's mutex, with no other lock held. A node's line needs the pids of the processes
//! holding handles to it, each under its own `inner` lock, so nodes are printed from a list
//! of references taken under the owner's lock, one lock at a time. Every reference taken is
//! dropped after the locks are released.

use kernel::{
    bindings,
    ffi::c_void,
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    sync::Arc, //
};

use crate::{
    node::NodeArc,
    process::{
        Process,
        ProcessInner, //
    },
    registry,
    thread::Thread,
    transaction::Transaction,
    work::Described,
};

/// How much of a process a file shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Everything (`state`, `proc/<pid>`): every thread, node and handle.
    All,
    /// Only what is in flight (`transactions`): threads with a call or work, nodes with a
    /// one-way transaction outstanding, and no handles. A process with none of that is left
    /// out.
    InFlight,
}

/// How node pointers and cookies are printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pointers {
    /// As 16 hex digits (`state`, `transactions`).
    Raw,
    /// Hashed, as `%p` prints them (`state_hashed`, `transactions_hashed`).
    Hashed,
}

/// The seq_file's C struct.
fn raw(m: &SeqFile) -> *mut bindings::seq_file {
    core::ptr::from_ref(m).cast_mut().cast()
}

/// How many bytes the seq_file's buffer holds.
fn written(m: &SeqFile) -> usize {
    // SAFETY: `SeqFile` wraps a valid `seq_file` that only this `show` call uses.
    unsafe { (*raw(m)).count }
}

/// Takes back what was printed since the buffer held `count` bytes, unless it overflowed
/// (then the seq_file core prints everything again into a larger buffer).
fn rewind(m: &SeqFile, count: usize) {
    let seq = raw(m);
    // SAFETY: As in `written`; `count` is at most the current count, so the buffer stays
    // consistent.
    unsafe {
        if (*seq).count < (*seq).size && count <= (*seq).count {
            (*seq).count = count;
        }
    }
}

/// Prints `ptr` as `%pK` does: hashed, or zeros, as `kptr_restrict` decides.
fn print_kernel_pointer(m: &SeqFile, ptr: *const c_void) {
    // SAFETY: The format takes exactly one pointer argument, and `%pK` only prints it.
    unsafe { bindings::seq_printf(raw(m), c"%pK".as_char_ptr(), ptr) };
}

/// Prints a node's pointer or cookie after `tag` (`u` or `c`), as `pointers` says.
fn print_user_value(m: &SeqFile, tag: &str, value: u64, pointers: Pointers) {
    match pointers {
        Pointers::Raw => seq_print!(m, "{}{:016x}", tag, value),
        Pointers::Hashed => {
            seq_print!(m, "{}", tag);
            // SAFETY: The format takes exactly one pointer argument, and `%p` only prints
            // its hash; the value is never dereferenced.
            unsafe {
                bindings::seq_printf(raw(m), c"%p".as_char_ptr(), value as usize as *const c_void)
            };
        }
    }
}

/// Prints a transaction, after `prefix`; the buffer's details only when printing its
/// receiver, `printing`.
fn print_transaction(m: &SeqFile, printing: &Process, prefix: &str, t: &Transaction) {
    let v = t.log_view();
    seq_print!(m, "{} {}: ", prefix, v.debug_id as i32);
    print_kernel_pointer(m, v.address);
    seq_print!(
        m,
        " from {}:{} to {}:{} code {:x} flags {:x} pri {} a{} r{} elapsed {}ms",
        v.from.0,
        v.from.1,
        v.to.pid(),
        v.to_thread,
        v.code,
        v.flags,
        v.priority,
        u8::from(v.is_async),
        u8::from(v.is_reply),
        v.elapsed_ms
    );
    if !core::ptr::eq(v.to, printing) {
        seq_print!(m, "\n");
        return;
    }
    if v.node != 0 {
        seq_print!(m, " node {}", v.node as i32);
    }
    seq_print!(
        m,
        " size {}:{} offset {:x}\n",
        v.sizes.0,
        v.sizes.1,
        v.buffer_offset
    );
}

/// Prints a todo item of `printing`: a transaction after `transaction_prefix`, anything
/// else after `prefix`.
fn print_work(
    m: &SeqFile,
    printing: &Process,
    prefix: &str,
    transaction_prefix: &str,
    work: Described<'_>,
    pointers: Pointers,
) {
    match work {
        Described::Transaction(t) => print_transaction(m, printing, transaction_prefix, t),
        Described::Error(code) => seq_print!(m, "{}transaction error: {}\n", prefix, code),
        Described::Complete => seq_print!(m, "{}transaction complete\n", prefix),
        Described::Node(node) => {
            seq_print!(m, "{}node work {}: ", prefix, node.debug_id() as i32);
            print_user_value(m, "u", node.ptr(), pointers);
            print_user_value(m, " c", node.cookie(), pointers);
            seq_print!(m, "\n");
        }
        Described::DeadBinder => seq_print!(m, "{}has dead binder\n", prefix),
        Described::ClearedDeadBinder => seq_print!(m, "{}has cleared dead binder\n", prefix),
        Described::ClearedDeath => {
            seq_print!(m, "{}has cleared death notification\n", prefix)
        }
        Described::FrozenBinder => seq_print!(m, "{}has frozen binder\n", prefix),
        Described::ClearedFreeze => {
            seq_print!(m, "{}has cleared freeze notification\n", prefix)
        }
        Described::Nothing => {}
    }
}

/// Prints a thread of `process`: its transaction stack and its own work. With
/// [`Detail::InFlight`], a thread with neither is left out.
fn print_thread(
    m: &SeqFile,
    process: &Process,
    inner: &ProcessInner,
    thread: &Thread,
    detail: Detail,
    pointers: Pointers,
) {
    let start = written(m);
    seq_print!(
        m,
        "  thread {}: l {:02x} need_return {} tr 0\n",
        thread.id,
        thread.looper_for_log(),
        u8::from(thread.needs_return())
    );
    let header = written(m);
    let mut frame = thread.stack_top(inner);
    while let Some(t) = frame {
        if t.is_sent_by(thread) {
            print_transaction(m, process, "    outgoing transaction", t);
            frame = t.sender_parent();
        } else if t.is_read_by(thread) && core::ptr::eq(t.log_view().to, process) {
            print_transaction(m, process, "    incoming transaction", t);
            frame = t.reader_parent(inner);
        } else {
            print_transaction(m, process, "    bad transaction", t);
            frame = None;
        }
    }
    for work in thread.todo_list(inner).iter() {
        let described = work.item.describe(inner);
        print_work(
            m,
            process,
            "    ",
            "    pending transaction",
            described,
            pointers,
        );
    }
    if detail == Detail::InFlight && written(m) == header {
        rewind(m, start);
    }
}

/// Prints a node: its counts, the pids of the processes with handles to it (from
/// `processes`), and the one-way transactions waiting for it.
fn print_node(m: &SeqFile, node: &NodeArc, processes: &[Arc<Process>], pointers: Pointers) {
    let owner = node.owner();
    let counts = node.log_counts(&owner.inner_lock().lock());
    seq_print!(m, "  node {}: ", node.debug_id() as i32);
    print_user_value(m, "u", node.ptr(), pointers);
    print_user_value(m, " c", node.cookie(), pointers);
    seq_print!(
        m,
        " hs {} hw {} ls {} lw {} is {} iw {} tr 0",
        u8::from(counts.told.0),
        u8::from(counts.told.1),
        counts.local.0,
        counts.local.1,
        counts.strong_handles,
        counts.handles
    );
    if counts.handles > 0 {
        seq_print!(m, " proc");
        for holder in processes.iter().rev() {
            if core::ptr::eq::<Process>(&**holder, &**owner) {
                continue;
            }
            if holder.inner_lock().lock().refs().has_handle_to(node) {
                seq_print!(m, " {}", holder.pid());
            }
        }
    }
    seq_print!(m, "\n");
    let inner = owner.inner_lock().lock();
    for work in node.oneway_for_log(&inner).1.iter() {
        let described = work.item.describe(&inner);
        print_work(
            m,
            owner,
            "    ",
            "    pending async transaction",
            described,
            pointers,
        );
    }
}

/// Prints one process, as `detail` says; `processes` are all of them, for the holders of
/// its nodes.
fn print_process(
    m: &SeqFile,
    process: &Process,
    processes: &[Arc<Process>],
    detail: Detail,
    pointers: Pointers,
) -> Result {
    let start = written(m);
    seq_print!(
        m,
        "proc {}\ncontext {}\n",
        process.pid(),
        process.context.display_name()
    );
    let header = written(m);
    let node_count = process.inner_lock().lock().nodes().iter().count();
    let mut nodes: KVec<NodeArc> = KVec::with_capacity(node_count, GFP_KERNEL)?;
    {
        let inner = process.inner_lock().lock();
        for thread in inner.threads().values() {
            print_thread(m, process, &inner, thread, detail, pointers);
        }
        for node in inner.nodes().iter() {
            let busy = node.oneway_for_log(&inner).0;
            // Nodes made meanwhile beyond the room taken are left out of this print.
            if (detail == Detail::All || busy) && nodes.push_within_capacity(node.into()).is_err() {
                break;
            }
        }
    }
    for node in nodes.iter() {
        print_node(m, node, processes, pointers);
    }
    if detail == Detail::All {
        let inner = process.inner_lock().lock();
        for (handle, node_ref) in inner.refs().iter() {
            let (strong, weak) = node_ref.counts();
            seq_print!(
                m,
                "  ref {}: desc {} {}node {} s {} w {} d ",
                inner.refs().debug_id(node_ref) as i32,
                handle,
                if node_ref.node.is_gone() { "dead " } else { "" },
                node_ref.node.debug_id() as i32,
                strong,
                weak
            );
            let death = node_ref
                .death
                .as_deref()
                .map_or(core::ptr::null(), |death| core::ptr::from_ref(death).cast());
            print_kernel_pointer(m, death);
            seq_print!(m, "\n");
        }
    }
    process.buffer.print_allocated(m);
    {
        let inner = process.inner_lock().lock();
        for work in inner.todo().iter() {
            let described = work.item.describe(&inner);
            print_work(
                m,
                process,
                "  ",
                "  pending transaction",
                described,
                pointers,
            );
        }
        if inner.has_delivered_death() {
            seq_print!(m, "  has delivered dead binder\n");
        }
        if inner.has_delivered_freeze() {
            seq_print!(m, "  has delivered freeze binder\n");
        }
    }
    if detail == Detail::InFlight && written(m) == header {
        rewind(m, start);
    }
    // Dropped here, with no lock held: a node may go with its last reference.
    drop(nodes);
    Ok(())
}

/// Prints a process's counts and its command and return counters (a section of `stats`).
fn print_process_stats(m: &SeqFile, process: &Process) {
    seq_print!(
        m,
        "proc {}\ncontext {}\n",
        process.pid(),
        process.context.display_name()
    );
    let (threads, ready, requests, nodes, refs, pending) = {
        let inner = process.inner_lock().lock();
        let threads = inner.threads().iter().count();
        let ready = inner.threads().values().filter(|t| t.is_ready()).count();
        let nodes = inner.nodes().iter().count();
        let refs = inner
            .refs()
            .iter()
            .fold((0usize, 0u64, 0u64), |(n, s, w), (_, r)| {
                let (strong, weak) = r.counts();
                (n + 1, s + u64::from(strong), w + u64::from(weak))
            });
        let pending = inner
            .todo()
            .iter()
            .filter(|work| work.item.is_transaction())
            .count();
        (
            threads,
            ready,
            inner.thread_requests(),
            nodes,
            refs,
            pending,
        )
    };
    seq_print!(m, "  threads: {}\n", threads);
    seq_print!(
        m,
        "  requested threads: {}+{}/{}\n  ready threads {}\n  free async space {}\n",
        requests.0,
        requests.1,
        requests.2,
        ready,
        process.buffer.free_async_space()
    );
    seq_print!(m, "  nodes: {}\n", nodes);
    seq_print!(m, "  refs: {} s {} w {}\n", refs.0, refs.1, refs.2);
    seq_print!(m, "  buffers: {}\n", process.buffer.allocated_count());
    let pages = process.buffer.page_counts();
    seq_print!(
        m,
        "  pages: {}:{}:{}\n  pages high watermark: {}\n",
        pages.active,
        pages.lru,
        pages.free,
        pages.high
    );
    seq_print!(m, "  pending transactions: {}\n", pending);
    process.stats.print(m, "  ");
}

/// The nodes that died with their owner while other processes still hold handles to them:
/// what C keeps on its list of dead nodes and `state` prints before the processes. A dead
/// node's owner has left the registry, so they are found through the handles of
/// `processes`; a node leaves the list with the last handle to it, as in C. They are listed
/// by debug id, newest first; C lists them by when they died, a different order when an
/// older process dies after a newer one or made its nodes out of their pointers' order.
fn dead_nodes(processes: &[Arc<Process>]) -> Result<KVec<NodeArc>> {
    let mut dead: KVec<NodeArc> = KVec::new();
    for process in processes.iter() {
        let count = {
            let inner = process.inner_lock().lock();
            let refs = inner.refs();
            refs.iter().filter(|(_, r)| r.node.is_gone()).count()
        };
        dead.reserve(count, GFP_KERNEL)?;
        let inner = process.inner_lock().lock();
        for (_, node_ref) in inner.refs().iter() {
            // Handles made meanwhile beyond the room taken are left out of this print.
            if node_ref.node.is_gone() && dead.push_within_capacity(node_ref.node.clone()).is_err()
            {
                break;
            }
        }
    }
    // Several processes may hold handles to one dead node: it is printed once.
    dead.sort_unstable_by_key(|node| core::cmp::Reverse(node.debug_id()));
    let mut last = None;
    dead.retain(|node| last.replace(node.debug_id()) != Some(node.debug_id()));
    Ok(dead)
}

/// `state` and `state_hashed`: the dead nodes, then every process, in full.
pub(crate) fn print_state(m: &SeqFile, pointers: Pointers) -> Result {
    seq_print!(m, "binder state:\n");
    let processes = registry::snapshot()?;
    let dead = dead_nodes(&processes)?;
    if !dead.is_empty() {
        seq_print!(m, "dead nodes:\n");
    }
    for node in dead.iter() {
        print_node(m, node, &processes, pointers);
    }
    // Dropped with no lock held: a node may go with its last reference.
    drop(dead);
    for process in processes.iter().rev() {
        print_process(m, process, &processes, Detail::All, pointers)?;
    }
    Ok(())
}

/// `transactions` and `transactions_hashed`: what is in flight.
pub(crate) fn print_transactions(m: &SeqFile, pointers: Pointers) -> Result {
    seq_print!(m, "binder transactions:\n");
    let processes = registry::snapshot()?;
    for process in processes.iter().rev() {
        print_process(m, process, &processes, Detail::InFlight, pointers)?;
    }
    Ok(())
}

/// `stats`: the driver's counters, then each process's.
pub(crate) fn print_stats(m: &SeqFile) -> Result {
    seq_print!(m, "binder stats:\n");
    crate::stats::print_global(m);
    let processes = registry::snapshot()?;
    for process in processes.iter().rev() {
        print_process_stats(m, process);
    }
    Ok(())
}

/// `proc/<pid>`: every process of the thread group `pid` (one per device it opened), in full.
pub(crate) fn print_proc(m: &SeqFile, pid: u32) -> Result {
    let processes = registry::snapshot()?;
    for process in processes.iter().rev().filter(|p| p.has_pid(pid)) {
        seq_print!(m, "binder proc state:\n");
        print_process(m, process, &processes, Detail::All, Pointers::Raw)?;
    }
    Ok(())
}
