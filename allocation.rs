// SPDX-License-Identifier: GPL-2.0

//! The receive buffer: the read-only area a process maps from the binder device, into which
//! the driver copies every transaction the process receives.
//!
//! The rules follow the C driver: only the opener's thread group may map it, never writable,
//! at most once per open file (also after `munmap`), and binder uses at most 4 MiB of it.
//! Nothing is allocated up front: pages are put in only under the buffers that transactions
//! occupy, so a process that touches the area outside of them gets `SIGBUS`. A page that no
//! buffer uses any more stays for the next one, until memory runs short: then the shrinker
//! takes it back ([`crate::pages`], [`crate::shrinker`]).

use core::{
    num::NonZeroU32,
    ops::RangeInclusive, //
};

use kernel::{
    bindings,
    ffi::c_void,
    list::{
        impl_list_arc_safe,
        impl_list_item,
        AtomicTracker,
        ListLinks,
        TryNewListArc, //
    },
    mm::{
        virt::{
            VmaNew,
            VmaRef, //
        },
        Mm,
        MmWithUser,
        MmapReadGuard,
        VmaReadGuard, //
    },
    page::{
        BorrowedPage,
        Page,
        PAGE_SIZE, //
    },
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        new_mutex,
        Arc,
        Mutex,
        SetOnce, //
    },
    task::Pid,
    uaccess::UserPtr,
};

use crate::{
    fds::ArrayFds,
    lazy_vec::LazyVec,
    node::NodeArc,
    objects::HeldRefs,
    pages::{
        BufferPages,
        PageCounts, //
    },
    process::Process,
    ranges::Ranges,
    shared_page::SharedPage, //
};

/// The most of a mapping that binder uses; the C driver's `SZ_4M`.
pub(crate) const MAX_MAPPED_SIZE: usize = bindings::SZ_4M as usize;

/// The receive buffer of one process.
///
/// It lives in an `Arc` of its own, which the shrinker's list ([`crate::shrinker`]) shares
/// while the buffer has unused pages.
#[pin_data]
pub(crate) struct ReceiveBuffer {
    /// The mapped area and what is allocated in it; see [`BufferState`].
    #[pin]
    state: Mutex<BufferState>,
    /// Whether the area is still mapped.
    ///
    /// `vm_ops->close` clears it with the `mmap_lock` held for writing. It is an atomic rather
    /// than part of `state` so that `close`, which runs inside the unmapping or the exit of
    /// the address space, takes no lock of the buffer at all; the transaction path reads it
    /// with `state`'s lock held (the page path takes the `mmap_lock` before `state`).
    mapped: Atomic<bool>,
    /// Where the area was mapped: set once, by the first successful `mmap` (with `state`'s
    /// lock held, so that a second `mmap` sees it), and kept from then on. Read with no lock
    /// held: by the shrinker, to know which vma to lock before `state`, and for the user
    /// addresses of ranges, which exist only once the area does.
    mapped_area: SetOnce<MappedArea>,
    /// The address space of the process that opened the device: the only one the buffer
    /// can be mapped into, where pages are put in and taken back.
    mm: Option<ARef<Mm>>,
    /// Links the buffer into the shrinker's list of buffers with unused pages.
    #[pin]
    links: ListLinks,
    /// Whether the buffer is on that list.
    #[pin]
    tracker: AtomicTracker,
}

impl_list_arc_safe! {
    impl ListArcSafe<0> for ReceiveBuffer { tracked_by tracker: AtomicTracker; }
}

impl_list_item! {
    impl ListItem<0> for ReceiveBuffer { using ListLinks { self.links }; }
}

/// The allocation state of a [`ReceiveBuffer`], guarded by [`ReceiveBuffer::state`].
struct BufferState {
    /// The owning process was released ([`ReceiveBuffer::clear`]): nothing may be reserved
    /// any more, whether the area is still mapped or not.
    released: bool,
    /// The pages put in so far, one slot per page of the area, and which ranges use them.
    /// A sender copying into a page holds a reference of its own meanwhile.
    pages: BufferPages,
    /// The allocated ranges and the free parts between them.
    ranges: Ranges<Range>,
    /// Room left for one-way transactions: half the area, as in the C driver.
    free_async: usize,
    /// A one-way spammer was reported since one-way room last recovered (above a tenth of
    /// the area): one report per episode, as in the C driver.
    oneway_spam_detected: bool,
}

/// Where the receive buffer lives in the owner's address space.
#[derive(Clone, Copy)]
struct MappedArea {
    /// The user address of the first byte.
    start: usize,
    /// How many bytes of the mapping binder uses (at most [`MAX_MAPPED_SIZE`]).
    size: usize,
}

/// An allocated range of the area: what the buffer keeps with it ([`Ranges`] keeps where it
/// is).
struct Range {
    /// Delivered to userspace, which gives it back with `BC_FREE_BUFFER`.
    delivered: bool,
    /// Its transaction was dropped undelivered from the list of a thread that left the
    /// driver ([`ReservedBuffer::abandon`]): the range stays, with its references, until the
    /// process is released, and userspace, which never got it, cannot free it.
    abandoned: bool,
    /// The target node of a call or one-way transaction (none for a reply). The range holds
    /// a strong local reference on it until it goes, taken before it was reserved, as in C.
    target: Option<NodeArc>,
    /// The transaction is one-way: it takes room from the one-way half, and freeing the range
    /// lets the target's next one-way transaction through.
    oneway: bool,
    /// The references the transaction's objects hold until the range goes.
    held: HeldRefs,
    /// The thread group that sent the transaction (for spotting one-way spam).
    sender: Pid,
    /// The transaction asked for the range to be zeroed when it goes (`TF_CLEAR_BUF`).
    clear_on_free: bool,
    /// The fds the owner got for the fd arrays in the buffer, closed when userspace frees it.
    array_fds: ArrayFds,
    /// What the log files show of the range.
    label: BufferLabel,
}

