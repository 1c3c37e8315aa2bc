// SPDX-License-Identifier: GPL-2.0
//! Exact instruction counts of a profiled workload (`INSN_COUNT=1 PROFILE_ONLY=W make bench`).
//!
//! In the guest, [`mark`] ends a phase of QEMU's `insn_count` plugin (scripts/insn-count): a
//! syscall number in the gap of x86_64's table runs `__x64_sys_ni_syscall`, whose address the
//! plugin watches.
//! `bench profile` marks the start and the end of each driver's run and says how many
//! operations the run did ([`say_run`]); the plugin writes every kernel instruction's count
//! per phase. A workload whose timed part is a window of each operation (teardown: from the
//! kill to the death notice) can also mark that window, for the first operations of a run
//! (`BENCH_PROFILE_WINDOWS=N`, [`window_wanted`]); the report then counts those windows alone.
//! On the host, [`report`] names the instructions (System.map for the kernel, the guest's
//! `/proc/kallsyms` lines for the two modules) and prints instructions per operation by
//! function, for both drivers side by side.

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{proc::Outcome, say};

/// Set in the guest's environment when the plugin is loaded.
const MARK_ENV: &str = "BENCH_INSN_MARK";

/// A syscall number the kernel has no syscall for: x86_64's table skips from 336 to 424, and
/// its dispatcher calls `__x64_sys_ni_syscall` for the numbers in between (one past the end of
/// the table would call nothing).
const NO_SUCH_SYSCALL: libc::c_long = 400;

/// Set to N in the guest's environment to mark the timed windows of the first N operations
/// of each run.
const WINDOWS_ENV: &str = "BENCH_PROFILE_WINDOWS";

/// The windows marked in the current run so far.
static WINDOWS: AtomicUsize = AtomicUsize::new(0);

/// Whether the operation about to start is to mark its timed window: it calls [`mark`] where
/// the window opens and where it closes (in whichever process sees it), then, if both marks
/// were made, [`window_marked`].
pub fn window_wanted() -> bool {
    std::env::var_os(MARK_ENV).is_some()
        && std::env::var(WINDOWS_ENV)
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| WINDOWS.load(Ordering::Relaxed) < n)
}

/// An operation marked its window (see [`window_wanted`]).
pub fn window_marked() {
    WINDOWS.fetch_add(1, Ordering::Relaxed);
}

/// Ends the plugin's phase, when it is loaded.
pub fn mark() {
    if std::env::var_os(MARK_ENV).is_some() {
        // SAFETY: A syscall with no such number does nothing but fail with ENOSYS.
        unsafe { libc::syscall(NO_SUCH_SYSCALL) };
    }
}

/// Says, for the report, which driver the phase that just ended measured, its operations,
/// and how many of them marked their windows; the next run starts counting those again.
pub fn say_run(driver: &str, ops: usize) {
    let windows = WINDOWS.swap(0, Ordering::Relaxed);
    if std::env::var_os(MARK_ENV).is_some() {
        say(&format!("insn-run {driver} {ops} {windows}"));
    }
}

/// Function start addresses and names, sorted.
struct Symbols(Vec<(u64, String)>);

impl Symbols {
    /// The text symbols of `system_map` and of the `ksym ADDR TYPE NAME [MODULE]` lines of
    /// `log`.
    fn load(system_map: &str, log: &str) -> Self {
        let text = |kind: &str| matches!(kind, "T" | "t" | "W" | "w");
        let mut all: Vec<(u64, String)> = system_map
            .lines()
            .filter_map(|line| {
                let mut f = line.split_whitespace();
                let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
                text(kind).then(|| Some((u64::from_str_radix(addr, 16).ok()?, name.to_string())))?
            })
            .collect();
        all.extend(log.lines().filter_map(|line| {
            let mut f = line.trim_end_matches('\r').split_whitespace();
            if f.next()? != "ksym" {
                return None;
            }
            let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            let module = f.next().unwrap_or("");
            let name = format!("{:#} {module}", rustc_demangle::demangle(name));
            text(kind).then(|| Some((u64::from_str_radix(addr, 16).ok()?, name)))?
        }));
        all.sort();
        Self(all)
    }

    /// The function `addr` is in, and the offset.
    fn find(&self, addr: u64) -> Option<(&str, u64)> {
        let at = self
            .0
            .partition_point(|(start, _)| *start <= addr)
            .checked_sub(1)?;
        let (start, name) = &self.0[at];
        Some((name, addr - start))
    }
}

