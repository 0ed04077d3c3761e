//! Per-address totals for the `hosts` table, summed as flows are added.
//!
//! A spoofed flood brings a new address with nearly every flow, so this map takes two lookups
//! per flow and grows to millions of entries. The map holds only `address -> slot` (small
//! entries: cheap to probe and to move when the table grows) and the totals live in a `Vec`.
//! IPv4 and IPv6 are separate integer-keyed maps hashed by one seeded multiply-xorshift round
//! instead of SipHash over the enum. The seed is random per map, so addresses crafted to
//! collide cannot be precomputed; output order never depends on it (rows are sorted by text).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

/// One address's totals over the flows of an input: sent/received as initiator or responder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostAgg {
    pub packets_sent: i64,
    pub packets_recv: i64,
    pub bytes_sent: i64,
    pub bytes_recv: i64,
    pub flows_initiated: i64,
    pub flows_received: i64,
    pub first_ns: i64,
    pub last_ns: i64,
}

impl HostAgg {
    fn new() -> HostAgg {
        HostAgg {
            packets_sent: 0,
            packets_recv: 0,
            bytes_sent: 0,
            bytes_recv: 0,
            flows_initiated: 0,
            flows_received: 0,
            first_ns: i64::MAX,
            last_ns: i64::MIN,
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn add(&mut self, ps: i64, pr: i64, bs: i64, br: i64, fi: i64, fr: i64, first: i64, last: i64) {
        self.packets_sent = self.packets_sent.saturating_add(ps);
        self.packets_recv = self.packets_recv.saturating_add(pr);
        self.bytes_sent = self.bytes_sent.saturating_add(bs);
        self.bytes_recv = self.bytes_recv.saturating_add(br);
        self.flows_initiated += fi;
        self.flows_received += fr;
        self.first_ns = self.first_ns.min(first);
        self.last_ns = self.last_ns.max(last);
    }
}

/// Seeded hasher for integer keys: the key words are xored into the state and each mixed by
/// splitmix64's finalizer (every input bit reaches the low bits hashbrown picks buckets with).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IntHasher(u64);

impl IntHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        let mut h = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = h ^ (h >> 31);
    }
}

impl Hasher for IntHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by u32/u128 keys; correct for any other use.
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`IntHasher`]s from a seed drawn once from the standard library's random keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seeded(u64);

impl Seeded {
    fn random() -> Seeded {
        Seeded(std::collections::hash_map::RandomState::new().hash_one(0x6e72_6563u32))
    }
}

impl BuildHasher for Seeded {
    type Hasher = IntHasher;
    #[inline]
    fn build_hasher(&self) -> IntHasher {
        IntHasher(self.0)
    }
}

/// Address -> slot maps, and the slots: each address with its totals, in first-seen order
/// (read back sequentially, never by iterating the maps).
#[derive(Debug)]
pub(crate) struct Hosts {
    v4: HashMap<u32, u32, Seeded>,
    v6: HashMap<u128, u32, Seeded>,
    aggs: Vec<(IpAddr, HostAgg)>,
}

impl Default for Hosts {
    fn default() -> Hosts {
        let seed = Seeded::random();
        Hosts { v4: HashMap::with_hasher(seed), v6: HashMap::with_hasher(seed), aggs: Vec::new() }
    }
}

impl Hosts {
    /// The totals of `ip`, zero when first seen.
    #[inline]
    pub fn get(&mut self, ip: &IpAddr) -> &mut HostAgg {
        // Slots are handed out in order (4G addresses would need 256 GB of totals first).
        let next = self.aggs.len() as u32;
        let slot = match ip {
            IpAddr::V4(a) => *self.v4.entry(a.to_bits()).or_insert(next),
            IpAddr::V6(a) => *self.v6.entry(a.to_bits()).or_insert(next),
        };
        if slot == next {
            self.aggs.push((*ip, HostAgg::new()));
        }
        // In bounds: every slot in the maps was `aggs.len()` when its total was pushed.
        &mut self.aggs[slot as usize].1
    }

    pub fn len(&self) -> usize {
        self.aggs.len()
    }

    /// Every address with its totals, in first-seen order.
    pub fn into_entries(self) -> impl Iterator<Item = (IpAddr, HostAgg)> {
        self.aggs.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn equals_a_plain_map() {
        let mut hosts = Hosts::default();
        let mut plain: BTreeMap<IpAddr, i64> = BTreeMap::new();
        for n in 0..5000u32 {
            // v4 and v6 with the same bits are different hosts.
            let ip = match n % 3 {
                0 => IpAddr::V4(Ipv4Addr::from_bits(n % 1700)),
                1 => IpAddr::V6(Ipv6Addr::from_bits(u128::from(n % 1700))),
                _ => IpAddr::V6(Ipv6Addr::from_bits(u128::from(n % 900) << 100)),
            };
            hosts.get(&ip).add(1, 0, i64::from(n), 0, 1, 0, i64::from(n), i64::from(n));
            *plain.entry(ip).or_default() += i64::from(n);
        }
        assert_eq!(hosts.len(), plain.len());
        let got: BTreeMap<IpAddr, i64> = hosts.into_entries().map(|(ip, h)| (ip, h.bytes_sent)).collect();
        assert_eq!(got, plain);
    }
}