/// What the log files show of a range: its transaction's number and sizes. The sizes are
/// those of a range that fits the area (at most 4 MiB), so `u32`s: a range's entry then fits
/// a 128-byte allocation.
#[derive(Clone, Copy)]
pub(crate) struct BufferLabel {
    pub(crate) debug_id: u32,
    pub(crate) data_size: u32,
    pub(crate) offsets_size: u32,
    pub(crate) extra_size: u32,
}

/// What a range that went away leaves for its owner to settle, without the buffer's lock.
pub(crate) struct Freed {
    /// The target node and its reference; see [`Range::target`].
    pub(crate) target: Option<NodeArc>,
    /// See [`Range::oneway`].
    pub(crate) oneway: bool,
    /// The references to release; see [`Range::held`].
    pub(crate) held: HeldRefs,
    /// The fds to close; see [`Range::array_fds`].
    pub(crate) array_fds: ArrayFds,
}

/// The pages under a reserved range, for the transaction to fill the range in.
///
/// Offsets are from the start of the range.
pub(crate) struct RangeView {
    pages: RangePages,
    /// Where the range starts in its first page.
    start: usize,
    /// The size of the range.
    size: usize,
}

/// The pages of a range just reserved: all there, or some still to be put in.
enum Reserved {
    /// Every page of the range, in order.
    Complete(RangePages),
    /// Room for them, empty.
    Incomplete(RangePages),
}

/// How many of a range's pages [`RangePages`] keeps inline: all those of a range of up to a
/// page, wherever it starts.
const INLINE_PAGES: usize = 2;

/// The pages of a range, in order. The first [`INLINE_PAGES`] are kept inline, so that the
/// range of a small transaction (most are) allocates no list for them.
///
/// # Invariants
///
/// The first `min(len, INLINE_PAGES)` inline slots hold pages and the others none, and `more`
/// holds the rest: pages are only added at the end and only all forgotten at once.
/// [`RangePages::iter_from`] relies on it, stopping at the first empty slot.
struct RangePages {
    inline: [Option<SharedPage>; INLINE_PAGES],
    /// The pages after the inline ones.
    more: LazyVec<SharedPage>,
    /// How many pages there are in all.
    len: usize,
}

impl RangePages {
    /// No pages yet, and room for `count` without growing.
    fn with_capacity(count: usize) -> Result<Self> {
        let more = LazyVec::with_capacity(count.saturating_sub(INLINE_PAGES))?;
        Ok(Self {
            inline: [None, None],
            more,
            len: 0,
        })
    }

    /// Adds `page` at the end if there is room for it; gives it back if not.
    ///
    /// Inlined into the loop that fills a range with its pages: a call per page of a large
    /// range cost more than the push.
    #[inline]
    fn push_within_capacity(&mut self, page: SharedPage) -> Result<(), SharedPage> {
        match self.inline.get_mut(self.len) {
            // INVARIANT: The slot at `len` is the first empty one, and `more` is empty.
            Some(slot) => *slot = Some(page),
            None => self.more.push_within_capacity(page).map_err(|err| err.0)?,
        }
        self.len += 1;
        Ok(())
    }

    /// Adds `page` at the end, growing the list if needed.
    fn push(&mut self, page: SharedPage) -> Result {
        if let Err(page) = self.push_within_capacity(page) {
            self.more.push(page, GFP_KERNEL)?;
            self.len += 1;
        }
        Ok(())
    }

    /// Forgets every page, keeping the room.
    fn clear(&mut self) {
        self.inline = [None, None];
        self.more.clear();
        self.len = 0;
    }

    /// The page at `index`.
    fn get(&self, index: usize) -> Option<BorrowedPage<'_>> {
        match self.inline.get(index) {
            Some(slot) => slot.as_ref().map(SharedPage::page),
            None => self
                .more
                .get(index.checked_sub(INLINE_PAGES)?)
                .map(SharedPage::page),
        }
    }

    /// The pages from the one at `first` on, in order.
    ///
    /// An iterator, not a lookup per page: a copy of a large payload walks hundreds of pages,
    /// and this way each step is a pointer's increment.
    fn iter_from(&self, first: usize) -> impl Iterator<Item = BorrowedPage<'_>> {
        let inline = self.inline.get(first..).unwrap_or(&[]);
        let more = self
            .more
            .get(first.saturating_sub(INLINE_PAGES)..)
            .unwrap_or(&[]);
        let inline = inline
            .iter()
            .map_while(|slot| slot.as_ref().map(SharedPage::page));
        // `Iterator::` named: pin-init's `Init` has a `chain` too.
        Iterator::chain(inline, more.iter().map(SharedPage::page))
    }
}