/// Prints instructions per operation by function for each run of the plugin's `counts` file,
/// with `log` the guest's output (its `insn-run` and `ksym` lines); `detail`, parts of
/// functions' names separated by commas, also prints those functions' instructions by offset.
pub fn report(counts: &Path, system_map: &Path, log: &Path, detail: Option<&str>) -> Outcome {
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let (counts, log) = (read(counts)?, read(log)?);
    let symbols = Symbols::load(&read(system_map)?, &log);
    // Each run: its driver, its operations, and how many of them marked their windows.
    let runs: Vec<(String, f64, usize)> = log
        .lines()
        .filter_map(|line| {
            let mut f = line.trim_end_matches('\r').split_whitespace();
            (f.next()? == "insn-run").then_some(())?;
            Some((
                f.next()?.to_string(),
                f.next()?.parse::<f64>().ok()?.max(1.0),
                f.next().and_then(|w| w.parse().ok()).unwrap_or(0),
            ))
        })
        .collect();
    // Phase 0 runs up to the first mark; run k is phase 2k + 1.
    let mut phases: Vec<Vec<(u64, u64)>> = Vec::new();
    for line in counts.lines() {
        if line.starts_with("phase ") {
            phases.push(Vec::new());
        } else if let (Some(phase), Some((addr, count))) = (phases.last_mut(), line.split_once(' '))
        {
            if let (Ok(addr), Ok(count)) = (u64::from_str_radix(addr, 16), count.parse()) {
                phase.push((addr, count));
            }
        }
    }
    // Two marks per run and two per marked window, and the phase the plugin ends at QEMU's
    // exit. A stray mark after the runs (a guest program whose syscall the table skips, on
    // its way down) adds a phase that nothing reads; a phase less means a mark was missed. A
    // stray mark before the runs would pass this check with the phases shifted: each run's
    // counts are checked below to be mostly its own driver's. That check cannot tell a window
    // from the stretch between two windows (both are the same driver's), so a run with
    // windows relies on the guest making no stray mark before it; none is known to (the
    // known stray mark comes after the runs, on the guest's way down).
    let want = 1 + runs.iter().map(|run| 2 * run.2 + 2).sum::<usize>();
    if phases.len() < want || phases.len() > want + 1 {
        return Err(format!(
            "{} phases of counts for {} runs (want {want} or {}): the marks do not match the runs",
            phases.len(),
            runs.len(),
            want + 1
        ));
    }
    let mut by_run = Vec::new();
    // The phase that starts at the run's first mark.
    let mut first = 1;
    for (k, (driver, ops, windows)) in runs.iter().enumerate() {
        // The run's whole phase, or its windows alone (every other phase, from the second),
        // per window rather than per operation.
        let (counted, ops) = match *windows {
            0 => (first..first + 1, *ops),
            n => (first + 1..first + 2 * n, n as f64),
        };
        first += 2 * windows + 2;
        let mut functions: BTreeMap<&str, f64> = BTreeMap::new();
        let mut offsets: BTreeMap<(&str, u64), f64> = BTreeMap::new();
        let counts = counted.step_by(2).map(|p| {
            phases
                .get(p)
                .ok_or_else(|| format!("no counts for run {k} ({driver})"))
        });
        for &(addr, count) in counts.collect::<Result<Vec<_>, _>>()?.into_iter().flatten() {
            let (name, offset) = symbols.find(addr).unwrap_or(("?", 0));
            *functions.entry(name).or_default() += count as f64 / ops;
            if detail.is_some_and(|d| d.split(',').any(|d| name.contains(d))) {
                *offsets.entry((name, offset)).or_default() += count as f64 / ops;
            }
        }
        let total: f64 = functions.values().sum();
        let own: f64 = functions
            .iter()
            .filter(|(name, _)| name.ends_with(']'))
            .map(|(_, n)| n)
            .sum();
        let module = if driver == "c" {
            "[binder_linux]"
        } else {
            "[rust_binder]"
        };
        let mine: f64 = functions
            .iter()
            .filter(|(name, _)| name.ends_with(module))
            .map(|(_, n)| n)
            .sum();
        if mine * 2.0 <= own {
            return Err(format!(
                "run {k} ({driver}): its phase ran more of the other driver than of {module}: \
                 the marks do not match the runs"
            ));
        }
        say(&format!(
            "### {driver}: {ops} {}, {total:.0} kernel instructions per operation, \
             {own:.0} of them in the driver module",
            if *windows > 0 {
                "operations' marked windows"
            } else {
                "operations"
            }
        ));
        by_run.push((driver.as_str(), functions, offsets, total));
    }
    let [(c_name, c, _, c_total), (r_name, r, _, r_total)] = &by_run[..] else {
        return Err("want exactly two runs, C's then rust_binder's".into());
    };
    say(&format!(
        "\nkernel instructions per operation: {c_name} {c_total:.0}, {r_name} {r_total:.0} \
         ({:+.0})",
        r_total - c_total
    ));
    say("\nby function (both drivers' modules, and the kernel's where they differ by 5 or more):");
    say(&format!(
        "{:>9} {:>9} {:>8}  function",
        c_name, r_name, "diff"
    ));
    let mut rows: Vec<(&str, f64, f64)> = c
        .keys()
        .chain(r.keys())
        .map(|name| {
            (
                *name,
                c.get(name).copied().unwrap_or(0.0),
                r.get(name).copied().unwrap_or(0.0),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    rows.sort_by(|a, b| (b.2 - b.1).abs().total_cmp(&(a.2 - a.1).abs()));
    for (name, c, r) in rows {
        if name.ends_with(']') && c.max(r) >= 1.0 || (r - c).abs() >= 5.0 {
            say(&format!("{c:9.1} {r:9.1} {:+8.1}  {name}", r - c));
        }
    }
    for (driver, _, offsets, _) in &by_run {
        if offsets.is_empty() {
            continue;
        }
        say(&format!("\n{driver}: instructions per operation by offset"));
        for ((name, offset), n) in offsets {
            say(&format!("{n:9.2} {name}+{offset:#x}"));
        }
    }
    Ok(())
}
