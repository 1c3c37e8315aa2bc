// SPDX-License-Identifier: GPL-2.0
//! The two ends of a binder benchmark: the server, a context manager answering every call
//! on a pool of looper threads, and a client calling it.

use std::{sync::atomic::Ordering, thread, time::Duration};

use binder_client::{
    uapi, Binder, BinderObject, Commands, Mapping, Payload, Received, Return, Txn,
};

use crate::proc::{pin_to, Child, Outcome, SharedCounters, Step};

/// The device of a driver: rust_binder's misc device, or the C driver's device in the binderfs
/// mount the guest init makes (with binderfs built in, the C driver creates no misc devices,
/// so both drivers can be loaded in one boot).
pub fn device(driver: &str) -> &'static str {
    match driver {
        "c" => "/dev/binderfs/binder",
        _ => "/dev/binder",
    }
}

/// Transaction codes. The server checks that a [`CODE_OBJECTS`] call arrives with every
/// object turned into a handle, a [`CODE_FD`] call with one fd of its own (which it closes),
/// and a [`CODE_SG_CHAIN`] call with its buffers in its mapping, each parent pointing at its
/// child.
pub const CODE_CALL: u32 = 1;
pub const CODE_ONEWAY: u32 = 2;
pub const CODE_OBJECTS: u32 = 3;
pub const CODE_FD: u32 = 4;
pub const CODE_SG_CHAIN: u32 = 5;
/// The memory workload: the server keeps the buffer of a [`CODE_HOLD`] call (frees it not),
/// and frees every buffer it kept on [`CODE_RELEASE`].
pub const CODE_HOLD: u32 = 6;
pub const CODE_RELEASE: u32 = 7;

/// The reply payloads of a call the server found wrong (an empty reply is success).
const REJECTED: &[u8] = b"the objects did not arrive as handles";
const REJECTED_FD: &[u8] = b"the call did not bring one open fd";
const REJECTED_SG: &[u8] = b"the buffers did not arrive as a chain in the mapping";

/// The server's receive buffer: the most a binder mapping can be, so that 1 MiB calls fit.
const SERVER_MAP_SIZE: usize = 4 << 20;

/// A client's receive buffer: replies are empty, but a reply needs a mapping to land in.
const CLIENT_MAP_SIZE: usize = 128 << 10;

/// Starts the server: a process that becomes the context manager of `device` and serves
/// with `threads` looper threads, all bound to `cpu` if given. A call gets an empty reply; a
/// one-way transaction is counted in `counters.oneway_received` once its buffer is freed. It
/// runs until killed.
pub fn start(
    device: &'static str,
    threads: usize,
    cpu: Option<usize>,
    counters: &'static SharedCounters,
) -> Outcome<Child> {
    let mut child = Child::spawn(&[], |ready| {
        let binder = Binder::open(device).step("server: open")?;
        let mapping = binder
            .map(SERVER_MAP_SIZE, libc::PROT_READ)
            .step("server: mmap")?;
        become_manager(&binder)?;
        thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        pin_to(cpu)?;
                        serve(&binder, &mapping, counters)
                    })
                })
                .collect();
            ready();
            // The workers serve until the process is killed; one returns only on an error.
            for worker in workers {
                worker
                    .join()
                    .unwrap_or_else(|_| Err("server thread panicked".into()))?;
            }
            Ok(Vec::new())
        })
    })?;
    child.wait_ready()?;
    Ok(child)
}

/// Becomes the context manager, waiting while the previous one (of an earlier process) is
/// still being released.
pub fn become_manager(binder: &Binder) -> Outcome {
    for _ in 0..1000 {
        // Its node accepts fds, as libbinder's context manager's does: CODE_FD calls bring one.
        match binder.set_context_mgr_ext(0, 0, uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(format!("server: BINDER_SET_CONTEXT_MGR_EXT: {e}")),
        }
    }
    Err("server: the device keeps another context manager".into())
}

