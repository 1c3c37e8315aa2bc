// SPDX-License-Identifier: GPL-2.0
//! The two ends of a binder benchmark: the server, a context manager answering every call
//! on a pool of looper threads, and a client calling it.

use std::{sync::atomic::Ordering, thread, time::Duration};

use binder_client::{uapi, Binder, Commands, Mapping, Return, Txn};

use crate::proc::{pin_to, Child, Outcome, SharedCounters, Step};

/// The device both ends use.
pub const BINDER: &str = "/dev/binder";

/// Transaction codes. The server checks that a [`CODE_OBJECTS`] call arrives with every
/// object turned into a handle.
pub const CODE_CALL: u32 = 1;
pub const CODE_ONEWAY: u32 = 2;
pub const CODE_OBJECTS: u32 = 3;

/// The reply payload of a call the server found wrong (an empty reply is success).
const REJECTED: &[u8] = b"the objects did not arrive as handles";

/// The server's receive buffer: the most a binder mapping can be, so that 1 MiB calls fit.
const SERVER_MAP_SIZE: usize = 4 << 20;

/// A client's receive buffer: replies are empty, but a reply needs a mapping to land in.
const CLIENT_MAP_SIZE: usize = 128 << 10;

/// Starts the server: a process that becomes the context manager of [`BINDER`] and serves
/// with `threads` looper threads, all bound to `cpu` if given. A call gets an empty reply; a
/// one-way transaction is counted in `counters.oneway_received` once its buffer is freed. It
/// runs until killed.
pub fn start(
    threads: usize,
    cpu: Option<usize>,
    counters: &'static SharedCounters,
) -> Outcome<Child> {
    let mut child = Child::spawn(&[], |ready| {
        let binder = Binder::open(BINDER).step("server: open")?;
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
fn become_manager(binder: &Binder) -> Outcome {
    for _ in 0..1000 {
        match binder.set_context_mgr() {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(format!("server: BINDER_SET_CONTEXT_MGR: {e}")),
        }
    }
    Err("server: the device keeps another context manager".into())
}

/// One looper thread: reads work, and sends the answer with its next read.
fn serve(binder: &Binder, mapping: &Mapping, counters: &SharedCounters) -> Outcome {
    let mut answer = Commands::new().enter_looper();
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
                Return::Transaction(txn) => {
                    let reply = match txn.code {
                        CODE_OBJECTS if !objects_are_handles(mapping, &txn) => REJECTED,
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

/// A client of the server: its own binder process, calling handle 0.
pub struct Caller {
    binder: Binder,
    mapping: Mapping,
    /// The last reply's buffer, freed with the next call as libbinder does.
    unfreed: Option<u64>,
}

impl Caller {
    /// Opens [`BINDER`] and maps a receive buffer.
    pub fn open() -> Outcome<Self> {
        let binder = Binder::open(BINDER).step("client: open")?;
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
        let mut commands = Commands::new();
        if let Some(buffer) = self.unfreed.take() {
            commands = commands.free_buffer(buffer);
        }
        commands = commands.transaction_with_objects(false, 0, code, 0, data, offsets);
        let mut returns = self.binder.write_then_read(&commands).step("call")?;
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
