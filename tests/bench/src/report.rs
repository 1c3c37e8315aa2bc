// SPDX-License-Identifier: GPL-2.0
//! The host side: the raw results of every boot, summed up into tables (Markdown and CSV) and
//! the data of the latency plot.
//!
//! `raw.csv` has one line per boot and row:
//! `round,driver,workload,payload,pairs,iterations,median_ns,p99_ns,ops_per_s,steady_ops_per_s,
//! error` (runs before the steady rate have no `steady_ops_per_s`).
//! A round is a boot pair (separate mode) or a block pair of one boot (interleaved mode, the
//! default: `DIR/mode` says which). A row's figure is the median over the rounds; its ratio
//! rust/C is the median of the per-round ratios, with a bootstrap 95% confidence interval over
//! the rounds (and their minimum and maximum in the CSV). A row with a target (issue 14) whose
//! interval lies on one side of it is "met" or "missed"; one whose interval spans it is "not
//! decided".
//!
//! `memory.csv`, if there, has `mem,DRIVER,PHASE,PAGES` and `slab,DRIVER,OBJECT,BYTES` lines
//! (one set per boot), summed up as medians in two more tables.

use std::{collections::BTreeMap, fmt::Write as _, fs, path::Path};

use crate::proc::Outcome;

/// The figures of one row from one boot.
#[derive(Clone, Debug)]
struct Sample {
    median_ns: f64,
    p99_ns: f64,
    ops_per_s: f64,
    /// The rate without the slowest 1% of iterations (see `run::Figures`); runs from before
    /// it was measured have the whole-run rate here.
    steady_ops_per_s: f64,
    /// The pairs of the row, which ran at once.
    pairs: f64,
}

/// A row of the tables: (workload, payload, pairs).
type Key = (String, usize, usize);

/// Everything in `raw.csv`, by row, driver and round.
#[derive(Default)]
struct Raw {
    /// The rows in the order they first appear.
    order: Vec<Key>,
    /// (row, driver) -> round -> the figures, or the error of that boot.
    results: BTreeMap<(Key, String), BTreeMap<u32, Result<Sample, String>>>,
}

impl Raw {
    fn parse(text: &str) -> Outcome<Self> {
        let mut raw = Self::default();
        for (n, line) in text.lines().enumerate() {
            if n == 0 && line.starts_with("round,") || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.splitn(11, ',').collect();
            let (round, driver, workload, payload, pairs, median, p99, ops, steady, error) =
                match f[..] {
                    [r, d, w, pl, pr, _, m, p, o, s, e] => (r, d, w, pl, pr, m, p, o, s, e),
                    [r, d, w, pl, pr, _, m, p, o, e] => (r, d, w, pl, pr, m, p, o, o, e),
                    _ => return Err(format!("raw.csv line {}: {} fields", n + 1, f.len())),
                };
            let number = |s: &str| -> Outcome<f64> {
                s.parse()
                    .map_err(|_| format!("raw.csv line {}: not a number: {s:?}", n + 1))
            };
            let key: Key = (
                workload.to_string(),
                number(payload)? as usize,
                number(pairs)? as usize,
            );
            if !raw.order.contains(&key) {
                raw.order.push(key.clone());
            }
            let value = if error.is_empty() {
                Ok(Sample {
                    median_ns: number(median)?,
                    p99_ns: number(p99)?,
                    ops_per_s: number(ops)?,
                    steady_ops_per_s: number(steady)?,
                    pairs: number(pairs)?,
                })
            } else {
                Err(error.to_string())
            };
            raw.results
                .entry((key, driver.to_string()))
                .or_default()
                .insert(number(round)? as u32, value);
        }
        Ok(raw)
    }

    fn rounds(&self, key: &Key, driver: &str) -> Option<&BTreeMap<u32, Result<Sample, String>>> {
        self.results.get(&(key.clone(), driver.to_string()))
    }

