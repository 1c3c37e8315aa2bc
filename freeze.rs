// SPDX-License-Identifier: GPL-2.0

//! Freezing: `BINDER_FREEZE`, `BINDER_GET_FROZEN_INFO` and freeze notifications.
//!
//! A frozen process takes no calls: its callers read `BR_FROZEN_REPLY`. One-way transactions
//! are queued for it as usual (and its threads woken, as in the C driver: the process is
//! normally frozen by its cgroup as well, so it does not read), and their senders read
//! `BR_TRANSACTION_PENDING_FROZEN`. A freeze fails with `EAGAIN`, leaving the process thawed,
//! while transactions to it are outstanding after the timeout, or while one of its threads is
//! in a call.
//!
//! A holder of a handle may ask to hear when the process owning the node is frozen or thawed
//! (`BC_REQUEST_FREEZE_NOTIFICATION`). It reads the state at once (`BR_FROZEN_BINDER`), and
//! again after every freeze or thaw that succeeds, but never more than one report awaits its
//! `BC_FREEZE_NOTIFICATION_DONE`: a change meanwhile is reported after the done.
//! `BC_CLEAR_FREEZE_NOTIFICATION` withdraws the request, confirmed with
//! `BR_CLEAR_FREEZE_NOTIFICATION_DONE` (after the done of a report awaiting one). Unlike
//! death notifications, misuse fails the ioctl with `EINVAL`, as in the C driver.
//!
//! A request lives in three places: on its handle (`NodeRef::freeze`) while it is active, in
//! its holder's tree of requests (`ProcessInner::freeze_listeners`) until it is finished, and
//! among the owner's watchers ([`Process`]'s `freeze_watchers`) while it is active and the
//! owner lives. Its state is guarded by the holder's `inner` lock; the owner's watchers by
//! their own mutex, taken before any `inner` lock.

use kernel::{
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        Arc,
        ArcBorrow,
        CondVarTimeoutResult,
        LockedBy, //
    },
    time::msecs_to_jiffies,
};

use crate::{
    census::{
        Counted,
        Kind, //
    },
    defs::{
        FreezeInfo,
        FrozenStateInfo,
        FrozenStatusInfo,
        BR_CLEAR_FREEZE_NOTIFICATION_DONE,
        BR_FROZEN_BINDER, //
    },
    process::{
        Process,
        ProcessInner, //
    },
    registry,
    thread::Thread,
    work::{
        Deliver,
        Described,
        Flow,
        Work, //
    },
    write_read::Returns,
};

/// `BINDER_FREEZE`: freezes or thaws every process of `info.pid`, newest first, stopping at
/// the first that fails (the ones frozen before it stay frozen, as in the C driver). `EINVAL`
/// if the pid has no binder process. Returns what the ioctl returns (see [`Failed::Raw`]).
pub(crate) fn freeze(info: &FreezeInfo) -> Result<isize> {
    let targets = registry::processes_of(info.0.pid)?;
    let mut result = Ok(());
    for target in targets.iter() {
        result = target.freeze(info.0.enable != 0, info.0.timeout_ms);
        if result.is_err() {
            break;
        }
    }
    drop(targets);
    match result {
        Ok(()) => Ok(0),
        Err(Failed::Errno(err)) => Err(err),
        Err(Failed::Raw(value)) => Ok(value as isize),
    }
}

/// The lowest errno is `-MAX_ERRNO`, as in the kernel.
const MAX_ERRNO: i32 = 4095;

/// Why a freeze failed.
enum Failed {
    /// With an errno.
    Errno(Error),
    /// With the negative number C's wait left in its `int`, too low to be an errno: the C
    /// driver's ioctl returns it as it is, which userspace takes for a result, not an error.
    Raw(i32),
}

impl From<Error> for Failed {
    fn from(err: Error) -> Self {
        Failed::Errno(err)
    }
}

