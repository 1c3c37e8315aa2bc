//! The fuzzer's random numbers: a small seeded generator (SplitMix64).
//!
//! Every operation gets a generator of its own, made from the run's seed, the stream (which
//! process, or the scheduler) and the operation's index, so that what an operation does is a
//! pure function of those three and of what its process has seen: a run replays exactly from
//! its seed.

/// A SplitMix64 generator.
pub struct Rng(u64);

/// One SplitMix64 output step applied to `x`: a good 64-bit mixing function.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Rng {
    /// The generator of operation `index` of `stream` in the run with `seed`.
    pub fn for_op(seed: u64, stream: u64, index: u64) -> Self {
        Self(mix(seed ^ mix(stream.wrapping_add(1) ^ mix(index))))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// A `usize` in `0..n` (0 when `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, or `None` if there are none.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.index(items.len())])
        }
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut roll = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if roll < u64::from(w) {
                return i;
            }
            roll -= u64::from(w);
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_numbers() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_op(7, 1, 99).next()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::for_op(7, 1, 99).next(), Rng::for_op(7, 2, 99).next());
        assert_ne!(Rng::for_op(7, 1, 99).next(), Rng::for_op(7, 1, 98).next());
        assert_ne!(Rng::for_op(7, 1, 99).next(), Rng::for_op(8, 1, 99).next());
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let mut rng = Rng::for_op(1, 0, 0);
        for _ in 0..1000 {
            assert_eq!(rng.weighted(&[0, 5, 0]), 1);
        }
    }
}
