// SPDX-License-Identifier: GPL-2.0

//! Work: what a thread finds on a todo list and turns into `BR_*` returns when it reads.
//!
//! Every process has a todo list that any of its idle threads may take work from, and every
//! thread has one of its own. An item on either is a [`Work`] envelope around something that
//! knows how to [`Deliver`] itself. Items are `ListArc`s, so putting one on a list needs no
//! allocation, and an item that is queued again and again over its life (a death notification,
//! say) is tracked so that it can be on at most one list at a time.
//!
//! An object that is queued as itself is allocated in its envelope (a [`Node`], a
//! [`Transaction`]): queueing it then allocates nothing at all.

use core::any::Any;

use kernel::{
    list::{
        impl_list_arc_safe,
        impl_list_item,
        AtomicTracker,
        List,
        ListArc,
        ListLinksSelfPtr,
        TryNewListArc, //
    },
    prelude::*,
    sync::Arc,
};

use crate::{
    node::Node,
    process::ProcessInner,
    thread::Thread,
    transaction::Transaction,
    write_read::Returns, //
};

/// Something a reading thread can turn into returns.
pub(crate) trait Deliver: Any + Send + Sync {
    /// Writes this item's returns into `out`, for `thread`, which took it off a todo list.
    /// `this` is the item's own envelope, for an item that hands a reference to itself on
    /// (see [`Work::downcast`]).
    ///
    /// Returns whether the thread should go back to userspace after it, as it does after each
    /// transaction or reply and after `BR_DEAD_BINDER`.
    fn deliver(
        &self,
        this: &Arc<Work<dyn Deliver>>,
        thread: &Thread,
        out: &mut Returns<'_>,
    ) -> Result<Flow>;

    /// Called instead of [`Deliver::deliver`] when the item is dropped undelivered from the
    /// list of a process that is released (or of one of its nodes).
    fn cancel(&self) {}

    /// Called instead of [`Deliver::deliver`] when the item is dropped undelivered from the
    /// list of a thread that leaves (`BINDER_THREAD_EXIT`, or its process's release). Only a
    /// transaction differs from [`Deliver::cancel`]: it leaves its range allocated, as C does.
    fn abandon(&self) {
        self.cancel()
    }

    /// Whether the item is a transaction or reply. A thread with one at the head of its
    /// todo list may not send a new call, as in the C driver.
    fn is_transaction(&self) -> bool {
        false
    }

    /// The transaction or reply this item delivers, if it is one.
    fn as_transaction(&self) -> Option<&Transaction> {
        None
    }

    /// What the item is, for the log files; `inner` is the state of the process whose list
    /// the item is on, locked by the caller.
    fn describe(&self, _inner: &ProcessInner) -> Described<'_> {
        match self.as_transaction() {
            Some(transaction) => Described::Transaction(transaction),
            None => Described::Nothing,
        }
    }
}

/// A todo item as the log files describe it (the C driver's kinds of work).
pub(crate) enum Described<'a> {
    Transaction(&'a Transaction),
    /// A failed transaction's error return, with its code.
    Error(u32),
    Complete,
    Node(&'a Node),
    DeadBinder,
    ClearedDeadBinder,
    ClearedDeath,
    FrozenBinder,
    ClearedFreeze,
    /// An item that will deliver nothing (withdrawn, or already answered).
    Nothing,
}

/// What a reading thread does after delivering an item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Take the next item, if there is one and room for it.
    Continue,
    /// Return to userspace now.
    Return,
}

/// The envelope that puts a [`Deliver`]-able value on a todo list.
#[pin_data]
pub(crate) struct Work<T: ?Sized> {
    #[pin]
    links: ListLinksSelfPtr<Work<dyn Deliver>>,
    #[pin]
    tracker: AtomicTracker,
    /// The value to deliver.
    #[pin]
    pub(crate) item: T,
}

impl_list_arc_safe! {
    impl{T: ?Sized} ListArcSafe<0> for Work<T> { tracked_by tracker: AtomicTracker; }
}

impl_list_item! {
    impl ListItem<0> for Work<dyn Deliver> { using ListLinksSelfPtr { self.links }; }
}

/// A todo list.
pub(crate) type Todo = List<Work<dyn Deliver>>;

/// An item ready to be put on a todo list.
pub(crate) type WorkItem = ListArc<Work<dyn Deliver>>;

impl<T: ?Sized> core::ops::Deref for Work<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

impl<T: Deliver + 'static> Work<T> {
    /// Allocates an envelope for the item `init` creates, not on any list yet.
    pub(crate) fn new_pinned(init: impl PinInit<T, Error>) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                links <- ListLinksSelfPtr::new(),
                tracker <- AtomicTracker::new(),
                item <- init,
            }),
            GFP_KERNEL,
        )
    }

    /// Allocates an envelope for `item`, not on any list yet.
    pub(crate) fn new_arc(item: T) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                links <- ListLinksSelfPtr::new(),
                tracker <- AtomicTracker::new(),
                item: item,
            }),
            GFP_KERNEL,
        )
    }

    /// The item ready to be queued, unless it is on a list already.
    pub(crate) fn to_queue(this: &Arc<Self>) -> Option<WorkItem> {
        let work: ListArc<Self> = ListArc::try_from_arc(this.clone()).ok()?;
        Some(work)
    }
}

impl Work<dyn Deliver> {
    /// The envelope `this` as the envelope of a `T`, if its item is one.
    pub(crate) fn downcast<T: Deliver>(this: &Arc<Self>) -> Option<Arc<Work<T>>> {
        let item: &dyn Any = &this.item;
        if !item.is::<T>() {
            return None;
        }
        let raw = Arc::into_raw(this.clone());
        // SAFETY: `raw` comes from `Arc::into_raw`, and is given back once. The item is a `T`
        // (checked just above), so the `Arc` was made as an `Arc<Work<T>>` and unsized to
        // `Arc<Work<dyn Deliver>>`: `raw` points at a `Work<T>` in that allocation, which
        // `Arc::from_raw` finds the reference count of by the same layout it was made with.
        Some(unsafe { Arc::from_raw(raw.cast::<Work<T>>()) })
    }
}

/// Takes `item` off `todo`, if it is there (the C driver's `binder_dequeue_work_ilocked`,
/// which unlinks in place; a list here is searched).
pub(crate) fn take_from<T: ?Sized>(todo: &mut Todo, item: &Work<T>) -> Option<WorkItem> {
    let mut cursor = todo.cursor_front();
    while let Some(next) = cursor.peek_next() {
        if core::ptr::addr_eq(&*next, item) {
            return Some(next.remove());
        }
        cursor.move_next();
    }
    None
}

/// Why a todo list is dropped undelivered.
#[derive(Clone, Copy)]
pub(crate) enum Dropped {
    /// Its process, or the owner of its node, is released: [`Deliver::cancel`].
    Released,
    /// Its thread leaves: [`Deliver::abandon`].
    ThreadLeaves,
}

/// Drops every item of `todo` undelivered, for the reason `why`.
///
/// Call it after taking the list out from under its lock: both may take other locks.
pub(crate) fn cancel_all(mut todo: Todo, why: Dropped) {
    while let Some(work) = todo.pop_front() {
        match why {
            Dropped::Released => work.item.cancel(),
            Dropped::ThreadLeaves => work.item.abandon(),
        }
    }
}
