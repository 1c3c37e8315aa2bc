// SPDX-License-Identifier: GPL-2.0

//! Death notifications: telling the holders of a handle that the node behind it is gone.
//!
//! A process asks with `BC_REQUEST_DEATH_NOTIFICATION handle cookie`. When the node's owner
//! dies (or at once, if it already has), the process reads `BR_DEAD_BINDER cookie` and
//! answers `BC_DEAD_BINDER_DONE cookie`. `BC_CLEAR_DEATH_NOTIFICATION` withdraws the request;
//! it is confirmed with `BR_CLEAR_DEATH_NOTIFICATION_DONE cookie`, after the `BR_DEAD_BINDER`
//! if the node died first. Misuse (an unknown handle, a second request, a wrong cookie) is
//! logged and skipped, as in the C driver.

use kernel::{
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_spinlock,
        Arc,
        SpinLock, //
    },
};

use crate::{
    census::{
        Counted,
        Kind, //
    },
    defs::{
        BR_CLEAR_DEATH_NOTIFICATION_DONE,
        BR_DEAD_BINDER, //
    },
    process::{
        Process,
        ProcessInner,
        Recipient, //
    },
    thread::Thread,
    work::{
        Deliver,
        Described,
        Flow,
        Work, //
    },
    write_read::Returns,
};

/// One death notification: a handle's holder waiting to hear that its node died.
#[pin_data]
pub(crate) struct Death {
    /// Counts the object in the module's census.
    _census: Counted,
    /// The process that asked, and whose todo list the notifications go to.
    holder: Arc<Process>,
    /// The holder's value for the notification.
    pub(crate) cookie: u64,
    /// Where the notification stands.
    #[pin]
    state: SpinLock<DeathState>,
}

/// The memory a withdrawn request takes in its holder's tree of withdrawn deaths, allocated
/// with the request so that withdrawing it never allocates (nor fails, as in C).
pub(crate) type WithdrawnSlot = RBTreeNodeReservation<usize, Arc<Work<Death>>>;

/// What withdrawing a request leaves to do.
pub(crate) enum Cleared {
    /// The node is alive, or its `BR_DEAD_BINDER` was answered: the confirmation is due now.
    ConfirmNow,
    /// The node died and its `BR_DEAD_BINDER` is queued or awaits `BC_DEAD_BINDER_DONE`: the
    /// confirmation follows the done, and until then the process keeps the notification, in
    /// the slot given here.
    AfterDone(Option<WithdrawnSlot>),
}

/// Counts the `BR_DEAD_BINDER`s delivered, to order them: `BC_DEAD_BINDER_DONE` answers the
/// first delivered of those with its cookie, as C walks its list of delivered deaths in order.
static DELIVERIES: Atomic<u64> = Atomic::new(0);

/// The progress of a [`Death`], guarded by [`Death::state`].
///
/// It nests inside the holder's `inner` lock, so it is never held while that is taken: a
/// notification is marked queued under it, and put on the todo list after it is released.
#[derive(Default)]
struct DeathState {
    /// The node died.
    dead: bool,
    /// The holder withdrew the request.
    cleared: bool,
    /// `BR_DEAD_BINDER` was delivered.
    dead_delivered: bool,
    /// `BR_DEAD_BINDER` was delivered and `BC_DEAD_BINDER_DONE` has not come yet.
    awaiting_done: bool,
    /// When `BR_DEAD_BINDER` was delivered, in the order of [`DELIVERIES`].
    delivered_at: u64,
    /// The notification is on a todo list.
    queued: bool,
    /// The handle that carried the request went: nothing more is delivered.
    gone: bool,
    /// Its place among the holder's withdrawn deaths, until it is withdrawn.
    withdrawn_slot: Option<WithdrawnSlot>,
}

impl Death {
    /// Creates a death notification for `holder` with `cookie`.
    pub(crate) fn new(holder: Arc<Process>, cookie: u64) -> Result<Arc<Work<Self>>> {
        let state = DeathState {
            withdrawn_slot: Some(RBTreeNodeReservation::new(GFP_KERNEL)?),
            ..DeathState::default()
        };
        Work::new_pinned(try_pin_init!(Self {
            _census: Counted::new(Kind::Death),
            holder,
            cookie,
            state <- new_spinlock!(state, "Death::state"),
        }))
    }

    /// The node died: notify the holder, unless it withdrew the request or let the handle go
    /// first.
    pub(crate) fn node_died(work: &Arc<Work<Self>>) {
        let mut state = work.item.state.lock();
        if state.cleared || state.gone {
            return;
        }
        state.dead = true;
        let queue = state.mark_queued();
        drop(state);
        if queue {
            work.item.holder.queue(work, Recipient::Process);
        }
    }

