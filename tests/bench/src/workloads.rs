// SPDX-License-Identifier: GPL-2.0
//! The workloads, and how many iterations each gets.

use std::{
    fs::File,
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd},
    sync::atomic::Ordering,
};

use binder_client::{object::FD_OBJECT_SIZE, FlatObject, Payload};

use crate::{
    proc::{pin_to, pipe, Child, Outcome, SharedCounters, Step},
    run::{Clients, Figures},
    server::{self, Caller, CODE_CALL, CODE_FD, CODE_OBJECTS, CODE_ONEWAY, CODE_SG_CHAIN},
    teardown,
};

/// The client/server pair counts of the parallel workloads (the server gets as many looper
/// threads).
pub const PAIRS: [usize; 4] = [1, 2, 4, 8];

/// The payload sizes of the synchronous round trips.
const CALL_PAYLOADS: [usize; 4] = [0, 4 << 10, 64 << 10, 1 << 20];

/// The payload sizes of the one-way workload.
const ONEWAY_PAYLOADS: [usize; 2] = [0, 4 << 10];

/// Binder objects in each transaction of the translation workload.
const OBJECTS: usize = 16;

/// The scatter-gather chain workload: this many `PTR` buffers, each after the first the child
/// of the one before, of [`SG_BUFFER`] bytes each.
pub const SG_LEVELS: usize = 3;
pub const SG_BUFFER: usize = 64;

/// Where in a buffer of the chain the pointer to its child sits.
const SG_CHILD_SLOT: u64 = 8;

/// One-way transactions a client may have ahead of the server. The window keeps the
/// server's one-way space (half its buffer) from filling up, which would fail the send.
const ONEWAY_WINDOW: u64 = 32;

/// One row of the results: a workload with its parameters.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// `call`, `parallel` (N pairs on one vCPU), `parallel-smp` (N pairs free to use both
    /// vCPUs), `oneway`, `objects`, `fd`, `sg-chain`, `floor` (one pipe pair on one vCPU),
    /// `floor-parallel` and `floor-parallel-smp` (N pipe pairs, run as the two `parallel`
    /// workloads are), `teardown` (kill-to-death-notice of a server with a full buffer; pairs
    /// is its looper threads).
    pub workload: &'static str,
    /// Payload bytes per transaction (objects and fd: the bytes the objects take; sg-chain: the
    /// bytes of the buffers).
    pub payload: usize,
    /// Client/server pairs running at once.
    pub pairs: usize,
}

/// The vCPU both ends of a workload are bound to, for all but the `-smp` ones. Under QEMU's TCG, waking a thread
/// on the other, idle vCPU takes hundreds of microseconds of host scheduling, which would
/// drown what the driver costs; on one vCPU a round trip is two context switches.
const LATENCY_CPU: Option<usize> = Some(0);

/// Iteration counts, scaled: 1.0 is about 30 seconds of measuring under QEMU's TCG.
pub struct Plan {
    scale: f64,
}

/// A row and its nominal iteration count (before scaling).
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub row: Row,
    nominal: usize,
}

impl Job {
    fn new(workload: &'static str, payload: usize, pairs: usize, nominal: usize) -> Self {
        Self {
            row: Row {
                workload,
                payload,
                pairs,
            },
            nominal,
        }
    }
}

impl Plan {
    /// A plan with every iteration count multiplied by `scale`.
    pub fn new(scale: f64) -> Self {
        Self { scale }
    }

    /// Timed iterations for a nominal count, and the untimed warm-up before them.
    fn counts(&self, nominal: usize) -> (usize, usize) {
        let iterations = ((nominal as f64 * self.scale) as usize).max(20);
        (iterations, (iterations / 10).max(5))
    }

