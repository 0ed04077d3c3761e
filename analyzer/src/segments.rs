//! `netrec segments ls | cat | verify`: the logic, over paths, returning structs (the CLI in
//! `src/cmd/segments.rs` only prints them).

use netrec_format::Ts;
use netrec_format::segment::{
    BlockBody, BlockType, ChainBreak, ChainReport, RecordCounts, Recovery, SegmentError, SegmentName,
    SegmentReader, verify_chain,
};
use netrec_format::store::list_segments;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

/// Errors of the segment commands. Each names the path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentsError {
    // The cause is in the message, not also a `source`: `{:#}` would print it twice.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: {error}", path.display())]
    Segment { path: PathBuf, error: SegmentError },
    #[error("{}: no segment files (seg-*.nrseg) in this directory", path.display())]
    NoSegments { path: PathBuf },
    #[error(
        "{}: not a recording directory nor a segment file name (seg-*.nrseg); `segments verify FILE` checks any file",
        path.display()
    )]
    NotListable { path: PathBuf },
    #[error("cannot write output")]
    Output(#[source] io::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SegmentsError + '_ {
    move |error| SegmentsError::Io { path: path.to_owned(), error }
}

/// One line of `segments ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    pub name: SegmentName,
    pub seq: Option<u64>,
    pub min_ts: Option<Ts>,
    pub max_ts: Option<Ts>,
    pub counts: RecordCounts,
    /// File size.
    pub stored_bytes: u64,
    /// Sum of the uncompressed payload sizes of the data blocks.
    pub raw_bytes: u64,
    /// Payload bytes as stored, for the compression ratio.
    pub payload_bytes: u64,
    /// A trailer was read and nothing was wrong.
    pub closed_cleanly: bool,
    /// First problem met while scanning (offset included), if any.
    pub problem: Option<String>,
}

impl SegmentInfo {
    /// raw / stored payload bytes (1.0 when empty).
    pub fn compression_ratio(&self) -> f64 {
        if self.payload_bytes == 0 { 1.0 } else { self.raw_bytes as f64 / self.payload_bytes as f64 }
    }
}

/// Lists the segments of `dir` in sequence order, reading only block headers (data payloads
/// are skipped with seeks).
pub fn list_dir(dir: &Path) -> Result<Vec<SegmentInfo>, SegmentsError> {
    // One segment file named as such: its own line (`ls` on a file, as `ls` itself does).
    if let Ok(md) = std::fs::metadata(dir)
        && md.is_file()
    {
        let name = dir.file_name().and_then(|n| n.to_str()).and_then(SegmentName::parse);
        return match name {
            Some(name) => Ok(vec![scan_one(dir, name, md.len())]),
            None => Err(SegmentsError::NotListable { path: dir.to_owned() }),
        };
    }
    let list = list_segments(dir).map_err(io_err(dir))?;
    let mut out = Vec::with_capacity(list.len());
    for l in list {
        out.push(scan_one(&l.path, l.name, l.bytes));
    }
    Ok(out)
}

fn scan_one(path: &Path, name: SegmentName, bytes: u64) -> SegmentInfo {
    let mut info = SegmentInfo {
        path: path.to_owned(),
        name,
        seq: None,
        min_ts: None,
        max_ts: None,
        counts: RecordCounts::default(),
        stored_bytes: bytes,
        raw_bytes: 0,
        payload_bytes: 0,
        closed_cleanly: false,
        problem: None,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            info.problem = Some(e.to_string());
            return info;
        }
    };
    let mut rd = match SegmentReader::new_seekable(BufReader::new(file), Recovery::TornTail) {
        Ok(r) => r.skip_data(),
        Err(e) => {
            info.problem = Some(e.to_string());
            return info;
        }
    };
    info.seq = Some(rd.header().seq);
    let mut trailer = false;
    loop {
        match rd.next_block() {
            Ok(Some(b)) => trailer |= matches!(b.body, BlockBody::Trailer(_)),
            Ok(None) => break,
            Err(e) => {
                info.problem = Some(e.to_string());
                break;
            }
        }
    }
    for (_, h) in rd.block_headers() {
        info.counts.add(h.block_type, u64::from(h.count));
        info.raw_bytes += u64::from(h.raw_len);
        info.payload_bytes += u64::from(h.stored_len);
        if BlockType::from_u16(h.block_type).is_some_and(BlockType::is_timed) {
            info.min_ts = Some(info.min_ts.map_or(Ts(h.min_ts), |m| m.min(Ts(h.min_ts))));
            info.max_ts = Some(info.max_ts.map_or(Ts(h.max_ts), |m| m.max(Ts(h.max_ts))));
        }
    }
    if info.problem.is_none()
        && let Some(w) = rd.warnings().first()
    {
        info.problem = Some(w.to_string());
    }
    info.closed_cleanly = trailer && info.problem.is_none();
    info
}

