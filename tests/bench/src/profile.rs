// SPDX-License-Identifier: GPL-2.0
//! A small sampling profiler of the guest's kernel, for `bench profile`: where each driver
//! spends its time on the same workload.
//!
//! `perf_event_open` with the software `cpu-clock` event (QEMU's TCG has no PMU), one event
//! per CPU for the whole system, kernel samples only, not in the idle task, each with its
//! instruction pointer and kernel call chain, read from the events' ring buffers while the
//! workload runs. Addresses are named from `/proc/kallsyms`, which lists the modules'
//! functions too (Rust names demangled). For each function: samples with it on top of the
//! stack (self) and with it anywhere on the stack (inclusive).
//!
//! The profiler runs in a process of its own, forked before the workload's processes, so
//! that the benchmark's processes stay single-threaded where they fork.

use std::{
    collections::HashMap,
    fs,
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{fence, AtomicU64, Ordering},
};

use crate::proc::{pipe, Child, Outcome, Step};

/// Names a function (part of its name) whose callers the profile also counts: each sample
/// with it on the stack adds one to its chain of callers, [`CHAIN_DEPTH`] deep.
pub const CALLERS_ENV: &str = "BENCH_PROFILE_CALLERS";

/// Names a function (part of its name) whose samples the profile also counts by instruction:
/// the offsets from its start where it was on top of the stack, to read against its
/// disassembly.
pub const OFFSETS_ENV: &str = "BENCH_PROFILE_OFFSETS";

/// How many functions a chain of callers shows, the focused one included.
const CHAIN_DEPTH: usize = 8;

/// Nanoseconds of CPU time between samples.
pub const PERIOD_NS: u64 = 50_000;

/// Data pages of each CPU's ring buffer (a power of two).
const RING_PAGES: usize = 256;

