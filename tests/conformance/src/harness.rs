//! What every case is built on: the case table, isolation in a child process, and checks.

use std::{
    fmt::Debug,
    fs::File,
    io::{self, Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    thread,
    time::Duration,
};

/// The binder driver under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The kernel's C driver, `binder_linux.ko`, with its devices in a binderfs mount.
    C,
    /// rust_binder, with its misc devices.
    Rust,
}

/// What the cases know about the machine they run on.
pub struct Env {
    /// Where `rust_binder.ko` is, for the cases that reload it.
    pub module: Option<PathBuf>,
}

/// The result of a case, or of a step of one: `Err` says what went wrong.
pub type Outcome<T = ()> = Result<T, String>;

/// One named conformance case.
pub struct Case {
    /// The name printed in the results.
    pub name: &'static str,
    /// The case itself; it runs in a child process of its own.
    pub run: fn(&Env) -> Outcome,
    /// Set for cases about one driver only (loading rust_binder, for instance).
    pub only: Option<Driver>,
}

impl Case {
    /// A case for both drivers.
    pub const fn new(name: &'static str, run: fn(&Env) -> Outcome) -> Self {
        Self {
            name,
            run,
            only: None,
        }
    }

    /// A case that only applies to `driver`.
    pub const fn only(driver: Driver, name: &'static str, run: fn(&Env) -> Outcome) -> Self {
        Self {
            name,
            run,
            only: Some(driver),
        }
    }
}

/// The three devices every driver under test provides.
pub const BINDER: &str = "/dev/binder";
pub const HWBINDER: &str = "/dev/hwbinder";
pub const VNDBINDER: &str = "/dev/vndbinder";

/// A case that runs longer than this is stuck: its child is killed and the case fails.
const CASE_WATCHDOG_SECONDS: u32 = 120;

/// Returns `Err(message)` from the enclosing function unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Turns an `io::Result` into an [`Outcome`] that says which step failed.
pub trait Step<T> {
    /// Names the step, for the failure message.
    fn step(self, what: &str) -> Outcome<T>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, what: &str) -> Outcome<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Checks that `result` failed with `errno`.
pub fn expect_errno<T: Debug>(result: io::Result<T>, errno: i32, what: &str) -> Outcome {
    match result {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        Err(e) => Err(format!("{what}: expected {}, got {e}", errno_name(errno))),
        Ok(v) => Err(format!(
            "{what}: expected {}, but it succeeded ({v:?})",
            errno_name(errno)
        )),
    }
}

/// Checks that the ioctl `request` with a NULL argument fails with `errno` on a fresh open
/// of `device`.
pub fn expect_null_arg_errno(device: &str, request: u32, errno: i32) -> Outcome {
    let binder = binder_client::Binder::open(device).step(device)?;
    // SAFETY: The kernel is meant to fault on the NULL pointer, not use it.
    let result = unsafe { binder.ioctl_ptr(request, std::ptr::null_mut()) };
    expect_errno(
        result,
        errno,
        &format!("ioctl {request:#x} with a NULL argument"),
    )
}

/// A readable name for the errnos the cases expect.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        libc::EBUSY => "EBUSY",
        libc::EFAULT => "EFAULT",
        libc::EACCES => "EACCES",
        libc::EAGAIN => "EAGAIN",
        libc::ENOENT => "ENOENT",
        libc::ENOMEM => "ENOMEM",
        libc::EINTR => "EINTR",
        libc::EPROTO => "EPROTO",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// Retries `attempt` while it reports "not yet" (`Ok(None)`), for state the kernel updates
/// asynchronously (the C driver releases a closed process from a workqueue).
///
/// This waits for an outcome; it asserts nothing about how long the kernel took.
pub fn eventually<T>(what: &str, mut attempt: impl FnMut() -> Outcome<Option<T>>) -> Outcome<T> {
    for _ in 0..1000 {
        if let Some(value) = attempt()? {
            return Ok(value);
        }
        thread::sleep(Duration::from_millis(10));
    }
    Err(format!("{what}: never happened"))
}

/// An epoll instance watching one descriptor for input, closed when dropped.
pub struct Epoll {
    epoll: OwnedFd,
    watched: i32,
}