/// The slots of the pages that `size` bytes at `offset` lie on; `size` is not zero.
fn page_indices(offset: usize, size: usize) -> RangeInclusive<usize> {
    offset / PAGE_SIZE..=(offset + size - 1) / PAGE_SIZE
}

/// Where a reserved range lies in its receive buffer; a [`ReservedBuffer`] owns one.
///
/// An area is at most 4 MiB, so `u32`s hold both, and a range is never empty, so an
/// `Option` of one is no larger: that keeps a [`Transaction`] in a smaller kmalloc class.
///
/// [`Transaction`]: crate::transaction::Transaction
pub(crate) struct BufferRange {
    offset: u32,
    size: NonZeroU32,
}

impl BufferRange {
    /// The range of `size` bytes at `offset`; `None` if either is too large for the type, or
    /// `size` is zero.
    fn new(offset: usize, size: usize) -> Option<Self> {
        Some(Self {
            offset: offset.try_into().ok()?,
            size: NonZeroU32::new(size.try_into().ok()?)?,
        })
    }

    /// Where the range starts in the area.
    fn offset(&self) -> usize {
        self.offset as usize
    }

    /// How many bytes the range holds.
    fn size(&self) -> usize {
        self.size.get() as usize
    }
}

/// A range of a process's receive buffer reserved for one transaction and not yet handed to
/// userspace.
///
/// Dropping it gives the range back to the buffer, with the references it holds: a reserved
/// range cannot be lost on any path, however a transaction fails. Dropping takes the
/// buffer's mutex, so it is never dropped under a spinlock.
pub(crate) struct ReservedBuffer {
    /// The process whose receive buffer the range is in.
    owner: Arc<Process>,
    /// The range; taken out when it is delivered.
    range: Option<BufferRange>,
}

impl ReservedBuffer {
    /// Takes ownership of `range`, reserved in the receive buffer of `owner`.
    pub(crate) fn new(owner: Arc<Process>, range: BufferRange) -> Self {
        Self {
            owner,
            range: Some(range),
        }
    }

    /// Where the range starts in the owner's area.
    pub(crate) fn offset(&self) -> usize {
        self.range.as_ref().map_or(0, BufferRange::offset)
    }

    /// The user address of the range in the owner's mapping.
    pub(crate) fn user_address(&self) -> u64 {
        self.range
            .as_ref()
            .map_or(0, |range| self.owner.buffer.user_address(range))
    }

    /// Gives `held` to the range, to be released when the range goes; releases them now if
    /// the range is gone (its process was released).
    #[inline(always)]
    pub(crate) fn hold(&self, held: HeldRefs) {
        // A range starts with none (its target's reference it keeps apart): a transaction
        // without binder or handle objects has nothing to give it, and skips a round of the
        // buffer's lock (and a call).
        if !held.is_empty() {
            self.hold_some(held);
        }
    }

    /// [`ReservedBuffer::hold`] for references that are there.
    fn hold_some(&self, held: HeldRefs) {
        let rest = match &self.range {
            Some(range) => self.owner.buffer.hold(range, held).err(),
            None => Some(held),
        };
        if let Some(held) = rest {
            self.owner.release_all_held(held);
        }
    }

    /// Gives back the range of a transaction whose delivery failed (its returns could not be
    /// written to the reader). For a one-way transaction, the node's next one-way
    /// transaction may then go, as it would after `BC_FREE_BUFFER`.
    pub(crate) fn give_back_undelivered(mut self) {
        let Some(range) = self.range.take() else {
            return;
        };
        let Some(freed) = self.owner.buffer.release(range) else {
            return;
        };
        self.owner.release_freed(freed, true);
    }

    /// Leaves the range allocated, with the references it holds, when its transaction is
    /// dropped undelivered because the thread it was queued for left the driver: the C
    /// driver then frees the transaction but not its buffer, which nobody can free until the
    /// process is released. The process keeps its handles meanwhile, so new ones get other
    /// numbers, and the nodes keep their references.
    pub(crate) fn abandon(mut self) {
        if let Some(range) = self.range.take() {
            self.owner.buffer.mark_abandoned(&range);
        }
    }

    /// Hands the range to userspace, which gives it back with `BC_FREE_BUFFER`; `array_fds`
    /// are the fds the reader got for the buffer's fd arrays, closed then.
    pub(crate) fn deliver(mut self, array_fds: ArrayFds) {
        if let Some(range) = self.range.take() {
            self.owner.buffer.mark_delivered(&range, array_fds);
        }
    }
}

impl Drop for ReservedBuffer {
    fn drop(&mut self) {
        if let Some(range) = self.range.take() {
            if let Some(freed) = self.owner.buffer.release(range) {
                self.owner.release_freed(freed, false);
            }
        }
    }
}

/// Makes a C-ABI table usable in a `static`.
#[repr(transparent)]
struct VmOps(bindings::vm_operations_struct);

// SAFETY: The table is immutable and only holds function pointers, which any thread may call.
unsafe impl Sync for VmOps {}

/// The `vm_operations_struct` of every receive buffer mapping.
static RECEIVE_BUFFER_VM_OPS: VmOps = VmOps(bindings::vm_operations_struct {
    close: Some(receive_buffer_vma_close),
    fault: Some(receive_buffer_vma_fault),
    ..pin_init::zeroed()
});