    /// Every row, in the order they run.
    pub fn jobs() -> Vec<Job> {
        let mut jobs = Vec::new();
        for payload in CALL_PAYLOADS {
            let nominal = match payload {
                0..=4096 => 8000,
                4097..=65536 => 4000,
                _ => 800,
            };
            jobs.push(Job::new("call", payload, 1, nominal));
        }
        for workload in ["parallel", "parallel-smp"] {
            for pairs in PAIRS {
                // The same number of calls in all, shared among the pairs.
                jobs.push(Job::new(workload, 0, pairs, 8000 / pairs));
            }
        }
        for payload in ONEWAY_PAYLOADS {
            jobs.push(Job::new("oneway", payload, 1, 16000));
        }
        let objects = OBJECTS * size_of::<binder_client::uapi::flat_binder_object>();
        jobs.push(Job::new("objects", objects, 1, 6000));
        jobs.push(Job::new("fd", FD_OBJECT_SIZE, 1, 6000));
        jobs.push(Job::new("sg-chain", SG_LEVELS * SG_BUFFER, 1, 6000));
        jobs.push(Job::new(
            "teardown",
            teardown::FILL_BYTES,
            teardown::THREADS,
            teardown::NOMINAL,
        ));
        jobs.push(Job::new("floor", 1, 1, 8000));
        for workload in ["floor-parallel", "floor-parallel-smp"] {
            for pairs in PAIRS {
                jobs.push(Job::new(workload, 1, pairs, 8000 / pairs));
            }
        }
        jobs
    }

    /// Measures `job` on the driver whose device is `device` (the floors use no device).
    pub fn measure(
        &self,
        job: &Job,
        device: &'static str,
        counters: &'static SharedCounters,
    ) -> Outcome<Figures> {
        let Row {
            workload,
            payload,
            pairs,
        } = job.row;
        let counts = self.counts(job.nominal);
        let smp = workload.ends_with("-smp");
        let cpu = if smp { None } else { LATENCY_CPU };
        match workload {
            "call" | "parallel" | "parallel-smp" => {
                with_server(device, pairs, cpu, counters, || {
                    calls(device, counts, pairs, cpu, payload)
                })
            }
            "oneway" => with_server(device, 1, cpu, counters, || {
                oneway(device, counts, payload, counters)
            }),
            "objects" => with_server(device, 1, cpu, counters, || objects(device, counts)),
            "fd" => with_server(device, 1, cpu, counters, || one_fd(device, counts)),
            "sg-chain" => with_server(device, 1, cpu, counters, || sg_chain(device, counts)),
            "teardown" => teardown::measure(device, counts.0, counters),
            "floor" | "floor-parallel" | "floor-parallel-smp" => floor(counts, pairs, cpu),
            _ => Err(format!("no workload {workload}")),
        }
    }

    /// Runs every workload on the driver of `device`, handing each row and its result to
    /// `report` as it is done.
    pub fn run_all(
        &self,
        device: &'static str,
        counters: &'static SharedCounters,
        report: &mut dyn FnMut(Row, Outcome<Figures>),
    ) {
        for job in Self::jobs() {
            report(job.row, self.measure(&job, device, counters));
        }
    }
}

/// Runs `measure` against a fresh server on `device` with `threads` looper threads bound to
/// `cpu`.
fn with_server(
    device: &'static str,
    threads: usize,
    cpu: Option<usize>,
    counters: &'static SharedCounters,
    measure: impl FnOnce() -> Outcome<Figures>,
) -> Outcome<Figures> {
    let server = server::start(device, threads, cpu, counters)?;
    let result = measure();
    server.kill();
    result
}

/// Synchronous calls of `payload` bytes from `pairs` clients at once, `iterations` each.
fn calls(
    device: &'static str,
    (iterations, warmup): (usize, usize),
    pairs: usize,
    cpu: Option<usize>,
    payload: usize,
) -> Outcome<Figures> {
    let data = vec![0x5a; payload];
    Clients {
        count: pairs,
        warmup,
        iterations,
        setup: &|_| {
            pin_to(cpu)?;
            Caller::open(device)
        },
        step: &|caller: &mut Caller| caller.call(CODE_CALL, &data, &[]),
        finish: &|_| Ok(()),
    }
    .run()
}

/// A one-way sender and how many it sent.
struct OnewaySender {
    caller: Caller,
    sent: u64,
    counters: &'static SharedCounters,
}