    /// The successful figures of `driver` on row `key`, by round.
    fn ok(&self, key: &Key, driver: &str) -> BTreeMap<u32, Sample> {
        self.rounds(key, driver)
            .into_iter()
            .flatten()
            .filter_map(|(r, s)| s.as_ref().ok().map(|s| (*r, s.clone())))
            .collect()
    }

    /// The first error of `driver` on row `key`, if no round succeeded.
    fn error(&self, key: &Key, driver: &str) -> Option<String> {
        let rounds = self.rounds(key, driver)?;
        if rounds.values().any(Result::is_ok) {
            return None;
        }
        rounds.values().find_map(|s| s.as_ref().err().cloned())
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// What a workload's table shows.
#[derive(Clone, Copy, PartialEq)]
enum Metric {
    /// Median time of one iteration (lower is better).
    Latency,
    /// Iterations per second without the slowest 1% of iterations (higher is better).
    SteadyRate,
    /// Iterations per second, all pairs together, from the median time of one: the pairs
    /// over it (higher is better). Unlike the rate over the whole run, a few long stalls of the VM
    /// (the host running something else) do not move it.
    MedianRate,
}

impl Metric {
    fn of(self, s: &Sample) -> f64 {
        match self {
            Metric::Latency => s.median_ns / 1e3,
            Metric::SteadyRate => s.steady_ops_per_s,
            Metric::MedianRate => s.pairs * 1e9 / s.median_ns,
        }
    }

    /// The time one operation costs, in nanoseconds, to set against the floor's.
    fn time_ns(self, s: &Sample) -> f64 {
        match self {
            Metric::Latency => s.median_ns,
            Metric::SteadyRate => 1e9 / s.steady_ops_per_s,
            Metric::MedianRate => s.median_ns / s.pairs,
        }
    }
}

struct Workload {
    name: &'static str,
    title: &'static str,
    metric: Metric,
}

const WORKLOADS: [Workload; 11] = [
    Workload {
        name: "call",
        title: "1. Synchronous round trip (call with the payload, empty reply; both ends on one vCPU): median µs per call",
        metric: Metric::Latency,
    },
    Workload {
        name: "parallel",
        title: "2. Round trips (0 B) from N client processes at once to one server with N looper threads, all on one vCPU: calls/s, all pairs together (N ÷ median time of one call)",
        metric: Metric::MedianRate,
    },
    Workload {
        name: "parallel-smp",
        title: "2b. The same, free to run on both vCPUs (noisy under TCG: cross-vCPU wake-ups are host scheduling): calls/s (N ÷ median)",
        metric: Metric::MedianRate,
    },
    Workload {
        name: "oneway",
        title: "3. One-way throughput (one sender, one receiving node, both on one vCPU): transactions/s until the receiver freed the last, the slowest 1% of sends (VM stalls) left out",
        metric: Metric::SteadyRate,
    },
    Workload {
        name: "objects",
        title: "4. Round trip carrying 16 binder objects (local binders, translated to handles; both ends on one vCPU): median µs per call",
        metric: Metric::Latency,
    },
    Workload {
        name: "fd",
        title: "4b. Round trip carrying one fd (`BINDER_TYPE_FD`, a memfd: installed in the server, which closes it; both ends on one vCPU): median µs per call",
        metric: Metric::Latency,
    },
    Workload {
        name: "sg-chain",
        title: "4c. Round trip carrying a 3-level scatter-gather chain (`BC_TRANSACTION_SG`, three 64 B `PTR` buffers, each the child of the one before: copied, and each parent's pointer fixed up; both ends on one vCPU): median µs per call",
        metric: Metric::Latency,
    },
    Workload {
        name: "teardown",
        title: "4d. Teardown: a process with 16 looper threads and 448 KiB of one-way buffers it never freed is killed (SIGKILL); time until a watcher holding a death notification reads `BR_DEAD_BINDER` (all on one vCPU): median µs",
        metric: Metric::Latency,
    },
    Workload {
        name: "floor",
        title: "5. The floor, no binder: one-byte pipe ping-pong between two processes on one vCPU, in each driver's boot (separate) or block (interleaved): median µs per round trip",
        metric: Metric::Latency,
    },
    Workload {
        name: "floor-parallel",
        title: "5b. The floor of workload 2: N pipe ping-pong pairs at once on one vCPU: round trips/s (N ÷ median)",
        metric: Metric::MedianRate,
    },
    Workload {
        name: "floor-parallel-smp",
        title: "5c. The floor of workload 2b: N pipe ping-pong pairs at once on both vCPUs: round trips/s (N ÷ median)",
        metric: Metric::MedianRate,
    },
];

/// One row of the summary, every column a ready figure.
struct Line {
    c: Option<f64>,
    rust: Option<f64>,
    c_p99_us: Option<f64>,
    rust_p99_us: Option<f64>,
    ratio: Option<f64>,
    spread: Option<(f64, f64)>,
    /// Bootstrap 95% confidence interval of the median ratio.
    interval: Option<(f64, f64)>,
    c_floor: Option<f64>,
    rust_floor: Option<f64>,
    rates: (Option<f64>, Option<f64>),
    errors: (Option<String>, Option<String>),
    rounds: usize,
}

fn summarise(raw: &Raw, workload: &Workload, key: &Key) -> Line {
    let metric = workload.metric;
    let c = raw.ok(key, "c");
    let rust = raw.ok(key, "rust");
    let fig =
        |m: &BTreeMap<u32, Sample>, f: &dyn Fn(&Sample) -> f64| median(m.values().map(f).collect());
    let ratios: Vec<f64> = c
        .iter()
        .filter_map(|(r, cs)| rust.get(r).map(|rs| metric.of(rs) / metric.of(cs)))
        .collect();
    let spread = ratios.iter().fold(None, |acc: Option<(f64, f64)>, &r| {
        Some(acc.map_or((r, r), |(lo, hi)| (lo.min(r), hi.max(r))))
    });
    // The floor of the same boot: pipe round trips run the same way.
    let (floor_key, floor_metric): (Key, _) = if workload.name.starts_with("parallel") {
        (
            ("floor-".to_string() + workload.name, 1, key.2),
            Metric::MedianRate,
        )
    } else {
        (("floor".to_string(), 1, 1), Metric::Latency)
    };
    let over_floor = |driver: &str, m: &BTreeMap<u32, Sample>| {
        let floor = raw.ok(&floor_key, driver);
        median(
            m.iter()
                .filter_map(|(r, s)| {
                    floor
                        .get(r)
                        .map(|f| metric.time_ns(s) / floor_metric.time_ns(f))
                })
                .collect(),
        )
    };
    let is_floor = workload.name.starts_with("floor");
    Line {
        c: fig(&c, &|s| metric.of(s)),
        rust: fig(&rust, &|s| metric.of(s)),
        c_p99_us: fig(&c, &|s| s.p99_ns / 1e3),
        rust_p99_us: fig(&rust, &|s| s.p99_ns / 1e3),
        ratio: median(ratios.clone()),
        spread,
        interval: bootstrap_interval(&ratios),
        c_floor: (!is_floor).then(|| over_floor("c", &c)).flatten(),
        rust_floor: (!is_floor).then(|| over_floor("rust", &rust)).flatten(),
        rates: (fig(&c, &|s| s.ops_per_s), fig(&rust, &|s| s.ops_per_s)),
        errors: (raw.error(key, "c"), raw.error(key, "rust")),
        rounds: ratios.len(),
    }
}

/// SplitMix64: a small seeded generator, so that a report made twice from the same raw.csv
/// has the same intervals.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the bias of the modulo is negligible for small `n`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fewer pairs than this decide nothing: the bootstrap's percentile interval of a median is
/// too narrow on a handful of values (with two, it is just their range).
const MIN_PAIRS: usize = 6;

/// Resamplings of the bootstrap.
const BOOTSTRAP_RESAMPLES: usize = 4000;

/// The bootstrap 95% confidence interval of the median of `values`: the 2.5th and 97.5th
/// percentiles of the medians of resamples (drawn with replacement, as many as there are
/// values). None with fewer than two values.
fn bootstrap_interval(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mut rng = SplitMix(0x5eed_b1a5_0000_0014);
    let mut medians: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .filter_map(|_| median((0..n).map(|_| values[rng.below(n)]).collect()))
        .collect();
    medians.sort_by(f64::total_cmp);
    let at = |q: f64| medians[((q * medians.len() as f64) as usize).min(medians.len() - 1)];
    Some((at(0.025), at(0.975)))
}

/// Issue 14's target for a row's ratio rust/C.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// Times: rust/C at most this.
    AtMost(f64),
    /// Rates: rust/C at least this.
    AtLeast(f64),
}

fn target(key: &Key) -> Option<Target> {
    match (key.0.as_str(), key.1) {
        ("call", 0 | 4096) => Some(Target::AtMost(0.95)),
        ("call", _) => Some(Target::AtMost(1.0)),
        ("oneway", _) => Some(Target::AtLeast(1.05)),
        ("objects" | "fd" | "sg-chain", _) => Some(Target::AtMost(0.95)),
        ("parallel" | "parallel-smp", _) => Some(Target::AtLeast(1.0)),
        // "As fast as with C".
        ("teardown", _) => Some(Target::AtMost(1.0)),
        _ => None,
    }
}

impl Target {
    fn label(self) -> String {
        match self {
            Target::AtMost(t) => format!("≤ {t:.2}"),
            Target::AtLeast(t) => format!("≥ {t:.2}"),
        }
    }

