//! Whole-file and chain verification (SPEC.md §7).

use super::error::SegmentError;
use super::header::SegmentHeader;
use super::reader::{BlockBody, SegmentReader, TrailerExt};
use super::records::{IndexEntry, Trailer};
use super::writer::RecordCounts;
use crate::model::Ts;
use std::io::Read;
use std::path::PathBuf;

/// The first damage found in a file.
#[derive(Debug)]
pub struct Damage {
    /// Index of the damaged block, when the damage is inside a block.
    pub block: Option<u32>,
    /// Byte offset of the damaged structure from the start of the file.
    pub offset: u64,
    pub error: SegmentError,
}

/// Result of [`verify_file`].
#[derive(Debug)]
pub struct VerifyReport {
    /// None when the file header itself is unreadable.
    pub header: Option<SegmentHeader>,
    /// Data blocks read before the trailer or the damage.
    pub blocks: u32,
    pub counts: RecordCounts,
    pub min_ts: Option<Ts>,
    pub max_ts: Option<Ts>,
    /// A trailer was found (its consistency is part of `damage`).
    pub trailer: bool,
    /// SHA-256 of every byte of the file (None if reading failed).
    pub sha256: Option<[u8; 32]>,
    pub bytes: u64,
    /// The trailer's appended fields: set `recovered` when recovery, not the writer, closed it.
    pub trailer_ext: TrailerExt,
    pub damage: Option<Damage>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.damage.is_none()
    }
}

fn damage(error: SegmentError, fallback_offset: u64) -> Damage {
    Damage { block: error.block(), offset: error.offset().unwrap_or(fallback_offset), error }
}

/// Checks every CRC, decodes every record, requires the trailer and checks it against the
/// file (index, totals, previous hash, content SHA-256). Stops at the first damage.
pub fn verify_file<R: Read>(r: R) -> VerifyReport {
    let mut rep = VerifyReport {
        header: None,
        blocks: 0,
        counts: RecordCounts::default(),
        min_ts: None,
        max_ts: None,
        trailer: false,
        sha256: None,
        bytes: 0,
        trailer_ext: TrailerExt::default(),
        damage: None,
    };
    let mut rd = match SegmentReader::new_hashing(r) {
        Ok(rd) => rd,
        Err(e) => {
            rep.damage = Some(damage(e, 0));
            return rep;
        }
    };
    rep.header = Some(rd.header().clone());
    let mut trailer: Option<(u64, Trailer)> = None;
    loop {
        match rd.next_block() {
            Ok(None) => break,
            Ok(Some(b)) => match b.body {
                BlockBody::Trailer(t) => trailer = Some((b.offset, t)),
                _ => {
                    rep.blocks += 1;
                    rep.counts.add(b.header.block_type, u64::from(b.header.count));
                    if !matches!(b.body, BlockBody::Meta(_)) {
                        rep.min_ts =
                            Some(rep.min_ts.map_or(Ts(b.header.min_ts), |m| m.min(Ts(b.header.min_ts))));
                        rep.max_ts =
                            Some(rep.max_ts.map_or(Ts(b.header.max_ts), |m| m.max(Ts(b.header.max_ts))));
                    }
                }
            },
            Err(e) => {
                let at = rd.offset();
                rep.damage = Some(damage(e, at));
                break;
            }
        }
    }
    if rep.damage.is_none()
        && let Some((off, t)) = &trailer
    {
        rep.trailer = true;
        let mismatch = |what| Some(damage(SegmentError::TrailerMismatch { offset: *off, what }, *off));
        let seen = rd.block_headers().iter().map(|(offset, h)| IndexEntry {
            offset: *offset,
            block_type: h.block_type,
            count: h.count,
            min_ts: h.min_ts,
            max_ts: h.max_ts,
        });
        if !t.index.iter().copied().eq(seen) {
            rep.damage = mismatch("block index differs from the blocks in the file");
        } else if t.totals != Trailer::totals_of(&t.index) {
            rep.damage = mismatch("totals differ from the block index");
        } else if Some(&t.prev_sha256) != rep.header.as_ref().map(|h| &h.prev_sha256) {
            rep.damage = mismatch("previous-segment SHA-256 differs from the file header");
        } else if rd.content_sha256() != Some(t.content_sha256) {
            let actual = rd.content_sha256().map(hex::encode).unwrap_or_default();
            rep.damage = Some(damage(
                SegmentError::ContentHash { offset: *off, expected: hex::encode(t.content_sha256), actual },
                *off,
            ));
        }
    } else if trailer.is_some() {
        rep.trailer = true;
    }
    rep.trailer_ext = rd.trailer_ext();
    match rd.finish_hash() {
        Ok((h, n)) => {
            rep.sha256 = Some(h);
            rep.bytes = n;
        }
        Err(e) => {
            if rep.damage.is_none() {
                rep.damage = Some(damage(SegmentError::Io(e), 0));
            }
        }
    }
    rep
}

