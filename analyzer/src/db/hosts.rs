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
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Seek as _, SeekFrom, Write as _};
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Distinct addresses summed in memory before their sorted totals are spilled to a temporary
/// file, and merged back at the end: a spoofed flood brings an address per packet, and without a
/// bound 5M packets held 1.2 GB (about 200 MB per million addresses, while they are sorted).
const DEFAULT_RUN_ADDRS: usize = 1 << 20;
/// Environment override of that bound (tests force spills with a small one).
pub const RUN_ADDRS_ENV: &str = "NETREC_HOSTS_RUN_ADDRS";

fn run_addrs() -> usize {
    std::env::var(RUN_ADDRS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_RUN_ADDRS)
}

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

    /// The totals of two sets of flows (of the same address).
    fn merge(&mut self, o: &HostAgg) {
        self.add(
            o.packets_sent,
            o.packets_recv,
            o.bytes_sent,
            o.bytes_recv,
            o.flows_initiated,
            o.flows_received,
            o.first_ns,
            o.last_ns,
        );
    }

    fn to_bytes(self) -> [u8; 64] {
        let mut b = [0u8; 64];
        let fields = [
            self.packets_sent,
            self.packets_recv,
            self.bytes_sent,
            self.bytes_recv,
            self.flows_initiated,
            self.flows_received,
            self.first_ns,
            self.last_ns,
        ];
        for (c, v) in b.as_chunks_mut::<8>().0.iter_mut().zip(fields) {
            *c = v.to_le_bytes();
        }
        b
    }

    fn from_bytes(b: &[u8; 64]) -> HostAgg {
        let f: Vec<i64> = b.as_chunks::<8>().0.iter().map(|c| i64::from_le_bytes(*c)).collect();
        HostAgg {
            packets_sent: f[0],
            packets_recv: f[1],
            bytes_sent: f[2],
            bytes_recv: f[3],
            flows_initiated: f[4],
            flows_received: f[5],
            first_ns: f[6],
            last_ns: f[7],
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

/// Where sorted runs are spilled: one anonymous temporary file (one descriptor however many
/// runs), the runs one after the other. Per row: the text's length (u8), the text, and the eight
/// totals (i64, little-endian).
struct SpillFile {
    file: Arc<File>,
    /// End of the last complete run.
    end: u64,
}

impl SpillFile {
    fn create() -> io::Result<SpillFile> {
        Ok(SpillFile { file: Arc::new(tempfile::tempfile_in(spill_dir())?), end: 0 })
    }

    /// Appends a run; on failure the file is as it was (the next run overwrites the rest).
    fn append(&mut self, hosts: &SortedHosts) -> io::Result<Run> {
        let start = self.end;
        let mut w = BufWriter::with_capacity(1 << 16, &*self.file);
        w.seek(SeekFrom::Start(start))?;
        for r in &hosts.rows {
            let ip = hosts.ip(r).as_bytes();
            let len = u8::try_from(ip.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "an address text over 255 bytes"))?;
            w.write_all(&[len])?;
            w.write_all(ip)?;
            w.write_all(&r.agg.to_bytes())?;
        }
        let end = w.stream_position()?;
        w.flush()?;
        self.end = end;
        Ok(Run::File(RunReader { file: Arc::clone(&self.file), at: start, end, buf: Vec::new(), pos: 0 }))
    }
}

/// One spilled run, read back with positioned reads through a buffer of its own.
struct RunReader {
    file: Arc<File>,
    /// Next file offset to read, and the run's end.
    at: u64,
    end: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl RunReader {
    /// The next `n` bytes of the run; an error if the run ends first (it was cut).
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        use std::os::unix::fs::FileExt as _;
        if self.buf.len() - self.pos < n {
            self.buf.drain(..self.pos);
            self.pos = 0;
            let want = usize::try_from(self.end - self.at).unwrap_or(usize::MAX).min((1 << 16).max(n));
            let have = self.buf.len();
            self.buf.resize(have + want, 0);
            let mut got = 0;
            while got < want {
                match self.file.read_at(&mut self.buf[have + got..], self.at + got as u64) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.buf.truncate(have + got);
            self.at += got as u64;
            if self.buf.len() < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a spilled run of host totals was cut short",
                ));
            }
        }
        self.pos += n;
        Ok(&self.buf[self.pos - n..self.pos])
    }

    fn done(&self) -> bool {
        self.pos == self.buf.len() && self.at == self.end
    }
}

