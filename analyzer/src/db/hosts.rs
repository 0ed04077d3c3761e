//! Per-address totals for the `hosts` table, summed as flows are added, and its rows in text
//! order. [`HostAggregator`] does both on a helper thread while the writer inserts flows (the
//! writer's thread is the bottleneck of a flood; the engine's core is idle by then).
//!
//! A spoofed flood brings a new address with nearly every flow, so this map takes two lookups
//! per flow and grows to millions of entries. The map holds only `address -> slot` (small
//! entries: cheap to probe and to move when the table grows) and the totals live in a `Vec`.
//! IPv4 and IPv6 are separate integer-keyed maps hashed by one seeded multiply-xorshift round
//! instead of SipHash over the enum. The seed is random per map, so addresses crafted to
//! collide cannot be precomputed; output order never depends on it (rows are sorted by text).

use super::text::{push_ip, sort_key};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// One address's totals over the flows of an input: sent/received as initiator or responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

    /// Count one flow for both its addresses (the responder sends the reverse direction).
    #[inline]
    pub fn add_flow(&mut self, e: &FlowEnds) {
        self.get(&e.src).add(e.fwd_packets, e.rev_packets, e.fwd_bytes, e.rev_bytes, 1, 0, e.first, e.last);
        self.get(&e.dst).add(e.rev_packets, e.fwd_packets, e.rev_bytes, e.fwd_bytes, 0, 1, e.first, e.last);
    }
}

/// What one flow adds to the totals of its two addresses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlowEnds {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub fwd_packets: i64,
    pub rev_packets: i64,
    pub fwd_bytes: i64,
    pub rev_bytes: i64,
    pub first: i64,
    pub last: i64,
}

/// One `hosts` row: the address text lives in [`SortedHosts::text`] at `text`.
#[derive(Debug)]
pub(crate) struct HostRow {
    key: u128,
    text: Range<usize>,
    pub agg: HostAgg,
}

/// The `hosts` rows in `ip` text order, as SQLite's BINARY collation orders the column: inserted
/// in this order they append to the table and to its primary-key index.
#[derive(Debug, Default)]
pub(crate) struct SortedHosts {
    text: String,
    pub rows: Vec<HostRow>,
}

impl SortedHosts {
    pub fn new(hosts: Hosts) -> SortedHosts {
        let mut text = String::with_capacity(hosts.len() * 16);
        let mut rows: Vec<HostRow> = Vec::with_capacity(hosts.len());
        for (ip, agg) in hosts.into_entries() {
            let at = text.len();
            push_ip(&mut text, &ip);
            let key = sort_key(text.as_bytes().get(at..).unwrap_or_default());
            rows.push(HostRow { key, text: at..text.len(), agg });
        }
        // Addresses are unique, so the order is total. The integer key decides almost every
        // comparison; only IPv6 texts sharing 16 bytes compare further.
        let bytes = text.as_bytes();
        let slice = |r: &Range<usize>| bytes.get(r.clone()).unwrap_or_default();
        rows.sort_unstable_by(|a, b| a.key.cmp(&b.key).then_with(|| slice(&a.text).cmp(slice(&b.text))));
        // Lay the texts out in row order, so the writer reads them sequentially (in first-seen
        // order every row's text was a cache miss on the writer's thread).
        let mut sorted = String::with_capacity(text.len());
        for r in &mut rows {
            let at = sorted.len();
            sorted.push_str(text.get(r.text.clone()).unwrap_or_default());
            r.text = at..sorted.len();
        }
        SortedHosts { text: sorted, rows }
    }

    /// The address text of a row.
    pub fn ip(&self, row: &HostRow) -> &str {
        self.text.get(row.text.clone()).unwrap_or_default()
    }
}

/// Flows per message to the helper thread.
const BATCH: usize = 1024;

enum Msg {
    Flows(Vec<FlowEnds>),
    /// All flows sent: sort and return the rows. A channel closed without it (the writer was
    /// dropped unfinished) ends the helper without that work.
    Finish,
}