impl ReceiveBuffer {
    /// Creates the receive buffer of a process that has not mapped anything yet; `mm` is
    /// the opener's address space.
    pub(crate) fn new(mm: Option<ARef<Mm>>) -> Result<Arc<Self>> {
        Arc::pin_init(Self::init(mm), GFP_KERNEL)
    }

    fn init(mm: Option<ARef<Mm>>) -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(
                BufferState {
                    released: false,
                    pages: BufferPages::new(),
                    ranges: Ranges::new(),
                    free_async: 0,
                    oneway_spam_detected: false,
                },
                "ReceiveBuffer::state"
            ),
            mapped: Atomic::new(false),
            mapped_area: SetOnce::new(),
            mm,
            links <- ListLinks::new(),
            tracker <- AtomicTracker::new(),
        })
    }

    /// Sets up `vma` as this receive buffer; the `mmap` file operation.
    ///
    /// The caller has checked that the current task belongs to the opener's thread group.
    pub(crate) fn map(&self, vma: &VmaNew) -> Result {
        if vma.writable() {
            return Err(EPERM);
        }
        vma.set_dontcopy();
        // Cannot fail: the mapping was just found not to be writable.
        vma.try_clear_maywrite()?;
        let vma = vma.set_mixedmap();

        match &self.mm {
            Some(mm) if mm.as_raw() == vma.mm().as_raw() => {}
            _ => return Err(EINVAL),
        }

        let mut state = self.state.lock();
        if self.mapped_area.copy().is_some() {
            return Err(EBUSY);
        }
        let start = vma.start();
        let size = (vma.end() - start).min(MAX_MAPPED_SIZE);
        state.pages = BufferPages::with_slots(size.div_ceil(PAGE_SIZE))?;
        state.ranges.set_area(size)?;
        state.free_async = size / 2;
        // Always set here: it was not set just above, and only this sets it, under `state`.
        self.mapped_area.populate(MappedArea { start, size });
        self.mapped.store(true, Release);

        // SAFETY: The vma is being set up by this `mmap` call, so nothing else accesses it yet.
        // The private data is `self`, which outlives the vma: the vma holds a reference on the
        // file, and the file owns the process this buffer belongs to.
        unsafe {
            let raw = vma.as_ptr();
            (*raw).vm_ops = &RECEIVE_BUFFER_VM_OPS.0;
            (*raw).vm_private_data = core::ptr::from_ref(self).cast_mut().cast::<c_void>();
        }
        Ok(())
    }

    /// Whether the receive buffer is mapped right now.
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapped.load(Acquire)
    }

    /// Reserves `size` bytes for a transaction, with the pages under them put in. The caller
    /// fills the range in through the returned view.
    ///
    /// `target` is the target node of a call or one-way transaction, whose strong local
    /// reference the caller took and the range holds if it is reserved (see [`Range::target`]);
    /// a `oneway` transaction may only use half the area in all. With `clear_on_free`, the
    /// range is zeroed when it goes. Fails with `ESRCH` when the buffer is not (or no longer)
    /// mapped and with `ENOSPC` when no free range is large enough (or the one-way half is
    /// full). The last part of the result says whether the sending thread group looks like a
    /// one-way spammer (see [`BufferState::spots_oneway_spam`]).
    ///
    /// Locking: the range is reserved under `state` alone, which is all it takes when its
    /// pages are all there (unused ones are taken back off the shrinker's list); missing
    /// pages are put in under the owner's `mmap_lock` and then `state`, the order `mmap` has
    /// too. Filling the range in holds no lock, since it may fault on the sender's memory.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        size: usize,
        target: Option<NodeArc>,
        oneway: bool,
        clear_on_free: bool,
        label: BufferLabel,
    ) -> Result<(BufferRange, RangeView, bool)> {
        let size = size.max(size_of::<usize>());
        // A size no mapping can hold fails as `reserve_range` would fail it, before the room
        // for its pages is allocated: the sizes come from userspace, and an allocation of
        // their size would be refused with a warning.
        if size > MAX_MAPPED_SIZE {
            let mapped = !self.state.lock().released && self.is_mapped();
            return Err(if mapped { ENOSPC } else { ESRCH });
        }
        // Room for the pages of the range wherever it starts; allocated before the lock.
        let pages = RangePages::with_capacity(size.div_ceil(PAGE_SIZE) + 1)?;
        let (area, range, pages, spam) =
            self.reserve_range(size, target, oneway, clear_on_free, label, pages)?;
        let pages = match pages {
            Reserved::Complete(pages) => Ok(pages),
            Reserved::Incomplete(pages) => self.pages_for(area, &range, pages),
        };
        match pages {
            Ok(pages) => {
                let view = RangeView {
                    pages,
                    start: range.offset() % PAGE_SIZE,
                    size,
                };
                Ok((range, view, spam))
            }
            Err(err) => {
                drop(self.release(range));
                Err(err)
            }
        }
    }

    /// Reserves a free range of `size` bytes, and counts it on its pages. If they are all
    /// there, they are pushed to `pages`.
    fn reserve_range(
        &self,
        size: usize,
        target: Option<NodeArc>,
        oneway: bool,
        clear_on_free: bool,
        label: BufferLabel,
        mut pages: RangePages,
    ) -> Result<(MappedArea, BufferRange, Reserved, bool)> {
        let mut state = self.state.lock();
        let area = match self.mapped_area.copy() {
            Some(area) if !state.released && self.is_mapped() => area,
            _ => return Err(ESRCH),
        };
        if oneway && size > state.free_async {
            return Err(ENOSPC);
        }
        state.ranges.make_room()?;
        let sender = kernel::current!().group_leader().pid();
        let new_range = Range {
            delivered: false,
            abandoned: false,
            target,
            oneway,
            held: HeldRefs::new(),
            sender,
            clear_on_free,
            array_fds: None,
            label,
        };
        let offset = match state.ranges.reserve(size, new_range) {
            Ok(offset) => offset,
            Err((new_range, err)) => {
                drop(state);
                drop(new_range);
                return Err(err);
            }
        };
        // The range cannot be too far for a `BufferRange`: the area is at most 4 MiB. The
        // pushes cannot fail: `ReceiveBuffer::reserve` made room for every page of the range.
        let counted = BufferRange::new(offset, size)
            .ok_or(EINVAL)
            .and_then(|range| {
                let complete = state
                    .pages
                    .start_using(page_indices(offset, size), |page| {
                        pages.push_within_capacity(page.clone()).is_ok()
                    })?;
                Ok((range, complete))
            });
        let (range, complete) = match counted {
            Ok(counted) => counted,
            Err(err) => {
                let new_range = state.ranges.remove(offset);
                drop(state);
                drop(new_range);
                return Err(err);
            }
        };
        let spam = oneway && {
            state.free_async -= size;
            state.spots_oneway_spam(area.size, sender)
        };
        let reserved = if complete {
            Reserved::Complete(pages)
        } else {
            pages.clear();
            Reserved::Incomplete(pages)
        };
        Ok((area, range, reserved, spam))
    }

    /// The pages under `range`, putting in and mapping the ones that are missing; pushed to
    /// `pages`, which is empty.
    fn pages_for(
        &self,
        area: MappedArea,
        range: &BufferRange,
        mut pages: RangePages,
    ) -> Result<RangePages> {
        let mm = self
            .mm
            .as_deref()
            .and_then(Mm::mmget_not_zero)
            .ok_or(ESRCH)?;
        let mmap = mm.mmap_read_lock();
        let vma = mmap.vma_lookup(area.start).ok_or(ESRCH)?;
        if !self.owns(vma) {
            return Err(ESRCH);
        }
        let vma = vma.as_mixedmap_vma().ok_or(ESRCH)?;
        let mut state = self.state.lock();
        // The process was released meanwhile: its slots are gone.
        if state.released {
            return Err(ESRCH);
        }
        for index in page_indices(range.offset(), range.size()) {
            let page = match state.pages.get(index) {
                Some(page) => page.clone(),
                None => {
                    // An allocation that reclaims may run the shrinker, which only tries
                    // the locks held here and skips this buffer.
                    let page = SharedPage::alloc(GFP_KERNEL | __GFP_ZERO)?;
                    vma.vm_insert_page(area.start + index * PAGE_SIZE, &page.page())?;
                    state.pages.put(index, page)?.clone()
                }
            };
            pages.push(page)?;
        }
        Ok(pages)
    }

    /// Gives back up to `max` unused pages, those unused longest first: unmaps each from the
    /// owner and frees it. For the shrinker; returns how many it freed.
    ///
    /// Locking: this runs where the kernel looks for memory, maybe inside an allocation made
    /// with the owner's `mmap_lock` or this buffer's lock held (see [`Self::pages_for`]), so
    /// it only tries them, in their usual order, and gives up if either is busy. On the
    /// owner's side it first tries the lock of the area's vma alone ([`AreaLock`]), so that
    /// the owner mapping, unmapping or faulting elsewhere does not make it skip the buffer.
    pub(crate) fn give_back_unused(&self, max: usize) -> usize {
        // With the address space gone (its last user exited), its page tables went or are
        // going, and nothing can map a page again: the pages are freed without unmapping.
        let mm = self
            .mm
            .as_deref()
            .and_then(Mm::mmget_not_zero)
            .map(MmWithUser::into_mmput_async);
        // Never mapped: there are no pages to unmap (nor any to free).
        let area_lock = match (&mm, self.mapped_area.copy()) {
            (Some(mm), Some(area)) => match AreaLock::try_new(self, mm, area) {
                Some(lock) => Some(lock),
                None => return 0,
            },
            _ => None,
        };
        let Some(mut state) = self.state.try_lock() else {
            return 0;
        };
        let start = self.mapped_area.copy().map_or(0, |area| area.start);
        let mut freed = 0;
        while freed < max {
            let Some((index, page)) = state.pages.take_oldest_unused() else {
                break;
            };
            let address = start + index * PAGE_SIZE;
            // No vma of ours there: the buffer was unmapped, and its page table entries with
            // it. (A page the owner still maps elsewhere, after `mremap`, keeps its own
            // reference there, as with the C driver.)
            if let Some(vma) = area_lock
                .as_ref()
                .and_then(|lock| lock.vma_at(self, address))
            {
                vma.zap_vma_range(address, PAGE_SIZE);
            }
            drop(page);
            freed += 1;
        }
        let unlisted = if state.pages.unused() == 0 {
            crate::shrinker::unlist(self)
        } else {
            None
        };
        drop(state);
        drop(area_lock);
        drop(mm);
        drop(unlisted);
        freed
    }

    /// How many of the buffer's pages are in use, unused and missing, and its high watermark:
    /// the numbers of the C driver's `pages:` lines in debugfs.
    pub(crate) fn page_counts(&self) -> PageCounts {
        self.state.lock().pages.counts()
    }

    /// The user address of `range`.
    ///
    /// Read from where `mmap` put the area, without the lock: a range exists only once the
    /// area does, and the area never moves.
    fn user_address(&self, range: &BufferRange) -> u64 {
        let start = self.mapped_area.copy().map_or(0, |area| area.start);
        start.saturating_add(range.offset()) as u64
    }

    /// Marks `range` as handed to userspace: from now on `BC_FREE_BUFFER` may free it, and
    /// only now, as in the C driver.
    fn mark_delivered(&self, range: &BufferRange, array_fds: ArrayFds) {
        let mut state = self.state.lock();
        if let Some(found) = state.ranges.get_mut(range.offset()) {
            found.delivered = true;
            found.array_fds = array_fds;
        }
    }

    /// Marks `range` as left for the release of the owning process (see
    /// [`ReservedBuffer::abandon`]).
    fn mark_abandoned(&self, range: &BufferRange) {
        let mut state = self.state.lock();
        if let Some(found) = state.ranges.get_mut(range.offset()) {
            found.abandoned = true;
        }
    }

    /// Forgets every range and page, for the release of the owning process.
    ///
    /// A range holds its target node, which holds the owning process: without this, a process
    /// that never freed such a buffer would keep itself alive.
    pub(crate) fn clear(&self) {
        pr_debug!("releasing a receive buffer, pages {}\n", self.page_counts());
        let mut state = self.state.lock();
        let ranges = state.ranges.take_all();
        // `TF_CLEAR_BUF` holds for buffers never freed too: their pages go back scrubbed.
        for (offset, size, _) in ranges.iter().filter(|(_, _, range)| range.clear_on_free) {
            state.zero(offset, size);
        }
        let pages = state.pages.take_all();
        state.free_async = 0;
        // A sender racing with the release now finds the buffer unmapped (BR_DEAD_REPLY).
        state.released = true;
        // With no slots left, no page can become unused and list the buffer again.
        let unlisted = crate::shrinker::unlist(self);
        drop(state);
        drop(ranges);
        drop(pages);
        drop(unlisted);
    }

    /// Gives the references in `held` to the range, to be released when the range goes.
    /// Gives them back if the range is gone already (its process was released).
    fn hold(&self, range: &BufferRange, held: HeldRefs) -> Result<(), HeldRefs> {
        let mut state = self.state.lock();
        match state.ranges.get_mut(range.offset()) {
            Some(found) => {
                found.held = held;
                Ok(())
            }
            None => Err(held),
        }
    }

    /// Gives back a range that was never delivered; returns what it leaves to settle.
    fn release(self: &Arc<Self>, range: BufferRange) -> Option<Freed> {
        let mut state = self.state.lock();
        let removed = self.remove_range(&mut state, range.offset());
        drop(state);
        removed.map(Range::into_freed)
    }

    /// `BC_FREE_BUFFER`: frees the delivered buffer that starts at user address `addr`.
    ///
    /// Returns `None`, changing nothing, for any other address: as in the C driver, freeing
    /// something that is not a delivered buffer is skipped.
    pub(crate) fn free_by_user(self: &Arc<Self>, addr: u64) -> Option<Freed> {
        let mut state = self.state.lock();
        if state.released {
            return None;
        }
        let area = self.mapped_area.copy()?;
        let offset = usize::try_from(addr).ok()?.checked_sub(area.start)?;
        if !state.ranges.get(offset)?.delivered {
            return None;
        }
        let removed = self.remove_range(&mut state, offset);
        drop(state);
        removed.map(Range::into_freed)
    }
}