/// One sorted run being merged.
enum Run {
    /// Kept in memory: the last run, or one that could not be spilled.
    Memory(std::vec::IntoIter<HostRow>, String),
    File(RunReader),
}

impl Run {
    /// The next row of the run, its text in `text`.
    fn next(&mut self, text: &mut String) -> io::Result<Option<HostAgg>> {
        text.clear();
        match self {
            Run::Memory(rows, texts) => Ok(rows.next().map(|r| {
                text.push_str(texts.get(r.text).unwrap_or_default());
                r.agg
            })),
            Run::File(f) => {
                if f.done() {
                    return Ok(None);
                }
                let len = usize::from(f.take(1)?[0]);
                let ip = std::str::from_utf8(f.take(len)?)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                text.push_str(ip);
                let agg: &[u8; 64] = f.take(64)?.try_into().map_err(io::Error::other)?;
                Ok(Some(HostAgg::from_bytes(agg)))
            }
        }
    }
}

/// The sorted runs merged into rows in text order, the totals of an address found in several
/// runs summed.
pub(crate) struct MergedHosts {
    runs: Vec<Run>,
    /// The head of each run: its text and totals (None: the run is done).
    heads: Vec<Option<(String, HostAgg)>>,
    /// (text, run) of every head, smallest text first.
    heap: BinaryHeap<Reverse<(String, usize)>>,
}

impl std::fmt::Debug for MergedHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MergedHosts({} runs)", self.runs.len())
    }
}

impl MergedHosts {
    fn new(mut runs: Vec<Run>) -> io::Result<MergedHosts> {
        let mut heap = BinaryHeap::new();
        let mut heads = Vec::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            let mut text = String::new();
            let agg = run.next(&mut text)?;
            if agg.is_some() {
                heap.push(Reverse((text.clone(), i)));
            }
            heads.push(agg.map(|a| (text, a)));
        }
        Ok(MergedHosts { runs, heads, heap })
    }

    /// Takes the head of run `i` and reads its next row.
    fn advance(&mut self, i: usize) -> io::Result<(String, HostAgg)> {
        let mut text = String::new();
        let next = self.runs[i].next(&mut text)?;
        if next.is_some() {
            self.heap.push(Reverse((text.clone(), i)));
        }
        let head = std::mem::replace(&mut self.heads[i], next.map(|a| (text, a)));
        head.ok_or_else(|| io::Error::other("a merged run lost its head"))
    }

    /// Runs read back from the temporary file (the others were kept in memory).
    #[cfg(test)]
    fn file_runs(&self) -> usize {
        self.runs.iter().filter(|r| matches!(r, Run::File(_))).count()
    }

    /// The next address and its totals over every run.
    pub fn next_row(&mut self) -> io::Result<Option<(String, HostAgg)>> {
        let Some(Reverse((_, i))) = self.heap.pop() else { return Ok(None) };
        let (text, mut agg) = self.advance(i)?;
        while let Some(Reverse((t, j))) = self.heap.peek() {
            if *t != text {
                break;
            }
            let j = *j;
            self.heap.pop();
            agg.merge(&self.advance(j)?.1);
        }
        Ok(Some((text, agg)))
    }
}

/// The `hosts` rows in text order: sorted in memory, or merged from runs spilled past
/// [`RUN_ADDRS_ENV`] addresses.
#[derive(Debug)]
pub(crate) enum HostRows {
    Sorted(SortedHosts),
    Merged(MergedHosts),
}

/// Sums flows into host totals, spilling a sorted run whenever `limit` addresses are held.
struct Aggregation {
    hosts: Hosts,
    limit: usize,
    runs: Vec<Run>,
    spill: Option<SpillFile>,
}

impl Aggregation {
    fn new(limit: usize) -> Aggregation {
        Aggregation { hosts: Hosts::default(), limit, runs: Vec::new(), spill: None }
    }