impl Epoll {
    /// Watches `fd` for EPOLLIN.
    pub fn watch(fd: i32) -> Outcome<Self> {
        // SAFETY: Plain syscall.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(format!("epoll_create1: {}", io::Error::last_os_error()));
        }
        // SAFETY: `epoll_create1` just returned this descriptor, and nothing else owns it.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: Both descriptors are open and `event` is valid for the call.
        let added =
            unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if added != 0 {
            return Err(format!("epoll_ctl: {}", io::Error::last_os_error()));
        }
        Ok(Self { epoll, watched: fd })
    }

    /// Waits, without a timeout, until the descriptor is readable (the case watchdog ends a
    /// hang).
    pub fn wait(&self) -> Outcome {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `event` has room for the one event asked for.
        let ready = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, -1) };
        if ready == 1 {
            Ok(())
        } else {
            Err(format!(
                "epoll_wait returned {ready}: {}",
                io::Error::last_os_error()
            ))
        }
    }

    /// Waits up to `ms` milliseconds for the descriptor to be readable; returns whether it
    /// was.
    pub fn wait_timeout(&self, ms: i32) -> Outcome<bool> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `event` has room for the one event asked for.
        let ready = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, ms) };
        match ready {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(format!(
                "epoll_wait returned {ready}: {}",
                io::Error::last_os_error()
            )),
        }
    }

    /// Stops watching (EPOLL_CTL_DEL).
    pub fn unwatch(&self) {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: Plain syscall on open descriptors; `event` is valid for the call.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.watched,
                &mut event,
            )
        };
    }
}

/// How a child process ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// It returned `Ok`, or exited with status 0.
    Ok,
    /// It returned `Err` with this message, or exited with another status.
    Failed(String),
    /// A signal killed it.
    Signal(i32),
}

/// Sleeps until a signal kills the process: the end of a child that must stay (holding its
/// handles, nodes or buffers, or sitting in the driver's tables) until the case kills it.
pub fn park() -> ! {
    loop {
        // SAFETY: Plain syscall; it returns only after a handled signal, and the loop waits
        // again.
        unsafe { libc::pause() };
    }
}

/// A forked child process running a closure.
pub struct Child {
    pid: libc::pid_t,
    messages: File,
}

impl Child {
    /// Forks and runs `body` in the child, which then exits.
    ///
    /// The caller must be single-threaded (every case is, unless it starts threads itself).
    pub fn spawn(body: impl FnOnce() -> Outcome) -> Outcome<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", io::Error::last_os_error()));
        }
        // SAFETY: `pipe2` just returned these descriptors, and nothing else owns them.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: Plain syscall.
        let parent = unsafe { libc::getpid() };
        // SAFETY: The suite is single-threaded where it forks; the child only runs `body` and
        // exits without returning to the caller.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", io::Error::last_os_error()));
        }
        if pid == 0 {
            drop(read_end);
            // A case that fails returns early, without ending the children it started: they
            // must not outlive it (a forgotten context manager would keep the slot busy for
            // every later case).
            // SAFETY: Plain syscalls, no memory involved.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            let result = body();
            let mut pipe = File::from(write_end);
            let code = match result {
                Ok(()) => 0,
                Err(why) => {
                    let _ = pipe.write_all(why.as_bytes());
                    1
                }
            };
            let _ = io::stdout().flush();
            // SAFETY: Ends the child right here, without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        drop(write_end);
        Ok(Self {
            pid,
            messages: File::from(read_end),
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(self) -> Outcome {
        // SAFETY: Plain syscall on our own child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        match self.wait()? {
            Exit::Signal(libc::SIGKILL) => Ok(()),
            other => Err(format!("child ended before it was killed: {other:?}")),
        }
    }

    /// Waits for the child after this process's own part of a case ended with `ours`, and
    /// reports the child's failure first: when this side failed because the child gave up
    /// (a call that got BR_DEAD_REPLY, say), the child's message says why.
    pub fn join_after(self, ours: Outcome) -> Outcome {
        self.join().map_err(|e| match &ours {
            Ok(()) => e,
            Err(why) => format!("{e} (and then, here: {why})"),
        })?;
        ours
    }

    /// Waits for the child and turns anything but success into an error.
    pub fn join(self) -> Outcome {
        match self.wait()? {
            Exit::Ok => Ok(()),
            Exit::Failed(why) => Err(why),
            Exit::Signal(sig) => Err(format!("child killed by signal {sig}")),
        }
    }

    /// Waits for the child to end.
    pub fn wait(mut self) -> Outcome<Exit> {
        let mut message = String::new();
        let _ = self.messages.read_to_string(&mut message);
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid place for the exit status of our own child.
            let ret = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if ret == self.pid {
                break;
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("waitpid: {err}"));
            }
        }
        Ok(if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else if libc::WEXITSTATUS(status) == 0 {
            Exit::Ok
        } else if message.is_empty() {
            Exit::Failed(format!("exit status {}", libc::WEXITSTATUS(status)))
        } else {
            Exit::Failed(message)
        })
    }
}