/// What `cat` did with one file.
#[derive(Debug, Default)]
pub struct CatReport {
    pub records: u64,
    /// Recovery warnings ("offset N: ..."), to be printed with the path.
    pub warnings: Vec<String>,
}

/// Decodes every record of `path` to `out`: JSON lines (`{"type":"packet",...}`) or one text
/// line per record. Damaged blocks are skipped and reported (`SkipCorrupt`).
pub fn cat_file(path: &Path, json: bool, out: &mut dyn Write) -> Result<CatReport, SegmentsError> {
    let file = File::open(path).map_err(io_err(path))?;
    let seg_err = |error| SegmentsError::Segment { path: path.to_owned(), error };
    let mut rd = SegmentReader::new(BufReader::new(file), Recovery::SkipCorrupt).map_err(seg_err)?;
    let mut rep = CatReport::default();
    while let Some(b) = rd.next_block().map_err(seg_err)? {
        for r in b.body.into_records() {
            rep.records += 1;
            if json {
                serde_json::to_writer(&mut *out, &r).map_err(|e| SegmentsError::Output(e.into()))?;
                writeln!(out).map_err(SegmentsError::Output)?;
            } else {
                write_text(out, &r).map_err(SegmentsError::Output)?;
            }
        }
    }
    rep.warnings = rd.warnings().iter().map(ToString::to_string).collect();
    Ok(rep)
}

fn write_text(out: &mut dyn Write, r: &netrec_format::segment::Record) -> io::Result<()> {
    use netrec_format::proto_name;
    use netrec_format::segment::Record;
    match r {
        Record::Meta(m) => writeln!(
            out,
            "meta host={} snaplen={} interfaces={} version={}",
            m.host,
            m.snaplen,
            m.interfaces.len(),
            m.netrec_version
        ),
        Record::Packet(p) => writeln!(
            out,
            "packet {} iface={} dir={:?} link={} len={} caplen={}",
            p.ts,
            p.iface,
            p.direction,
            p.link_type.0,
            p.wire_len,
            p.data.len()
        ),
        Record::Flow(f) => writeln!(
            out,
            "flow {} {} {}:{} -> {}:{} pkts={}/{} bytes={}/{} state={}",
            f.first_ts,
            proto_name(f.key.proto),
            f.key.src_ip,
            f.key.src_port,
            f.key.dst_ip,
            f.key.dst_port,
            f.fwd.packets,
            f.rev.packets,
            f.fwd.bytes,
            f.rev.bytes,
            f.tcp_state.as_str()
        ),
        Record::Alert(a) => writeln!(
            out,
            "alert {} {} {} {} {}",
            a.first_ts,
            a.severity.as_str(),
            a.rule_id,
            a.attack_id,
            a.message
        ),
        Record::Loss(l) => writeln!(
            out,
            "loss {} iface={} kernel_packets={} ring_drops={} map_full={} busy={} writer_drops={}",
            l.ts, l.iface, l.kernel_packets, l.ring_drops, l.map_full, l.busy, l.writer_drops
        ),
    }
}

/// One problem found by `verify`.
#[derive(Debug)]
pub struct Problem {
    pub path: PathBuf,
    pub kind: ProblemKind,
}

#[derive(Debug)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Damage inside a file (block index and offset when known).
    Damage {
        block: Option<u32>,
        offset: u64,
        error: SegmentError,
    },
    ChainBreak(ChainBreak),
    Io(io::Error),
    NoSegments,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            // Messages of errors inside a block already name the block and the offset.
            ProblemKind::Damage { error, .. } if error.block().is_some() => write!(f, "{p}: {error}"),
            ProblemKind::Damage { offset, error, .. } => write!(f, "{p}: offset {offset}: {error}"),
            ProblemKind::ChainBreak(b) => {
                write!(f, "{p}: hash chain break after {}:", b.prev_path.display())?;
                if b.is_sequence_gap() {
                    write!(
                        f,
                        " expected sequence {}, found {} (missing segment?);",
                        b.expected_seq, b.found_seq
                    )?;
                }
                if b.is_hash_mismatch() {
                    write!(
                        f,
                        " prev_sha256 in header is {}, previous file hashes to {}",
                        hex::encode(b.found_prev_sha256),
                        hex::encode(b.expected_prev_sha256)
                    )?;
                } else {
                    write!(f, " previous file hash matches")?;
                }
                Ok(())
            }
            ProblemKind::Io(e) => write!(f, "{p}: {e}"),
            ProblemKind::NoSegments => write!(f, "{p}: no segment files (seg-*.nrseg) in this directory"),
        }
    }
}

