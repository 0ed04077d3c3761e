//! Sorting the flow records of `netrec flows` in bounded memory.
//!
//! Up to `limit` records are kept and sorted in memory (every capture of the benchmarks fits: a
//! million flows); beyond that each full buffer is sorted and spilled to a temporary segment file
//! (flow rows, zstd), and the runs are merged. The files are anonymous (unlinked from the
//! start, in `$TMPDIR`): the system frees them when the process ends, however it ends (an
//! interrupted `flows` leaves nothing behind). The order is exactly the in-memory stable sort's:
//! runs are consecutive slices of the emission order, each sorted stably, and the merge takes equal
//! keys from the earlier run first.

use super::flows::FlowSort;
use anyhow::Context as _;
use netrec_format::FlowRecord;
use netrec_format::segment::{
    BlockBody, Recovery, SegmentHeaderInfo, SegmentReader, SegmentWriter, WriterConfig,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek as _};
use std::path::PathBuf;

/// Records kept in memory before a run is spilled: ~260 MB of records (plus the flow table).
const DEFAULT_LIMIT: usize = 1 << 20;
/// Environment override of the limit (tests make runs of a few records; users with little memory
/// can lower it).
pub const LIMIT_ENV: &str = "NETREC_FLOWS_SORT_RECORDS";

/// Ascending sort key: smaller comes first.
fn key(sort: FlowSort, f: &FlowRecord) -> u64 {
    match sort {
        FlowSort::Start => f.first_ts.nanos(),
        FlowSort::Bytes => u64::MAX - (f.fwd.bytes + f.rev.bytes),
        FlowSort::Packets => u64::MAX - (f.fwd.packets + f.rev.packets),
    }
}

/// Collects flow records (an `EngineSink` cannot fail: the first spill error is kept and returned
/// by [`FlowSorter::finish`]).
pub struct FlowSorter {
    sort: FlowSort,
    limit: usize,
    buf: Vec<FlowRecord>,
    /// Where the runs are spilled (`$TMPDIR`).
    tmp: PathBuf,
    /// The spilled runs, each an anonymous file positioned at its start.
    runs: Vec<File>,
    total: usize,
    error: Option<anyhow::Error>,
}

impl FlowSorter {
    pub fn new(sort: FlowSort) -> FlowSorter {
        let limit = std::env::var(LIMIT_ENV).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0);
        FlowSorter {
            sort,
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            buf: Vec::new(),
            tmp: std::env::temp_dir(),
            runs: Vec::new(),
            total: 0,
            error: None,
        }
    }

    /// A sorter spilling every `limit` records.
    #[cfg(test)]
    pub fn with_limit(sort: FlowSort, limit: usize) -> FlowSorter {
        FlowSorter { limit, ..FlowSorter::new(sort) }
    }

    pub fn push(&mut self, f: FlowRecord) {
        self.total += 1;
        if self.error.is_some() {
            return;
        }
        self.buf.push(f);
        if self.buf.len() >= self.limit
            && let Err(e) = self.spill()
        {
            self.error = Some(e);
            self.buf = Vec::new();
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.total
    }

    fn sort_buf(&mut self) {
        let sort = self.sort;
        // Stable: equal keys keep the engine's deterministic emission order.
        self.buf.sort_by_key(|f| key(sort, f));
    }

    fn spill(&mut self) -> anyhow::Result<()> {
        self.sort_buf();
        let tmp = &self.tmp;
        let what = || format!("{}: cannot write a temporary file (flows sorted past memory)", tmp.display());
        let file = tempfile::tempfile_in(tmp).with_context(what)?;
        let info = SegmentHeaderInfo { seq: self.runs.len() as u64, prev_sha256: [0; 32], created_ns: 0 };
        // Small blocks: the merge holds one decoded block per run.
        let cfg = WriterConfig {
            max_block_bytes: 256 << 10,
            max_block_age_ns: 0,
            zstd_level: 1,
            header_delta: false,
        };
        let mut w = SegmentWriter::new(BufWriter::new(file), info, cfg).with_context(what)?;
        for f in self.buf.drain(..) {
            w.push_flow(&f).with_context(what)?;
        }
        w.finish().with_context(what)?;
        let mut file = w.into_inner().into_inner().map_err(|e| e.into_error()).with_context(what)?;
        file.rewind().with_context(what)?;
        self.runs.push(file);
        Ok(())
    }

    /// Every record pushed, in sort order.
    pub fn finish(mut self) -> anyhow::Result<Sorted> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.sort_buf();
        let memory = std::mem::take(&mut self.buf);
        if self.runs.is_empty() {
            return Ok(Sorted { merge: None, memory: memory.into_iter() });
        }
        let mut runs = Vec::with_capacity(self.runs.len() + 1);
        for (n, file) in self.runs.drain(..).enumerate() {
            let name = format!("sorted run {n} (temporary file in {})", self.tmp.display());
            let rd = SegmentReader::new(BufReader::new(file), Recovery::Strict)
                .with_context(|| format!("{name}: cannot read"))?;
            runs.push(Run { pending: VecDeque::new(), reader: Some((name, rd)) });
        }
        runs.push(Run { pending: memory.into(), reader: None });
        let mut merge = Merge { sort: self.sort, runs, heap: BinaryHeap::new() };
        for i in 0..merge.runs.len() {
            merge.refill(i)?;
        }
        Ok(Sorted { merge: Some(merge), memory: Vec::new().into_iter() })
    }
}

