// SPDX-License-Identifier: GPL-2.0

//! Transactions: `BC_TRANSACTION` and `BC_REPLY`.
//!
//! The payload is copied once, from the sender's memory into a range of the receiver's
//! receive buffer, and the receiver reads `BR_TRANSACTION` (or `BR_REPLY`) pointing at it.
//! A synchronous call waits for its reply on the sending thread; the receiving thread keeps
//! the call until it replies. The sender reads `BR_TRANSACTION_COMPLETE` together with the
//! reply, as with the C driver.
//!
//! A failed transaction is not an ioctl error: the sender reads `BR_FAILED_REPLY` or
//! `BR_DEAD_REPLY` instead of the reply, and `BINDER_GET_EXTENDED_ERROR` tells it more.
//!
//! A one-way transaction (`TF_ONE_WAY`) gets `BR_TRANSACTION_COMPLETE` at once and no reply.
//! Its target node takes one at a time: the next is delivered after userspace frees the
//! buffer of the one before. One-way payloads may use only half of the receive buffer.
//!
//! Objects in the payload are translated for the receiver on the way ([`crate::objects`]).
//!
//! Calls nest: each thread keeps a stack of the calls it sent and received
//! ([`Thread::check_new_call`]). A thread answering a call may call back into a process
//! waiting further down the chain, and the call then goes to the very thread that waits there,
//! so that A calling B calling A runs on A's waiting thread, as with the C driver.

use kernel::{
    prelude::*,
    security::SecurityCtx,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_spinlock,
        Arc,
        ArcBorrow,
        LockedBy,
        SpinLock, //
    },
    task::{
        Kuid,
        Pid, //
    },
    time::{
        Instant,
        Monotonic, //
    },
    uapi,
};

use crate::{
    allocation::{
        BufferLabel,
        RangeView,
        ReservedBuffer, //
    },
    census::{
        Counted,
        Kind, //
    },
    debug::{
        binder_debug,
        mask, //
    },
    defs::{
        TransactionData,
        TransactionDataSecctx,
        TransactionDataSg,
        BR_DEAD_REPLY,
        BR_FAILED_REPLY,
        BR_FROZEN_REPLY,
        BR_OK,
        BR_ONEWAY_SPAM_SUSPECT,
        BR_REPLY,
        BR_TRANSACTION,
        BR_TRANSACTION_COMPLETE,
        BR_TRANSACTION_PENDING_FROZEN,
        BR_TRANSACTION_SEC_CTX,
        TF_ACCEPT_FDS,
        TF_CLEAR_BUF,
        TF_ONE_WAY,
        TF_UPDATE_TXN, //
    },
    fds::{
        FileTransfer,
        Reserved, //
    },
    first_inline::FirstInline,
    netlink,
    node::NodeArc,
    objects::{
        HeldRefs,
        Translation, //
    },
    priority,
    process::{
        Process,
        ProcessInner,
        Recipient,
        Refused, //
    },
    refs::MANAGER_HANDLE,
    scatter_gather::ScatterGather,
    stats::{
        self,
        next_debug_id,
        Object, //
    },
    thread::{
        NewCall,
        Thread, //
    },
    trace,
    txn_log::{
        self,
        CallType,
        Logged, //
    },
    work::{
        Deliver,
        Described,
        Flow,
        Work,
        WorkItem, //
    },
    write_read::Returns,
};

/// Why a transaction failed: the return the sender reads, the errno behind it, and the line
/// that found it (for the transaction logs, as C's `return_error_line`).
struct Failure {
    code: u32,
    /// `None` where the C driver reports no errno (`return_error_param` 0): a call to a
    /// frozen process, and a receiver found gone when the transaction is queued.
    errno: Option<Error>,
    line: u32,
}

impl Failure {
    /// A failure with `code` and `errno`, found on the caller's line.
    #[track_caller]
    fn new(code: u32, errno: Option<Error>) -> Self {
        Self {
            code,
            errno,
            line: core::panic::Location::caller().line(),
        }
    }

    #[track_caller]
    fn failed(errno: Error) -> Self {
        Self::new(BR_FAILED_REPLY, Some(errno))
    }

    #[track_caller]
    fn dead(errno: Error) -> Self {
        Self::new(BR_DEAD_REPLY, Some(errno))
    }

    /// The receiving process or thread (the caller, for a reply) was found gone: as in C,
    /// `BR_DEAD_REPLY` with no errno. (A receive buffer found unmapped is
    /// `Failure::dead(ESRCH)`, which C reports with its errno.)
    #[track_caller]
    fn gone() -> Self {
        Self::new(BR_DEAD_REPLY, None)
    }

    /// A call to a frozen process. (C reports no errno with it; see `Thread::transaction`.)
    #[track_caller]
    fn frozen() -> Self {
        Self::new(BR_FROZEN_REPLY, None)
    }

    /// The errno as the extended error and the logs report it: 0 for none, as in C.
    fn param(&self) -> i32 {
        self.errno.map_or(0, |errno| errno.to_errno())
    }

    /// Records the failure in the transaction's log entry.
    fn log(&self, entry: &mut txn_log::Entry) {
        entry.return_error = self.code;
        entry.return_error_param = self.param();
        entry.return_error_line = self.line;
    }

    /// What [`Process::queue_transaction`] refused.
    #[track_caller]
    fn refused(refused: Refused) -> Self {
        match refused {
            Refused::Frozen => Self::frozen(),
            Refused::Dead => Self::gone(),
        }
    }
}

/// A transaction, in the envelope that queues it: made once, it needs no other allocation to
/// go on a todo list.
pub(crate) type TransactionArc = Arc<Work<Transaction>>;