/// `BINDER_GET_FROZEN_INFO`: what the processes of `info.pid` received since they were last
/// frozen or thawed, and whether transactions are pending; `EINVAL` if there is none.
pub(crate) fn frozen_info(info: &mut FrozenStatusInfo) -> Result {
    let (mut sync_recv, mut async_recv) = (0, 0);
    registry::for_each_of(info.0.pid, |process| {
        let inner = process.inner_lock().lock();
        sync_recv |=
            u32::from(inner.sync_received()) | (u32::from(inner.has_pending_transactions()) << 1);
        async_recv |= u32::from(inner.async_received());
    })?;
    info.0.sync_recv = sync_recv;
    info.0.async_recv = async_recv;
    Ok(())
}

impl Process {
    /// Freezes (`enable`) or thaws this process, as [`freeze`] asks. A freeze waits up to
    /// `timeout_ms` for the outstanding transactions to finish; a signal ends the wait
    /// (`ERESTARTSYS`). The holders that asked hear of a freeze or thaw that succeeded.
    fn freeze(&self, enable: bool, timeout_ms: u32) -> Result<(), Failed> {
        let mut inner = self.inner_lock().lock();
        inner.set_frozen(enable);
        if !enable {
            drop(inner);
            self.notify_freeze_watchers(false);
            self.recheck_nodes();
            return Ok(());
        }
        let mut result = Ok(());
        if timeout_ms > 0 {
            let mut left = msecs_to_jiffies(timeout_ms);
            loop {
                if inner.outstanding_transactions() == 0 {
                    // C's wait returns the jiffies left and the C driver keeps them in an
                    // `int`: from 2^31 ms on, the timeout is `MAX_JIFFY_OFFSET`, and the low
                    // half of what is left reads as a negative number, which C returns as an
                    // error (`ENOENT` at once), leaving the process thawed. So does this.
                    let kept = left as u32 as i32;
                    if kept < 0 {
                        result = Err(if kept >= -MAX_ERRNO {
                            Failed::Errno(Error::from_errno(kept))
                        } else {
                            Failed::Raw(kept)
                        });
                    }
                    break;
                }
                match self
                    .freeze_wait()
                    .wait_interruptible_timeout(&mut inner, left)
                {
                    CondVarTimeoutResult::Timeout => break,
                    CondVarTimeoutResult::Signal { .. } => {
                        result = Err(ERESTARTSYS.into());
                        break;
                    }
                    CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                }
            }
        }
        if result.is_ok() && inner.has_pending_transactions() {
            result = Err(EAGAIN.into());
        }
        if result.is_err() {
            inner.cancel_freeze();
            return result;
        }
        drop(inner);
        self.notify_freeze_watchers(true);
        self.recheck_nodes();
        Ok(())
    }

    /// Tells every holder that asked that this process was frozen or thawed: a request with
    /// nothing queued or awaiting its done is queued with the new state; one queued already
    /// will report the new state; one awaiting its done is sent again after it, if the state
    /// differs from the last one it was to report. They are visited in the order of their
    /// nodes' pointers (see [`Watchers::list`]).
    fn notify_freeze_watchers(&self, frozen: bool) {
        let watchers = self.freeze_watchers().lock();
        for Watched { listener, .. } in watchers.list.iter() {
            let mut inner = listener.holder.inner_lock().lock();
            if inner.is_dead() {
                continue;
            }
            let state = listener.state.access_mut(&mut inner);
            if state.cleared || state.gone {
                continue;
            }
            if state.queued || state.sent {
                if state.sent && state.is_frozen != frozen {
                    state.resend = true;
                }
                state.is_frozen = frozen;
            } else {
                state.is_frozen = frozen;
                FreezeListener::queue(listener, &mut inner);
            }
        }
    }

    /// Takes `listener` off this process's watchers (it was withdrawn, or its handle or
    /// holder is gone).
    pub(crate) fn forget_freeze_watcher(&self, listener: &Arc<Work<FreezeListener>>) {
        let mut watchers = self.freeze_watchers().lock();
        let removed = match watchers
            .list
            .iter()
            .position(|watched| Arc::ptr_eq(&watched.listener, listener))
        {
            Some(index) => watchers.list.remove(index).ok(),
            None => None,
        };
        drop(watchers);
        drop(removed);
    }