impl OnewaySender {
    /// Waits (yielding the CPU) until the server has taken all but `ahead` of those sent.
    fn wait_until_ahead_by(&self, ahead: u64) {
        while self.sent - self.counters.oneway_received.load(Ordering::Acquire) > ahead {
            // SAFETY: Plain syscall.
            unsafe { libc::sched_yield() };
        }
    }
}

/// One-way transactions of `payload` bytes as fast as the server takes them; the rate
/// counts until the server has taken the last one.
fn oneway(
    device: &'static str,
    (iterations, warmup): (usize, usize),
    payload: usize,
    counters: &'static SharedCounters,
) -> Outcome<Figures> {
    let data = vec![0x5a; payload];
    counters.oneway_received.store(0, Ordering::Release);
    Clients {
        count: 1,
        warmup,
        iterations,
        setup: &|_| {
            pin_to(LATENCY_CPU)?;
            Ok(OnewaySender {
                caller: Caller::open(device)?,
                sent: 0,
                counters,
            })
        },
        step: &|sender: &mut OnewaySender| {
            sender.wait_until_ahead_by(ONEWAY_WINDOW - 1);
            sender.caller.send_oneway(CODE_ONEWAY, &data)?;
            sender.sent += 1;
            Ok(())
        },
        finish: &|sender| {
            sender.wait_until_ahead_by(0);
            Ok(())
        },
    }
    .run()
}

/// Synchronous calls carrying [`OBJECTS`] binder objects (local binders of the client), each
/// translated into a handle for the server, and released again when it frees the buffer.
fn objects(device: &'static str, (iterations, warmup): (usize, usize)) -> Outcome<Figures> {
    let Payload { data, offsets, .. } = (1..=OBJECTS as u64).fold(Payload::new(), |payload, i| {
        payload.object(FlatObject::binder(i << 12, i))
    });
    Clients {
        count: 1,
        warmup,
        iterations,
        setup: &|_| {
            pin_to(LATENCY_CPU)?;
            Caller::open(device)
        },
        step: &|caller: &mut Caller| caller.call(CODE_OBJECTS, &data, &offsets),
        finish: &|_| Ok(()),
    }
    .run()
}

/// A client of the fd workload: the file it sends, and the call that carries it.
struct FdSender {
    caller: Caller,
    /// Open as long as the client runs: the payload names it by number.
    _file: File,
    payload: Payload,
}

/// Synchronous calls carrying one fd (`BINDER_TYPE_FD`, a memfd of the client's): the driver
/// takes a reference on the file and installs a new fd for it in the server when the server
/// reads the call; the server checks it and closes it.
fn one_fd(device: &'static str, (iterations, warmup): (usize, usize)) -> Outcome<Figures> {
    Clients {
        count: 1,
        warmup,
        iterations,
        setup: &|_| {
            pin_to(LATENCY_CPU)?;
            // SAFETY: The name is NUL-terminated; the call only creates an fd.
            let fd = unsafe { libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC) };
            if fd < 0 {
                return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
            }
            // SAFETY: `fd` was just created and nothing else owns it.
            let file = unsafe { File::from_raw_fd(fd) };
            Ok(FdSender {
                caller: Caller::open(device)?,
                payload: Payload::new().fd(file.as_raw_fd()),
                _file: file,
            })
        },
        step: &|sender: &mut FdSender| sender.caller.call_payload(CODE_FD, &sender.payload),
        finish: &|_| Ok(()),
    }
    .run()
}

/// The payload of the scatter-gather workload: [`SG_LEVELS`] buffers of [`SG_BUFFER`] bytes,
/// each after the first pointed to from the one before at [`SG_CHILD_SLOT`], as a HIDL
/// structure holding a string holding its characters would be.
///
/// The objects follow an 8-byte header, as they follow the interface token in a HIDL call:
/// the C driver takes a parent object at data offset 0 for "no parent" and refuses its child.
fn sg_chain_payload() -> Payload {
    let bytes = [0x5a; SG_BUFFER];
    let first = Payload::new().bytes(&[0; 8]).buffer(&bytes);
    (1..SG_LEVELS).fold(first, |payload, level| {
        payload.child_buffer(&bytes, level - 1, SG_CHILD_SLOT)
    })
}

