//! The receive buffer of a binder file, mapped into this process.

use std::{io, os::fd::AsRawFd, ptr::NonNull};

/// A mapping of a binder device, unmapped when dropped.
#[derive(Debug)]
pub struct Mapping {
    addr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `fd` with protection `prot` (`libc::PROT_*`) and `MAP_PRIVATE`.
    pub fn new(fd: &impl AsRawFd, len: usize, prot: i32) -> io::Result<Self> {
        // SAFETY: A fresh mapping at an address of the kernel's choosing aliases nothing.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let addr =
            NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Self { addr, len })
    }

    /// The first byte of the mapping.
    pub fn addr(&self) -> *const u8 {
        self.addr.as_ptr()
    }

    /// The length that was mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (it never is: mmap rejects a length of 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `len` bytes at user address `addr`, if they lie inside the mapping.
    ///
    /// The driver only writes a buffer before delivering it, so a delivered buffer's bytes stay
    /// put until userspace frees it with `BC_FREE_BUFFER`.
    pub fn bytes_at(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let start = (addr as usize).checked_sub(self.addr.as_ptr() as usize)?;
        let len = usize::try_from(len).ok()?;
        if start.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: The range was checked to lie inside this mapping, which lives as long as
        // the returned borrow; a delivered buffer is not written by the kernel any more.
        Some(unsafe { std::slice::from_raw_parts(self.addr.as_ptr().add(start), len) })
    }

    /// The transaction `txn`, delivered into this mapping: its data, objects and buffers.
    pub fn received<'a>(&'a self, txn: &'a crate::Txn) -> crate::Received<'a> {
        crate::Received::new(self, txn)
    }

    /// Changes the protection of the whole mapping (`mprotect`).
    pub fn protect(&self, prot: i32) -> io::Result<()> {
        // SAFETY: The range is exactly this mapping, which we own.
        let ret = unsafe { libc::mprotect(self.addr.as_ptr().cast(), self.len, prot) };
        if ret == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Unmaps now, reporting an error rather than ignoring it as `drop` does.
    pub fn unmap(self) -> io::Result<()> {
        let (addr, len) = (self.addr, self.len);
        std::mem::forget(self);
        // SAFETY: The range is exactly this mapping, and `self` is gone, so nothing uses it.
        if unsafe { libc::munmap(addr.as_ptr().cast(), len) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

// SAFETY: The mapping is plain memory owned by this value; userspace never writes it (binder
// maps it read-only), and the kernel writes a buffer only before delivering it. Reading it, or
// changing its protection, from several threads is no different from doing so from one, so a
// multi-threaded server may share it among its looper threads.
unsafe impl Send for Mapping {}
// SAFETY: As above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: The range is exactly this mapping, which is not used after this.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}