    /// "met" or "missed" when the interval lies on one side of the target, else "not
    /// decided".
    fn verdict(self, (lo, hi): (f64, f64)) -> &'static str {
        let (met, missed) = match self {
            Target::AtMost(t) => (hi <= t, lo > t),
            Target::AtLeast(t) => (lo >= t, hi < t),
        };
        match (met, missed) {
            (true, _) => "met",
            (_, true) => "missed",
            _ => "not decided",
        }
    }
}

fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn row_label(workload: &str, key: &Key) -> String {
    match workload {
        "parallel" | "parallel-smp" | "floor-parallel" | "floor-parallel-smp" => {
            format!("{} pair{}", key.2, if key.2 == 1 { "" } else { "s" })
        }
        "objects" => "16 objects".to_string(),
        "fd" => "1 fd".to_string(),
        "sg-chain" => format!("3 × {}", size_label(key.1 / 3)),
        "teardown" => format!("{} threads, {}", key.2, size_label(key.1)),
        "floor" => "1 pair".to_string(),
        _ => size_label(key.1),
    }
}

fn value(v: Option<f64>, metric: Metric, error: &Option<String>) -> String {
    match (v, error) {
        (Some(v), _) if metric != Metric::Latency => format!("{v:.0}"),
        (Some(v), _) => format!("{v:.1}"),
        (None, Some(e)) => format!("n/a ({})", e.replace('|', "/")),
        (None, None) => "n/a".to_string(),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
}

fn opt_csv(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.4}"))
}