    /// Closes the watchers when this process is released: nothing reports on its nodes any
    /// more, and a request made from now on reports nothing. Returns them for the caller to
    /// drop.
    pub(crate) fn close_freeze_watchers(&self) -> KVec<Watched> {
        let mut watchers = self.freeze_watchers().lock();
        watchers.closed = true;
        core::mem::take(&mut watchers.list)
    }

    /// `BC_REQUEST_FREEZE_NOTIFICATION`: asks to hear when the process owning the node behind
    /// `handle` (weak or strong) is frozen or thawed. Answered at once with the current state,
    /// unless the owner is gone. `EINVAL` for an unknown handle or one with a request already.
    pub(crate) fn request_freeze_notification(
        self: ArcBorrow<'_, Self>,
        handle: u32,
        cookie: u64,
    ) -> Result {
        let listener = FreezeListener::new(self, cookie)?;
        let slot = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let node = match self.inner_lock().lock().refs_mut().get_mut(handle) {
            Some(node_ref) if node_ref.freeze.is_none() => node_ref.node.clone(),
            Some(_) => {
                crate::debug::binder_user_error!(
                    "freeze notification already requested on handle {}\n",
                    handle
                );
                return Err(EINVAL);
            }
            None => {
                crate::debug::binder_user_error!(
                    "freeze notification on invalid handle {}\n",
                    handle
                );
                return Err(EINVAL);
            }
        };
        let (owner, node_ptr) = (node.owner(), node.ptr());
        // The owner's watchers are locked from reading its state to adding the request, so
        // that a freeze or thaw meanwhile is reported after the state read here.
        let mut watchers = owner.freeze_watchers().lock();
        let frozen = if watchers.closed {
            None
        } else {
            watchers.list.reserve(1, GFP_KERNEL)?;
            Some(owner.inner_lock().lock().is_frozen())
        };
        let mut inner = self.inner_lock().lock();
        match inner.refs_mut().get_mut(handle) {
            Some(node_ref) if node_ref.freeze.is_none() && Arc::ptr_eq(&node_ref.node, &node) => {
                node_ref.freeze = Some(listener.clone());
            }
            // Another thread changed the handle meanwhile.
            _ => return Err(EINVAL),
        }
        inner.add_freeze_listener(slot.into_node(listener.item.key(), listener.clone()));
        if let Some(frozen) = frozen {
            listener.state.access_mut(&mut inner).is_frozen = frozen;
            FreezeListener::queue(&listener, &mut inner);
        }
        drop(inner);
        if frozen.is_some() {
            // After the requests on nodes at lower or equal pointers. There is room: it was
            // reserved above.
            let at = watchers
                .list
                .partition_point(|watched| watched.node_ptr <= node_ptr);
            let _ = watchers
                .list
                .insert_within_capacity(at, Watched { node_ptr, listener });
        }
        drop(watchers);
        Ok(())
    }

    /// `BC_CLEAR_FREEZE_NOTIFICATION`: withdraws the request on `handle` made with `cookie`.
    /// Confirmed once nothing of it is queued or awaits a done. `EINVAL` for an unknown
    /// handle, one without a request, or another cookie.
    pub(crate) fn clear_freeze_notification(&self, handle: u32, cookie: u64) -> Result {
        let mut inner = self.inner_lock().lock();
        let Some(node_ref) = inner.refs_mut().get_mut(handle) else {
            crate::debug::binder_user_error!(
                "clearing a freeze notification of invalid handle {}\n",
                handle
            );
            return Err(EINVAL);
        };
        let Some(listener) = node_ref.freeze.take_if(|l| l.item.cookie == cookie) else {
            crate::debug::binder_user_error!("clearing a freeze notification that is not set\n");
            return Err(EINVAL);
        };
        let node = node_ref.node.clone();
        let state = listener.state.access_mut(&mut inner);
        state.cleared = true;
        if state.sent {
            state.resend = true;
        }
        FreezeListener::queue(&listener, &mut inner);
        drop(inner);
        node.owner().forget_freeze_watcher(&listener);
        Ok(())
    }