/// Host totals computed off the writer's thread; inline when no thread can be started.
#[derive(Debug)]
pub(crate) struct HostAggregator {
    batch: Vec<FlowEnds>,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Inline(Hosts),
    Thread { tx: SyncSender<Msg>, handle: JoinHandle<Option<SortedHosts>> },
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Flows(b) => write!(f, "Flows({})", b.len()),
            Msg::Finish => f.write_str("Finish"),
        }
    }
}

fn helper(rx: Receiver<Msg>) -> Option<SortedHosts> {
    let mut hosts = Hosts::default();
    loop {
        match rx.recv().ok()? {
            Msg::Flows(batch) => batch.iter().for_each(|e| hosts.add_flow(e)),
            Msg::Finish => return Some(SortedHosts::new(hosts)),
        }
    }
}

impl HostAggregator {
    /// Start the helper thread (or aggregate inline if the system refuses one).
    pub fn start() -> HostAggregator {
        // A few batches in flight bound the memory when the writer outruns the helper.
        let (tx, rx) = sync_channel(4);
        let mode = match std::thread::Builder::new().name("netrec-hosts".into()).spawn(move || helper(rx)) {
            Ok(handle) => Mode::Thread { tx, handle },
            Err(_) => Mode::Inline(Hosts::default()),
        };
        HostAggregator { batch: Vec::with_capacity(BATCH), mode }
    }

    #[inline]
    pub fn add(&mut self, e: FlowEnds) {
        match &mut self.mode {
            Mode::Inline(hosts) => hosts.add_flow(&e),
            Mode::Thread { tx, .. } => {
                self.batch.push(e);
                if self.batch.len() == BATCH {
                    let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
                    // A send only fails if the helper died; `finish` reports that.
                    let _ = tx.send(Msg::Flows(full));
                }
            }
        }
    }

    /// No more flows: the helper starts sorting while the caller does other work.
    pub fn close(self) -> ClosedHosts {
        match self.mode {
            Mode::Inline(hosts) => ClosedHosts(Err(Some(SortedHosts::new(hosts)))),
            Mode::Thread { tx, handle } => {
                let sent = (self.batch.is_empty() || tx.send(Msg::Flows(self.batch)).is_ok())
                    && tx.send(Msg::Finish).is_ok();
                ClosedHosts(if sent { Ok(handle) } else { Err(None) })
            }
        }
    }
}

/// The rows being sorted (or already sorted, or lost with a dead helper).
#[derive(Debug)]
pub(crate) struct ClosedHosts(Result<JoinHandle<Option<SortedHosts>>, Option<SortedHosts>>);

impl ClosedHosts {
    /// The sorted rows; `None` if the helper thread died (it has no way to fail but a panic).
    pub fn wait(self) -> Option<SortedHosts> {
        match self.0 {
            Ok(handle) => handle.join().ok()?,
            Err(done) => done,
        }
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

    #[test]
    fn the_helper_thread_sorts_what_inline_aggregation_gives() {
        let ends = |n: u32| FlowEnds {
            src: IpAddr::V4(Ipv4Addr::from_bits(n.wrapping_mul(0x9E37_79B1) % 3001)),
            dst: if n.is_multiple_of(5) {
                IpAddr::V6(Ipv6Addr::from_bits(0x2001_0db8_u128 << 96 | u128::from(n % 7)))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, (n % 3) as u8))
            },
            fwd_packets: i64::from(n % 4),
            rev_packets: 1,
            fwd_bytes: i64::from(n),
            rev_bytes: 2,
            first: i64::from(n),
            last: i64::from(n) + 5,
        };
        // Several full batches and a partial one.
        let mut agg = HostAggregator::start();
        assert!(matches!(agg.mode, Mode::Thread { .. }));
        let mut inline = Hosts::default();
        for n in 0..(3 * BATCH as u32 + 77) {
            agg.add(ends(n));
            inline.add_flow(&ends(n));
        }
        let (got, want) = (agg.close().wait().unwrap(), SortedHosts::new(inline));
        let rows = |h: &SortedHosts| h.rows.iter().map(|r| (h.ip(r).to_string(), r.agg)).collect::<Vec<_>>();
        let got = rows(&got);
        assert_eq!(got, rows(&want));
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "not in text order");
        assert!(got.len() > 1000, "{}", got.len());
    }
}