impl ReceiveBuffer {
    /// Forgets the range at `offset`, giving back its one-way room; the pages no range uses
    /// any more become unused, and the buffer goes on the shrinker's list. Returns the range
    /// for the caller to drop once the lock is released.
    fn remove_range(self: &Arc<Self>, state: &mut BufferState, offset: usize) -> Option<Range> {
        let (size, range) = state.ranges.remove(offset)?;
        if range.oneway {
            state.free_async += size;
        }
        if range.clear_on_free {
            state.zero(offset, size);
        }
        if state.pages.stop_using(page_indices(offset, size)) != 0 {
            crate::shrinker::list(self);
        }
        Some(range)
    }
}

impl Range {
    fn into_freed(self) -> Freed {
        Freed {
            target: self.target,
            oneway: self.oneway,
            held: self.held,
            array_fds: self.array_fds,
        }
    }
}

impl BufferState {
    /// After a one-way transaction from `sender` took its room: whether to report the sender
    /// as a one-way spammer, as the C driver does. Once less than a tenth of the area is left
    /// for one-way transactions, a sender holding more than 50 one-way buffers, or more than
    /// a quarter of the area in them, is reported, once, until the room recovers.
    fn spots_oneway_spam(&mut self, area_size: usize, sender: Pid) -> bool {
        if self.free_async >= area_size / 10 {
            self.oneway_spam_detected = false;
            return false;
        }
        let (count, bytes) = self
            .ranges
            .iter()
            .filter(|(_, _, range)| range.oneway && range.sender == sender)
            .fold((0usize, 0usize), |(count, bytes), (_, size, _)| {
                (count + 1, bytes.saturating_add(size))
            });
        if count <= 50 && bytes <= area_size / 4 {
            return false;
        }
        crate::debug::binder_debug!(
            crate::debug::mask::USER_ERROR,
            "pid {} spamming one-way? {} buffers, {} bytes\n",
            sender,
            count,
            bytes
        );
        !core::mem::replace(&mut self.oneway_spam_detected, true)
    }

