//! A fixed-bucket histogram updated with atomics: no lock and no allocation
//! per observation, so the writer's committer and every HSM call can record
//! into one while the server's `/metrics` reads it. The library keeps the
//! figures; the server encodes them as Prometheus histograms.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds for record counts per durable batch (1 .. 4096).
pub const BATCH_RECORD_BOUNDS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Upper bounds in seconds for operation latencies (10 µs .. ~5 s, ×2).
pub const LATENCY_SECONDS_BOUNDS: &[f64] = &[
    0.000_01, 0.000_02, 0.000_04, 0.000_08, 0.000_16, 0.000_32, 0.000_64, 0.001_28, 0.002_56,
    0.005_12, 0.010_24, 0.020_48, 0.040_96, 0.081_92, 0.163_84, 0.327_68, 0.655_36, 1.310_72,
    2.621_44, 5.242_88,
];

/// Counts of observations per bucket (`value <= bound`, plus one overflow
/// bucket), their number and their sum.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    /// The sum's `f64` bits.
    sum_bits: AtomicU64,
}

/// A histogram read at one moment. `buckets` holds `(upper bound, count in
/// that bucket)`, not cumulative; the last bound is `f64::MAX` (+Inf).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub sum: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

impl AtomicHistogram {
    /// `bounds` must be increasing.
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = AtomicHistogram::new(BATCH_RECORD_BOUNDS);
        for v in [1.0, 2.0, 3.0, 4096.0, 4097.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        let count_at = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).map(|(_, n)| *n);
        assert_eq!(count_at(1.0), Some(1));
        assert_eq!(count_at(2.0), Some(1));
        assert_eq!(count_at(4.0), Some(1), "3 is <= 4");
        assert_eq!(count_at(4096.0), Some(1));
        assert_eq!(count_at(f64::MAX), Some(1), "beyond the last bound: +Inf");
        assert_eq!(s.count, 5);
        assert_eq!(s.sum, 1.0 + 2.0 + 3.0 + 4096.0 + 4097.0);
        assert_eq!(s.buckets.len(), BATCH_RECORD_BOUNDS.len() + 1);
    }

    proptest! {
        #[test]
        fn every_observation_is_counted_once(values in proptest::collection::vec(0.0f64..10.0, 0..200)) {
            let h = AtomicHistogram::new(LATENCY_SECONDS_BOUNDS);
            for v in &values {
                h.observe(*v);
            }
            let s = h.snapshot();
            prop_assert_eq!(s.count, values.len() as u64);
            for (i, (bound, n)) in s.buckets.iter().enumerate() {
                let lower = if i == 0 { f64::NEG_INFINITY } else { s.buckets[i - 1].0 };
                let expected = values.iter().filter(|v| **v > lower && **v <= *bound).count() as u64;
                prop_assert_eq!(*n, expected);
            }
            let sum: f64 = values.iter().sum();
            prop_assert!((s.sum - sum).abs() <= 1e-9 * values.len().max(1) as f64);
        }
    }
}