const PAGE: usize = 4096;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5`, what this profiler sets.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
const PERF_SAMPLE_IP: u64 = 1 << 0;
const PERF_SAMPLE_CALLCHAIN: u64 = 1 << 5;
/// `disabled`, `exclude_user`, `exclude_hv`, `exclude_idle`, `exclude_callchain_user`.
const ATTR_FLAGS: u64 = 1 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 22;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_EVENT_IOC_ENABLE: libc::Ioctl = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::Ioctl = 0x2401;
const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
/// Call chain entries from here up are context markers (`PERF_CONTEXT_KERNEL`, ...).
const PERF_CONTEXT_MAX: u64 = -4095i64 as u64;

/// One CPU's event and its ring buffer.
struct Event {
    fd: OwnedFd,
    ring: *mut u8,
}

impl Event {
    fn open(cpu: usize) -> Outcome<Self> {
        let attr = PerfEventAttr {
            kind: PERF_TYPE_SOFTWARE,
            size: size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_SW_CPU_CLOCK,
            sample_period: PERIOD_NS,
            sample_type: PERF_SAMPLE_IP | PERF_SAMPLE_CALLCHAIN,
            flags: ATTR_FLAGS,
            ..Default::default()
        };
        // SAFETY: `attr` is a valid perf_event_attr of the size it says; pid -1 with a CPU is
        // a system-wide event on that CPU; no group.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                -1,
                cpu as libc::c_int,
                -1,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "perf_event_open (cpu-clock, CPU {cpu}): {} (needs CONFIG_PERF_EVENTS)",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: The syscall just returned this descriptor, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: Maps the event's metadata page and ring buffer, as perf_event_open(2) says.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (1 + RING_PAGES) * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(format!("perf mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            ring: ring.cast(),
        })
    }

    fn ioctl(&self, request: libc::Ioctl) {
        // SAFETY: ENABLE and DISABLE take no argument.
        unsafe { libc::ioctl(self.fd.as_raw_fd(), request, 0) };
    }

    /// The head and tail words of the metadata page (`data_head` at 1024, `data_tail` at
    /// 1032).
    fn words(&self) -> (&AtomicU64, &AtomicU64) {
        // SAFETY: The metadata page is mapped as long as `self`, and these two 8-byte aligned
        // words are only accessed atomically here (the kernel writes head, reads tail).
        unsafe {
            (
                &*self.ring.add(1024).cast::<AtomicU64>(),
                &*self.ring.add(1032).cast::<AtomicU64>(),
            )
        }
    }

    /// Takes every record written so far, handing each sample's addresses (its IP first) to
    /// `sample`; returns the count of samples the kernel reported lost.
    fn drain(&self, sample: &mut dyn FnMut(&[u64])) -> u64 {
        let (head, tail) = self.words();
        let head = head.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let mut at = tail.load(Ordering::Relaxed);
        let size = (RING_PAGES * PAGE) as u64;
        // SAFETY: The data pages follow the metadata page.
        let data = unsafe { std::slice::from_raw_parts(self.ring.add(PAGE), RING_PAGES * PAGE) };
        let byte = |i: u64| data[(i % size) as usize];
        let word = |i: u64| u64::from_le_bytes(std::array::from_fn(|k| byte(i + k as u64)));
        let mut lost = 0;
        let mut addresses = Vec::new();
        while at + 8 <= head {
            let header = word(at);
            let kind = header as u32;
            let len = header >> 48;
            if len < 8 {
                break;
            }
            match kind {
                PERF_RECORD_SAMPLE => {
                    addresses.clear();
                    addresses.push(word(at + 8));
                    let nr = word(at + 16).min((len.saturating_sub(24)) / 8);
                    addresses.extend(
                        (0..nr)
                            .map(|i| word(at + 24 + 8 * i))
                            .filter(|&a| a < PERF_CONTEXT_MAX),
                    );
                    sample(&addresses);
                }
                PERF_RECORD_LOST => lost += word(at + 16),
                _ => {}
            }
            at += len;
        }
        fence(Ordering::Release);
        tail.store(at, Ordering::Relaxed);
        lost
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: The mapping made in `open`, not used after this.
        unsafe { libc::munmap(self.ring.cast(), (1 + RING_PAGES) * PAGE) };
    }
}

/// The kernel's functions, sorted by address, from `/proc/kallsyms`.
struct Symbols {
    /// (start address, index into `names`).
    starts: Vec<(u64, usize)>,
    /// "name [module]", Rust names demangled without their hashes.
    names: Vec<String>,
}

impl Symbols {
    fn load() -> Outcome<Self> {
        let text = fs::read_to_string("/proc/kallsyms").step("/proc/kallsyms")?;
        let mut starts = Vec::new();
        let mut names = Vec::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if addr == 0 {
                continue;
            }
            let name = format!("{:#}", rustc_demangle::demangle(name));
            let name = match words.next() {
                Some(module) => format!("{name} {module}"),
                None => name,
            };
            starts.push((addr, names.len()));
            names.push(name);
        }
        if starts.is_empty() {
            return Err("/proc/kallsyms has no addresses (kptr_restrict?)".into());
        }
        starts.sort_unstable();
        Ok(Self { starts, names })
    }

    /// The index of the function holding `addr`.
    fn find(&self, addr: u64) -> Option<usize> {
        self.find_start(addr).map(|(_, f)| f)
    }

    /// The start address and index of the function holding `addr`.
    fn find_start(&self, addr: u64) -> Option<(u64, usize)> {
        let i = self.starts.partition_point(|&(start, _)| start <= addr);
        i.checked_sub(1).map(|i| self.starts[i])
    }
}

/// A running profile: the profiler process, stopped by closing `stop`.
pub struct Profile {
    child: Child,
    stop: Option<std::fs::File>,
}

/// What a profile found.
pub struct Found {
    pub samples: u64,
    pub lost: u64,
    /// (name, self samples, inclusive samples), by self samples.
    pub functions: Vec<(String, u64, u64)>,
    /// With [`CALLERS_ENV`] set: (the first function whose name contains it and its callers,
    /// samples), most samples first.
    pub chains: Vec<(String, u64)>,
    /// With [`OFFSETS_ENV`] set: ("function+offset", self samples there), by address.
    pub offsets: Vec<(String, u64)>,
}

impl Profile {
    /// Starts profiling every CPU; returns once the events are on.
    pub fn start() -> Outcome<Self> {
        let (stop_read, stop_write) = pipe()?;
        let stop_fd = stop_read.as_raw_fd();
        let mut child = Child::spawn(&[stop_write.as_raw_fd()], |ready| {
            let symbols = Symbols::load()?;
            // SAFETY: Plain syscall.
            let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
            let events: Vec<Event> = (0..cpus).map(Event::open).collect::<Outcome<_>>()?;
            events.iter().for_each(|e| e.ioctl(PERF_EVENT_IOC_ENABLE));
            ready();
            let mut counts: HashMap<usize, (u64, u64)> = HashMap::new();
            let (mut samples, mut lost) = (0u64, 0u64);
            let mut seen = Vec::new();
            let focus = std::env::var(CALLERS_ENV).ok().filter(|f| !f.is_empty());
            let mut chains: HashMap<String, u64> = HashMap::new();
            let offsets_of = std::env::var(OFFSETS_ENV).ok().filter(|f| !f.is_empty());
            let mut offsets: HashMap<(usize, u64), u64> = HashMap::new();
            let mut take = |addresses: &[u64]| {
                samples += 1;
                if let (Some(focus), Some(&ip)) = (&offsets_of, addresses.first()) {
                    if let Some((start, f)) = symbols.find_start(ip) {
                        if symbols.names[f].contains(focus.as_str()) {
                            *offsets.entry((f, ip - start)).or_default() += 1;
                        }
                    }
                }
                if let Some(focus) = &focus {
                    let names: Vec<&str> = addresses
                        .iter()
                        .filter_map(|&addr| symbols.find(addr))
                        .map(|f| symbols.names[f].as_str())
                        .collect();
                    if let Some(at) = names.iter().position(|name| name.contains(focus.as_str())) {
                        let chain = names[at..].iter().take(CHAIN_DEPTH).copied();
                        *chains
                            .entry(chain.collect::<Vec<_>>().join(" < "))
                            .or_default() += 1;
                    }
                }
                seen.clear();
                for (depth, &addr) in addresses.iter().enumerate() {
                    let Some(f) = symbols.find(addr) else {
                        continue;
                    };
                    let entry = counts.entry(f).or_default();
                    if depth == 0 {
                        entry.0 += 1;
                    }
                    if !seen.contains(&f) {
                        seen.push(f);
                        entry.1 += 1;
                    }
                }
            };
            loop {
                let mut poll = libc::pollfd {
                    fd: stop_fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: One valid pollfd.
                let stopped = unsafe { libc::poll(&mut poll, 1, 5) } > 0;
                if stopped {
                    events.iter().for_each(|e| e.ioctl(PERF_EVENT_IOC_DISABLE));
                }
                for event in &events {
                    lost += event.drain(&mut take);
                }
                if stopped {
                    break;
                }
            }
            let mut functions: Vec<(String, u64, u64)> = counts
                .into_iter()
                .map(|(f, (own, all))| (symbols.names[f].clone(), own, all))
                .collect();
            functions.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
            let mut out = format!("{samples} {lost}\n");
            for (name, own, all) in functions {
                out.push_str(&format!("{own} {all} {name}\n"));
            }
            for (chain, count) in chains {
                out.push_str(&format!("@ {count} {chain}\n"));
            }
            let mut offsets: Vec<_> = offsets.into_iter().collect();
            offsets.sort_unstable();
            for ((f, offset), count) in offsets {
                out.push_str(&format!("% {count} {}+{offset:#x}\n", symbols.names[f]));
            }
            Ok(out.into_bytes())
        })?;
        drop(stop_read);
        child.wait_ready()?;
        Ok(Self {
            child,
            stop: Some(stop_write),
        })
    }

    /// Stops profiling and returns what it found.
    pub fn finish(mut self) -> Outcome<Found> {
        if let Some(mut stop) = self.stop.take() {
            let _ = stop.write_all(b"x");
        }
        let bytes = self.child.finish()?;
        let mut text = String::new();
        bytes.as_slice().read_to_string(&mut text).step("profile")?;
        let mut lines = text.lines();
        let mut head = lines.next().unwrap_or("0 0").split_whitespace();
        let mut number = || head.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let (samples, lost) = (number(), number());
        let (offset_lines, lines): (Vec<&str>, Vec<&str>) =
            lines.partition(|l| l.starts_with("% "));
        let offsets = offset_lines
            .into_iter()
            .filter_map(|l| {
                let (count, at) = l[2..].split_once(' ')?;
                Some((at.to_string(), count.parse().ok()?))
            })
            .collect();
        let (chain_lines, function_lines): (Vec<&str>, Vec<&str>) =
            lines.into_iter().partition(|l| l.starts_with("@ "));
        let mut chains: Vec<(String, u64)> = chain_lines
            .into_iter()
            .filter_map(|l| {
                let (count, chain) = l[2..].split_once(' ')?;
                Some((chain.to_string(), count.parse().ok()?))
            })
            .collect();
        chains.sort_by_key(|c| std::cmp::Reverse(c.1));
        let functions = function_lines
            .into_iter()
            .filter_map(|l| {
                let mut w = l.splitn(3, ' ');
                Some((
                    w.nth(2)?.to_string(),
                    l.split(' ').next()?.parse().ok()?,
                    l.split(' ').nth(1)?.parse().ok()?,
                ))
            })
            .collect();
        Ok(Found {
            samples,
            lost,
            functions,
            chains,
            offsets,
        })
    }
}