/// Forks a child that runs `body` and returns once the child called the `ready` callback it
/// is given (after setting itself up), or failed before that.
pub fn spawn_ready(body: impl FnOnce(&dyn Fn()) -> Outcome) -> Outcome<Child> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    let [read_fd, write_fd] = fds;
    let child = Child::spawn(|| {
        // SAFETY: The child's copies of the pipe: it only writes.
        unsafe { libc::close(read_fd) };
        let ready = || {
            // SAFETY: Writes one byte from a valid buffer to the child's write end.
            unsafe { libc::write(write_fd, [1u8].as_ptr().cast(), 1) };
        };
        body(&ready)
    })?;
    // SAFETY: The parent's copies of the pipe: it only reads, and owns the read end now.
    let mut read_end = unsafe {
        libc::close(write_fd);
        File::from(OwnedFd::from_raw_fd(read_fd))
    };
    let mut byte = [0u8];
    if read_end.read_exact(&mut byte).is_err() {
        return match child.wait()? {
            Exit::Failed(why) => Err(format!("child failed while setting up: {why}")),
            other => Err(format!("child ended while setting up: {other:?}")),
        };
    }
    Ok(child)
}

/// The sending end of a [`notice`]: tells the process holding the other end that something
/// happened.
pub struct Notify(File);

/// The receiving end of a [`notice`].
pub struct AwaitNotice(File);

/// A pipe for telling another process that something happened, once or more: make it before
/// forking, and move each end into the process that uses it. Dropping the sending end (as the
/// parent does with what it moved into a child's body, or as a child does by ending) makes
/// the receiver's wait fail instead of hang.
pub fn notice() -> Outcome<(Notify, AwaitNotice)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    // SAFETY: `pipe2` just returned these descriptors, and nothing else owns them.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((
        Notify(File::from(write_end)),
        AwaitNotice(File::from(read_end)),
    ))
}

impl Notify {
    /// Tells the other end.
    pub fn notify(&self) -> Outcome {
        (&self.0).write_all(&[1]).step("notify")
    }
}

impl AwaitNotice {
    /// Waits for one notice; fails if the sending end is gone without sending it.
    pub fn wait(&self) -> Outcome {
        let mut byte = [0u8];
        (&self.0)
            .read_exact(&mut byte)
            .map_err(|_| "the other process ended without notifying".to_string())
    }
}

/// Two pages of anonymous memory, the first writable and the second not accessible at all:
/// a buffer that ends in the second page faults when the kernel writes its end.
pub struct GuardedPage {
    base: *mut libc::c_void,
    page: usize,
}

impl GuardedPage {
    pub fn new() -> Outcome<Self> {
        // SAFETY: Plain syscall, no memory involved.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| "sysconf(_SC_PAGESIZE) failed".to_string())?;
        // SAFETY: A fresh anonymous mapping at an address of the kernel's choosing aliases
        // nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("mmap: {}", io::Error::last_os_error()));
        }
        let guarded = Self { base, page };
        // SAFETY: The second page lies inside the mapping just made, which only this value
        // uses.
        let ret =
            unsafe { libc::mprotect(base.cast::<u8>().add(page).cast(), page, libc::PROT_NONE) };
        if ret != 0 {
            return Err(format!("mprotect: {}", io::Error::last_os_error()));
        }
        Ok(guarded)
    }

    /// The address of the first byte that cannot be written: the start of the second page.
    pub fn guard(&self) -> u64 {
        self.base as u64 + self.page as u64
    }
}

impl Drop for GuardedPage {
    fn drop(&mut self) {
        // SAFETY: The range is exactly the mapping made in `new`, which nothing uses after
        // this.
        unsafe { libc::munmap(self.base, 2 * self.page) };
    }
}

/// Runs `body` in a child process and waits for it.
pub fn in_child(body: impl FnOnce() -> Outcome) -> Outcome<Exit> {
    Child::spawn(body)?.wait()
}

/// Runs one case in a child process of its own, so that each case starts with no binder
/// state in this process and a crashing case cannot take the suite down.
pub fn run_case(case: &Case, env: &Env) -> Outcome {
    let exit = in_child(|| {
        // SAFETY: `alarm` only arms a timer; its SIGALRM ends a stuck case.
        unsafe { libc::alarm(CASE_WATCHDOG_SECONDS) };
        (case.run)(env)
    })?;
    match exit {
        Exit::Ok => Ok(()),
        Exit::Failed(why) => Err(why),
        Exit::Signal(libc::SIGALRM) => Err(format!("stuck for {CASE_WATCHDOG_SECONDS} s")),
        Exit::Signal(sig) => Err(format!("killed by signal {sig}")),
    }
}
