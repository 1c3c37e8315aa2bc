// SPDX-License-Identifier: GPL-2.0
//! Running a measurement: client processes that warm up, wait at a common start line, time
//! each iteration, and hand their samples back; and the figures made of those samples.

use crate::proc::{now_ns, Barrier, Child, Outcome};

/// How long a client may take before its watchdog ends it (and the measurement is "n/a").
const CLIENT_WATCHDOG_SECONDS: u32 = 300;

/// What a measurement is made of: the clients, each with its own state of type `S`.
pub struct Clients<'a, S> {
    /// How many client processes run at once.
    pub count: usize,
    /// Iterations each client runs untimed first.
    pub warmup: usize,
    /// Timed iterations of each client.
    pub iterations: usize,
    /// Sets up client `i` in its own process (open the device, fork a partner, ...).
    pub setup: &'a dyn Fn(usize) -> Outcome<S>,
    /// One iteration.
    pub step: &'a dyn Fn(&mut S) -> Outcome,
    /// Runs after the last iteration, inside the timed span (waits for work still in flight).
    pub finish: &'a dyn Fn(&mut S) -> Outcome,
}

/// The result of one measurement.
#[derive(Debug)]
pub struct Figures {
    /// Timed iterations, all clients together.
    pub iterations: usize,
    /// Median time of one iteration, in nanoseconds.
    pub median_ns: u64,
    /// 99th percentile of the time of one iteration, in nanoseconds.
    pub p99_ns: u64,
    /// Iterations per second, all clients together: their count over the span from the
    /// first client's start to the last one's end.
    pub ops_per_s: f64,
    /// Iterations per second in the steady state: as `ops_per_s`, but without the slowest 1%
    /// of iterations, which is where the VM's stalls (the host running something else) land.
    pub steady_ops_per_s: f64,
}

impl<S> Clients<'_, S> {
    /// Runs the clients and sums up their samples.
    pub fn run(&self) -> Outcome<Figures> {
        let mut barrier = Barrier::new()?;
        let mut children = Vec::with_capacity(self.count);
        for index in 0..self.count {
            let spawned = Child::spawn(&[barrier.parent_end()], |ready| {
                // SAFETY: `alarm` only arms a timer; its SIGALRM ends a stuck client.
                unsafe { libc::alarm(CLIENT_WATCHDOG_SECONDS) };
                self.client(index, &barrier, ready)
            });
            match spawned {
                Ok(child) => children.push(child),
                Err(e) => {
                    children.into_iter().for_each(Child::kill);
                    return Err(e);
                }
            }
        }
        let mut failure = None;
        for child in &mut children {
            if let Err(e) = child.wait_ready() {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            children.into_iter().for_each(Child::kill);
            return Err(e);
        }
        barrier.release();
        let mut samples = Vec::with_capacity(self.count * self.iterations);
        let (mut start, mut end) = (u64::MAX, 0);
        let mut failure = None;
        for child in children {
            match child.finish() {
                Ok(bytes) => {
                    let mut words = bytes
                        .chunks_exact(8)
                        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")));
                    start = start.min(words.next().unwrap_or(u64::MAX));
                    end = end.max(words.next().unwrap_or(0));
                    samples.extend(words);
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        figures(samples, self.count, end.saturating_sub(start))
    }

    /// The body of client `index`: its start and end time, then its samples, as bytes.
    fn client(&self, index: usize, barrier: &Barrier, ready: &mut dyn FnMut()) -> Outcome<Vec<u8>> {
        let mut state = (self.setup)(index)?;
        for _ in 0..self.warmup {
            (self.step)(&mut state)?;
        }
        ready();
        barrier.wait();
        let mut samples = Vec::with_capacity(self.iterations);
        let start = now_ns();
        let mut before = start;
        for _ in 0..self.iterations {
            (self.step)(&mut state)?;
            let after = now_ns();
            samples.push(after - before);
            before = after;
        }
        (self.finish)(&mut state)?;
        let end = now_ns();
        drop(state);
        let mut bytes = Vec::with_capacity((samples.len() + 2) * 8);
        for word in [start, end].into_iter().chain(samples) {
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        Ok(bytes)
    }
}

/// The median, 99th percentile and rates of `samples` taken by `clients` clients at once over
/// `span_ns`.
pub fn figures(mut samples: Vec<u64>, clients: usize, span_ns: u64) -> Outcome<Figures> {
    if samples.is_empty() || span_ns == 0 {
        return Err("no samples".to_string());
    }
    samples.sort_unstable();
    let n = samples.len();
    let index = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    // The clients ran side by side: their kept time, shared among them, is the steady span.
    let kept = &samples[..=index(0.99)];
    let steady_span_ns = kept.iter().sum::<u64>() as f64 / clients as f64;
    Ok(Figures {
        iterations: n,
        median_ns: samples[index(0.5)],
        p99_ns: samples[index(0.99)],
        ops_per_s: n as f64 * 1e9 / span_ns as f64,
        steady_ops_per_s: kept.len() as f64 * 1e9 / steady_span_ns.max(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99_are_nearest_ranks() {
        let samples: Vec<u64> = (1..=200).rev().collect();
        let f = figures(samples, 1, 2_000_000_000).unwrap();
        assert_eq!(f.median_ns, 100);
        assert_eq!(f.p99_ns, 198);
        assert_eq!(f.iterations, 200);
        assert!((f.ops_per_s - 100.0).abs() < 1e-9);
        // 198 samples kept, 1..=198 ns: 19701 ns in all.
        assert!((f.steady_ops_per_s - 198.0 * 1e9 / 19701.0).abs() < 1e-3);
    }

    #[test]
    fn no_samples_is_an_error() {
        assert!(figures(Vec::new(), 1, 1).is_err());
    }
}