/// Result of `verify`.
#[derive(Debug, Default)]
pub struct VerifyOutcome {
    /// Files verified, in order.
    pub files: Vec<PathBuf>,
    pub counts: RecordCounts,
    /// Open (`.partial`) files found in directories and not verified.
    pub skipped_partial: Vec<PathBuf>,
    /// In discovery order; per chain, the first damage or break comes first.
    pub problems: Vec<Problem>,
}

impl VerifyOutcome {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies files and directories. A directory's closed segments (sequence order) form one
/// chain; files given directly form another, in sequence order when their names parse. For
/// each chain, the first damage or chain break is reported (later files depend on it).
pub fn verify_paths(paths: &[PathBuf]) -> VerifyOutcome {
    let mut out = VerifyOutcome::default();
    let mut loose: Vec<PathBuf> = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Err(e) => out.problems.push(Problem { path: p.clone(), kind: ProblemKind::Io(e) }),
            Ok(md) if md.is_dir() => match list_segments(p) {
                Err(e) => out.problems.push(Problem { path: p.clone(), kind: ProblemKind::Io(e) }),
                Ok(list) => {
                    let (partial, closed): (Vec<_>, Vec<_>) = list.into_iter().partition(|l| l.name.partial);
                    out.skipped_partial.extend(partial.into_iter().map(|l| l.path));
                    if closed.is_empty() {
                        out.problems.push(Problem { path: p.clone(), kind: ProblemKind::NoSegments });
                    } else {
                        verify_one_chain(closed.into_iter().map(|l| l.path).collect(), &mut out);
                    }
                }
            },
            Ok(_) => loose.push(p.clone()),
        }
    }
    if !loose.is_empty() {
        let key =
            |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).and_then(SegmentName::parse).map(|n| n.seq);
        if loose.iter().all(|p| key(p).is_some()) {
            loose.sort_by_key(|p| key(p));
        }
        verify_one_chain(loose, &mut out);
    }
    out
}

