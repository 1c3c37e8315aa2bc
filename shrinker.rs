// SPDX-License-Identifier: GPL-2.0

//! Giving unused receive-buffer pages back when the kernel runs short of memory.
//!
//! A page of a receive buffer that no range uses any more stays mapped, so that the next
//! transaction there allocates nothing ([`crate::pages`]). This module keeps the total of such
//! pages and a list of the receive buffers that have (or recently had) some, and registers a
//! shrinker, as the C driver does: the kernel asks it how many pages it could give back and
//! then to give back some. It visits the listed buffers in turn and from each takes the pages
//! that became unused longest ago: it unmaps each from the owner's address space and frees it.
//!
//! A buffer joins the list, under its own lock, when it gains unused pages and is not listed;
//! it leaves when the shrinker finds it without unused pages, or when its process is
//! released. The shrinker only ever *tries* the locks of the owner's address space (the area's
//! vma lock, else the `mmap_lock`) and the buffer's lock, and skips a buffer whose locks are
//! busy: it may run inside an allocation made with them held.
//!
//! Locks: the list's spinlock is innermost. It is taken under a buffer's lock (to list or
//! unlist it), never the other way round, and nothing else is taken or allocated under it.

use core::ptr::NonNull;

use kernel::{
    bindings,
    ffi::c_ulong,
    list::{
        List,
        ListArc, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
};

use crate::allocation::ReceiveBuffer;

/// The receive buffers that may have unused pages, and how many there are.
struct Listed {
    buffers: List<ReceiveBuffer>,
    count: usize,
}

kernel::sync::global_lock! {
    // SAFETY: `init` is called by the module's initialiser, before any device is registered
    // and so before any receive buffer exists.
    unsafe(uninit) static LISTED: SpinLock<Listed> = Listed {
        buffers: List::new(),
        count: 0,
    };
}

/// How many receive-buffer pages are unused, in every buffer together.
static UNUSED_PAGES: Atomic<usize> = Atomic::new(0);

/// `count` pages of some buffer became unused.
pub(crate) fn unused_added(count: usize) {
    if count != 0 {
        UNUSED_PAGES.fetch_add(count, Relaxed);
    }
}

/// `count` unused pages of some buffer are in use again, or gone.
pub(crate) fn unused_removed(count: usize) {
    if count != 0 {
        UNUSED_PAGES.fetch_sub(count, Relaxed);
    }
}

/// Puts `buffer`, which has unused pages, on the list, unless it is there already. Called
/// with the buffer's lock held.
pub(crate) fn list(buffer: &Arc<ReceiveBuffer>) {
    if let Some(item) = ListArc::try_from_arc_borrow(buffer.as_arc_borrow()) {
        let mut listed = LISTED.lock();
        listed.buffers.push_back(item);
        listed.count += 1;
    }
}

/// Takes `buffer` off the list, if it is there. Called with the buffer's lock held; returns
/// the list's reference, for the caller to drop once it released its locks.
pub(crate) fn unlist(buffer: &ReceiveBuffer) -> Option<ListArc<ReceiveBuffer>> {
    let mut listed = LISTED.lock();
    // SAFETY: `LISTED` is the only list of receive buffers, so `buffer` is in no other.
    let item = unsafe { listed.buffers.remove(buffer) };
    if item.is_some() {
        listed.count -= 1;
    }
    item
}

/// The listed buffer whose turn it is; it goes to the back of the list, staying listed.
fn next_in_turn() -> Option<Arc<ReceiveBuffer>> {
    let mut listed = LISTED.lock();
    let item = listed.buffers.pop_front()?;
    let buffer = item.clone_arc();
    listed.buffers.push_back(item);
    Some(buffer)
}

/// `shrinker->count_objects`: how many pages could be given back.
///
/// # Safety
///
/// Called by the memory manager, with no requirement on the arguments, which are not used.
unsafe extern "C" fn count_unused(
    _shrinker: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    UNUSED_PAGES.load(Relaxed)
}

/// `shrinker->scan_objects`: gives back up to `sc->nr_to_scan` unused pages, visiting each
/// listed buffer at most once; returns how many were freed.
///
/// # Safety
///
/// `sc` must be valid for reads, as the memory manager passes it. (Its `nr_scanned` is left
/// as it is: the memory manager counts the whole batch as scanned, so a busy buffer cannot
/// make it call again and again.)
unsafe extern "C" fn give_back_unused(
    _shrinker: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: The caller passes a valid `shrink_control`.
    let wanted: usize = unsafe { (*sc).nr_to_scan };
    let visits = LISTED.lock().count;
    let mut freed = 0;
    for _ in 0..visits {
        if freed >= wanted {
            break;
        }
        let Some(buffer) = next_in_turn() else {
            break;
        };
        freed += buffer.give_back_unused(wanted - freed);
        // Dropping the last reference here is fine: the buffer's pages and ranges went when
        // its process was released, so what is left is memory and an `mm` reference.
        drop(buffer);
    }
    freed
}

/// The module's registered shrinker; dropping it unregisters it.
///
/// # Invariants
///
/// `ptr` was returned by `shrinker_alloc`, registered, and is freed only by `Drop`.
pub(crate) struct Shrinker {
    ptr: NonNull<bindings::shrinker>,
}

// SAFETY: A shrinker may be freed from any thread.
unsafe impl Send for Shrinker {}
// SAFETY: `Shrinker` has no methods that take `&self`.
unsafe impl Sync for Shrinker {}

impl Shrinker {
    /// Sets up the list and registers the shrinker; called once, when the module is loaded.
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: Called once, from the module's initialiser, before any other use of the lock.
        unsafe { LISTED.init() };
        // SAFETY: The name is a NUL-terminated format string without conversions, so no
        // variadic argument is read.
        let raw =
            unsafe { bindings::shrinker_alloc(0, kernel::c_str!("rust-binder").as_char_ptr()) };
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `shrinker_alloc` returned a shrinker that is not registered yet, so nothing
        // else reads it; once its callbacks are set, it may be registered.
        unsafe {
            let raw = ptr.as_ptr();
            (*raw).count_objects = Some(count_unused);
            (*raw).scan_objects = Some(give_back_unused);
            bindings::shrinker_register(raw);
        }
        // INVARIANT: Allocated and registered just now.
        Ok(Self { ptr })
    }
}

impl Drop for Shrinker {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the shrinker is registered and freed only here.
        // `shrinker_free` waits for the callbacks running, and none runs after it.
        unsafe { bindings::shrinker_free(self.ptr.as_ptr()) };
        // Every process was released by now, and each took its buffer off the list.
        let unused = UNUSED_PAGES.load(Relaxed);
        if unused != 0 {
            pr_err!(
                "leaked {} unused receive buffer pages (still alive at unload)\n",
                unused
            );
        }
        let count = LISTED.lock().count;
        if count != 0 {
            pr_err!(
                "leaked {} receive buffers on the shrinker's list (still alive at unload)\n",
                count
            );
        }
    }
}
