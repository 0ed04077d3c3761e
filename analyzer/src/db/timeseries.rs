//! Per-minute, per-protocol packet and byte counts, aggregated in memory.
//!
//! `add` runs once per packet, so it does no allocation and no map lookup in the common case:
//! counts for the current minute live in a flat array indexed by protocol, and are folded into
//! the ordered map only when the minute changes (a packet list touching few protocols flushes
//! only those).

use netrec_format::model::PROTO_ARP;
use std::collections::BTreeMap;

const NS_PER_MINUTE: u64 = 60 * 1_000_000_000;
/// Slots: 0..=255 IP protocols, 256 ARP.
const SLOTS: usize = 257;
const ARP_SLOT: usize = 256;

#[derive(Debug)]
pub struct TimeSeries {
    /// Start of the minute the array holds (unix seconds), `u64::MAX` before the first packet.
    cur_minute: u64,
    cur: Box<[(u64, u64); SLOTS]>,
    touched: Vec<u16>,
    /// (minute unix seconds, protocol) -> (packets, bytes).
    done: BTreeMap<(u64, u16), (u64, u64)>,
}

impl Default for TimeSeries {
    fn default() -> Self {
        TimeSeries {
            cur_minute: u64::MAX,
            cur: Box::new([(0, 0); SLOTS]),
            touched: Vec::with_capacity(SLOTS),
            done: BTreeMap::new(),
        }
    }
}

impl TimeSeries {
    #[inline]
    pub fn add(&mut self, ts_ns: u64, proto: u16, wire_len: u32) {
        let minute = ts_ns / NS_PER_MINUTE * 60;
        let slot = match proto {
            0..=255 => proto as usize,
            PROTO_ARP => ARP_SLOT,
            // Not produced by the decoder; keep it correct rather than fast.
            _ => {
                let e = self.done.entry((minute, proto)).or_default();
                e.0 += 1;
                e.1 += u64::from(wire_len);
                return;
            }
        };
        if minute != self.cur_minute {
            self.flush();
            self.cur_minute = minute;
        }
        let c = &mut self.cur[slot];
        if c.0 == 0 {
            self.touched.push(slot as u16);
        }
        c.0 += 1;
        c.1 += u64::from(wire_len);
    }

    fn flush(&mut self) {
        for &slot in &self.touched {
            let (p, b) = std::mem::take(&mut self.cur[slot as usize]);
            let proto = if slot as usize == ARP_SLOT { PROTO_ARP } else { slot };
            let e = self.done.entry((self.cur_minute, proto)).or_default();
            e.0 += p;
            e.1 += b;
        }
        self.touched.clear();
    }

    /// Add every count of `other` (in any order: buckets are sums).
    pub(crate) fn merge(&mut self, other: TimeSeries) {
        for (k, (p, b)) in other.into_rows() {
            let e = self.done.entry(k).or_default();
            e.0 += p;
            e.1 += b;
        }
    }

    /// All buckets, ordered by (minute, protocol number).
    pub(crate) fn into_rows(mut self) -> BTreeMap<(u64, u16), (u64, u64)> {
        self.flush();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn buckets_by_minute_and_protocol() {
        let mut t = TimeSeries::default();
        t.add(60 * S + 5, 6, 100);
        t.add(61 * S, 17, 50);
        t.add(119 * S, 6, 10);
        t.add(120 * S, 6, 1);
        t.add(61 * S, 6, 1000); // out of order: back to minute 60
        t.add(130 * S, PROTO_ARP, 42);
        t.add(130 * S, 0, 7);
        let rows: Vec<_> = t.into_rows().into_iter().collect();
        assert_eq!(
            rows,
            vec![
                ((60, 6), (3, 1110)),
                ((60, 17), (1, 50)),
                ((120, 0), (1, 7)),
                ((120, 6), (1, 1)),
                ((120, PROTO_ARP), (1, 42)),
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The fast path agrees with a plain map for any packet sequence.
        #[test]
        fn matches_naive_aggregation(pkts in proptest::collection::vec(
            (0u64..600 * S, prop_oneof![Just(0u16), Just(1), Just(6), Just(17), Just(PROTO_ARP), Just(999)], 0u32..2000),
            0..200)) {
            let mut t = TimeSeries::default();
            let mut naive: BTreeMap<(u64, u16), (u64, u64)> = BTreeMap::new();
            for &(ts, p, len) in &pkts {
                t.add(ts, p, len);
                let e = naive.entry((ts / S / 60 * 60, p)).or_default();
                e.0 += 1;
                e.1 += u64::from(len);
            }
            prop_assert_eq!(t.into_rows(), naive);
        }

        /// Splitting a packet sequence anywhere and merging the halves changes nothing.
        #[test]
        fn merge_equals_one_series(pkts in proptest::collection::vec(
            (0u64..600 * S, prop_oneof![Just(0u16), Just(6), Just(17), Just(PROTO_ARP), Just(999)], 0u32..2000),
            0..200), cut in 0usize..200) {
            let cut = cut.min(pkts.len());
            let (mut whole, mut a, mut b) = (TimeSeries::default(), TimeSeries::default(), TimeSeries::default());
            for (n, &(ts, p, len)) in pkts.iter().enumerate() {
                whole.add(ts, p, len);
                if n < cut { a.add(ts, p, len) } else { b.add(ts, p, len) }
            }
            a.merge(b);
            prop_assert_eq!(a.into_rows(), whole.into_rows());
        }
    }
}