/// A transaction or reply on its way, or a call delivered and awaiting its reply.
#[pin_data(PinnedDrop)]
pub(crate) struct Transaction {
    /// The payload, until it is delivered. Declared first, so dropped first: a transaction
    /// dropped undelivered gives its range back, with the references the range holds, before
    /// its own references go. The field's drop skips the payload's spinlock (nothing else can
    /// see the transaction then), but the range's release takes the buffer's mutex and its
    /// owner's `inner` lock: a transaction's last reference never goes under a spinlock.
    #[pin]
    payload: SpinLock<Option<Undelivered>>,
    /// Counts the object in the module's census.
    _census: Counted,
    /// The sending thread of a synchronous call: the reply goes back to it.
    from: Option<Arc<Thread>>,
    /// The top of the sender's stack when it sent the call (a call it was answering).
    from_parent: Option<TransactionArc>,
    /// The top of the receiving thread's stack below this call, once a thread took it;
    /// guarded by the receiver's `inner` lock.
    pub(crate) to_parent: LockedBy<Option<TransactionArc>, ProcessInner>,
    /// The sending process.
    from_process: Arc<Process>,
    /// The receiving process; the payload is in its receive buffer.
    to: Arc<Process>,
    /// The target node (none for a reply): its pointer and cookie go to the reader, its
    /// number to the log files. This keeps only the node's memory; the reference the owner
    /// counts is the range's.
    target: Option<NodeArc>,
    code: u32,
    flags: u32,
    /// The sender's effective uid when it sent.
    sender_euid: Kuid,
    /// The sender's nice value when it sent ([`crate::priority`]).
    priority: i8,
    /// The target node's minimum priority (0 for a reply).
    min_priority: u8,
    /// The reader's nice value before the call changed it, restored when it replies.
    saved_priority: Atomic<i8>,
    /// The sizes of the data and of the offsets: a `u32` holds them, since they fit the
    /// buffer range, which is within an area of at most 4 MiB.
    data_size: u32,
    offsets_size: u32,
    /// Where in the buffer the sender's security context is, if the target node asked for it
    /// (`BR_TRANSACTION_SEC_CTX`, see [`Transaction::secctx_offset`]); within the area, so a
    /// `u32` too.
    secctx_at: u32,
    /// The receiver suspects the sender of one-way spam (see `Complete`).
    oneway_spam_suspect: bool,
    /// The receiver counts the transaction as outstanding (for a freeze); see
    /// [`Process::queue_transaction`].
    outstanding: Atomic<bool>,
    /// The transaction's number in the log files (its buffer's too).
    debug_id: u32,
    /// The sending thread (also of a one-way transaction or a reply).
    from_tid: Pid,
    /// When the transaction was sent.
    start: Instant<Monotonic>,
    /// The receiving thread: the one that read it, or before that the one known at send (a
    /// waiting thread, the caller of a reply); 0 while none is known.
    to_tid: Atomic<Pid>,
    /// Where its buffer starts in the receiver's area: less than the 4 MiB an area is at most,
    /// so a `u32`, which keeps the transaction in the 192-byte kmalloc class.
    buffer_offset: u32,
}

/// A transaction as the log files show it ([`crate::dump`]).
pub(crate) struct LogView<'a> {
    pub(crate) debug_id: u32,
    /// The transaction's address, which the C driver prints (hashed or hidden) with `%pK`.
    pub(crate) address: *const c_void,
    pub(crate) from: (Pid, Pid),
    pub(crate) to: &'a Process,
    pub(crate) to_thread: Pid,
    pub(crate) code: u32,
    pub(crate) flags: u32,
    pub(crate) priority: i32,
    pub(crate) is_async: bool,
    pub(crate) is_reply: bool,
    pub(crate) elapsed_ms: i64,
    pub(crate) node: u32,
    pub(crate) sizes: (u64, u64),
    pub(crate) buffer_offset: usize,
}

/// What a transaction hands its reader: the range of the receive buffer its payload is in,
/// and the files the reader gets fds for.
struct Undelivered {
    range: ReservedBuffer,
    /// The files, if there are any. Boxed, and only then allocated: inline, they and the
    /// pages would make every transaction 80 bytes larger, too large for the 192-byte
    /// kmalloc class. The box is the receiver's spare when it has one, and goes back there
    /// once read ([`Process::files_box`](crate::process::Process::files_box)).
    files: Option<KBox<Option<CarriedFiles>>>,
}

/// The files a transaction carries, and the pages of its range to write the reader's fds
/// into.
pub(crate) struct CarriedFiles {
    files: FirstInline<FileTransfer>,
    view: RangeView,
}

/// `BR_TRANSACTION_COMPLETE`: the sender's transaction was accepted.
///
/// A call's is queued, deferred, when the call is sent, and read together with the reply (or
/// the failure) that ends the wait, as in the C driver. If the call cannot be sent after all
/// it is withdrawn, and then delivers nothing.
///
/// A one-way transaction that made the receiver suspect its sender of spam reads
/// `BR_ONEWAY_SPAM_SUSPECT` instead, if the sender enabled that report.
///
/// Each thread has one of its own, made with its equipment (by its first read, write or poll)
/// and used again and again, so that a transaction allocates none; only when the thread's own
/// is still queued (several one-way transactions sent in one write, or a complete withdrawn and
/// not yet read) is another one allocated ([`Thread::complete_to_queue`]). All of a complete's
/// state is set and read by its thread: the sender queues it and the same thread reads it.
pub(crate) struct Complete {
    /// Whether the complete counts in the `stats` log file as a live object: from when it is
    /// queued until it is read, cancelled or dropped, as C counts its allocated `tcomplete`.
    counted: Atomic<bool>,
    withdrawn: Atomic<bool>,
    /// The return: set before the complete is read, by the thread that reads it.
    code: Atomic<u32>,
}