    /// Zeroes `size` bytes at `offset` of the area, for a range that goes with `TF_CLEAR_BUF`.
    /// Called before the range can be reserved again.
    fn zero(&self, offset: usize, size: usize) {
        let mut done = 0;
        while done < size {
            let at = offset + done;
            let in_page = at % PAGE_SIZE;
            let chunk = (PAGE_SIZE - in_page).min(size - done);
            if let Some(page) = self.pages.get(at / PAGE_SIZE) {
                // SAFETY: The bytes are those of a range being removed under the buffer's
                // lock: no transaction writes them any more, and none can reserve them before
                // the lock is released. (Userspace may only read them.)
                let _ = unsafe { page.page().fill_zero_raw(in_page, chunk) };
            }
            done += chunk;
        }
    }
}

/// Copies `len` bytes from the current task's memory at `from` to `page` at `offset`.
///
/// What the kernel crate's `Page::copy_from_user_slice_raw` does through a
/// `UserSliceReader`, without its checks of `offset` and `len` (the caller's loop keeps each
/// piece within its page) and without its two calls around `copy_from_user` (its own and
/// the reader's `read_raw`, neither inlined into this crate): a payload of 1 MiB is 257
/// pages, and per page those calls and checks cost more instructions than the C driver's
/// whole loop, which calls `copy_from_user` itself as this does.
///
/// # Safety
///
/// `offset + len <= PAGE_SIZE`, and nothing else in the kernel reads or writes those bytes
/// of the page meanwhile.
unsafe fn copy_user_to_page(page: &Page, offset: usize, len: usize, from: UserPtr) -> Result {
    // SAFETY: `page` is a live page for as long as it is borrowed.
    let mapped = unsafe { bindings::kmap_local_page(page.as_ptr()) };
    // SAFETY: The page is mapped at `mapped` for `PAGE_SIZE` bytes, so by the requirements
    // the `len` bytes at `offset` are in it, and no one else accesses them meanwhile.
    // `copy_from_user` checks `from` and copes with a fault (it then zeroes what it could
    // not copy, within those bytes).
    let left = unsafe {
        bindings::copy_from_user(
            mapped.cast::<u8>().add(offset).cast(),
            from.as_const_ptr(),
            len,
        )
    };
    // SAFETY: `mapped` is the mapping made just above, the last one this thread made and has
    // not undone.
    unsafe { bindings::kunmap_local(mapped) };
    if left == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

impl RangeView {
    /// Runs `f` over the pieces of `offset..offset + len` of the range, page by page: `f`
    /// gets the page, the offset in it, the offset in the piece sequence, and the length.
    fn for_each_piece(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(&Page, usize, usize, usize) -> Result,
    ) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.size {
            return Err(EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let at = self.start + offset;
        let mut in_page = at % PAGE_SIZE;
        // Most pieces (an object, a word, a small payload) lie on one page: no walk then.
        if len <= PAGE_SIZE - in_page {
            let page = self.pages.get(at / PAGE_SIZE).ok_or(EINVAL)?;
            return f(&page, in_page, 0, len);
        }
        let mut done = 0;
        for page in self.pages.iter_from(at / PAGE_SIZE) {
            let chunk = (PAGE_SIZE - in_page).min(len - done);
            f(&page, in_page, done, chunk)?;
            done += chunk;
            if done == len {
                return Ok(());
            }
            in_page = 0;
        }
        // The range has a page for each of its bytes; this is not reached.
        Err(EINVAL)
    }

    /// Copies `len` bytes at the address `from` in the current task's memory (the sender's)
    /// to `offset` in the range; `EFAULT` if some of them cannot be read.
    pub(crate) fn copy_from_user(&self, offset: usize, from: u64, len: usize) -> Result {
        let from = UserPtr::from_addr(usize::try_from(from).map_err(|_| EFAULT)?);
        self.for_each_piece(offset, len, |page, in_page, done, chunk| {
            // SAFETY: `for_each_piece` keeps each piece within its page. The bytes written
            // belong to a range reserved for this transaction and not yet delivered: nothing
            // else in the kernel reads or writes them meanwhile. (Userspace can only read the
            // page, through its read-only mapping.)
            unsafe { copy_user_to_page(page, in_page, chunk, from.wrapping_byte_add(done)) }
        })
    }

    /// Reads `out.len()` bytes at `offset` in the range.
    pub(crate) fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let dst = out.as_mut_ptr();
        self.for_each_piece(offset, out.len(), |page, in_page, done, chunk| {
            // SAFETY: `done + chunk <= out.len()`, so the destination is valid for `chunk`
            // bytes. The range is this transaction's alone (see `copy_from_user`), so nothing
            // writes the bytes read.
            unsafe { page.read_raw(dst.add(done), in_page, chunk) }
        })
    }

    /// Writes `bytes` at `offset` in the range.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) -> Result {
        let src = bytes.as_ptr();
        self.for_each_piece(offset, bytes.len(), |page, in_page, done, chunk| {
            // SAFETY: `done + chunk <= bytes.len()`, so the source is valid for `chunk`
            // bytes. The range is this transaction's alone (see `copy_from_user`), so nothing
            // else reads or writes the bytes written.
            unsafe { page.write_raw(src.add(done), in_page, chunk) }
        })
    }
}