/// Synchronous calls carrying a [`SG_LEVELS`]-level scatter-gather chain
/// (`BC_TRANSACTION_SG`): the driver copies every buffer into the server's transaction buffer
/// and writes each child's new address into its parent; the server checks the chain.
fn sg_chain(device: &'static str, (iterations, warmup): (usize, usize)) -> Outcome<Figures> {
    let payload = sg_chain_payload();
    Clients {
        count: 1,
        warmup,
        iterations,
        setup: &|_| {
            pin_to(LATENCY_CPU)?;
            Caller::open(device)
        },
        step: &|caller: &mut Caller| caller.call_payload(CODE_SG_CHAIN, &payload),
        finish: &|_| Ok(()),
    }
    .run()
}

/// One end of a pipe ping-pong: a byte out to an echo process, and back.
struct PingPong {
    /// Closed first when dropped, which ends the echo process.
    to_echo: Option<File>,
    from_echo: File,
    echo: Option<Child>,
}

impl PingPong {
    fn start() -> Outcome<Self> {
        let (echo_in, to_echo) = pipe()?;
        let (from_echo, echo_out) = pipe()?;
        let close = [to_echo.as_raw_fd(), from_echo.as_raw_fd()];
        let mut echo = Child::spawn(&close, |ready| {
            ready();
            let (mut input, mut output) = (&echo_in, &echo_out);
            let mut byte = [0u8];
            // Echoes until the other end closes its pipe.
            while input.read(&mut byte).step("echo: read")? == 1 {
                output.write_all(&byte).step("echo: write")?;
            }
            Ok(Vec::new())
        })?;
        drop((echo_in, echo_out));
        echo.wait_ready()?;
        Ok(Self {
            to_echo: Some(to_echo),
            from_echo,
            echo: Some(echo),
        })
    }

    fn round_trip(&mut self) -> Outcome {
        let mut byte = [7u8];
        let mut to_echo = self.to_echo.as_ref().ok_or("ping: pipe closed")?;
        to_echo.write_all(&byte).step("ping")?;
        self.from_echo.read_exact(&mut byte).step("pong")
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        drop(self.to_echo.take());
        if let Some(echo) = self.echo.take() {
            let _ = echo.finish();
        }
    }
}

/// The floor: the same round trip without binder, a one-byte pipe ping-pong between two
/// processes, from `pairs` pairs at once, `iterations` each, bound to `cpu` if given.
fn floor(
    (iterations, warmup): (usize, usize),
    pairs: usize,
    cpu: Option<usize>,
) -> Outcome<Figures> {
    Clients {
        count: pairs,
        warmup,
        iterations,
        setup: &|_| {
            // The echo process is forked after this, and inherits the binding.
            pin_to(cpu)?;
            PingPong::start()
        },
        step: &|pp: &mut PingPong| pp.round_trip(),
        finish: &|_| Ok(()),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use binder_client::BinderObject;

    use super::*;

    #[test]
    fn the_sg_chain_is_each_buffer_the_child_of_the_one_before() {
        let payload = sg_chain_payload();
        assert_eq!(
            payload.buffers_size(),
            Some((SG_LEVELS * SG_BUFFER) as u64),
            "sent as BC_TRANSACTION_SG, the buffers 8-byte multiples"
        );
        let objects: Vec<_> = payload
            .offsets
            .iter()
            .map(|&at| BinderObject::from_bytes(&payload.data[at as usize..]).unwrap())
            .collect();
        assert_eq!(objects.len(), SG_LEVELS);
        assert_ne!(payload.offsets[0], 0, "the C driver's parent at offset 0");
        for (i, object) in objects.iter().enumerate() {
            let BinderObject::Buffer(buffer) = object else {
                panic!("object {i} is {object:?}");
            };
            assert_eq!(buffer.length, SG_BUFFER as u64);
            let expected = (i > 0).then(|| ((i - 1) as u64, SG_CHILD_SLOT));
            assert_eq!(buffer.parent(), expected);
        }
    }
}