impl Complete {
    /// A complete not queued yet.
    pub(crate) fn idle() -> Self {
        Self {
            counted: Atomic::new(false),
            withdrawn: Atomic::new(false),
            code: Atomic::new(BR_TRANSACTION_COMPLETE),
        }
    }

    /// Readies the complete to be queued with the return `code`.
    fn arm(&self, code: u32) {
        self.settle();
        stats::created(Object::TransactionComplete);
        self.counted.store(true, Relaxed);
        self.withdrawn.store(false, Relaxed);
        self.code.store(code, Relaxed);
    }

    /// The complete was read or dropped: it no longer counts as live.
    fn settle(&self) {
        if self.counted.xchg(false, Relaxed) {
            stats::deleted(Object::TransactionComplete);
        }
    }
}

impl Drop for Complete {
    fn drop(&mut self) {
        self.settle();
    }
}

impl Thread {
    /// Carries out `BC_TRANSACTION` (or, with `reply`, `BC_REPLY`) described by `tr`.
    pub(crate) fn transaction(
        self: &Arc<Self>,
        process: ArcBorrow<'_, Process>,
        tr: &TransactionDataSg,
        reply: bool,
    ) -> Result {
        let id = next_debug_id();
        let call_type = if reply {
            CallType::Reply
        } else if tr.flags() & TF_ONE_WAY != 0 {
            CallType::Oneway
        } else {
            CallType::Call
        };
        let mut entry = txn_log::Entry::new(id, call_type, process.pid(), self.id);
        entry.target_handle = tr.target_handle();
        entry.data_size = tr.0.transaction_data.data_size;
        entry.offsets_size = tr.0.transaction_data.offsets_size;
        let mut logged = Logged::start(entry, &process.context);
        // Like the C driver, each transaction starts with a clean extended error.
        self.set_extended_error(&process, id, BR_OK, 0);
        let outcome = if reply {
            self.reply(process, tr, id, &mut logged.entry)
        } else {
            self.send(process, tr, id, &mut logged.entry)
        };
        if let Err(failure) = outcome {
            binder_debug!(
                mask::FAILED_TRANSACTION,
                "{}:{} transaction {} failed {}/{}\n",
                process.pid(),
                self.id,
                id,
                failure.code,
                failure.param()
            );
            let to = logged.entry.receiver();
            netlink::report(&process, self, tr, reply, failure.code, to);
            failure.log(&mut logged.entry);
            self.transaction_failed(&process, id, failure.code, failure.param());
        }
        logged.finish(&process.context);
        Ok(())
    }

    /// A transaction to a node: a call, which the thread then waits to have answered, or
    /// with `TF_ONE_WAY` a one-way transaction, delivered in turn with the node's others.
    fn send(
        self: &Arc<Self>,
        process: ArcBorrow<'_, Process>,
        tr: &TransactionDataSg,
        id: u32,
        entry: &mut txn_log::Entry,
    ) -> Result<(), Failure> {
        let oneway = tr.flags() & TF_ONE_WAY != 0;
        let node = self.find_target(&process, tr.target_handle())?;
        entry.to_node = node.debug_id();
        kernel::security::binder_transaction(process.cred(), node.owner().cred())
            .map_err(|_| Failure::failed(EPERM))?;
        let NewCall {
            parent: from_parent,
            waiting: waiting_thread,
        } = if oneway {
            NewCall::default()
        } else {
            self.check_new_call(&process, node.owner())
                .map_err(Failure::failed)?
        };
        // As in C, the logs name the receiver only once the call has passed these checks.
        entry.to_proc = node.owner().pid();
        entry.to_thread = waiting_thread.as_ref().map_or(0, |thread| thread.id);
        let to = node.owner().clone();
        let sending = Sending {
            id,
            to_tid: entry.to_thread,
            accept_fds: node.accepts_fds(),
        };
        let t = Transaction::new(self, from_parent, process, to, Some(&node), tr, sending)?;
        let report_to = entry.receiver();
        let item = Work::to_queue(&t).ok_or(Failure::failed(EINVAL))?;
        if oneway {
            // C decides when the sender reads it, from the sender's setting; the sender is
            // this process, so deciding now is the same.
            if t.oneway_spam_suspect {
                netlink::report(&process, self, tr, false, BR_ONEWAY_SPAM_SUSPECT, report_to);
            }
            let code = if t.oneway_spam_suspect && process.detects_oneway_spam() {
                BR_ONEWAY_SPAM_SUSPECT
            } else {
                BR_TRANSACTION_COMPLETE
            };
            let (complete, complete_item) = self.complete_to_queue(code)?;
            // Queued before the transaction (see `reply_to`); withdrawn if the transaction
            // cannot be queued. On failure, dropping `t` gives its buffer back. To a frozen
            // process, the sender reads that it is pending instead, as in C.
            let _ = process.push_work(complete_item, Recipient::Thread(self));
            match t.to.queue_transaction(&t, item, Recipient::Oneway(&node)) {
                Ok(true) => {
                    complete.code.store(BR_TRANSACTION_PENDING_FROZEN, Relaxed);
                    let code = BR_TRANSACTION_PENDING_FROZEN;
                    netlink::report(&process, self, tr, false, code, report_to);
                }
                Ok(false) => {}
                Err(refused) => {
                    complete.withdrawn.store(true, Relaxed);
                    return Err(Failure::refused(refused));
                }
            }
            return Ok(());
        }
        let (complete, complete_item) = self.complete_to_queue(BR_TRANSACTION_COMPLETE)?;
        // The call goes on the stack, and its BR_TRANSACTION_COMPLETE on the todo list, before
        // it can be answered; both are undone if it cannot be sent.
        self.begin_call(&process, t.clone(), complete_item);
        let recipient = match &waiting_thread {
            Some(thread) => Recipient::Thread(thread),
            None => Recipient::Process,
        };
        if let Err(refused) = t.to.queue_transaction(&t, item, recipient) {
            complete.withdrawn.store(true, Relaxed);
            self.pop_sent_call(&process, &t);
            return Err(Failure::refused(refused));
        }
        Ok(())
    }