/// Reads `dir/raw.csv` and writes `summary.md`, `summary.csv` and `latency.dat` next to it.
pub fn report(dir: &Path) -> Outcome {
    let text = fs::read_to_string(dir.join("raw.csv"))
        .map_err(|e| format!("{}: {e}", dir.join("raw.csv").display()))?;
    let raw = Raw::parse(&text)?;
    let rounds: std::collections::BTreeSet<u32> = raw
        .results
        .values()
        .flat_map(|m| m.keys().copied())
        .collect();

    let mut md = String::new();
    let mut csv = String::from(
        "workload,payload,pairs,metric,c,rust,rust_over_c,ratio_min,ratio_max,c_p99_us,rust_p99_us,\
         c_x_floor,rust_x_floor,c_ops_per_s,rust_ops_per_s,rounds,c_error,rust_error,ci_low,ci_high,\
         target,verdict\n",
    );
    let mut dat = String::from(
        "# payload c_median_us c_p99_us rust_median_us rust_p99_us rust_over_c floor_median_us \
         ratio_min ratio_max\n",
    );
    // The floor for the plot: the one-pair pipe round trip, over every boot of both drivers.
    let floor_key: Key = ("floor".to_string(), 1, 1);
    let floor_us = median(
        ["c", "rust"]
            .iter()
            .flat_map(|d| raw.ok(&floor_key, d).into_values())
            .map(|s| s.median_ns / 1e3)
            .collect(),
    );
    let interleaved = fs::read_to_string(dir.join("mode")).is_ok_and(|m| m.trim() == "interleaved");
    let (pairs, pair) = if interleaved {
        (
            "block pairs in one boot with both drivers loaded (interleaved)",
            "block-pair",
        )
    } else {
        ("boot pair(s), one driver per boot (separate)", "boot-pair")
    };
    let _ = writeln!(
        md,
        "{} {pairs}. rust/C is the median of the per-{pair} ratios, with its bootstrap 95% \
         confidence interval in brackets; a row with a target (issue 14) is \"met\" or \"missed\" \
         when the interval lies on one side of it, else \"not decided\". ×floor is what one \
         operation costs in pipe round trips of the same {}.",
        rounds.len(),
        if interleaved { "block pair" } else { "boot" }
    );
    for workload in &WORKLOADS {
        let keys: Vec<&Key> = raw.order.iter().filter(|k| k.0 == workload.name).collect();
        if keys.is_empty() {
            continue;
        }
        let rate = workload.metric != Metric::Latency;
        let _ = writeln!(md, "\n**{}**\n", workload.title);
        let floor = workload.name.starts_with("floor");
        if floor {
            let unit = if rate { "/s" } else { "µs (p99)" };
            let _ = writeln!(
                md,
                "| | C side {unit} | rust side {unit} | rust/C [95% CI] |\n\
                 | --- | ---: | ---: | ---: |"
            );
        } else if rate {
            let _ = writeln!(
                md,
                "| | C /s | rust /s | rust/C [95% CI] | target | C ×floor | rust ×floor |\n\
                 | --- | ---: | ---: | ---: | --- | ---: | ---: |"
            );
        } else {
            let _ = writeln!(
                md,
                "| | C µs (p99) | rust µs (p99) | rust/C [95% CI] | target | C ×floor | rust ×floor |\n\
                 | --- | ---: | ---: | ---: | --- | ---: | ---: |"
            );
        }
        for key in keys {
            let l = summarise(&raw, workload, key);
            let ratio = match (l.ratio, l.interval) {
                (Some(r), Some((lo, hi))) => format!("**{r:.2}** [{lo:.2}–{hi:.2}]"),
                (Some(r), None) => format!("**{r:.2}** [one pair]"),
                _ => "n/a".to_string(),
            };
            let goal = target(key);
            let verdict = goal.zip(l.interval).map(|(t, i)| t.verdict(i)).map(|v| {
                if l.rounds < MIN_PAIRS {
                    "not decided"
                } else {
                    v
                }
            });
            let target_cell = match (goal, verdict) {
                (Some(t), Some(_)) if l.rounds < MIN_PAIRS => {
                    format!("{}: not decided ({} pairs)", t.label(), l.rounds)
                }
                (Some(t), Some("not decided")) => format!("{}: not decided", t.label()),
                (Some(t), Some(v)) => format!("{}: **{v}**", t.label()),
                (Some(t), None) => t.label(),
                (None, _) => String::new(),
            };
            let with_p99 = |v: Option<f64>, p99: Option<f64>, e: &Option<String>| match v {
                Some(_) if !rate => format!("{} ({})", value(v, workload.metric, e), opt(p99, 1)),
                _ => value(v, workload.metric, e),
            };
            let c = with_p99(l.c, l.c_p99_us, &l.errors.0);
            let rust = with_p99(l.rust, l.rust_p99_us, &l.errors.1);
            let label = row_label(workload.name, key);
            if floor {
                let _ = writeln!(md, "| {label} | {c} | {rust} | {ratio} |");
            } else {
                let _ = writeln!(
                    md,
                    "| {label} | {c} | {rust} | {ratio} | {target_cell} | {} | {} |",
                    opt(l.c_floor, 1),
                    opt(l.rust_floor, 1)
                );
            }
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                key.0,
                key.1,
                key.2,
                match workload.metric {
                    Metric::Latency => "median_us",
                    Metric::SteadyRate => "steady_ops_per_s",
                    Metric::MedianRate => "pairs_per_median_s",
                },
                opt_csv(l.c),
                opt_csv(l.rust),
                opt_csv(l.ratio),
                opt_csv(l.spread.map(|s| s.0)),
                opt_csv(l.spread.map(|s| s.1)),
                opt_csv(l.c_p99_us),
                opt_csv(l.rust_p99_us),
                opt_csv(l.c_floor),
                opt_csv(l.rust_floor),
                opt_csv(l.rates.0),
                opt_csv(l.rates.1),
                l.rounds,
                l.errors.0.unwrap_or_default().replace(',', ";"),
                l.errors.1.unwrap_or_default().replace(',', ";"),
                opt_csv(l.interval.map(|i| i.0)),
                opt_csv(l.interval.map(|i| i.1)),
                goal.map(Target::label).unwrap_or_default(),
                verdict.unwrap_or_default(),
            );
            if workload.name == "call" {
                let _ = writeln!(
                    dat,
                    "\"{}\" {} {} {} {} {} {} {} {}",
                    size_label(key.1),
                    opt_csv(l.c).if_empty("NaN"),
                    opt_csv(l.c_p99_us).if_empty("NaN"),
                    opt_csv(l.rust).if_empty("NaN"),
                    opt_csv(l.rust_p99_us).if_empty("NaN"),
                    opt_csv(l.ratio).if_empty("NaN"),
                    opt_csv(floor_us).if_empty("NaN"),
                    opt_csv(l.spread.map(|s| s.0)).if_empty("NaN"),
                    opt_csv(l.spread.map(|s| s.1)).if_empty("NaN"),
                );
            }
        }
    }
    if let Ok(text) = fs::read_to_string(dir.join("memory.csv")) {
        memory_tables(&text, &mut md);
    }
    let write = |name: &str, text: &str| {
        fs::write(dir.join(name), text).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    write("summary.md", &md)?;
    write("summary.csv", &csv)?;
    write("latency.dat", &dat)?;
    print!("{md}");
    Ok(())
}