/// One looper thread: reads work, and sends the answer with its next read.
fn serve(binder: &Binder, mapping: &Mapping, counters: &SharedCounters) -> Outcome {
    let mut answer = Commands::new().enter_looper();
    // The buffers of CODE_HOLD calls, until CODE_RELEASE.
    let mut held = Vec::new();
    loop {
        let returns = binder.write_then_read(&answer).step("server: read")?;
        answer = Commands::new();
        for ret in returns {
            match ret {
                Return::Transaction(txn) if txn.flags & uapi::TF_ONE_WAY != 0 => {
                    // The next one-way to the node is delivered once this buffer is freed.
                    binder
                        .send(&Commands::new().free_buffer(txn.buffer))
                        .step("server: free a one-way buffer")?;
                    counters.oneway_received.fetch_add(1, Ordering::Release);
                }
                Return::Transaction(txn) if txn.code == CODE_HOLD => {
                    held.push(txn.buffer);
                    answer = answer.transaction(true, 0, txn.code, 0, &[]);
                }
                Return::Transaction(txn) if txn.code == CODE_RELEASE => {
                    answer = held
                        .drain(..)
                        .chain([txn.buffer])
                        .fold(answer, Commands::free_buffer)
                        .transaction(true, 0, txn.code, 0, &[]);
                }
                Return::Transaction(txn) => {
                    let reply = match txn.code {
                        CODE_OBJECTS if !objects_are_handles(mapping, &txn) => REJECTED,
                        CODE_FD if !close_the_fd(mapping, &txn) => REJECTED_FD,
                        CODE_SG_CHAIN if !buffers_are_a_chain(mapping, &txn) => REJECTED_SG,
                        _ => &[],
                    };
                    answer = answer
                        .free_buffer(txn.buffer)
                        .transaction(true, 0, txn.code, 0, reply);
                }
                // A reply to a caller that is gone fails; the server does not care.
                _ => {}
            }
        }
    }
}

/// Whether `txn` carries objects and the driver turned every one into a handle (a
/// `BINDER_TYPE_HANDLE` object), as it must for binders sent by another process.
fn objects_are_handles(mapping: &Mapping, txn: &Txn) -> bool {
    let Some(offsets) = mapping.bytes_at(txn.offsets, txn.offsets_size) else {
        return false;
    };
    let Some(data) = mapping.bytes_at(txn.buffer, txn.data_size) else {
        return false;
    };
    !offsets.is_empty()
        && offsets.chunks_exact(8).all(|offset| {
            let at = u64::from_ne_bytes(offset.try_into().expect("8 bytes")) as usize;
            data.get(at..at + 4)
                .is_some_and(|kind| kind == uapi::BINDER_TYPE_HANDLE.to_ne_bytes())
        })
}

/// Whether `txn` brought exactly one fd, open in this process; closes it, as its receiver
/// must (the driver never closes the fd of an `FD` object it delivered).
fn close_the_fd(mapping: &Mapping, txn: &Txn) -> bool {
    let objects = Received::new(mapping, txn).objects();
    let Ok([BinderObject::Fd(fd)]) = objects.as_deref() else {
        return false;
    };
    // SAFETY: The driver installed the fd for this transaction; nothing else uses it.
    unsafe { libc::close(fd.fd as i32) == 0 }
}

/// Whether `txn` brought `PTR` objects whose buffers lie in the mapping, each after the first
/// the child of the one before, whose buffer points at it where the object says.
fn buffers_are_a_chain(mapping: &Mapping, txn: &Txn) -> bool {
    let received = Received::new(mapping, txn);
    let Ok(objects) = received.objects() else {
        return false;
    };
    let buffers: Vec<_> = objects
        .iter()
        .filter_map(|o| match o {
            BinderObject::Buffer(b) => Some(*b),
            _ => None,
        })
        .collect();
    buffers.len() == objects.len()
        && buffers.iter().all(|b| received.buffer(b).is_ok())
        && buffers.iter().enumerate().skip(1).all(|(i, child)| {
            let Some((parent, at)) = child.parent() else {
                return false;
            };
            parent as usize == i - 1
                && received
                    .buffer(&buffers[i - 1])
                    .ok()
                    .and_then(|bytes| bytes.get(at as usize..at as usize + 8))
                    .is_some_and(|slot| slot == child.buffer.to_ne_bytes())
        })
}