fn verify_one_chain(paths: Vec<PathBuf>, out: &mut VerifyOutcome) {
    let mut opened = Vec::with_capacity(paths.len());
    for p in paths {
        match File::open(&p) {
            Ok(f) => opened.push((p, BufReader::new(f))),
            Err(e) => out.problems.push(Problem { path: p, kind: ProblemKind::Io(e) }),
        }
    }
    let ChainReport { files, breaks } = verify_chain(opened);
    let damaged: Vec<bool> = files.iter().map(|(_, r)| r.damage.is_some()).collect();
    for (i, (p, r)) in files.into_iter().enumerate() {
        let (c, t) = (&r.counts, &mut out.counts);
        (t.meta, t.packets, t.flows, t.alerts, t.loss) =
            (t.meta + c.meta, t.packets + c.packets, t.flows + c.flows, t.alerts + c.alerts, t.loss + c.loss);
        // A break right after a damaged file is a consequence of that damage: not repeated.
        if let Some(b) = breaks.iter().find(|b| b.index == i)
            && !damaged[i - 1]
        {
            out.problems.push(Problem { path: p.clone(), kind: ProblemKind::ChainBreak(b.clone()) });
        }
        if let Some(d) = r.damage {
            let kind = ProblemKind::Damage { block: d.block, offset: d.offset, error: d.error };
            out.problems.push(Problem { path: p.clone(), kind });
        }
        out.files.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_format::segment::sample::golden_records;
    use netrec_format::segment::{SegmentHeaderInfo, WriterConfig};
    use netrec_format::store::SegmentFile;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn write_chain(dir: &Path, n: u64) -> Vec<PathBuf> {
        let (meta, packets, flows, alerts, loss) = golden_records();
        let cfg =
            WriterConfig { max_block_bytes: 512, max_block_age_ns: 0, zstd_level: 3, header_delta: true };
        let mut prev = [0u8; 32];
        (0..n)
            .map(|seq| {
                let info = SegmentHeaderInfo { seq, prev_sha256: prev, created_ns: T0 + seq * 1_000_000_000 };
                let mut f = SegmentFile::create(dir, info, cfg).unwrap();
                f.write_meta(&meta).unwrap();
                for p in &packets {
                    f.push_packet(&p.as_ref()).unwrap();
                }
                for x in &flows {
                    f.push_flow(x).unwrap();
                }
                for x in &alerts {
                    f.push_alert(x).unwrap();
                }
                for x in &loss {
                    f.push_loss(x).unwrap();
                }
                let (p, s) = f.close().unwrap();
                prev = s.sha256;
                p
            })
            .collect()
    }

    #[test]
    fn ls_reports_counts_ratio_and_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_chain(dir.path(), 2);
        // An open segment is listed as not closed cleanly.
        let info = SegmentHeaderInfo { seq: 2, prev_sha256: [0; 32], created_ns: T0 + 5_000_000_000 };
        let mut open = SegmentFile::create(dir.path(), info, WriterConfig::default()).unwrap();
        open.push_loss(&Default::default()).unwrap();
        open.flush().unwrap();
        let ls = list_dir(dir.path()).unwrap();
        assert_eq!(ls.len(), 3);
        assert_eq!(ls[0].path, paths[0]);
        let (_, packets, flows, alerts, loss) = golden_records();
        let c = ls[1].counts;
        assert_eq!(
            (c.meta, c.packets, c.flows, c.alerts, c.loss),
            (1, packets.len() as u64, flows.len() as u64, alerts.len() as u64, loss.len() as u64)
        );
        assert!(ls[0].closed_cleanly && ls[1].closed_cleanly);
        assert!(!ls[2].closed_cleanly && ls[2].name.partial);
        assert_eq!(ls[2].counts.loss, 1);
        assert!(ls[0].compression_ratio() > 1.0);
        assert_eq!(ls[0].seq, Some(0));
        assert_eq!(ls[0].stored_bytes, std::fs::metadata(&paths[0]).unwrap().len());
        assert!(ls[0].min_ts.unwrap() <= ls[0].max_ts.unwrap());
    }

    #[test]
    fn cat_json_lines_have_a_type() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_chain(dir.path(), 1);
        let mut out = Vec::new();
        let rep = cat_file(&paths[0], true, &mut out).unwrap();
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len() as u64, rep.records);
        assert_eq!(lines[0]["type"], "meta");
        assert!(lines.iter().any(|l| l["type"] == "flow" && l["key"]["src_ip"] == "2001:db8::1"));
        assert!(rep.warnings.is_empty());
        let mut text = Vec::new();
        cat_file(&paths[0], false, &mut text).unwrap();
        assert!(String::from_utf8(text).unwrap().contains("flow "));
    }

    #[test]
    fn verify_names_file_block_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_chain(dir.path(), 3);
        let ok = verify_paths(&[dir.path().to_owned()]);
        assert!(ok.is_ok(), "{:?}", ok.problems);
        assert_eq!(ok.files, paths);
        // Damage block 1's payload of the middle file.
        let mut b = std::fs::read(&paths[1]).unwrap();
        let hdr_len = 80usize;
        let block1 =
            hdr_len + 48 + u32::from_le_bytes(b[hdr_len + 8..hdr_len + 12].try_into().unwrap()) as usize;
        b[block1 + 60] ^= 1;
        std::fs::write(&paths[1], &b).unwrap();
        let bad = verify_paths(&[dir.path().to_owned()]);
        assert_eq!(bad.problems.len(), 1, "{:?}", bad.problems);
        let line = bad.problems[0].to_string();
        assert!(
            line.starts_with(&format!(
                "{}: payload CRC mismatch in block 1 at offset {block1}",
                paths[1].display()
            )),
            "{line}"
        );
        // The middle file missing: a chain break naming the third.
        std::fs::remove_file(&paths[1]).unwrap();
        let gap = verify_paths(&[dir.path().to_owned()]);
        assert_eq!(gap.problems.len(), 1);
        assert!(matches!(&gap.problems[0].kind, ProblemKind::ChainBreak(b) if b.path == paths[2]));
        assert!(gap.problems[0].to_string().contains("expected sequence 1, found 2"));
    }

    #[test]
    fn verify_reports_bad_inputs_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let empty = verify_paths(&[dir.path().to_owned()]);
        assert!(matches!(empty.problems[0].kind, ProblemKind::NoSegments));
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello\n").unwrap();
        let missing = dir.path().join("nope.nrseg");
        let rep = verify_paths(&[text.clone(), missing.clone()]);
        let lines: Vec<String> = rep.problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with(&format!("{}: ", missing.display()))));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{}: offset 0: not a netrec segment", text.display()))),
            "{lines:?}"
        );
    }
}