    /// `BC_FREEZE_NOTIFICATION_DONE`: the holder handled the report with `cookie` (the
    /// earliest delivered, if several have it). What changed meanwhile, or the withdrawal,
    /// is sent now. `EINVAL` if no report with `cookie` awaits its done.
    pub(crate) fn freeze_notification_done(&self, cookie: u64) -> Result {
        let mut inner = self.inner_lock().lock();
        let Some(listener) = inner.freeze_listener_awaiting_done(cookie) else {
            drop(inner);
            crate::debug::binder_user_error!(
                "BC_FREEZE_NOTIFICATION_DONE for unknown cookie {:#x}\n",
                cookie
            );
            return Err(EINVAL);
        };
        let state = listener.state.access_mut(&mut inner);
        state.sent = false;
        if core::mem::take(&mut state.resend) {
            FreezeListener::queue(&listener, &mut inner);
        }
        drop(inner);
        drop(listener);
        Ok(())
    }

    /// The handle that carried `listener` went: the request is dropped, a report of it still
    /// queued is taken off the list unread (C's `binder_cleanup_ref_olocked` dequeues it, so a
    /// looper's read finds no work there), and a done for it is refused, as in the C driver.
    pub(crate) fn drop_freeze_listener(
        &self,
        listener: &Arc<Work<FreezeListener>>,
        owner: &Process,
    ) {
        let mut inner = self.inner_lock().lock();
        let state = listener.state.access_mut(&mut inner);
        state.gone = true;
        let taken = if core::mem::take(&mut state.queued) {
            inner.take_process_work(listener)
        } else {
            None
        };
        let removed = inner.remove_freeze_listener(listener.item.key());
        drop(inner);
        // Dropped outside the lock, like every item taken off a list.
        drop(taken);
        drop(removed);
        owner.forget_freeze_watcher(listener);
    }
}

/// The owner's side of freeze notifications: the requests on its nodes.
pub(crate) struct Watchers {
    /// The owner was released: nothing is reported any more.
    pub(crate) closed: bool,
    /// The active requests of other processes on the owner's nodes, in the order of the
    /// pointers of the nodes they watch: a freeze or thaw queues its reports in that order,
    /// as the C driver walks the owner's tree of nodes. A holder sees the order when two of
    /// its requests share a cookie: a done acknowledges the report delivered first.
    pub(crate) list: KVec<Watched>,
}

/// An active request on one of the owner's nodes, in [`Watchers::list`].
pub(crate) struct Watched {
    /// The pointer of the node watched, which orders the list.
    node_ptr: u64,
    listener: Arc<Work<FreezeListener>>,
}

impl Watchers {
    /// An owner that nobody watches yet.
    pub(crate) const fn new() -> Self {
        Self {
            closed: false,
            list: KVec::new(),
        }
    }
}

/// One freeze notification request: a holder of a handle waiting to hear of freezes and thaws
/// of the node's owner.
#[pin_data]
pub(crate) struct FreezeListener {
    /// Counts the object in the module's census.
    _census: Counted,
    /// The process that asked; the reports go to its todo list.
    holder: Arc<Process>,
    /// The holder's value for the request.
    cookie: u64,
    /// Where the request stands, guarded by the holder's `inner` lock.
    state: LockedBy<ListenerState, ProcessInner>,
}

/// The progress of a [`FreezeListener`].
#[derive(Default)]
pub(crate) struct ListenerState {
    /// The state to report next.
    is_frozen: bool,
    /// Withdrawn: what is delivered next is the confirmation.
    cleared: bool,
    /// On the holder's todo list.
    queued: bool,
    /// A report was delivered and awaits its done.
    sent: bool,
    /// To be queued again after the done.
    resend: bool,
    /// Its handle or holder went: nothing more is delivered.
    gone: bool,
    /// When the awaited report was delivered, to find the earliest of equal cookies.
    delivered_at: u64,
}