/// The memory tables, from `memory.csv`'s lines: medians over the boots.
fn memory_tables(text: &str, md: &mut String) {
    // (kind, driver, what) -> values; errors by (kind, driver).
    let mut values: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(4, ',').collect();
        let [kind, driver, what, value] = f[..] else {
            continue;
        };
        if what == "error" {
            errors.insert((kind.into(), driver.into()), value.into());
            continue;
        }
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        if !order.contains(&(kind.into(), what.into())) {
            order.push((kind.into(), what.into()));
        }
        values
            .entry((kind.into(), driver.into(), what.into()))
            .or_default()
            .push(v);
    }
    let get = |kind: &str, driver: &str, what: &str| {
        median(
            values
                .get(&(kind.into(), driver.into(), what.into()))
                .cloned()
                .unwrap_or_default(),
        )
    };
    let phases: Vec<&str> = order
        .iter()
        .filter(|(k, _)| k == "mem")
        .map(|(_, w)| w.as_str())
        .collect();
    if !phases.is_empty() || errors.keys().any(|(k, _)| k == "mem") {
        let _ = writeln!(
            md,
            "\n**7. Pages of a server's receive buffer (4 MiB mapping), as resident pages of its \
             binder mapping (`/proc/PID/smaps`): before any call, at the peak of a burst of three \
             1 MiB calls whose buffers it keeps, after it freed them, and after 3 s of memory \
             pressure (free memory held between the min and low watermarks: kswapd, and with it \
             every shrinker, at work)**\n"
        );
        let _ = writeln!(md, "| | {} |", phases.join(" | "));
        let _ = writeln!(md, "| --- |{}", " ---: |".repeat(phases.len()));
        for (driver, name) in [("c", "C"), ("rust", "rust_binder")] {
            if let Some(e) = errors.get(&("mem".into(), driver.into())) {
                let _ = writeln!(md, "| {name} | n/a ({}) |", e.replace('|', "/"));
                continue;
            }
            let cells: Vec<String> = phases
                .iter()
                .map(|p| opt(get("mem", driver, p), 0))
                .collect();
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        }
    }
    let objects: Vec<&str> = order
        .iter()
        .filter(|(k, _)| k == "slab")
        .map(|(_, w)| w.as_str())
        .collect();
    if !objects.is_empty() || errors.keys().any(|(k, _)| k == "slab") {
        let _ = writeln!(
            md,
            "\n**8. Kernel memory per object: bytes of active slab objects (`/proc/slabinfo`, every \
             cache shrunk first) added per object, median of 3 trials over 1024 of each (256 \
             threads), with what comes anyway counted out (the task of a thread, the process of \
             a handle, the kept buffer of a node sent with its handle); a transaction is a \
             one-way call queued on a node nobody reads, its buffer bookkeeping included. \
             Approximate: other activity in the guest blurs them by some tens of bytes**\n"
        );
        let _ = writeln!(
            md,
            "| | C bytes | rust bytes | rust/C |\n| --- | ---: | ---: | ---: |"
        );
        for what in objects {
            let (c, rust) = (get("slab", "c", what), get("slab", "rust", what));
            let ratio = c.zip(rust).filter(|(c, _)| *c > 0.0).map(|(c, r)| r / c);
            let _ = writeln!(
                md,
                "| {what} | {} | {} | {} |",
                opt(c, 0),
                opt(rust, 0),
                opt(ratio, 2)
            );
        }
        for (driver, name) in [("c", "C"), ("rust", "rust_binder")] {
            if let Some(e) = errors.get(&("slab".into(), driver.into())) {
                let _ = writeln!(md, "\n{name}: n/a ({e})");
            }
        }
    }
}

