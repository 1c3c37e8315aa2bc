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
//! Not yet here: objects in the payload (a transaction with `offsets_size` other than 0 gets
//! `BR_FAILED_REPLY`), and nested calls.

use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_spinlock,
        Arc,
        SpinLock, //
    },
    task::Kuid,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};

use crate::{
    allocation::BufferRange,
    defs::{
        TransactionData,
        BR_DEAD_REPLY,
        BR_FAILED_REPLY,
        BR_REPLY,
        BR_TRANSACTION,
        TF_ONE_WAY, //
    },
    node::Node,
    process::{
        Process,
        Recipient, //
    },
    refs::MANAGER_HANDLE,
    thread::Thread,
    work::{
        Deliver,
        Flow,
        Work, //
    },
    write_read::Returns,
};

/// The last debug id handed out; the C driver numbers its transactions the same way, and
/// `BINDER_GET_EXTENDED_ERROR` reports the number of the one that failed.
static LAST_DEBUG_ID: Atomic<u32> = Atomic::new(0);

/// A fresh debug id.
fn next_debug_id() -> u32 {
    LAST_DEBUG_ID.fetch_add(1, Relaxed).wrapping_add(1)
}

/// Why a transaction failed: the return the sender reads, and the errno behind it.
struct Failure {
    code: u32,
    errno: Error,
}

impl Failure {
    fn failed(errno: Error) -> Self {
        Self {
            code: BR_FAILED_REPLY,
            errno,
        }
    }

    fn dead(errno: Error) -> Self {
        Self {
            code: BR_DEAD_REPLY,
            errno,
        }
    }
}

/// A transaction or reply on its way, or a call delivered and awaiting its reply.
#[pin_data(PinnedDrop)]
pub(crate) struct Transaction {
    /// The sending thread of a synchronous call: the reply goes back to it.
    from: Option<Arc<Thread>>,
    /// The sending process.
    from_process: Arc<Process>,
    /// The receiving process; the payload is in its receive buffer.
    to: Arc<Process>,
    /// The target node's pointer and cookie, as its owner knows it (zero for a reply).
    target: (u64, u64),
    code: u32,
    flags: u32,
    /// The sender's effective uid when it sent.
    sender_euid: Kuid,
    data_size: u64,
    offsets_size: u64,
    is_reply: bool,
    /// The payload's range, until it is delivered.
    #[pin]
    buffer: SpinLock<Option<BufferRange>>,
}

/// A [`Transaction`] on a todo list.
struct Delivery(Arc<Transaction>);

/// `BR_TRANSACTION_COMPLETE`: the sender's transaction was accepted.
pub(crate) struct Complete;

impl Thread {
    /// Carries out `BC_TRANSACTION` (or, with `reply`, `BC_REPLY`) described by `tr`.
    pub(crate) fn transaction(
        self: &Arc<Self>,
        process: &Arc<Process>,
        tr: &TransactionData,
        reply: bool,
    ) -> Result {
        let id = next_debug_id();
        let outcome = if reply {
            self.reply(process, tr)
        } else {
            self.send(process, tr)
        };
        if let Err(failure) = outcome {
            pr_debug!("transaction {} failed: {}\n", id, failure.errno.to_errno());
            self.transaction_failed(process, id, failure.code, failure.errno);
        }
        Ok(())
    }

    /// A transaction to a node: a call, which the thread then waits to have answered, or
    /// with `TF_ONE_WAY` a one-way transaction, delivered in turn with the node's others.
    fn send(self: &Arc<Self>, process: &Arc<Process>, tr: &TransactionData) -> Result<(), Failure> {
        let oneway = tr.0.flags & TF_ONE_WAY != 0;
        let node = self.find_target(process, tr.target_handle())?;
        let from = (!oneway).then(|| self.clone());
        let t = Transaction::new(from, process, node.owner().clone(), Some(&node), tr, false)?;
        let item = Work::new_item(Delivery(t.clone())).map_err(Failure::failed)?;
        // A call's BR_TRANSACTION_COMPLETE comes with its reply; a one-way's comes now.
        let (complete, recipient) = if oneway {
            let complete = Work::new_item(Complete).map_err(Failure::failed)?;
            (Some(complete), Recipient::Oneway(&node))
        } else {
            (None, Recipient::Process)
        };
        // On failure, dropping `t` gives its buffer back.
        t.to.push_work(item, recipient)
            .map_err(|_| Failure::dead(ESRCH))?;
        if let Some(complete) = complete {
            let _ = process.push_work(complete, Recipient::Thread(self));
        }
        Ok(())
    }

    /// A reply to the call this thread received last.
    fn reply(
        self: &Arc<Self>,
        process: &Arc<Process>,
        tr: &TransactionData,
    ) -> Result<(), Failure> {
        let call = self
            .take_received_call(process)
            .ok_or(Failure::failed(EPROTO))?;
        let Some(caller) = call.from.clone() else {
            return Err(Failure::failed(EPROTO));
        };
        let to = call.from_process.clone();
        let reply = Transaction::new(None, process, to, None, tr, true)?;
        let item = Work::new_item(Delivery(reply.clone())).map_err(Failure::failed)?;
        let caller_complete = Work::new_item(Complete).map_err(Failure::failed)?;
        let own_complete = Work::new_item(Complete).map_err(Failure::failed)?;
        // On failure, dropping `reply` gives its buffer back.
        if !caller.deliver_reply(&call.from_process, caller_complete, item) {
            return Err(Failure::dead(ESRCH));
        }
        let _ = process.push_work(own_complete, Recipient::Thread(self));
        Ok(())
    }

