//! Sorting the flow records of `netrec flows` in bounded memory.
//!
//! Up to `limit` records are kept and sorted in memory (every capture of the benchmarks fits: a
//! million flows); beyond that each full buffer is sorted and spilled to a temporary segment file
//! (flow rows, zstd), and the runs are merged. The order is exactly the in-memory stable sort's:
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
use std::io::{BufReader, BufWriter};
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
    runs: Vec<PathBuf>,
    dir: Option<PathBuf>,
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
            runs: Vec::new(),
            dir: None,
            total: 0,
            error: None,
        }
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
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                let d = std::env::temp_dir().join(format!("netrec-flows-{}", std::process::id()));
                std::fs::create_dir_all(&d).with_context(|| format!("{}: cannot create", d.display()))?;
                self.dir.insert(d).clone()
            }
        };
        let path = dir.join(format!("run-{}.nrseg", self.runs.len()));
        let file = File::create(&path).with_context(|| format!("{}: cannot create", path.display()))?;
        let info = SegmentHeaderInfo { seq: self.runs.len() as u64, prev_sha256: [0; 32], created_ns: 0 };
        // Small blocks: the merge holds one decoded block per run.
        let cfg = WriterConfig {
            max_block_bytes: 256 << 10,
            max_block_age_ns: 0,
            zstd_level: 1,
            header_delta: false,
        };
        let mut w = SegmentWriter::new(BufWriter::new(file), info, cfg)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        for f in self.buf.drain(..) {
            w.push_flow(&f).with_context(|| format!("{}: cannot write", path.display()))?;
        }
        w.finish().with_context(|| format!("{}: cannot write", path.display()))?;
        self.runs.push(path);
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
            return Ok(Sorted { merge: None, memory: memory.into(), _dir: DirGuard(self.dir.take()) });
        }
        let mut runs = Vec::with_capacity(self.runs.len() + 1);
        for path in &self.runs {
            let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
            let rd = SegmentReader::new(BufReader::new(file), Recovery::Strict)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            runs.push(Run { pending: VecDeque::new(), reader: Some((path.clone(), rd)) });
        }
        runs.push(Run { pending: memory.into(), reader: None });
        let mut merge = Merge { sort: self.sort, runs, heap: BinaryHeap::new() };
        for i in 0..merge.runs.len() {
            merge.refill(i)?;
        }
        Ok(Sorted { merge: Some(merge), memory: VecDeque::new(), _dir: DirGuard(self.dir.take()) })
    }
}

/// One sorted run: decoded records not yet merged, and the file they come from (None: memory).
struct Run {
    pending: VecDeque<FlowRecord>,
    reader: Option<(PathBuf, SegmentReader<BufReader<File>>)>,
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
            let Some((path, rd)) = run.reader.as_mut() else { break };
            match rd.next_block().with_context(|| format!("{}: cannot read", path.display()))? {
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

/// Removes the spill directory when the sorted records have been read (or on error).
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The sorted records: from memory, or merged from the spilled runs.
pub struct Sorted {
    merge: Option<Merge>,
    memory: VecDeque<FlowRecord>,
    _dir: DirGuard,
}

impl Iterator for Sorted {
    type Item = anyhow::Result<FlowRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.merge {
            Some(m) => m.next(),
            None => self.memory.pop_front().map(Ok),
        }
    }
}
