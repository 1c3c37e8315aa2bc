//! An open binder device and its ioctls.

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use crate::{
    mapping::Mapping,
    protocol::{parse_returns, Commands, Return},
    uapi,
};

/// What one `BINDER_WRITE_READ` did: how far each half got, and the ioctl's result.
///
/// The driver reports the consumed counts also when the ioctl fails.
#[derive(Debug)]
pub struct WriteRead {
    /// The ioctl's result.
    pub result: io::Result<()>,
    /// `write_consumed` after the call.
    pub write_consumed: u64,
    /// `read_consumed` after the call.
    pub read_consumed: u64,
}

/// The read buffer size the helpers use: room for many returns.
const READ_BUFFER_SIZE: usize = 256;

/// One open binder device: a binder "process" in the driver's terms.
#[derive(Debug)]
pub struct Binder {
    fd: OwnedFd,
}

impl Binder {
    /// Opens `path` (e.g. `/dev/binder`) read-write and close-on-exec.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_with_flags(path, 0)
    }

    /// Opens `path` read-write and close-on-exec, with extra `O_*` flags such as `O_NONBLOCK`.
    pub fn open_with_flags(path: impl AsRef<Path>, flags: i32) -> io::Result<Self> {
        let path = CString::new(path.as_ref().as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `open` just returned this descriptor, and nothing else owns it.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// A second descriptor for the same open device (`dup`), e.g. for another thread.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
        })
    }

    /// Makes an ioctl with a pointer argument, as the driver sees it: any pointer at all.
    ///
    /// # Safety
    ///
    /// `arg` must be valid for what `request` makes the kernel read and write, or be a pointer
    /// the caller wants the kernel to fault on.
    pub unsafe fn ioctl_ptr(&self, request: u32, arg: *mut libc::c_void) -> io::Result<i32> {
        // SAFETY: Forwarded to the caller.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), request as _, arg) };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    /// Makes an ioctl whose argument is one `T`, read and/or written by the kernel.
    pub fn ioctl<T>(&self, request: u32, arg: &mut T) -> io::Result<i32> {
        // SAFETY: `arg` is a valid, exclusive `T`; binder ioctls access only their own struct.
        unsafe { self.ioctl_ptr(request, (arg as *mut T).cast()) }
    }

    /// `BINDER_VERSION`: the driver's protocol version.
    pub fn version(&self) -> io::Result<i32> {
        let mut version = uapi::binder_version::default();
        self.ioctl(uapi::BINDER_VERSION, &mut version)?;
        Ok(version.protocol_version)
    }

    /// `BINDER_SET_MAX_THREADS`: how many looper threads the driver may ask for.
    pub fn set_max_threads(&self, max: u32) -> io::Result<()> {
        let mut max = max;
        self.ioctl(uapi::BINDER_SET_MAX_THREADS, &mut max).map(drop)
    }

    /// `BINDER_ENABLE_ONEWAY_SPAM_DETECTION`: whether this process, when a receiver suspects
    /// it of flooding it with one-way transactions, reads `BR_ONEWAY_SPAM_SUSPECT`.
    pub fn enable_oneway_spam_detection(&self, enable: bool) -> io::Result<()> {
        let mut enable = u32::from(enable);
        self.ioctl(uapi::BINDER_ENABLE_ONEWAY_SPAM_DETECTION, &mut enable)
            .map(drop)
    }

    /// `BINDER_FREEZE`: freezes (`enable`) or thaws every binder process of the thread group
    /// `pid`, on every device; a freeze waits up to `timeout_ms` for their transactions to
    /// finish.
    pub fn freeze(&self, pid: u32, enable: bool, timeout_ms: u32) -> io::Result<()> {
        let mut info = uapi::binder_freeze_info {
            pid,
            enable: u32::from(enable),
            timeout_ms,
        };
        self.ioctl(uapi::BINDER_FREEZE, &mut info).map(drop)
    }

    /// `BINDER_GET_FROZEN_INFO`: `(sync_recv, async_recv)` of the binder processes of `pid`:
    /// bit 0 of `sync_recv` says a call came while frozen, bit 1 that transactions are still
    /// pending; `async_recv` says a one-way transaction came while frozen.
    pub fn frozen_info(&self, pid: u32) -> io::Result<(u32, u32)> {
        let mut info = uapi::binder_frozen_status_info {
            pid,
            ..Default::default()
        };
        self.ioctl(uapi::BINDER_GET_FROZEN_INFO, &mut info)?;
        Ok((info.sync_recv, info.async_recv))
    }

    /// `BINDER_SET_CONTEXT_MGR`: become the context manager (handle 0) of this device.
    pub fn set_context_mgr(&self) -> io::Result<()> {
        let mut unused = 0u32;
        self.ioctl(uapi::BINDER_SET_CONTEXT_MGR, &mut unused)
            .map(drop)
    }

    /// `BINDER_SET_CONTEXT_MGR_EXT`: become the context manager with a node of the given
    /// pointer, cookie and `FLAT_BINDER_FLAG_*` flags.
    pub fn set_context_mgr_ext(&self, ptr: u64, cookie: u64, flags: u32) -> io::Result<()> {
        let mut object = uapi::flat_binder_object {
            hdr: uapi::binder_object_header {
                type_: uapi::BINDER_TYPE_BINDER,
            },
            flags,
            cookie,
            ..Default::default()
        };
        object.__bindgen_anon_1.binder = ptr;
        self.ioctl(uapi::BINDER_SET_CONTEXT_MGR_EXT, &mut object)
            .map(drop)
    }

    /// `BINDER_THREAD_EXIT`: the calling thread leaves the driver.
    pub fn thread_exit(&self) -> io::Result<()> {
        let mut unused = 0u32;
        self.ioctl(uapi::BINDER_THREAD_EXIT, &mut unused).map(drop)
    }

    /// `BINDER_WRITE_READ` with an explicit argument, for cases about the ioctl itself.
    pub fn write_read_raw(&self, bwr: &mut uapi::binder_write_read) -> io::Result<()> {
        self.ioctl(uapi::BINDER_WRITE_READ, bwr).map(drop)
    }

    /// `BINDER_WRITE_READ` writing `commands` (from offset `write_consumed`) and reading into
    /// `read` (from offset `read_consumed`).
    pub fn write_read_at(
        &self,
        commands: &[u8],
        write_consumed: u64,
        read: &mut [u8],
        read_consumed: u64,
    ) -> WriteRead {
        let mut bwr = uapi::binder_write_read {
            write_size: commands.len() as u64,
            write_consumed,
            write_buffer: commands.as_ptr() as u64,
            read_size: read.len() as u64,
            read_consumed,
            read_buffer: read.as_mut_ptr() as u64,
        };
        let result = self.write_read_raw(&mut bwr);
        WriteRead {
            result,
            write_consumed: bwr.write_consumed,
            read_consumed: bwr.read_consumed,
        }
    }

    /// Writes `commands`, reading nothing.
    pub fn write(&self, commands: &Commands) -> WriteRead {
        self.write_read_at(commands.as_bytes(), 0, &mut [], 0)
    }

    /// Reads returns (blocking unless the file is non-blocking) and decodes them.
    pub fn read(&self) -> io::Result<Vec<Return>> {
        self.write_then_read(&Commands::new())
    }

    /// Reads into `size` bytes at the user address `buffer`, writing nothing: for cases that
    /// hand the driver a read buffer it cannot (wholly) write.
    pub fn read_raw(&self, buffer: u64, size: u64) -> WriteRead {
        let mut bwr = uapi::binder_write_read {
            read_size: size,
            read_buffer: buffer,
            ..Default::default()
        };
        let result = self.write_read_raw(&mut bwr);
        WriteRead {
            result,
            write_consumed: bwr.write_consumed,
            read_consumed: bwr.read_consumed,
        }
    }

    /// Reads every return the driver has ready now, without waiting: the returns of all reads
    /// until one would block, in order, without their `BR_NOOP`s. The file is non-blocking for
    /// the reads and blocking afterwards.
    pub fn read_pending(&self) -> io::Result<Vec<Return>> {
        self.set_nonblocking(true)?;
        let mut pending = Vec::new();
        let outcome = loop {
            match self.read() {
                Ok(returns) => pending.extend(returns.into_iter().filter(|r| *r != Return::Noop)),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break Ok(pending),
                Err(e) => break Err(e),
            }
        };
        self.set_nonblocking(false)?;
        outcome
    }

    /// Writes `commands` and reads returns in one `BINDER_WRITE_READ`.
    pub fn write_then_read(&self, commands: &Commands) -> io::Result<Vec<Return>> {
        let mut buffer = [0u8; READ_BUFFER_SIZE];
        let done = self.write_read_at(commands.as_bytes(), 0, &mut buffer, 0);
        done.result?;
        let len = usize::try_from(done.read_consumed).unwrap_or(usize::MAX);
        let bytes = buffer
            .get(..len)
            .ok_or_else(|| io::Error::other(format!("read_consumed {len} is past the buffer")))?;
        parse_returns(bytes).map_err(|_| io::Error::other("a return is cut short"))
    }

    /// `BINDER_GET_EXTENDED_ERROR`: the details of this thread's last failed transaction,
    /// reset by the call.
    pub fn extended_error(&self) -> io::Result<uapi::binder_extended_error> {
        let mut error = uapi::binder_extended_error::default();
        self.ioctl(uapi::BINDER_GET_EXTENDED_ERROR, &mut error)?;
        Ok(error)
    }

    /// Writes `commands` and fails unless the driver took all of them.
    pub fn send(&self, commands: &Commands) -> io::Result<()> {
        let done = self.write(commands);
        done.result?;
        if done.write_consumed != commands.len() as u64 {
            return Err(io::Error::other(format!(
                "driver consumed {} of {} bytes",
                done.write_consumed,
                commands.len()
            )));
        }
        Ok(())
    }

    /// Switches the file between blocking and non-blocking reads.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        // SAFETY: Plain fcntl calls on our own descriptor.
        let flags = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: As above.
        if unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Maps `len` bytes of the receive buffer with protection `prot`.
    pub fn map(&self, len: usize, prot: i32) -> io::Result<Mapping> {
        Mapping::new(self, len, prot)
    }
}

impl AsRawFd for Binder {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for Binder {
    fn from(fd: OwnedFd) -> Self {
        Self { fd }
    }
}