    fn add_flow(&mut self, e: &FlowEnds) {
        self.hosts.add_flow(e);
        if self.hosts.len() >= self.limit {
            let sorted = SortedHosts::new(std::mem::take(&mut self.hosts));
            let spilled = match &mut self.spill {
                Some(f) => f.append(&sorted),
                None => SpillFile::create().and_then(|mut f| {
                    let run = f.append(&sorted);
                    self.spill = Some(f);
                    run
                }),
            };
            // No temporary space: the run stays in memory (the totals are kept, the bound is
            // not; the next run tries the file again).
            self.runs.push(spilled.unwrap_or_else(|_| Run::Memory(sorted.rows.into_iter(), sorted.text)));
        }
    }

    fn finish(mut self) -> io::Result<HostRows> {
        let last = SortedHosts::new(self.hosts);
        if self.runs.is_empty() {
            return Ok(HostRows::Sorted(last));
        }
        self.runs.push(Run::Memory(last.rows.into_iter(), last.text));
        Ok(HostRows::Merged(MergedHosts::new(self.runs)?))
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

enum Mode {
    Inline(Aggregation),
    Thread { tx: SyncSender<Msg>, handle: JoinHandle<Option<io::Result<HostRows>>> },
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Inline(_) => "Inline",
            Mode::Thread { .. } => "Thread",
        })
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Flows(b) => write!(f, "Flows({})", b.len()),
            Msg::Finish => f.write_str("Finish"),
        }
    }
}

fn helper(rx: Receiver<Msg>, limit: usize) -> Option<io::Result<HostRows>> {
    let mut agg = Aggregation::new(limit);
    loop {
        match rx.recv().ok()? {
            Msg::Flows(batch) => batch.iter().for_each(|e| agg.add_flow(e)),
            Msg::Finish => return Some(agg.finish()),
        }
    }
}

impl HostAggregator {
    /// Start the helper thread (or aggregate inline if the system refuses one).
    pub fn start() -> HostAggregator {
        HostAggregator::with_limit(run_addrs())
    }

    /// [`HostAggregator::start`] spilling a run every `limit` addresses.
    fn with_limit(limit: usize) -> HostAggregator {
        // A few batches in flight bound the memory when the writer outruns the helper.
        let (tx, rx) = sync_channel(4);
        let spawned =
            std::thread::Builder::new().name("netrec-hosts".into()).spawn(move || helper(rx, limit));
        let mode = match spawned {
            Ok(handle) => Mode::Thread { tx, handle },
            Err(_) => Mode::Inline(Aggregation::new(limit)),
        };
        HostAggregator { batch: Vec::with_capacity(BATCH), mode }
    }