impl ReceiveBuffer {
    /// Whether `vma` is this buffer's mapping (and not another mapping at its address).
    fn owns(&self, vma: &VmaRef) -> bool {
        // SAFETY: A `VmaRef` is only reachable with the mmap lock or the vma's own lock held
        // for reading, either of which keeps these fields as they are.
        let (ops, private) = unsafe { ((*vma.as_ptr()).vm_ops, (*vma.as_ptr()).vm_private_data) };
        core::ptr::eq(ops, &RECEIVE_BUFFER_VM_OPS.0)
            && core::ptr::eq(private.cast_const(), core::ptr::from_ref(self).cast())
    }
}

/// What the shrinker holds of the owner's address space while it unmaps unused pages: the
/// read lock of the one vma of the buffer that spans the whole area, or else the whole
/// `mmap_lock` for reading. Either keeps the vmas it finds from changing or going.
///
/// The vma's lock is worth trying first because it is busy far less often: `mmap`,
/// `munmap` and page faults anywhere in the owner take the `mmap_lock`, but only a change to
/// this very vma takes its lock for writing.
///
/// Lock order: both are only ever tried, never waited for, and the buffer's `state` (tried
/// too) is taken after either, as `mmap` and [`ReceiveBuffer::pages_for`] take it after the
/// `mmap_lock`; so none of them can wait on the shrinker, which may be running inside an
/// allocation made with any of them held. The vma's lock is let go before the `mmap_lock` is
/// tried, as the kernel takes the `mmap_lock` first (to lock a vma for writing).
enum AreaLock<'a> {
    /// The read lock of a vma of the buffer that covers all of the area.
    Vma(VmaReadGuard<'a>),
    /// The owner's `mmap_lock`, for reading.
    Mmap(MmapReadGuard<'a>),
}

impl<'a> AreaLock<'a> {
    /// Tries the lock of the vma at the start of `area` of `buffer`, which only does if that
    /// vma is still the buffer's and still spans the area (none was split off or moved),
    /// then the `mmap_lock`. `None` when neither could be had.
    fn try_new(buffer: &ReceiveBuffer, mm: &'a MmWithUser, area: MappedArea) -> Option<Self> {
        if let Some(vma) = mm.lock_vma_under_rcu(area.start) {
            // The vma contains `area.start`, so only its end needs checking.
            if buffer.owns(&vma) && vma.end() - area.start >= area.size {
                return Some(Self::Vma(vma));
            }
        }
        mm.mmap_read_trylock().map(Self::Mmap)
    }

    /// The vma of `buffer` that maps `address`, an address of its area, if there is one.
    fn vma_at(&self, buffer: &ReceiveBuffer, address: usize) -> Option<&VmaRef> {
        match self {
            // `try_new` checked that it spans the whole area.
            Self::Vma(vma) => Some(vma),
            Self::Mmap(mmap) => mmap.vma_lookup(address).filter(|vma| buffer.owns(vma)),
        }
    }
}

/// `vm_ops->close`: the receive buffer was unmapped, or its owner is exiting.
///
/// # Safety
///
/// `vma` must be a receive buffer mapping set up by [`ReceiveBuffer::map`].
unsafe extern "C" fn receive_buffer_vma_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `map` stored a pointer to the `ReceiveBuffer` in the private data, and the
    // buffer outlives the vma (see `map`).
    let buffer = unsafe { &*(*vma).vm_private_data.cast::<ReceiveBuffer>() };
    buffer.mapped.store(false, Release);
}