    /// A reply to the call this thread received last.
    ///
    /// Without a call to answer the reply fails (`BR_FAILED_REPLY`). A reply that fails
    /// otherwise fails for the caller, as in the C driver: the caller reads the error (and
    /// has it in its extended error), while this thread reads `BR_TRANSACTION_COMPLETE`.
    fn reply(
        self: &Arc<Self>,
        process: ArcBorrow<'_, Process>,
        tr: &TransactionDataSg,
        id: u32,
        entry: &mut txn_log::Entry,
    ) -> Result<(), Failure> {
        let call = self.pop_received(&process).ok_or(Failure::failed(EPROTO))?;
        priority::set_nice(call.saved_priority.load(Relaxed).into());
        if let Err(failure) = self.reply_to(process, &call, tr, id, entry) {
            binder_debug!(
                mask::FAILED_TRANSACTION,
                "{}:{} reply {} failed {}/{}\n",
                process.pid(),
                self.id,
                id,
                failure.code,
                failure.param()
            );
            netlink::report(&process, self, tr, true, failure.code, entry.receiver());
            failure.log(entry);
            // This thread's BR_TRANSACTION_COMPLETE first, as in C: the failure can come
            // down the chain of calls to this very thread.
            self.reply_failed(&process);
            call.fail_caller(failure.code, Some((id, failure.param())));
        }
        call.finished();
        Ok(())
    }

    /// Sends the reply to `call`; its log `entry` names the caller once it is found there.
    fn reply_to(
        self: &Arc<Self>,
        process: ArcBorrow<'_, Process>,
        call: &Transaction,
        tr: &TransactionDataSg,
        id: u32,
        entry: &mut txn_log::Entry,
    ) -> Result<(), Failure> {
        // No caller: not a call (EPROTO). As in C, a caller that has left the driver fails
        // the reply before any of it is read: dead, whatever its objects are, and the logs
        // name no receiver.
        let caller = match &call.from {
            None => return Err(Failure::failed(EPROTO)),
            Some(caller) if caller.is_dead() => return Err(Failure::gone()),
            Some(caller) => caller,
        };
        entry.to_proc = call.from_process.pid();
        entry.to_thread = caller.id;
        let to = call.from_process.clone();
        let sending = Sending {
            id,
            to_tid: caller.id,
            accept_fds: call.flags & TF_ACCEPT_FDS != 0,
        };
        let reply = Transaction::new(self, None, process, to, None, tr, sending)?;
        let item = Work::to_queue(&reply).ok_or(Failure::failed(EINVAL))?;
        let (own_complete, own_item) = self.complete_to_queue(BR_TRANSACTION_COMPLETE)?;
        // This thread's BR_TRANSACTION_COMPLETE is queued before the reply is delivered, as in
        // C. The other way round, the caller could answer before it was queued (the caller is
        // often this thread's caller in turn, waiting on a nested call), and this thread
        // would read that answer before its BR_TRANSACTION_COMPLETE: userspace that waits for
        // the complete of its reply (rsbinder, libbinder) drops a BR_REPLY that comes first,
        // and its call then waits for ever. Withdrawn if the reply cannot be delivered; on
        // failure, dropping `reply` gives its buffer back.
        let _ = process.push_work(own_item, Recipient::Thread(self));
        if !caller.deliver_reply(&call.from_process, call, item) {
            own_complete.withdrawn.store(true, Relaxed);
            return Err(Failure::gone());
        }
        Ok(())
    }

    /// A complete with the return `code`, ready to be queued for this thread: the thread's own
    /// if it is not queued already, else a new one. The first part of the result is for the
    /// caller to withdraw it or change its code.
    fn complete_to_queue(&self, code: u32) -> Result<(Arc<Work<Complete>>, WorkItem), Failure> {
        let own = self
            .own_complete()
            .and_then(|own| Some((own.clone(), Work::to_queue(own)?)));
        let complete = match own {
            Some(own) => own,
            None => {
                let complete = Work::new_arc(Complete::idle()).map_err(Failure::failed)?;
                let item = Work::to_queue(&complete).ok_or(Failure::failed(EINVAL))?;
                (complete, item)
            }
        };
        complete.0.arm(code);
        Ok(complete)
    }

    /// Finds the node that `handle` names for `process`, as the C driver does: handle 0 is
    /// the context manager (`BR_DEAD_REPLY` without one; `BR_FAILED_REPLY` from the
    /// manager's own process, through any of its files), any other handle needs a strong
    /// reference (`BR_FAILED_REPLY` without), and a node whose owner is gone fails the
    /// transaction with `BR_DEAD_REPLY`.
    fn find_target(&self, process: &Process, handle: u32) -> Result<NodeArc, Failure> {
        let node = if handle == MANAGER_HANDLE {
            let node = process
                .context
                .manager_node()
                .ok_or(Failure::dead(EINVAL))?;
            if node.owner().same_task_group(process) {
                return Err(Failure::failed(EINVAL));
            }
            node
        } else {
            process
                .ref_target(handle, true)
                .ok_or(Failure::failed(EINVAL))?
        };
        // Before any check of the sender's own state (its stack), as in the C driver.
        if node.is_gone() {
            return Err(Failure::dead(EINVAL));
        }
        Ok(node)
    }
}

