// SPDX-License-Identifier: GPL-2.0

//! [`SharedPage`]: a page of a receive buffer, shared by the buffer and the ranges on it.
//!
//! The buffer keeps each page it put in, and a range that is filled in or read keeps the
//! pages it lies on, so that the process's release cannot free a page under a copy. The
//! holders count themselves in the page's own reference count (`struct page`'s `_refcount`,
//! which `alloc_page` sets to one and `__free_pages` drops), as C's `get_page` and `put_page`
//! do. An `Arc<Page>` allocated 16 bytes more per page for its count, and a buffer's pages
//! went one allocation and one free each.

use core::ptr::NonNull;

use kernel::{
    alloc::Flags,
    bindings,
    page::{
        BorrowedPage,
        Page, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Full,
        Relaxed, //
    },
};

/// One reference to an order-0 page, counted in the page's reference count.
///
/// The count is changed directly, as `page_ref_inc` and `put_page_testzero` change it, without
/// the `page_ref` trace events of `CONFIG_DEBUG_PAGE_REF`.
///
/// # Invariants
///
/// `page` points to an order-0 page allocated with `alloc_pages`, on whose reference count
/// this holds one reference.
pub(crate) struct SharedPage {
    page: NonNull<bindings::page>,
}

// SAFETY: The page has no logic tied to a thread; a reference to it may be dropped on any.
unsafe impl Send for SharedPage {}
// SAFETY: Through `&SharedPage` the page is only lent (as `Page`, which is `Sync`) and its
// count changed atomically.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// Allocates a page with `flags`; its only reference is the one returned.
    pub(crate) fn alloc(flags: Flags) -> Result<Self> {
        let page = Page::alloc_page(flags)?;
        let raw = page.as_ptr();
        // The reference `alloc_page` returned moves to the new value: `page` must not free it.
        core::mem::forget(page);
        // SAFETY: `raw` came from `Page::alloc_page`, so it is not null.
        let page = unsafe { NonNull::new_unchecked(raw) };
        // INVARIANT: `page` is an order-0 page from `alloc_pages`, and the reference
        // `alloc_page` returned is this one's.
        Ok(Self { page })
    }

    /// The page, lent for as long as `self` is borrowed.
    #[inline]
    pub(crate) fn page(&self) -> BorrowedPage<'_> {
        // SAFETY: By the type invariant the page is valid while `self` holds its reference,
        // which it does for the borrow.
        unsafe { BorrowedPage::from_raw(self.page) }
    }

    /// The page's reference count.
    fn count(&self) -> &Atomic<i32> {
        let raw = self.page.as_ptr();
        // SAFETY: By the type invariant the page is valid; its `_refcount` is only ever
        // accessed atomically, here and by the kernel.
        unsafe { Atomic::from_ptr(core::ptr::addr_of_mut!((*raw)._refcount.counter)) }
    }
}

impl Clone for SharedPage {
    /// Another reference to the page (`get_page`).
    fn clone(&self) -> Self {
        // As `get_page`: the caller's reference keeps the count above zero, so a relaxed
        // increment suffices.
        self.count().add(1, Relaxed);
        // INVARIANT: The same page, and the reference just taken is the new value's.
        Self { page: self.page }
    }
}

impl Drop for SharedPage {
    /// Drops the reference (`put_page`); the last one frees the page.
    ///
    /// A reference that is not the last is dropped inline: a transaction drops its range's
    /// references to pages that the buffer still holds, and that needs no call into the
    /// page allocator.
    fn drop(&mut self) {
        let count = self.count();
        let mut seen = count.load(Relaxed);
        while seen > 1 {
            // Fully ordered, as the decrement of `put_page`: what this holder wrote to the page
            // happens before whichever holder frees it.
            match count.cmpxchg(seen, seen - 1, Full) {
                Ok(_) => return,
                Err(now) => seen = now,
            }
        }
        // SAFETY: By the type invariant this holds a reference to an order-0 page from
        // `alloc_pages`, given up here; `__free_pages` drops it and frees the page if it was
        // the last.
        unsafe { bindings::__free_pages(self.page.as_ptr(), 0) };
    }
}