    /// Marks the request withdrawn (`BC_CLEAR_DEATH_NOTIFICATION`), and says when it is to be
    /// confirmed. From now on the node's death no longer notifies the holder.
    ///
    /// It takes only the notification's own lock, so the holder may hold its `inner` lock.
    pub(crate) fn mark_cleared(&self) -> Cleared {
        let mut state = self.state.lock();
        state.cleared = true;
        if state.dead && (!state.dead_delivered || state.awaiting_done) {
            Cleared::AfterDone(state.withdrawn_slot.take())
        } else {
            Cleared::ConfirmNow
        }
    }

    /// The handle that carried the request went, with its last reference: the request goes
    /// with it, as the C driver frees a handle's death notification with the handle, and
    /// its `BR_DEAD_BINDER` is not delivered, even if it is queued already. Returns whether it
    /// may be on the holder's todo list, for the caller to take it off.
    ///
    /// It takes only the notification's own lock: from here on [`Death::node_died`] queues
    /// nothing, so the answer cannot go stale, except that an item marked queued may reach the
    /// list just after the caller looked for it; it then delivers nothing.
    pub(crate) fn handle_gone(&self) -> bool {
        let mut state = self.state.lock();
        state.gone = true;
        state.awaiting_done = false;
        state.queued
    }

    /// Whether the request was withdrawn.
    pub(crate) fn is_cleared(&self) -> bool {
        self.state.lock().cleared
    }

    /// Queues the confirmation of a withdrawn request (`BR_CLEAR_DEATH_NOTIFICATION_DONE`).
    pub(crate) fn confirm_clear(work: &Arc<Work<Self>>, recipient: Recipient<'_>) {
        let queue = work.item.state.lock().mark_queued();
        if queue {
            work.item.holder.queue(work, recipient);
        }
    }

    /// If this notification's `BR_DEAD_BINDER` with `cookie` awaits its `BC_DEAD_BINDER_DONE`,
    /// when it was delivered: the done answers the first delivered.
    fn awaiting_done_since(&self, cookie: u64) -> Option<u64> {
        if self.cookie != cookie {
            return None;
        }
        let state = self.state.lock();
        state.awaiting_done.then_some(state.delivered_at)
    }

    /// Of `deaths`, the one whose `BR_DEAD_BINDER` with `cookie` was delivered first and awaits
    /// its `BC_DEAD_BINDER_DONE`, with when it was delivered.
    pub(crate) fn first_awaiting_done<'a>(
        deaths: impl Iterator<Item = &'a Arc<Work<Death>>>,
        cookie: u64,
    ) -> Option<(u64, &'a Arc<Work<Death>>)> {
        deaths
            .filter_map(|death| Some((death.item.awaiting_done_since(cookie)?, death)))
            .min_by_key(|(since, _)| *since)
    }

    /// The holder answered `BR_DEAD_BINDER` (`BC_DEAD_BINDER_DONE`). Returns whether the
    /// request was withdrawn meanwhile, so that its confirmation is due now.
    ///
    /// It takes only the notification's own lock, so the holder may hold its `inner` lock.
    pub(crate) fn mark_done(&self) -> bool {
        let mut state = self.state.lock();
        state.awaiting_done = false;
        state.cleared
    }
}

impl Deliver for Death {
    fn deliver(
        &self,
        _this: &Arc<Work<dyn Deliver>>,
        _thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow> {
        let mut state = self.state.lock();
        state.queued = false;
        if state.gone {
            return Ok(Flow::Continue);
        }
        let (code, flow) = if state.dead && !state.dead_delivered {
            state.dead_delivered = true;
            state.awaiting_done = true;
            state.delivered_at = DELIVERIES.fetch_add(1, Relaxed);
            // The holder usually reacts to a death with transactions: let it.
            (BR_DEAD_BINDER, Flow::Return)
        } else if state.cleared {
            (BR_CLEAR_DEATH_NOTIFICATION_DONE, Flow::Continue)
        } else {
            return Ok(Flow::Continue);
        };
        drop(state);
        out.put_code(code)?;
        out.put_u64(self.cookie)?;
        // Logged once it reached userspace, as in C.
        out.count_written();
        crate::debug::death_return(code, self.cookie);
        Ok(flow)
    }

    fn describe(&self, _inner: &ProcessInner) -> Described<'_> {
        self.describe_state()
    }
}

impl Death {
    /// What the notification will deliver when read, for the log files.
    pub(crate) fn describe_state(&self) -> Described<'_> {
        let state = self.state.lock();
        if state.gone {
            return Described::Nothing;
        }
        match (state.dead && !state.dead_delivered, state.cleared) {
            (true, false) => Described::DeadBinder,
            (true, true) => Described::ClearedDeadBinder,
            (false, true) => Described::ClearedDeath,
            (false, false) => Described::Nothing,
        }
    }
}

impl DeathState {
    /// Marks the notification as queued; returns `false` if it already was.
    fn mark_queued(&mut self) -> bool {
        !core::mem::replace(&mut self.queued, true)
    }
}