/// What [`Transaction::new`] needs to know beyond the payload.
#[derive(Clone, Copy)]
struct Sending {
    /// The transaction's debug id.
    id: u32,
    /// The receiving thread if already known (the caller, for a reply), else 0.
    to_tid: Pid,
    /// Whether the payload may carry file descriptors.
    accept_fds: bool,
}

/// Rounds `n` up to a multiple of 8, the alignment of each part of a transaction buffer.
fn align8(n: u64) -> Option<u64> {
    n.checked_add(7).map(|n| n & !7)
}

impl Transaction {
    /// Creates a transaction from `from_process` (its thread `sender`) to `to`: copies the
    /// payload into `to`'s receive buffer and translates the objects in it. `node` is the
    /// target of a call or one-way transaction, `None` for a reply; `sent` is the
    /// transaction's debug id and what userspace asked for; `accept_fds` says whether the
    /// payload may carry file descriptors. A call (neither a reply nor one-way) remembers
    /// `sender`, to reply to, and `from_parent`, the sender's stack below it.
    fn new(
        sender: &Arc<Thread>,
        from_parent: Option<TransactionArc>,
        from_process: ArcBorrow<'_, Process>,
        to: Arc<Process>,
        node: Option<&NodeArc>,
        tr: &TransactionDataSg,
        sending: Sending,
    ) -> Result<TransactionArc, Failure> {
        let Sending {
            id,
            to_tid,
            accept_fds,
        } = sending;
        let debug_id = id;
        let is_reply = node.is_none();
        let extra = tr.0.buffers_size;
        let tr = &tr.0.transaction_data;
        let is_call = !is_reply && tr.flags & TF_ONE_WAY == 0;
        let from = is_call.then(|| sender.clone());
        let data_size = usize::try_from(tr.data_size).map_err(|_| Failure::failed(EINVAL))?;
        let offsets_size = usize::try_from(tr.offsets_size).map_err(|_| Failure::failed(EINVAL))?;
        let buffers_size = usize::try_from(extra).map_err(|_| Failure::failed(EINVAL))?;
        // A node that asks for the sender's security context gets it after everything else
        // in the buffer, as in the C driver; without an LSM that has contexts the transaction
        // fails, with the LSM's errno, as there.
        let secctx = match node {
            Some(node) if node.wants_security_context() => Some(
                SecurityCtx::from_secid(from_process.cred().get_secid())
                    .map_err(Failure::failed)?,
            ),
            _ => None,
        };
        let secctx_room = match &secctx {
            Some(ctx) => u64::try_from(ctx.len())
                .ok()
                .and_then(align8)
                .ok_or(Failure::failed(EINVAL))?,
            None => 0,
        };
        let before_secctx = align8(tr.data_size)
            .and_then(|data| data.checked_add(align8(tr.offsets_size)?))
            .and_then(|size| size.checked_add(align8(extra)?))
            .ok_or(Failure::failed(EINVAL))?;
        let size = before_secctx
            .checked_add(secctx_room)
            .and_then(|size| usize::try_from(size).ok())
            .ok_or(Failure::failed(EINVAL))?;
        let clear_on_free = tr.flags & TF_CLEAR_BUF != 0;
        // As C's `extra_buffers_size`, the extra size counts the context's slot with the
        // scatter-gather room. A size that does not fit a `u32` fails the reservation, so its
        // label is never kept.
        let extra_room = extra.saturating_add(secctx_room);
        let label = BufferLabel {
            debug_id,
            data_size: u32::try_from(data_size).unwrap_or(u32::MAX),
            offsets_size: u32::try_from(offsets_size).unwrap_or(u32::MAX),
            extra_size: u32::try_from(extra_room).unwrap_or(u32::MAX),
        };
        trace::binder_transaction(
            id as i32,
            node.map_or(0, |node| node.debug_id() as i32),
            to.pid(),
            to_tid,
            is_reply.into(),
            tr.code,
            tr.flags,
        );
        // The range's strong reference on its target is taken before the range is reserved, as
        // in C, and goes with the range; given back here if none is reserved.
        if let Some(node) = node {
            to.count_local(node, true);
        }
        let oneway = node.is_some() && tr.flags & TF_ONE_WAY != 0;
        let reserved = to.reserve_buffer(size, node.cloned(), oneway, clear_on_free, label);
        let (range, view, oneway_spam_suspect) = reserved.map_err(|err| {
            if let Some(node) = node {
                to.uncount_local(node.clone());
            }
            if err == ESRCH {
                Failure::dead(ESRCH)
            } else {
                Failure::failed(err)
            }
        })?;
        let extra_room = usize::try_from(extra_room).unwrap_or(usize::MAX);
        trace::binder_transaction_alloc_buf(id as i32, data_size, offsets_size, extra_room);
        // Where the scatter-gather buffers' pointers point to.
        let address = range.user_address();
        // Cannot fail: a mapping is at most 4 MiB (see the fields), and the range holds the
        // data and the offsets.
        let within_area = |value: usize| u32::try_from(value).map_err(|_| Failure::failed(EINVAL));
        let buffer_offset = within_area(range.offset())?;
        let (small_data_size, small_offsets_size) =
            (within_area(data_size)?, within_area(offsets_size)?);
        let buffers = ScatterGather::new(address, data_size, offsets_size, buffers_size)
            .map_err(Failure::failed)?;
        let mut translation = Translation {
            debug_id: id,
            from: from_process,
            thread: sender,
            to: &to,
            held: HeldRefs::new(),
            accept_fds,
            files: FirstInline::new(),
            buffers,
            left: offsets_size / size_of::<u64>(),
        };
        if let Err(err) = translation.fill(&view, tr, data_size, offsets_size, extra) {
            // Dropping `range` gives it back and releases its references, the target's first,
            // as C does; dropping the translation gives back the files taken.
            range.hold(translation.held);
            return Err(if err == ESRCH {
                Failure::dead(err)
            } else {
                Failure::failed(err)
            });
        }
        range.hold(translation.held);
        // INVARIANT: There is a context exactly when the target node asked for one.
        let secctx_at = match &secctx {
            Some(ctx) => {
                let offset = usize::try_from(before_secctx).map_err(|_| Failure::failed(EINVAL))?;
                view.write(offset, ctx.as_bytes())
                    .map_err(Failure::failed)?;
                within_area(offset)?
            }
            None => 0,
        };
        drop(secctx);
        // The reader writes its fds into the buffer; only then does it need the pages.
        let files = if translation.files.is_empty() {
            None
        } else {
            let carried = CarriedFiles {
                files: translation.files,
                view,
            };
            let boxed = to.files_box.boxed(carried);
            Some(boxed.map_err(|err| Failure::failed(err.into()))?)
        };
        let to_parent = LockedBy::new(to.inner_lock(), None);
        Work::new_pinned(try_pin_init!(Self {
            _census: Counted::new(Kind::Transaction),
            from,
            from_parent,
            to_parent,
            from_process: from_process.into(),
            to,
            target: node.cloned(),
            code: tr.code,
            flags: tr.flags,
            sender_euid: Kuid::current_euid(),
            priority: priority::current_nice(),
            min_priority: node.map_or(0, |node| node.min_priority()),
            saved_priority: Atomic::new(0),
            data_size: small_data_size,
            offsets_size: small_offsets_size,
            secctx_at,
            oneway_spam_suspect,
            outstanding: Atomic::new(false),
            payload <- new_spinlock!(
                Some(Undelivered { range, files }),
                "Transaction::payload"
            ),
            debug_id,
            from_tid: sender.id,
            start: Instant::now(),
            to_tid: Atomic::new(to_tid),
            buffer_offset,
        }))
        .map_err(Failure::failed)
    }