impl ListenerState {
    /// Whether a report with `cookie` awaits its done; with when it was delivered.
    pub(crate) fn awaiting_done(&self) -> Option<u64> {
        self.sent.then_some(self.delivered_at)
    }

    /// Marks the request gone, as its holder is released.
    pub(crate) fn set_gone(&mut self) {
        self.gone = true;
    }
}

impl FreezeListener {
    /// Creates a request of `holder` with `cookie`.
    fn new(holder: ArcBorrow<'_, Process>, cookie: u64) -> Result<Arc<Work<Self>>> {
        let state = LockedBy::new(holder.inner_lock(), ListenerState::default());
        Work::new_pinned(try_pin_init!(Self {
            _census: Counted::new(Kind::FreezeListener),
            holder: holder.into(),
            cookie,
            state,
        }))
    }

    /// The request's key in its holder's tree.
    pub(crate) fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// The request's cookie.
    pub(crate) fn cookie(&self) -> u64 {
        self.cookie
    }

    /// The request's state, to read; `inner` is its holder's.
    pub(crate) fn state_ref<'a>(&'a self, inner: &'a ProcessInner) -> &'a ListenerState {
        self.state.access(inner)
    }

    /// The request's state; `inner` is its holder's.
    pub(crate) fn state<'a>(&'a self, inner: &'a mut ProcessInner) -> &'a mut ListenerState {
        self.state.access_mut(inner)
    }

    /// Puts the request on its holder's todo list, unless it is there already, awaits its
    /// done, or is gone. `inner` is the holder's.
    fn queue(this: &Arc<Work<Self>>, inner: &mut ProcessInner) {
        if inner.is_dead() {
            return;
        }
        let state = this.state.access_mut(inner);
        if state.queued || state.sent || state.gone {
            return;
        }
        let Some(item) = Work::to_queue(this) else {
            pr_warn!("freeze notification {:#x} queued twice\n", this.cookie);
            return;
        };
        state.queued = true;
        inner.push_process_work(item);
    }
}

impl Deliver for FreezeListener {
    /// Writes `BR_FROZEN_BINDER` with the state to report, which then awaits its done, or
    /// for a withdrawn request `BR_CLEAR_FREEZE_NOTIFICATION_DONE`, which finishes it.
    fn deliver(
        &self,
        _this: &Arc<Work<dyn Deliver>>,
        _thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow> {
        let mut inner = self.holder.inner_lock().lock();
        let delivery = inner.next_freeze_delivery();
        let state = self.state.access_mut(&mut inner);
        state.queued = false;
        if state.gone {
            return Ok(Flow::Continue);
        }
        if state.cleared {
            let finished = inner.remove_freeze_listener(self.key());
            drop(inner);
            drop(finished);
            out.put_code(BR_CLEAR_FREEZE_NOTIFICATION_DONE)?;
            out.put_u64(self.cookie)?;
            return Ok(Flow::Continue);
        }
        state.sent = true;
        state.delivered_at = delivery;
        let is_frozen = state.is_frozen;
        drop(inner);
        let mut info: FrozenStateInfo = FrozenStateInfo(pin_init::zeroed());
        info.0.cookie = self.cookie;
        info.0.is_frozen = u32::from(is_frozen);
        out.put_code(BR_FROZEN_BINDER)?;
        out.put(&info)?;
        // The holder usually acts on it (with transactions, say): let it, as C does.
        Ok(Flow::Return)
    }

    fn describe(&self, inner: &ProcessInner) -> Described<'_> {
        let state = self.state_ref(inner);
        if state.gone {
            Described::Nothing
        } else if state.cleared {
            Described::ClearedFreeze
        } else {
            Described::FrozenBinder
        }
    }
}