    /// Finds the node that `handle` names for `process`, as the C driver does: handle 0 is
    /// the context manager (`BR_DEAD_REPLY` without one), any other handle needs a strong
    /// reference (`BR_FAILED_REPLY` without).
    fn find_target(&self, process: &Arc<Process>, handle: u32) -> Result<Arc<Node>, Failure> {
        let node = if handle == MANAGER_HANDLE {
            let node = process
                .context
                .manager_node()
                .ok_or(Failure::dead(EINVAL))?;
            if node.is_owned_by(process) {
                return Err(Failure::failed(EINVAL));
            }
            node
        } else {
            process
                .strong_ref_target(handle)
                .ok_or(Failure::failed(EINVAL))?
        };
        Ok(node)
    }
}

/// Rounds `n` up to a multiple of 8, the alignment of each part of a transaction buffer.
fn align8(n: u64) -> Option<u64> {
    n.checked_add(7).map(|n| n & !7)
}

impl Transaction {
    /// Creates a transaction from `from_process` to `to` and copies its payload into `to`'s
    /// receive buffer.
    fn new(
        from: Option<Arc<Thread>>,
        from_process: &Arc<Process>,
        to: Arc<Process>,
        node: Option<&Arc<Node>>,
        tr: &TransactionData,
        is_reply: bool,
    ) -> Result<Arc<Self>, Failure> {
        let tr = &tr.0;
        if tr.offsets_size != 0 {
            // Objects come with the next step of the IPC engine.
            return Err(Failure::failed(EINVAL));
        }
        let size = align8(tr.data_size)
            .and_then(|data| data.checked_add(align8(tr.offsets_size)?))
            .and_then(|size| usize::try_from(size).ok())
            .ok_or(Failure::failed(EINVAL))?;
        let data_size = usize::try_from(tr.data_size).map_err(|_| Failure::failed(EINVAL))?;
        // SAFETY: Both members of the union are integers, so reading either is always valid.
        let data_ptr = unsafe { tr.data.ptr.buffer };
        let data_addr = usize::try_from(data_ptr).map_err(|_| Failure::failed(EFAULT))?;
        let mut reader = UserSlice::new(UserPtr::from_addr(data_addr), data_size).reader();
        let async_node = match (is_reply, tr.flags & TF_ONE_WAY != 0, node) {
            (false, true, Some(node)) => Some(node.clone()),
            _ => None,
        };
        let range = to
            .reserve_buffer(size, &mut reader, data_size, async_node)
            .map_err(|err| match err {
                e if e == ESRCH => Failure::dead(ESRCH),
                e => Failure::failed(e),
            })?;
        let target = node.map_or((0, 0), |node| (node.ptr(), node.cookie()));
        Arc::pin_init(
            try_pin_init!(Self {
                from,
                from_process: from_process.clone(),
                to,
                target,
                code: tr.code,
                flags: tr.flags,
                sender_euid: Kuid::current_euid(),
                data_size: tr.data_size,
                offsets_size: tr.offsets_size,
                is_reply,
                buffer <- new_spinlock!(Some(range), "Transaction::buffer"),
            }),
            GFP_KERNEL,
        )
        .map_err(Failure::failed)
    }

    /// Gives the payload's range back, if the transaction was never delivered.
    fn release_buffer(&self) {
        // The spinlock guard must be gone before the buffer's mutex is taken.
        let range = self.buffer.lock().take();
        if let Some(range) = range {
            self.to.release_buffer(range);
        }
    }

    /// The call will get no reply: the caller reads BR_DEAD_REPLY.
    pub(crate) fn fail_caller(&self) {
        if let Some(caller) = &self.from {
            let complete = Work::new_item(Complete).ok();
            caller.deliver_failure(&self.from_process, BR_DEAD_REPLY, complete);
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Transaction {
    fn drop(self: Pin<&mut Self>) {
        self.release_buffer();
    }
}

impl Deliver for Delivery {
    fn deliver(&self, thread: &Thread, out: &mut Returns) -> Result<Flow> {
        let t = &self.0;
        let Some(range) = t.buffer.lock().take() else {
            return Ok(Flow::Continue);
        };
        let buffer = t.to.deliver_buffer(range);
        // Zeroed rather than `Default`: the uapi crate's `Default` is not linkable from a
        // module.
        let mut tr: uapi::binder_transaction_data = pin_init::zeroed();
        tr.code = t.code;
        tr.flags = t.flags;
        tr.sender_euid = t.sender_euid.into_uid_in_current_ns();
        tr.data_size = t.data_size;
        tr.offsets_size = t.offsets_size;
        tr.target.ptr = t.target.0;
        tr.cookie = t.target.1;
        tr.data.ptr.buffer = buffer;
        tr.data.ptr.offsets = buffer.saturating_add(align8(t.data_size).unwrap_or(0));
        // A call (not a reply, not one-way) names its sender and waits for this thread's reply.
        if t.from.is_some() {
            tr.sender_pid = t.from_process.pid_in_current_ns();
            thread.push_received_call(&t.to, t.clone());
        }
        out.put_code(if t.is_reply { BR_REPLY } else { BR_TRANSACTION })?;
        out.put(&TransactionData(tr))?;
        Ok(Flow::Return)
    }

    fn cancel(&self) {
        self.0.release_buffer();
        self.0.fail_caller();
    }
}

impl Deliver for Complete {
    fn deliver(&self, _thread: &Thread, out: &mut Returns) -> Result<Flow> {
        out.put_code(crate::defs::BR_TRANSACTION_COMPLETE)?;
        Ok(Flow::Continue)
    }
}
