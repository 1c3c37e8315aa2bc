//! One fuzzed binder process: its open device and mapping, what it has learnt from the
//! driver (handles, delivered buffers, calls to answer, references to acknowledge, deaths),
//! and the execution of one operation and the bookkeeping of what came back.
//!
//! Only one operation runs at a time in the whole run (the coordinator steps the processes in
//! lock-step), and the device is non-blocking, so that no call ever waits in the kernel and
//! the same stream gives the same results on every run of the same driver.

use std::{fs::File, io::Write, os::fd::AsRawFd};

use binder_client::{uapi, Binder, BinderObject, Mapping, ObjectKind, Return};

use crate::{gen, outcome, rng::Rng};

/// The device every fuzz process opens.
pub const DEVICE: &str = "/dev/binder";

/// How many nodes a process has to send (their pointers are fixed, see [`node_ptr`]).
pub const NODES: u64 = 6;

/// The user pointer of node `k` of process `p`: fixed values, so that they read the same in
/// every run.
pub fn node_ptr(p: usize, k: u64) -> u64 {
    0x1000_0000 * (p as u64 + 1) + 0x100 * (k + 1)
}

/// The cookie that goes with [`node_ptr`].
pub fn node_cookie(ptr: u64) -> u64 {
    ptr | 0xc
}

/// A buffer the driver delivered to this process.
#[derive(Clone, Copy)]
pub struct Delivered {
    /// Its data's user address.
    pub addr: u64,
    /// Whether this process sent `BC_FREE_BUFFER` for it.
    pub freed: bool,
}

/// The outcome of one operation.
pub struct Done {
    /// What was done, readably.
    pub desc: String,
    /// What came back.
    pub outcome: String,
    /// Letters that classify the operation for the differential compare: `K` it used an
    /// input on which the drivers deliberately differ, `A` it started asynchronous work in the
    /// kernel (a release), `F` it passed a file.
    pub tags: String,
}

/// Two pages, the second inaccessible: an argument that ends in it faults part way.
pub struct Guard {
    base: *mut libc::c_void,
    page: usize,
}

impl Guard {
    fn new() -> Option<Self> {
        let page = 4096;
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
            return None;
        }
        // SAFETY: The second page lies inside the mapping just made.
        unsafe { libc::mprotect(base.cast::<u8>().add(page).cast(), page, libc::PROT_NONE) };
        Some(Self { base, page })
    }

    /// The first address that faults.
    pub fn end(&self) -> u64 {
        self.base as u64 + self.page as u64
    }
}

// SAFETY: The guard pages are plain memory only the kernel writes (into the first page), and
// only while one operation runs at a time.
unsafe impl Send for Guard {}

/// The device and its mapping; replaced when the process reopens the device.
pub struct Open {
    pub binder: Binder,
    pub map: Mapping,
}

/// One fuzzed process's state.
pub struct Proc {
    /// This process's index in the run (0 is the context manager).
    pub index: usize,
    /// The run's seed.
    pub seed: u64,
    /// Every fuzz process's pid, by index.
    pub pids: Vec<i32>,
    /// The coordinator's pid: a process with no binder state.
    pub coordinator: i32,
    /// The device, `None` only while it is being reopened.
    pub open: Option<Open>,
    /// The mapping's size.
    pub map_size: usize,
    /// Handles this process learnt (0, and those delivered to it), in the order learnt.
    pub handles: Vec<u32>,
    /// Buffers delivered to it, the most recent last.
    pub buffers: Vec<Delivered>,
    /// Per thread: synchronous calls delivered to it and not yet answered.
    pub calls: Vec<u32>,
    /// `BR_INCREFS`/`BR_ACQUIRE` to acknowledge: (the `BC_*_DONE` code, ptr, cookie).
    pub acks: Vec<(u32, u64, u64)>,
    /// Cookies of `BR_DEAD_BINDER` not yet acknowledged.
    pub dead: Vec<u64>,
    /// Cookies of `BR_FROZEN_BINDER` not yet acknowledged.
    pub frozen: Vec<u64>,
    /// File descriptors this process owns itself: never closed as "received".
    pub own_fds: Vec<i32>,
    /// A pipe's read end, the file it sends in fd objects.
    pub pipe_fd: i32,
    /// `/dev/null`, another file to send.
    pub null_fd: i32,
    /// Guard pages for arguments that fault part way.
    pub guard: Guard,
    /// An address that is never mapped.
    pub unmapped: u64,
    /// Whether the run is compared with another driver's: then the inputs on which the
    /// drivers deliberately differ are not generated.
    pub differential: bool,
}