    #[inline]
    pub fn add(&mut self, e: FlowEnds) {
        match &mut self.mode {
            Mode::Inline(agg) => agg.add_flow(&e),
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
            Mode::Inline(agg) => ClosedHosts(Err(Some(agg.finish()))),
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
pub(crate) struct ClosedHosts(Result<JoinHandle<Option<io::Result<HostRows>>>, Option<io::Result<HostRows>>>);

impl ClosedHosts {
    /// The sorted rows; `Worker` if the helper thread died (a panic), `Spill` if a spilled run
    /// could not be read back.
    pub fn wait(self) -> Result<HostRows, super::DbError> {
        let done = match self.0 {
            Ok(handle) => handle.join().ok().flatten(),
            Err(done) => done,
        };
        done.ok_or(super::DbError::Worker { what: "host totals" })?
            .map_err(|source| super::DbError::Spill { dir: spill_dir(), source })
    }
}

/// Where runs are spilled (named in errors).
pub(crate) fn spill_dir() -> PathBuf {
    std::env::temp_dir()
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

    fn all_rows(rows: HostRows) -> Vec<(String, HostAgg)> {
        match rows {
            HostRows::Sorted(h) => h.rows.iter().map(|r| (h.ip(r).to_string(), r.agg)).collect(),
            HostRows::Merged(mut m) => std::iter::from_fn(|| m.next_row().unwrap()).collect(),
        }
    }

    /// Addresses that recur across runs, IPv4 and IPv6 texts sharing their first 16 bytes.
    fn spread(n: u32) -> FlowEnds {
        FlowEnds {
            src: match n % 4 {
                0 => IpAddr::V6(Ipv6Addr::from_bits(0x2001_0db8_aaaa_bbbb_u128 << 64 | u128::from(n % 97))),
                _ => IpAddr::V4(Ipv4Addr::from_bits(n.wrapping_mul(0x9E37_79B1) % 1009)),
            },
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, (n % 3) as u8, (n % 11) as u8)),
            fwd_packets: i64::from(n % 5),
            rev_packets: i64::from(n % 2),
            fwd_bytes: i64::from(n) * 3,
            rev_bytes: 1,
            first: i64::from(n % 1000),
            last: i64::from(n % 1000) + i64::from(n % 7),
        }
    }

    /// Spilled runs merge into the rows of one in-memory aggregation, with the helper thread
    /// and inline, whatever the run size.
    #[test]
    fn spilled_runs_merge_to_the_in_memory_rows() {
        let mut one = Aggregation::new(usize::MAX);
        for n in 0..20_000 {
            one.add_flow(&spread(n));
        }
        let want = all_rows(one.finish().unwrap());
        assert!(want.len() > 1000, "{}", want.len());
        for limit in [1, 2, 100, 1000, want.len() - 1] {
            let mut agg = HostAggregator::with_limit(limit);
            let mut inline =
                HostAggregator { batch: Vec::new(), mode: Mode::Inline(Aggregation::new(limit)) };
            for n in 0..20_000 {
                agg.add(spread(n));
                inline.add(spread(n));
            }
            for (what, a) in [("thread", agg), ("inline", inline)] {
                let rows = a.close().wait().unwrap();
                match &rows {
                    HostRows::Merged(m) => assert_eq!(
                        m.file_runs(),
                        m.runs.len() - 1,
                        "{what}, runs of {limit}: every full run spilled to the file"
                    ),
                    HostRows::Sorted(_) => panic!("{what}, runs of {limit}: not spilled"),
                }
                assert_eq!(all_rows(rows), want, "{what}, runs of {limit}");
            }
        }
    }

    /// Runs kept in memory (no temporary space) merge like spilled ones.
    #[test]
    fn memory_and_file_runs_merge_alike() {
        let (mut a, mut b, mut all) = (Hosts::default(), Hosts::default(), Hosts::default());
        for n in 0..5000 {
            let half = if n % 3 == 0 { &mut a } else { &mut b };
            half.add_flow(&spread(n));
            all.add_flow(&spread(n));
        }
        let (a, b) = (SortedHosts::new(a), SortedHosts::new(b));
        let mut f = SpillFile::create().unwrap();
        let file = f.append(&a).unwrap();
        let memory = Run::Memory(b.rows.into_iter(), b.text);
        let merged = all_rows(HostRows::Merged(MergedHosts::new(vec![file, memory]).unwrap()));
        assert_eq!(merged, all_rows(HostRows::Sorted(SortedHosts::new(all))));
    }

    /// A run whose file was cut (or that claims more bytes than it has) is an error, not a
    /// shorter run.
    #[test]
    fn a_cut_spilled_run_is_an_error() {
        let mut hosts = Hosts::default();
        for n in 0..300 {
            hosts.add_flow(&spread(n));
        }
        let sorted = SortedHosts::new(hosts);
        let mut f = SpillFile::create().unwrap();
        let Run::File(mut r) = f.append(&sorted).unwrap() else { panic!("not a file run") };
        r.end += 10;
        let mut run = Run::File(r);
        let mut text = String::new();
        let mut rows = 0;
        let err = loop {
            match run.next(&mut text) {
                Ok(Some(_)) => rows += 1,
                Ok(None) => panic!("read {rows} rows and a clean end"),
                Err(e) => break e,
            }
        };
        assert_eq!(rows, sorted.rows.len());
        assert!(err.to_string().contains("cut short"), "{err}");
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
        let got = all_rows(agg.close().wait().unwrap());
        assert_eq!(got, all_rows(HostRows::Sorted(SortedHosts::new(inline))));
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "not in text order");
        assert!(got.len() > 1000, "{}", got.len());
    }
}