/// A file whose header does not continue the chain from the file before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Position of the file in the list handed to `verify_chain`.
    pub index: usize,
    pub path: PathBuf,
    pub prev_path: PathBuf,
    pub expected_seq: u64,
    pub found_seq: u64,
    /// SHA-256 of the previous file.
    pub expected_prev_sha256: [u8; 32],
    /// `prev_sha256` in this file's header.
    pub found_prev_sha256: [u8; 32],
}

impl ChainBreak {
    pub fn is_sequence_gap(&self) -> bool {
        self.expected_seq != self.found_seq
    }
    pub fn is_hash_mismatch(&self) -> bool {
        self.expected_prev_sha256 != self.found_prev_sha256
    }
}

/// Result of [`verify_chain`].
#[derive(Debug)]
pub struct ChainReport {
    pub files: Vec<(PathBuf, VerifyReport)>,
    pub breaks: Vec<ChainBreak>,
}

/// Consecutive segments further apart in time than a threshold (a warning, not damage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeGap {
    /// Position of the later file in the chain.
    pub index: usize,
    pub path: PathBuf,
    pub prev_path: PathBuf,
    /// Last record time of the earlier file and first record time of the later one.
    pub prev_max_ts: Ts,
    pub next_min_ts: Ts,
}

impl TimeGap {
    pub fn gap_ns(&self) -> u64 {
        self.next_min_ts.0.saturating_sub(self.prev_max_ts.0)
    }
}

/// The first problem of a chain, in file order.
#[derive(Debug)]
pub enum ChainProblem<'a> {
    Damaged { path: &'a PathBuf, damage: &'a Damage },
    Break(&'a ChainBreak),
}

impl ChainReport {
    /// Gaps longer than `threshold_ns` between the records of consecutive files. Files with
    /// no timed records are passed over (the gap is measured to the next file that has some).
    pub fn time_gaps(&self, threshold_ns: u64) -> Vec<TimeGap> {
        let mut out = Vec::new();
        let mut prev: Option<(&PathBuf, Ts)> = None;
        for (i, (path, rep)) in self.files.iter().enumerate() {
            let (Some(min), Some(max)) = (rep.min_ts, rep.max_ts) else { continue };
            if let Some((prev_path, prev_max)) = prev
                && min.0.saturating_sub(prev_max.0) > threshold_ns
            {
                out.push(TimeGap {
                    index: i,
                    path: path.clone(),
                    prev_path: prev_path.clone(),
                    prev_max_ts: prev_max,
                    next_min_ts: min,
                });
            }
            prev = Some((path, prev.map_or(max, |(_, m)| m.max(max))));
        }
        out
    }