/// Bad user pointers, by kind.
#[derive(Clone, Copy, Debug)]
pub enum BadPtr {
    Null,
    Unmapped,
    Kernel,
    NonCanonical,
    /// The binder mapping, which userspace (and so copy_to_user) cannot write.
    BinderMap,
    /// `n` bytes before the guard page.
    GuardEnd(u64),
}

impl Proc {
    /// Opens the device as process `index` of the run, and sets it up (the context manager
    /// for process 0).
    pub fn new(
        index: usize,
        seed: u64,
        pids: Vec<i32>,
        coordinator: i32,
        differential: bool,
    ) -> Result<Self, String> {
        let mut rng = Rng::for_op(seed, index as u64, u64::MAX);
        // 64 KiB to 512 KiB: small enough that a full buffer is reached.
        let map_size = (64 * 1024) << rng.below(4);
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err("pipe2 failed".into());
        }
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?;
        let null_fd = std::os::fd::IntoRawFd::into_raw_fd(null);
        let guard = Guard::new().ok_or("mmap of the guard pages failed")?;
        let mut proc = Self {
            index,
            seed,
            pids,
            coordinator,
            open: None,
            map_size,
            handles: vec![0],
            buffers: Vec::new(),
            calls: Vec::new(),
            acks: Vec::new(),
            dead: Vec::new(),
            frozen: Vec::new(),
            own_fds: Vec::new(),
            pipe_fd: fds[0],
            null_fd,
            guard,
            unmapped: 0x1000,
            differential,
        };
        // Every descriptor open now is ours (the coordinator's pipes included).
        for fd in 0..256 {
            // SAFETY: F_GETFD only asks about the descriptor.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
                proc.own_fds.push(fd);
            }
        }
        proc.reopen()?;
        Ok(proc)
    }

    /// (Re)opens the device non-blocking and maps it, forgetting every state the driver had
    /// for this process; process 0 becomes the context manager again. Returns what happened
    /// to that (`-` for the other processes).
    pub fn reopen(&mut self) -> Result<String, String> {
        if let Some(old) = self.open.take() {
            let fd = old.binder.as_raw_fd();
            drop(old);
            self.own_fds.retain(|&f| f != fd);
        }
        self.handles = vec![0];
        self.buffers.clear();
        self.calls.iter_mut().for_each(|c| *c = 0);
        self.acks.clear();
        self.dead.clear();
        self.frozen.clear();
        let binder = Binder::open_with_flags(DEVICE, libc::O_NONBLOCK)
            .map_err(|e| format!("open {DEVICE}: {e}"))?;
        let map = binder
            .map(self.map_size, libc::PROT_READ)
            .map_err(|e| format!("mmap: {e}"))?;
        let mut manager = "-".to_string();
        if self.index == 0 {
            let ptr = node_ptr(0, 0);
            // The old file's release (in a worker, in both drivers) may still hold the
            // context manager for a moment: wait for it, so that runs stay comparable.
            let mut tries = 0;
            let result = loop {
                let result = binder.set_context_mgr_ext(
                    ptr,
                    node_cookie(ptr),
                    uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS,
                );
                tries += 1;
                match result {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    _ => break result,
                }
            };
            manager = outcome::result(&result.map(|()| 0i32));
        }
        self.own_fds.push(binder.as_raw_fd());
        self.open = Some(Open { binder, map });
        Ok(manager)
    }

    /// A user pointer of kind `bad`.
    pub fn bad_ptr(&self, bad: BadPtr) -> u64 {
        match bad {
            BadPtr::Null => 0,
            BadPtr::Unmapped => self.unmapped,
            BadPtr::Kernel => 0xffff_8880_0000_0000,
            BadPtr::NonCanonical => 0x8000_0000_0000_0000,
            BadPtr::BinderMap => self.open.as_ref().map_or(0, |o| o.map.addr() as u64),
            BadPtr::GuardEnd(n) => self.guard.end() - n,
        }
    }

    /// The index of the fuzz process with `pid`, for outcomes that name senders.
    pub fn who(&self, pid: i32) -> String {
        match self.pids.iter().position(|&p| p == pid) {
            Some(i) => format!("p{i}"),
            None if pid == 0 => "0".into(),
            None => "?".into(),
        }
    }

    /// Runs operation `op` on thread `thread`; `fault` switches fault injection around the
    /// driver calls.
    pub fn step(&mut self, thread: usize, op: u64, fault: &mut Fault) -> Done {
        if self.calls.len() <= thread {
            self.calls.resize(thread + 1, 0);
        }
        let mut rng = Rng::for_op(self.seed, self.index as u64, op);
        gen::operation(self, thread, &mut rng, fault)
    }

    /// Takes note of what a read brought: buffers, calls to answer, handles, references to
    /// acknowledge, deaths; closes the files delivered in fd objects. Returns the outcome text
    /// of the returns.
    pub fn absorb(&mut self, thread: usize, bytes: &[u8]) -> String {
        let mut text = String::new();
        for read in outcome::split_returns(bytes) {
            if !text.is_empty() {
                text.push(' ');
            }
            let Some(ret) = read.ret else {
                text += &format!("{}(cut)", outcome::return_name(read.code));
                continue;
            };
            text += &outcome::return_name(read.code);
            match ret {
                Return::Transaction(txn) | Return::Reply(txn) => {
                    let objects = self.delivered_objects(&txn);
                    let sender = self.who(txn.sender_pid);
                    text += &outcome::txn(&txn, &sender, &objects);
                    self.buffers.push(Delivered {
                        addr: txn.buffer,
                        freed: false,
                    });
                    if self.buffers.len() > 64 {
                        self.buffers.remove(0);
                    }
                    if read.code != uapi::BR_REPLY && txn.flags & uapi::TF_ONE_WAY == 0 {
                        self.calls[thread] += 1;
                    }
                    for object in objects {
                        match object {
                            BinderObject::Flat(flat)
                                if matches!(
                                    flat.kind,
                                    ObjectKind::Handle | ObjectKind::WeakHandle
                                ) =>
                            {
                                let handle = flat.handle_value();
                                if !self.handles.contains(&handle) && self.handles.len() < 32 {
                                    self.handles.push(handle);
                                }
                            }
                            BinderObject::Fd(fd) => {
                                let fd = fd.fd as i32;
                                if fd > 2 && !self.own_fds.contains(&fd) {
                                    // SAFETY: The driver installed this descriptor for us and
                                    // nothing else uses it.
                                    unsafe { libc::close(fd) };
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Return::Increfs(ptr, cookie) => {
                    text += &format!("({ptr:#x}/{cookie:#x})");
                    self.acks.push((uapi::BC_INCREFS_DONE, ptr, cookie));
                }
                Return::Acquire(ptr, cookie) => {
                    text += &format!("({ptr:#x}/{cookie:#x})");
                    self.acks.push((uapi::BC_ACQUIRE_DONE, ptr, cookie));
                }
                Return::Release(ptr, cookie) | Return::Decrefs(ptr, cookie) => {
                    text += &format!("({ptr:#x}/{cookie:#x})");
                }
                Return::DeadBinder(cookie) => {
                    text += &format!("({cookie:#x})");
                    self.dead.push(cookie);
                }
                Return::ClearDeathNotificationDone(cookie)
                | Return::ClearFreezeNotificationDone(cookie) => {
                    text += &format!("({cookie:#x})");
                }
                Return::FrozenBinder { cookie, is_frozen } => {
                    text += &format!("({cookie:#x},{is_frozen})");
                    self.frozen.push(cookie);
                }
                _ => {}
            }
        }
        self.acks.truncate(32);
        self.dead.truncate(32);
        self.frozen.truncate(32);
        text
    }

    /// The objects of a delivered transaction, read through the mapping.
    fn delivered_objects(&self, txn: &binder_client::Txn) -> Vec<BinderObject> {
        let Some(open) = &self.open else {
            return Vec::new();
        };
        open.map.received(txn).objects().unwrap_or_default()
    }
}

/// Fault injection for the calling thread (`/proc/thread-self/make-it-fail`), switched on only
/// around the driver's calls so that the fuzzer's own allocations never fail.
pub struct Fault(Option<File>);

impl Fault {
    /// For the calling thread; `enabled` false makes a switch that does nothing.
    pub fn for_this_thread(enabled: bool) -> Self {
        Self(if enabled {
            File::options()
                .write(true)
                .open("/proc/thread-self/make-it-fail")
                .ok()
        } else {
            None
        })
    }

    /// The descriptor of the switch, which the process must not close as a received file.
    pub fn fd(&self) -> Option<i32> {
        self.0.as_ref().map(|f| f.as_raw_fd())
    }

    /// Allocations by this thread may fail from now on.
    pub fn on(&mut self) {
        if let Some(f) = &mut self.0 {
            let _ = f.write_all(b"1");
        }
    }

    /// Allocations by this thread no longer fail.
    pub fn off(&mut self) {
        if let Some(f) = &mut self.0 {
            let _ = f.write_all(b"0");
        }
    }
}