/// One sorted run: decoded records not yet merged, and the file they come from (None: memory).
struct Run {
    pending: VecDeque<FlowRecord>,
    /// The run's name for errors, and its reader.
    reader: Option<(String, SegmentReader<BufReader<File>>)>,
}

struct Merge {
    sort: FlowSort,
    runs: Vec<Run>,
    /// (key, run) of each run's next record; equal keys: the earlier run first.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Merge {
    /// Makes run `i`'s next record available (decoding its next block if needed) and queues it.
    fn refill(&mut self, i: usize) -> anyhow::Result<()> {
        let run = &mut self.runs[i];
        while run.pending.is_empty() {
            let Some((name, rd)) = run.reader.as_mut() else { break };
            match rd.next_block().with_context(|| format!("{name}: cannot read"))? {
                Some(b) => {
                    if let BlockBody::Flows(v) = b.body {
                        run.pending.extend(v);
                    }
                }
                None => run.reader = None,
            }
        }
        if let Some(f) = run.pending.front() {
            self.heap.push(Reverse((key(self.sort, f), i)));
        }
        Ok(())
    }

    fn next(&mut self) -> Option<anyhow::Result<FlowRecord>> {
        let Reverse((_, i)) = self.heap.pop()?;
        let f = self.runs[i].pending.pop_front()?;
        Some(self.refill(i).map(|()| f))
    }
}

/// The sorted records: from memory, or merged from the spilled runs.
pub struct Sorted {
    merge: Option<Merge>,
    memory: std::vec::IntoIter<FlowRecord>,
}

impl Sorted {
    /// The records not yet taken, when they are all in memory (nothing was spilled): output
    /// can then be formatted in parallel from the slice.
    pub fn in_memory(&self) -> Option<&[FlowRecord]> {
        self.merge.is_none().then_some(self.memory.as_slice())
    }
}

impl Iterator for Sorted {
    type Item = anyhow::Result<FlowRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.merge {
            Some(m) => m.next(),
            None => self.memory.next().map(Ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_format::model::{DirStats, FlowEnd, TcpState};
    use netrec_format::{FlowKey, Ts};
    use std::net::{IpAddr, Ipv4Addr};

    fn rec(n: u64) -> FlowRecord {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n as u32));
        let key =
            FlowKey { proto: 6, src_ip: ip, src_port: 1, dst_ip: ip, dst_port: 2, vlan: 0, tunnel_id: 0 };
        // Start times out of emission order, with ties (the sort is stable).
        let t = Ts((n * 7919) % 50);
        FlowRecord {
            key,
            first_ts: t,
            last_ts: t,
            fwd: DirStats { packets: n, ..DirStats::default() },
            rev: DirStats::default(),
            tcp_state: TcpState::None,
            rtt_server_ns: None,
            rtt_client_ns: None,
            end: FlowEnd::Open,
            tunnel: None,
            anomalies: 0,
        }
    }

    /// Runs spilled past the limit are anonymous files: nothing named exists in the directory
    /// even while they are in use, so a killed process leaves nothing behind; the merge equals
    /// the in-memory stable sort.
    #[test]
    fn spilled_runs_are_anonymous_and_merge_to_the_stable_sort() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FlowSorter::new(FlowSort::Start);
        (s.limit, s.tmp) = (10, dir.path().to_path_buf());
        let all: Vec<FlowRecord> = (0..95).map(rec).collect();
        all.iter().cloned().for_each(|f| s.push(f));
        assert_eq!(s.runs.len(), 9);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "named spill files");
        let got: Vec<FlowRecord> = s.finish().unwrap().map(Result::unwrap).collect();
        let mut want = all;
        want.sort_by_key(|f| f.first_ts);
        assert_eq!(got, want);
    }
}