    /// Files closed by recovery after an unclean shutdown: each ends a run, and the file
    /// after it (if any) starts the next run's chain link.
    pub fn recovered(&self) -> impl Iterator<Item = (usize, &PathBuf, &VerifyReport)> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| r.trailer_ext.recovered())
            .map(|(i, (p, r))| (i, p, r))
    }

    pub fn is_intact(&self) -> bool {
        self.first_problem().is_none()
    }
    pub fn first_problem(&self) -> Option<ChainProblem<'_>> {
        for (i, (path, rep)) in self.files.iter().enumerate() {
            if let Some(b) = self.breaks.iter().find(|b| b.index == i) {
                return Some(ChainProblem::Break(b));
            }
            if let Some(d) = &rep.damage {
                return Some(ChainProblem::Damaged { path, damage: d });
            }
        }
        None
    }
}

/// Verifies each file, then checks that each file's header names the previous file: its
/// `prev_sha256` equals the SHA-256 of the entire previous file and its sequence number is
/// the previous one plus one. The first file's `prev_sha256` is not checked (earlier
/// segments may have been removed by retention). Files should be given in sequence order.
pub fn verify_chain<R: Read>(files: impl IntoIterator<Item = (PathBuf, R)>) -> ChainReport {
    let files: Vec<(PathBuf, VerifyReport)> = files.into_iter().map(|(p, r)| (p, verify_file(r))).collect();
    let mut breaks = Vec::new();
    for i in 1..files.len() {
        let (prev_path, prev) = &files[i - 1];
        let (path, cur) = &files[i];
        let (Some(ph), Some(psha), Some(ch)) = (&prev.header, prev.sha256, &cur.header) else {
            continue;
        };
        let expected_seq = ph.seq.wrapping_add(1);
        if ch.seq != expected_seq || ch.prev_sha256 != psha {
            breaks.push(ChainBreak {
                index: i,
                path: path.clone(),
                prev_path: prev_path.clone(),
                expected_seq,
                found_seq: ch.seq,
                expected_prev_sha256: psha,
                found_prev_sha256: ch.prev_sha256,
            });
        }
    }
    ChainReport { files, breaks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LossRecord, SegmentMeta};
    use crate::segment::{SegmentHeaderInfo, SegmentWriter, WriterConfig};
    use sha2::Digest as _;

    /// A chain of segments holding one loss record each at the given times (None: meta only).
    fn chain(times: &[Option<u64>]) -> Vec<(PathBuf, Vec<u8>)> {
        let mut prev = [0u8; 32];
        let mut out = Vec::new();
        for (i, t) in times.iter().enumerate() {
            let info = SegmentHeaderInfo { seq: i as u64, prev_sha256: prev, created_ns: 0 };
            let mut w = SegmentWriter::new(Vec::new(), info, WriterConfig::default()).unwrap();
            w.write_meta(&SegmentMeta::default()).unwrap();
            if let Some(t) = t {
                w.push_loss(&LossRecord { ts: Ts(*t), ..LossRecord::default() }).unwrap();
            }
            w.finish().unwrap();
            let bytes = w.into_inner();
            prev = sha2::Sha256::digest(&bytes).into();
            out.push((PathBuf::from(format!("f{i}")), bytes));
        }
        out
    }

    #[test]
    fn time_gaps_skip_untimed_files_and_respect_the_threshold() {
        let files = chain(&[Some(100), None, Some(1_000), Some(1_050)]);
        let rep = verify_chain(files.iter().map(|(p, b)| (p.clone(), &b[..])));
        assert!(rep.is_intact(), "{:?}", rep.first_problem());
        let gaps = rep.time_gaps(100);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        let g = &gaps[0];
        // Measured from the last timed file before it, across the untimed one.
        assert_eq!((g.index, g.prev_path.as_path(), g.path.as_path()), (2, "f0".as_ref(), "f2".as_ref()));
        assert_eq!((g.prev_max_ts, g.next_min_ts, g.gap_ns()), (Ts(100), Ts(1_000), 900));
        assert!(rep.time_gaps(900).is_empty(), "a gap equal to the threshold is not reported");
        assert_eq!(rep.recovered().count(), 0, "writer-closed files are not recovered ones");
    }
}
