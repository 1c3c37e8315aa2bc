//! Files as the fd cases see them: pipes whose far end proves who still holds a reference,
//! and checks on this process's fd table.
//!
//! A pipe is the cases' leak detector: its read end sees EOF only once every reference to the
//! write end is gone, the driver's included. A case that sends the write end and closes its
//! own copy therefore learns, from EOF on the read end, that the driver let go of the file.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

use crate::{
    ensure,
    harness::{Outcome, Step},
};

/// A pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> Outcome<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    // SAFETY: `pipe2` just returned these descriptors, and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An unlinked regular file in /tmp, open read-write.
pub fn temp_file() -> Outcome<OwnedFd> {
    let path = format!("/tmp/rb-fd-{}\0", std::process::id());
    // SAFETY: `path` is NUL-terminated and outlives the calls.
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(format!("open {path}: {}", io::Error::last_os_error()));
    }
    // SAFETY: As above.
    unsafe { libc::unlink(path.as_ptr().cast()) };
    // SAFETY: `open` just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes all of `bytes` to `fd`.
pub fn write_fd(fd: RawFd, bytes: &[u8]) -> Outcome {
    // SAFETY: `bytes` is valid for reads of its length.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    ensure!(
        written == bytes.len() as isize,
        "write to fd {fd}: {written} ({})",
        io::Error::last_os_error()
    );
    Ok(())
}

/// Waits (up to a minute) until `fd` is readable or at its end.
fn await_readable(fd: RawFd, what: &str) -> Outcome {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `poll` is valid for the call.
    let ready = unsafe { libc::poll(&mut poll, 1, 60_000) };
    ensure!(
        ready == 1,
        "{what}: fd {fd} still not readable after a minute"
    );
    Ok(())
}

/// Reads exactly `len` bytes from `fd` (a pipe).
pub fn read_exact_fd(fd: RawFd, len: usize, what: &str) -> Outcome<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    let mut got = 0;
    while got < len {
        await_readable(fd, what)?;
        // SAFETY: The range `got..len` of `bytes` is valid for writes.
        let n = unsafe { libc::read(fd, bytes[got..].as_mut_ptr().cast(), len - got) };
        ensure!(
            n > 0,
            "{what}: read returned {n} after {got} of {len} bytes ({})",
            io::Error::last_os_error()
        );
        got += n as usize;
    }
    Ok(bytes)
}

/// Waits until the pipe `read_end` reports EOF: nobody, the driver included, holds its write
/// end any more. Bytes still in the pipe are returned.
pub fn await_eof(read_end: RawFd, what: &str) -> Outcome<Vec<u8>> {
    let mut rest = Vec::new();
    loop {
        await_readable(read_end, what)
            .map_err(|e| format!("{e}: a write end is still open somewhere"))?;
        let mut chunk = [0u8; 256];
        // SAFETY: `chunk` is valid for writes of its length.
        let n = unsafe { libc::read(read_end, chunk.as_mut_ptr().cast(), chunk.len()) };
        ensure!(n >= 0, "{what}: read: {}", io::Error::last_os_error());
        if n == 0 {
            return Ok(rest);
        }
        rest.extend_from_slice(&chunk[..n as usize]);
    }
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Whether the open `fd` has FD_CLOEXEC.
pub fn is_cloexec(fd: RawFd) -> Outcome<bool> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    ensure!(
        flags >= 0,
        "fcntl(F_GETFD) on fd {fd}: {}",
        io::Error::last_os_error()
    );
    Ok(flags & libc::FD_CLOEXEC != 0)
}

/// The identity of the file `fd` refers to: (device, inode).
pub fn file_id(fd: RawFd) -> Outcome<(u64, u64)> {
    // SAFETY: An all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(format!("fstat fd {fd}: {}", io::Error::last_os_error()));
    }
    Ok((st.st_dev, st.st_ino))
}

/// The file offset of `fd` (shared by everyone holding the same open file).
pub fn offset_of(fd: RawFd) -> Outcome<i64> {
    // SAFETY: Plain syscall.
    let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    ensure!(at >= 0, "lseek fd {fd}: {}", io::Error::last_os_error());
    Ok(at)
}

/// The fds open in this process, from /proc/self/fd.
pub fn open_fds() -> Outcome<Vec<RawFd>> {
    let mut fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .step("read /proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own descriptor was open while it was read.
    fds.retain(|&fd| is_open(fd));
    fds.sort_unstable();
    Ok(fds)
}

/// Checks that this process has exactly the fds `before` it had.
pub fn expect_same_fds(before: &[RawFd], what: &str) -> Outcome {
    let now = open_fds()?;
    ensure!(now == before, "{what}: fds {before:?} before, {now:?} now");
    Ok(())
}

/// Checks that this process has no fd it did not have `before` (some of those may be gone:
/// the pipes of children that ended since).
pub fn expect_no_new_fds(before: &[RawFd], what: &str) -> Outcome {
    let now = open_fds()?;
    let new: Vec<RawFd> = now
        .iter()
        .copied()
        .filter(|fd| !before.contains(fd))
        .collect();
    ensure!(
        new.is_empty(),
        "{what}: fds {new:?} are new (before: {before:?})"
    );
    Ok(())
}

/// Makes this process unable to open another fd: lowers RLIMIT_NOFILE to just above its
/// highest fd and fills every lower gap with a copy of `filler`.
pub fn exhaust_fds(filler: &impl AsRawFd) -> Outcome {
    let highest = open_fds()?.into_iter().max().unwrap_or(0);
    let limit = libc::rlimit {
        rlim_cur: (highest + 1) as libc::rlim_t,
        rlim_max: (highest + 1) as libc::rlim_t,
    };
    // SAFETY: `limit` is valid for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!("setrlimit: {}", io::Error::last_os_error()));
    }
    // SAFETY: dup of an open descriptor; the copies stay open until the process ends.
    while unsafe { libc::dup(filler.as_raw_fd()) } >= 0 {}
    let error = io::Error::last_os_error();
    ensure!(
        error.raw_os_error() == Some(libc::EMFILE),
        "filling the fd table ended with {error}"
    );
    Ok(())
}