    /// Drops the transaction undelivered: its caller, if it has one, reads `BR_DEAD_REPLY`,
    /// and its files go. Its range is freed with the references its objects took, unless
    /// `keep_range`: dropped from the list of a thread that leaves, the C driver
    /// leaves the buffer allocated in the receiver, with those handles and node references,
    /// until the receiver is released ([`ReservedBuffer::abandon`]).
    ///
    /// [`ReservedBuffer::abandon`]: crate::allocation::ReservedBuffer::abandon
    fn drop_undelivered(&self, keep_range: bool) {
        binder_debug!(
            mask::DEAD_TRANSACTION,
            "undelivered transaction {}\n",
            self.debug_id
        );
        // The spinlock guard goes at the end of the statement, before the range is touched:
        // that takes the buffer's mutex.
        let payload = self.payload.lock().take();
        if let Some(Undelivered { range, files }) = payload {
            if keep_range {
                range.abandon();
            }
            drop(files);
        }
        self.fail_caller(BR_DEAD_REPLY, None);
    }

    /// Gives the reading thread (the current task) the priority this call or one-way
    /// transaction carries, as C does; the reader's own is kept for the reply.
    fn inherit_priority(&self) {
        let own = priority::current_nice();
        self.saved_priority.store(own, Relaxed);
        let oneway = self.is_oneway();
        let (caller, minimum) = (i32::from(self.priority), i32::from(self.min_priority));
        if !oneway && caller < minimum {
            priority::set_nice(caller);
        } else if !oneway || i32::from(own) > minimum {
            priority::set_nice(minimum);
        }
    }

    /// Whether `thread` sent this transaction.
    pub(crate) fn is_sent_by(&self, thread: &Thread) -> bool {
        self.from
            .as_deref()
            .is_some_and(|from| core::ptr::eq(from, thread))
    }