/// A client of the server: its own binder process, calling handle 0.
pub struct Caller {
    binder: Binder,
    mapping: Mapping,
    /// The last reply's buffer, freed with the next call as libbinder does.
    unfreed: Option<u64>,
}

impl Caller {
    /// Opens `device` and maps a receive buffer.
    pub fn open(device: &str) -> Outcome<Self> {
        let binder = Binder::open(device).step("client: open")?;
        let mapping = binder
            .map(CLIENT_MAP_SIZE, libc::PROT_READ)
            .step("client: mmap")?;
        Ok(Self {
            binder,
            mapping,
            unfreed: None,
        })
    }

    /// One synchronous call of `data` with objects at `offsets`, waiting for the reply: one
    /// BINDER_WRITE_READ, plus more reads if the reply comes after other returns.
    pub fn call(&mut self, code: u32, data: &[u8], offsets: &[u64]) -> Outcome {
        let commands = self
            .free_last_reply()
            .transaction_with_objects(false, 0, code, 0, data, offsets);
        self.round_trip(&commands)
    }

    /// As [`call`](Self::call), with a payload that may carry fds and scatter-gather buffers
    /// (`BC_TRANSACTION_SG` if it has buffers).
    pub fn call_payload(&mut self, code: u32, payload: &Payload) -> Outcome {
        let commands = self.free_last_reply().payload(false, 0, code, 0, payload);
        self.round_trip(&commands)
    }

    /// The commands a call starts with: freeing the last reply's buffer, if there is one.
    fn free_last_reply(&mut self) -> Commands {
        match self.unfreed.take() {
            Some(buffer) => Commands::new().free_buffer(buffer),
            None => Commands::new(),
        }
    }

    /// Writes `commands`, which end in a call, and waits for the reply.
    fn round_trip(&mut self, commands: &Commands) -> Outcome {
        let mut returns = self.binder.write_then_read(commands).step("call")?;
        loop {
            for ret in returns {
                match ret {
                    Return::Reply(reply) => {
                        self.unfreed = Some(reply.buffer);
                        if reply.data_size != 0 {
                            let why = self.mapping.bytes_at(reply.buffer, reply.data_size);
                            return Err(format!(
                                "the server rejected the call: {}",
                                String::from_utf8_lossy(why.unwrap_or_default())
                            ));
                        }
                        return Ok(());
                    }
                    Return::FailedReply | Return::DeadReply => return Err(self.failed(&ret)),
                    Return::Transaction(txn) => {
                        return Err(format!("client got a transaction: {txn:?}"))
                    }
                    // BR_NOOP, BR_TRANSACTION_COMPLETE, and the driver's BR_INCREFS and
                    // BR_ACQUIRE for objects sent: the client keeps its objects for its whole
                    // life, so it acknowledges none.
                    _ => {}
                }
            }
            returns = self.binder.read().step("read the reply")?;
        }
    }

    /// One one-way transaction of `data`: written, and its BR_TRANSACTION_COMPLETE read.
    pub fn send_oneway(&mut self, code: u32, data: &[u8]) -> Outcome {
        let commands = Commands::new().transaction(false, 0, code, uapi::TF_ONE_WAY, data);
        let mut returns = self.binder.write_then_read(&commands).step("one-way")?;
        loop {
            for ret in returns {
                match ret {
                    Return::TransactionComplete => return Ok(()),
                    Return::FailedReply | Return::DeadReply => return Err(self.failed(&ret)),
                    _ => {}
                }
            }
            returns = self.binder.read().step("read after a one-way")?;
        }
    }

    /// Describes a failed transaction, with the driver's extended error if it has one.
    fn failed(&self, ret: &Return) -> String {
        match self.binder.extended_error() {
            Ok(e) if e.command != 0 => format!(
                "{ret:?} (extended error: command {:#x}, param {})",
                e.command, e.param
            ),
            _ => format!("{ret:?}"),
        }
    }
}
