// SPDX-License-Identifier: GPL-2.0

//! The receive buffer: the read-only area a process maps from the binder device, into which
//! the driver copies every transaction the process receives.
//!
//! The rules follow the C driver: only the opener's thread group may map it, never writable,
//! at most once per open file (also after `munmap`), and binder uses at most 4 MiB of it.
//! Nothing is allocated up front: pages are put in only under the buffers that transactions
//! occupy, so a process that touches the area outside of them gets `SIGBUS`.

use kernel::{
    bindings,
    ffi::c_void,
    mm::{
        virt::VmaNew,
        Mm, //
    },
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        new_mutex,
        Mutex, //
    },
};

/// The most of a mapping that binder uses; the C driver's `SZ_4M`.
pub(crate) const MAX_MAPPED_SIZE: usize = bindings::SZ_4M as usize;

/// The receive buffer of one process.
#[pin_data]
pub(crate) struct ReceiveBuffer {
    /// The mapped area, set by the first successful `mmap` and kept from then on.
    #[pin]
    area: Mutex<Option<MappedArea>>,
    /// Whether the area is still mapped.
    ///
    /// `vm_ops->close` clears it with the `mmap_lock` held for writing. It is an atomic rather
    /// than part of `area` because inserting pages takes `area`'s lock first and the
    /// `mmap_lock` second; taking `area`'s lock in `close` would invert that order.
    mapped: Atomic<bool>,
}

/// Where the receive buffer lives in the owner's address space.
#[derive(Clone, Copy)]
struct MappedArea {
    /// The user address of the first byte.
    #[expect(dead_code, reason = "buffers are placed here by the IPC engine")]
    start: usize,
    /// How many bytes of the mapping binder uses (at most [`MAX_MAPPED_SIZE`]).
    #[expect(dead_code, reason = "buffers are placed here by the IPC engine")]
    size: usize,
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
    /// Creates the receive buffer of a process that has not mapped anything yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            area <- new_mutex!(None, "ReceiveBuffer::area"),
            mapped: Atomic::new(false),
        })
    }

    /// Sets up `vma` as this receive buffer; the `mmap` file operation.
    ///
    /// `owner_mm` is the address space of the process that opened the device. The caller has
    /// checked that the current task belongs to the opener's thread group.
    pub(crate) fn map(&self, vma: &VmaNew, owner_mm: Option<&Mm>) -> Result {
        if vma.writable() {
            return Err(EPERM);
        }
        vma.set_dontcopy();
        // Cannot fail: the mapping was just found not to be writable.
        vma.try_clear_maywrite()?;
        let vma = vma.set_mixedmap();

        match owner_mm {
            Some(mm) if mm.as_raw() == vma.mm().as_raw() => {}
            _ => return Err(EINVAL),
        }

        let mut area = self.area.lock();
        if area.is_some() {
            return Err(EBUSY);
        }
        let start = vma.start();
        let size = (vma.end() - start).min(MAX_MAPPED_SIZE);
        *area = Some(MappedArea { start, size });
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
    #[expect(
        dead_code,
        reason = "checked before delivering, which comes with the IPC engine"
    )]
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapped.load(Acquire)
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