    /// What the log files show of the transaction.
    pub(crate) fn log_view(&self) -> LogView<'_> {
        LogView {
            debug_id: self.debug_id,
            address: core::ptr::from_ref(self).cast(),
            from: (self.from_process.pid(), self.from_tid),
            to: &self.to,
            to_thread: self.to_tid.load(Relaxed),
            code: self.code,
            flags: self.flags,
            priority: self.priority.into(),
            is_async: self.is_oneway(),
            is_reply: self.is_reply(),
            elapsed_ms: self.start.elapsed().as_millis(),
            node: self.target.as_ref().map_or(0, |node| node.debug_id()),
            sizes: (self.data_size.into(), self.offsets_size.into()),
            buffer_offset: self.buffer_offset as usize,
        }
    }

    /// Whether `thread` read this transaction (it is on its stack as a received call).
    pub(crate) fn is_read_by(&self, thread: &Thread) -> bool {
        self.to_tid.load(Relaxed) == thread.id
    }

    /// The frame below this call on its sender's stack, borrowed.
    pub(crate) fn sender_parent(&self) -> Option<&Transaction> {
        self.from_parent.as_deref().map(|parent| &parent.item)
    }

    /// The frame below this call on its reader's stack; `inner` is the reader's state.
    pub(crate) fn reader_parent<'a>(&'a self, inner: &'a ProcessInner) -> Option<&'a Transaction> {
        self.to_parent
            .access(inner)
            .as_deref()
            .map(|parent| &parent.item)
    }

    /// The frame below this call on its sender's stack.
    pub(crate) fn parent_of_sent(&self) -> Option<TransactionArc> {
        self.from_parent.clone()
    }

    /// This call and the calls below it on the stacks of their senders: the chain of calls
    /// that led to this one.
    pub(crate) fn call_chain(&self) -> impl Iterator<Item = &Transaction> {
        core::iter::successors(Some(self), |call| call.sender_parent())
    }

    /// The calling thread of a call, unless it has left the driver: the C driver forgets the
    /// sender of the calls on a leaving thread's stack (`t->from`).
    fn live_caller(&self) -> Option<&Arc<Thread>> {
        self.from.as_ref().filter(|from| !from.is_dead())
    }

    /// The calling thread, if it belongs to `process` and has not left the driver.
    pub(crate) fn caller_in(&self, process: &Process) -> Option<Arc<Thread>> {
        let from = self.live_caller()?;
        core::ptr::eq(&*self.from_process, process).then(|| from.clone())
    }

    /// The call will get no reply: the caller reads `code` (`BR_DEAD_REPLY` when the
    /// receiving side went away). `error` (the failed reply's debug id and its negative
    /// errno, or 0) goes into the caller's extended error, unless that holds an error already.
    ///
    /// A caller that has left the driver cannot be told; as in the C driver, the failure
    /// then goes down the chain, to the caller of the call that caller was answering (with
    /// no extended error), until a caller that is still there, or the end of the chain.
    pub(crate) fn fail_caller(&self, code: u32, error: Option<(u32, i32)>) {
        let mut error = error;
        let mut call = self;
        loop {
            let told = call.from.as_ref().is_some_and(|caller| {
                caller.deliver_failure(&call.from_process, call, code, error.take())
            });
            call.finished();
            match call.sender_parent() {
                Some(parent) if !told => call = parent,
                _ => break,
            }
        }
    }

    /// Whether the transaction is a reply: the only kind without a target node.
    pub(crate) fn is_reply(&self) -> bool {
        self.target.is_none()
    }

    /// Whether the transaction is one-way.
    pub(crate) fn is_oneway(&self) -> bool {
        self.flags & TF_ONE_WAY != 0
    }

    /// Whether the transaction may replace an outdated one (`TF_UPDATE_TXN`, one-way).
    pub(crate) fn updates_outdated(&self) -> bool {
        self.flags & (TF_ONE_WAY | TF_UPDATE_TXN) == TF_ONE_WAY | TF_UPDATE_TXN
    }

    /// Whether this queued one-way transaction is made outdated by `newer`, as the C driver
    /// decides: both ask for it, and they go to the same node with the same code and flags
    /// from the same thread group.
    pub(crate) fn is_outdated_by(&self, newer: &Transaction) -> bool {
        self.updates_outdated()
            && newer.updates_outdated()
            && core::ptr::eq::<Process>(&*self.to, &*newer.to)
            && self.code == newer.code
            && self.flags == newer.flags
            && self.from_process.same_task_group(&newer.from_process)
            && self
                .target
                .as_ref()
                .zip(newer.target.as_ref())
                .is_some_and(|(node, newer_node)| Arc::ptr_eq(node, newer_node))
    }

    /// Where in the buffer the sender's security context is, if the target node asked for it:
    /// every transaction to such a node carries one.
    fn secctx_offset(&self) -> Option<u32> {
        let node = self.target.as_ref()?;
        node.wants_security_context().then_some(self.secctx_at)
    }

    /// Counts the transaction as outstanding for its receiver, whose state `inner` is.
    pub(crate) fn mark_outstanding(&self, inner: &mut ProcessInner) {
        inner.count_outstanding();
        self.outstanding.store(true, Relaxed);
    }

    /// Takes the transaction's outstanding mark; returns whether it had one. The caller
    /// uncounts it.
    pub(crate) fn take_outstanding(&self) -> bool {
        self.outstanding.xchg(false, Relaxed)
    }

    /// The receiver is finished with the transaction (a call was answered or failed, a
    /// one-way transaction or a reply read or dropped): it is no longer outstanding.
    ///
    /// Takes the receiver's `inner` lock, if the mark is still there.
    pub(crate) fn finished(&self) {
        if self.take_outstanding() {
            self.to.transaction_finished();
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Transaction {
    fn drop(self: Pin<&mut Self>) {
        // Every path that ends a transaction has done this already. A payload still here
        // goes with the fields, right after this.
        self.finished();
        // The C driver forgets a call's sender when the call leaves the sender's stack, which
        // it has by now (the stack holds a reference): the sender is 0:0 here too.
        let to = (self.to.pid(), self.to_tid.load(Relaxed));
        trace::binder_txn_latency_free(
            self.debug_id as i32,
            0,
            0,
            to.0,
            to.1,
            self.code,
            self.flags,
        );
    }
}

impl Deliver for Transaction {
    /// Writes `BR_TRANSACTION` (or `BR_REPLY`) for the reader. Only once the returns are
    /// written is the buffer handed over (and `BC_FREE_BUFFER` allowed on it) and a call put
    /// on the reader's stack; if they cannot be written, the transaction fails instead, as in
    /// the C driver: a caller reads `BR_FAILED_REPLY`. Unlike C, which keeps such a buffer
    /// (and a one-way node's queue behind it) until the process closes the device, the
    /// buffer goes back: a deliberate difference, in the README.
    ///
    /// The files the transaction carries get fds in the reader first, their numbers written
    /// into the buffer; they are installed once the returns are written. If the reader cannot
    /// have that many fds, the transaction fails as in C: a caller reads `BR_FAILED_REPLY`
    /// and the reader goes on with its other work; a reply's reader reads `BR_FAILED_REPLY`
    /// in its place.
    fn deliver(
        &self,
        this: &Arc<Work<dyn Deliver>>,
        thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow> {
        let t = self;
        // A one-way transaction or reply is finished with once read; a call when answered.
        if t.from.is_none() {
            t.finished();
        }
        let Some(Undelivered { range, files }) = t.payload.lock().take() else {
            return Ok(Flow::Continue);
        };
        let buffer = range.user_address();
        if !t.is_reply() {
            t.inherit_priority();
        }
        // The box goes back to the reader's process for the next files sent to it.
        let carried = files.and_then(|mut boxed| {
            let carried = boxed.take();
            t.to.files_box.give_back(boxed);
            carried
        });
        let fds = match carried {
            Some(CarriedFiles { files, view }) => match Reserved::new(files, &view, t.debug_id) {
                Ok(fds) => Some(fds),
                Err(err) => {
                    binder_debug!(
                        mask::DEAD_TRANSACTION,
                        "transaction undelivered: no fds for its files ({:?})\n",
                        err
                    );
                    range.give_back_undelivered();
                    if t.is_reply() {
                        out.put_code(BR_FAILED_REPLY)?;
                        return Ok(Flow::Return);
                    }
                    t.fail_caller(BR_FAILED_REPLY, None);
                    return Ok(Flow::Continue);
                }
            },
            None => None,
        };
        // Zeroed rather than `Default`: the uapi crate's `Default` is not linkable from a
        // module.
        let mut tr: uapi::binder_transaction_data = pin_init::zeroed();
        tr.code = t.code;
        tr.flags = t.flags;
        tr.sender_euid = t.sender_euid.into_uid_in_current_ns();
        tr.data_size = t.data_size.into();
        tr.offsets_size = t.offsets_size.into();
        if let Some(node) = &t.target {
            tr.target.ptr = node.ptr();
            tr.cookie = node.cookie();
        }
        tr.data.ptr.buffer = buffer;
        tr.data.ptr.offsets = buffer.saturating_add(align8(t.data_size.into()).unwrap_or(0));
        // A call (not a reply, not one-way) names its sender and waits for this thread's reply;
        // as in C, a call whose sending thread has left the driver names no sender.
        if t.live_caller().is_some() {
            tr.sender_pid = t.from_process.pid_in_current_ns();
        }
        let written = match t.secctx_offset() {
            Some(offset) => out.put_code(BR_TRANSACTION_SEC_CTX).and_then(|()| {
                out.put(&TransactionDataSecctx(
                    uapi::binder_transaction_data_secctx {
                        transaction_data: tr,
                        secctx: buffer.saturating_add(offset.into()),
                    },
                ))
            }),
            None => out
                .put_code(if t.is_reply() {
                    BR_REPLY
                } else {
                    BR_TRANSACTION
                })
                .and_then(|()| out.put(&TransactionData(tr))),
        };
        if let Err(err) = written {
            binder_debug!(
                mask::DEAD_TRANSACTION,
                "transaction undelivered: its returns could not be written\n"
            );
            range.give_back_undelivered();
            t.fail_caller(BR_FAILED_REPLY, None);
            return Err(err);
        }
        trace::binder_transaction_received(t.debug_id as i32);
        let array_fds = fds.and_then(Reserved::install);
        range.deliver(array_fds);
        t.to_tid.store(thread.id, Relaxed);
        if t.from.is_some() {
            if let Some(call) = Work::downcast::<Transaction>(this) {
                thread.push_received(&t.to, call);
            }
        }
        Ok(Flow::Return)
    }

    fn is_transaction(&self) -> bool {
        true
    }

    fn as_transaction(&self) -> Option<&Transaction> {
        Some(self)
    }

    fn cancel(&self) {
        self.drop_undelivered(false);
    }

    fn abandon(&self) {
        self.drop_undelivered(true);
    }
}

impl Deliver for Complete {
    fn describe(&self, _inner: &ProcessInner) -> Described<'_> {
        if self.withdrawn.load(Relaxed) {
            Described::Nothing
        } else {
            Described::Complete
        }
    }

    fn deliver(
        &self,
        _this: &Arc<Work<dyn Deliver>>,
        _thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow> {
        self.settle();
        if self.withdrawn.load(Relaxed) {
            return Ok(Flow::Continue);
        }
        out.put_code(self.code.load(Relaxed))?;
        Ok(Flow::Continue)
    }

    fn cancel(&self) {
        self.settle();
    }
}

impl Translation<'_> {
    /// Fills the range in `view`: the payload's data and offsets copied from the sender's
    /// memory, and the objects translated.
    fn fill(
        &mut self,
        view: &RangeView,
        tr: &uapi::binder_transaction_data,
        data_size: usize,
        offsets_size: usize,
        extra: u64,
    ) -> Result {
        // SAFETY: Both members of the union are integers, so reading either is always valid.
        let (data_ptr, offsets_ptr) = unsafe { (tr.data.ptr.buffer, tr.data.ptr.offsets) };
        // The data in one copy. If some of it cannot be read, it is copied again piece by
        // piece as the objects are translated, as C copies it, so that the error is C's. An
        // empty part is no call at all (an empty copy cannot fail): small calls often have no
        // data, and most have no objects.
        let data_copied = data_size == 0 || view.copy_from_user(0, data_ptr, data_size).is_ok();
        let offsets_start = data_size.checked_next_multiple_of(8).ok_or(EINVAL)?;
        if offsets_size > 0 {
            view.copy_from_user(offsets_start, offsets_ptr, offsets_size)?;
        }
        // The C driver checks the sizes in this order, after copying the offsets.
        if offsets_size % size_of::<u64>() != 0 || extra % 8 != 0 {
            return Err(EINVAL);
        }
        let uncopied = (!data_copied).then_some(data_ptr);
        self.translate_all(view, uncopied, data_size, offsets_size)
    }
}