/// `vm_ops->fault`: userspace touched the area where no buffer is. That is a bug in userspace.
///
/// # Safety
///
/// Called by the memory manager with a valid `vmf`; this function does not use it.
unsafe extern "C" fn receive_buffer_vma_fault(
    _vmf: *mut bindings::vm_fault,
) -> bindings::vm_fault_t {
    bindings::vm_fault_reason_VM_FAULT_SIGBUS
}

/// What the log files read of a receive buffer ([`crate::dump`]). Each takes the buffer's
/// mutex, so none is called under a spinlock.
impl ReceiveBuffer {
    /// Prints one line per allocated range, in C's `buffer` format.
    pub(crate) fn print_allocated(&self, m: &SeqFile) {
        let state = self.state.lock();
        for (offset, _, range) in state.ranges.iter() {
            seq_print!(
                m,
                "  buffer {}: {:x} size {}:{}:{} {}\n",
                range.label.debug_id as i32,
                offset,
                range.label.data_size,
                range.label.offsets_size,
                range.label.extra_size,
                // C's words: whether a transaction still owns the buffer.
                if range.delivered || range.abandoned {
                    "delivered"
                } else {
                    "active"
                }
            );
        }
    }

    /// How many ranges are allocated.
    pub(crate) fn allocated_count(&self) -> usize {
        self.state.lock().ranges.len()
    }

    /// The room left for one-way transactions.
    pub(crate) fn free_async_space(&self) -> usize {
        self.state.lock().free_async
    }
}