/// A missing figure in gnuplot's data is "NaN".
trait IfEmpty {
    fn if_empty(self, replacement: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, replacement: &str) -> String {
        if self.is_empty() {
            replacement.to_string()
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str =
        "round,driver,workload,payload,pairs,iterations,median_ns,p99_ns,ops_per_s,error
1,c,call,0,1,100,10000,20000,90000,
1,c,floor,1,1,100,5000,6000,180000,
1,rust,call,0,1,100,12000,22000,80000,
1,rust,floor,1,1,100,5000,6000,180000,
1,rust,objects,384,1,0,0,0,0,BR_FAILED_REPLY; not yet
2,c,call,0,1,100,10000,20000,90000,
2,c,floor,1,1,100,5000,6000,180000,
2,rust,call,0,1,100,8000,22000,80000,
2,rust,floor,1,1,100,4000,6000,180000,
";

    #[test]
    fn ratios_are_per_round_and_spread_is_their_range() {
        let raw = Raw::parse(RAW).unwrap();
        let key = ("call".to_string(), 0, 1);
        let l = summarise(&raw, &WORKLOADS[0], &key);
        assert_eq!(l.c, Some(10.0));
        assert_eq!(l.rust, Some(10.0));
        assert_eq!(l.spread, Some((0.8, 1.2)));
        assert!((l.ratio.unwrap() - 1.0).abs() < 1e-9);
        // Round 1: 12/5, round 2: 8/4.
        assert!((l.rust_floor.unwrap() - 2.2).abs() < 1e-9);
        assert_eq!(l.c_floor, Some(2.0));
    }

    #[test]
    fn a_failing_row_is_reported_with_its_error() {
        let raw = Raw::parse(RAW).unwrap();
        let key = ("objects".to_string(), 384, 1);
        let l = summarise(&raw, &WORKLOADS[3], &key);
        assert_eq!(l.rust, None);
        assert_eq!(l.errors.1.as_deref(), Some("BR_FAILED_REPLY; not yet"));
        assert_eq!(l.ratio, None);
    }

    #[test]
    fn parallel_rates_come_from_the_median() {
        let raw = Raw::parse(
            "1,c,parallel,0,4,400,100000,900000,1000,
1,rust,parallel,0,4,400,80000,900000,1000,
1,c,floor-parallel,1,4,400,20000,90000,1000,
1,rust,floor-parallel,1,4,400,40000,90000,1000,
",
        )
        .unwrap();
        let l = summarise(&raw, &WORKLOADS[1], &("parallel".to_string(), 0, 4));
        // 4 pairs over 100 us and 80 us.
        assert_eq!(l.c, Some(40000.0));
        assert_eq!(l.rust, Some(50000.0));
        assert_eq!(l.ratio, Some(1.25));
        assert_eq!(l.c_floor, Some(5.0));
        assert_eq!(l.rust_floor, Some(2.0));
    }

    #[test]
    fn the_bootstrap_interval_holds_the_median_and_is_repeatable() {
        let ratios = [0.9, 1.1, 0.95, 1.05, 1.0, 0.97, 1.02, 0.99];
        let (lo, hi) = bootstrap_interval(&ratios).unwrap();
        assert!(
            lo <= 1.0 && 1.0 <= hi && lo >= 0.9 && hi <= 1.1,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_interval(&ratios), Some((lo, hi)));
        assert_eq!(bootstrap_interval(&[1.0]), None);
    }

    #[test]
    fn an_interval_that_spans_the_target_is_not_decided() {
        let t = Target::AtMost(0.95);
        assert_eq!(t.verdict((0.8, 0.9)), "met");
        assert_eq!(t.verdict((0.9, 1.0)), "not decided");
        assert_eq!(t.verdict((0.96, 1.2)), "missed");
        let t = Target::AtLeast(1.05);
        assert_eq!(t.verdict((1.06, 1.2)), "met");
        assert_eq!(t.verdict((0.7, 0.9)), "missed");
        assert_eq!(
            target(&("call".into(), 65536, 1)),
            Some(Target::AtMost(1.0))
        );
    }

    #[test]
    fn memory_tables_show_each_phase_and_object_for_both_drivers() {
        let mut md = String::new();
        memory_tables(
            "mem,c,before,0\nmem,c,pressure,0\nmem,rust,before,0\nmem,rust,pressure,769\n\
             slab,c,node,100\nslab,rust,node,150\nslab,rust,error,boom\n",
            &mut md,
        );
        assert!(md.contains("| | before | pressure |"), "{md}");
        assert!(md.contains("| rust_binder | 0 | 769 |"), "{md}");
        assert!(md.contains("| node | 100 | 150 | 1.50 |"), "{md}");
        assert!(md.contains("rust_binder: n/a (boom)"), "{md}");
    }

    #[test]
    fn medians_of_even_counts_average_the_middle() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
