// SPDX-License-Identifier: GPL-2.0
//! The processes a benchmark is made of: forked children that say when they are ready and
//! hand back a result over a pipe, a start barrier, and memory they share.

use std::{
    fs::File,
    io::{self, Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::atomic::AtomicU64,
};

/// A result that says what went wrong.
pub type Outcome<T = ()> = Result<T, String>;

/// Turns an `io::Result` into an [`Outcome`] that names the step that failed.
pub trait Step<T> {
    /// Names the step, for the failure message.
    fn step(self, what: &str) -> Outcome<T>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, what: &str) -> Outcome<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// A pipe: (read end, write end).
pub fn pipe() -> Outcome<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    // SAFETY: `pipe2` just returned these descriptors, and nothing else owns them.
    Ok(unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    })
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the guest.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid place for the time.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Context switches the kernel has made since boot, on every CPU (`ctxt` in `/proc/stat`).
pub fn context_switches() -> Outcome<u64> {
    let text = std::fs::read_to_string("/proc/stat").step("/proc/stat")?;
    text.lines()
        .find_map(|line| line.strip_prefix("ctxt "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| "/proc/stat has no ctxt line".into())
}

/// Binds the calling thread to one CPU (`cpu`), or leaves it free to run anywhere (`None`).
pub fn pin_to(cpu: Option<usize>) -> Outcome {
    let Some(cpu) = cpu else {
        return Ok(());
    };
    // SAFETY: A zeroed `cpu_set_t` is an empty set; CPU_SET only writes inside it, and
    // sched_setaffinity only reads it. Pid 0 is the calling thread.
    let ret = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(format!("sched_setaffinity: {}", io::Error::last_os_error()))
    }
}

/// A forked child process running a closure.
pub struct Child {
    pid: libc::pid_t,
    ready: File,
    result: File,
}

/// The first byte of a child's result: what follows is its payload or its error message.
const RESULT_OK: u8 = 0;
const RESULT_ERR: u8 = 1;

impl Child {
    /// Forks and runs `body` in the child, which then exits. `body` calls the function it is
    /// given once it is set up (see [`Child::wait_ready`]) and returns the bytes the parent
    /// gets from [`Child::finish`].
    ///
    /// The child first closes `close_in_child`: descriptors of the parent's that it must not
    /// hold (the write end of a start barrier). The caller must be single-threaded.
    pub fn spawn(
        close_in_child: &[RawFd],
        body: impl FnOnce(&mut dyn FnMut()) -> Outcome<Vec<u8>>,
    ) -> Outcome<Self> {
        let (ready_read, mut ready_write) = pipe()?;
        let (result_read, mut result_write) = pipe()?;
        // SAFETY: The benchmark forks only where it is single-threaded; the child runs `body`
        // and exits without returning to the caller.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", io::Error::last_os_error()));
        }
        if pid == 0 {
            for &fd in close_in_child {
                // SAFETY: The child's copy of a descriptor it must not keep.
                unsafe { libc::close(fd) };
            }
            drop((ready_read, result_read));
            let result = body(&mut || {
                let _ = ready_write.write_all(&[1]);
            });
            let mut message = Vec::new();
            match result {
                Ok(payload) => {
                    message.push(RESULT_OK);
                    message.extend_from_slice(&payload);
                }
                Err(why) => {
                    message.push(RESULT_ERR);
                    message.extend_from_slice(why.as_bytes());
                }
            }
            let _ = result_write.write_all(&message);
            let _ = io::stdout().flush();
            // SAFETY: Ends the child here, without the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        Ok(Self {
            pid,
            ready: ready_read,
            result: result_read,
        })
    }

    /// Waits until the child is set up, or fails with the child's error if it ended first.
    pub fn wait_ready(&mut self) -> Outcome {
        let mut byte = [0u8];
        match self.ready.read(&mut byte) {
            Ok(1) => Ok(()),
            _ => Err(self.wait().err().unwrap_or_else(|| {
                "the child ended before it was set up, without a result".to_string()
            })),
        }
    }

    /// Waits for the child and returns what it handed back.
    pub fn finish(mut self) -> Outcome<Vec<u8>> {
        self.wait()
    }

    fn wait(&mut self) -> Outcome<Vec<u8>> {
        let mut message = Vec::new();
        let _ = self.result.read_to_end(&mut message);
        let status = self.reap()?;
        match message.split_first() {
            Some((&RESULT_OK, payload)) => Ok(payload.to_vec()),
            Some((_, why)) => Err(String::from_utf8_lossy(why).into_owned()),
            None if libc::WIFSIGNALED(status) => {
                Err(format!("child killed by signal {}", libc::WTERMSIG(status)))
            }
            None => Err(format!(
                "child exited with status {} without a result",
                libc::WEXITSTATUS(status)
            )),
        }
    }

    fn reap(&mut self) -> Outcome<i32> {
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid place for the exit status of our own child.
            let ret = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if ret == self.pid {
                return Ok(status);
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("waitpid: {err}"));
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        // SAFETY: Plain syscall on our own child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.reap();
    }
}

/// Counters shared by every process of a run: a page of anonymous shared memory, mapped
/// before the fork.
pub struct Shared {
    counters: &'static SharedCounters,
}

/// What lives in the shared page.
pub struct SharedCounters {
    /// One-way transactions the server has taken (and freed) so far.
    pub oneway_received: AtomicU64,
}

impl Shared {
    /// Maps the shared page, all counters zero.
    pub fn new() -> Outcome<Self> {
        // SAFETY: A fresh anonymous mapping at an address of the kernel's choosing.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(format!("mmap shared: {}", io::Error::last_os_error()));
        }
        // SAFETY: The page is zeroed, page-aligned and large enough; zero is a valid
        // `AtomicU64`. It is never unmapped, so the reference may be `'static`.
        let counters = unsafe { &*addr.cast::<SharedCounters>() };
        Ok(Self { counters })
    }

    /// The counters.
    pub fn counters(&self) -> &'static SharedCounters {
        self.counters
    }
}

/// A start barrier: children block in [`Barrier::wait`] until the parent calls
/// [`Barrier::release`], which closes the write end so that they all see end-of-file at once.
pub struct Barrier {
    read: File,
    write: Option<File>,
}

impl Barrier {
    /// A new, closed barrier.
    pub fn new() -> Outcome<Self> {
        let (read, write) = pipe()?;
        Ok(Self {
            read,
            write: Some(write),
        })
    }

    /// The descriptor a child must close so that the barrier can open (see [`Child::spawn`]).
    pub fn parent_end(&self) -> RawFd {
        self.write.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// In a child: blocks until the parent releases the barrier.
    pub fn wait(&self) {
        let mut byte = [0u8];
        let _ = (&self.read).read(&mut byte);
    }

    /// In the parent: lets every waiting child go.
    pub fn release(&mut self) {
        self.write = None;
    }
}
