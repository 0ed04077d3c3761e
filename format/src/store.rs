//! Segment files on disk: create as `.partial`, fsync each block, rename when closed;
//! rotation and retention policies (pure, time passed in); directory listing.
//!
//! Only `std::fs`; no clock is read: every time is a parameter.

use crate::model::*;
use crate::segment::header::{BLOCK_HEADER_LEN, CODEC_NONE};
use crate::segment::{
    BlockBody, BlockHeader, BlockType, IndexEntry, RecordCounts, Recovery, SegmentError, SegmentHeaderInfo,
    SegmentName, SegmentReader, SegmentSummary, SegmentWriter, TRAILER_FLAG_RECOVERED, TRAILER_LAYOUT_EXT,
    Trailer, TrailerExt, WarningKind, WriterConfig, verify_file,
};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// An open segment file. Every completed block is followed by `fsync` (data), so a crash
/// loses at most the open blocks.
#[derive(Debug)]
pub struct SegmentFile {
    dir: PathBuf,
    name: SegmentName,
    opened_at: Ts,
    w: SegmentWriter<File>,
}

impl SegmentFile {
    /// Creates `DIR/<name>.nrseg.partial` (fails if it exists) and writes the header.
    /// `info.created_ns` is the start time in the file name.
    pub fn create(dir: &Path, info: SegmentHeaderInfo, cfg: WriterConfig) -> Result<Self, SegmentError> {
        let name = SegmentName::new(info.seq, Ts(info.created_ns));
        let path = dir.join(name.partial().to_string());
        let f = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        let made = SegmentWriter::new(f, info, cfg).and_then(|w| {
            let sf = SegmentFile { dir: dir.to_owned(), name, opened_at: Ts(info.created_ns), w };
            sf.sync(1)?;
            sync_dir(dir)?;
            Ok(sf)
        });
        if made.is_err() {
            // Our own file, with no complete header (e.g. disk full): it holds nothing.
            let _ = fs::remove_file(&path);
        }
        made
    }

    pub fn partial_path(&self) -> PathBuf {
        self.dir.join(self.name.partial().to_string())
    }
    pub fn final_path(&self) -> PathBuf {
        self.dir.join(self.name.to_string())
    }
    pub fn opened_at(&self) -> Ts {
        self.opened_at
    }
    pub fn bytes_written(&self) -> u64 {
        self.w.bytes_written()
    }

    fn sync(&self, blocks: usize) -> io::Result<usize> {
        if blocks > 0 {
            self.w.get_ref().sync_data()?;
        }
        Ok(blocks)
    }

    pub fn write_meta(&mut self, m: &SegmentMeta) -> Result<usize, SegmentError> {
        let n = self.w.write_meta(m)?;
        Ok(self.sync(n)?)
    }
    pub fn push_packet(&mut self, p: &PacketRef<'_>) -> Result<usize, SegmentError> {
        let n = self.w.push_packet(p)?;
        Ok(self.sync(n)?)
    }
    pub fn push_flow(&mut self, f: &FlowRecord) -> Result<usize, SegmentError> {
        let n = self.w.push_flow(f)?;
        Ok(self.sync(n)?)
    }
    pub fn push_alert(&mut self, a: &Alert) -> Result<usize, SegmentError> {
        let n = self.w.push_alert(a)?;
        Ok(self.sync(n)?)
    }
    pub fn push_loss(&mut self, l: &LossRecord) -> Result<usize, SegmentError> {
        let n = self.w.push_loss(l)?;
        Ok(self.sync(n)?)
    }
    pub fn tick(&mut self, now: Ts) -> Result<usize, SegmentError> {
        let n = self.w.tick(now)?;
        Ok(self.sync(n)?)
    }
    pub fn flush(&mut self) -> Result<usize, SegmentError> {
        let n = self.w.flush()?;
        Ok(self.sync(n)?)
    }

    /// Writes the trailer, fsyncs, renames to the final name and fsyncs the directory.
    pub fn close(mut self) -> Result<(PathBuf, SegmentSummary), SegmentError> {
        let summary = self.w.finish()?;
        self.w.get_ref().sync_all()?;
        let (from, to) = (self.partial_path(), self.final_path());
        fs::rename(&from, &to)?;
        sync_dir(&self.dir)?;
        Ok((to, summary))
    }
}

/// What recovery did with one leftover `.partial` file (SPEC.md §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryOutcome {
    /// Cut after its last complete block, closed with a recovery trailer, renamed to `.nrseg`.
    Recovered,
    /// It already ended with a valid trailer (crash between trailer and rename): renamed.
    Finalized,
    /// Nothing recoverable: renamed to `.nrseg.quarantine` (never deleted).
    Quarantined,
}

/// One leftover `.partial` and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredPartial {
    pub partial: PathBuf,
    pub outcome: RecoveryOutcome,
    /// Where the file is now.
    pub path: PathBuf,
    pub original_bytes: u64,
    /// Bytes of the original kept (file header and complete blocks); 0 when quarantined.
    pub kept_bytes: u64,
    /// Data blocks kept.
    pub blocks: u32,
    pub counts: RecordCounts,
    /// Why reading stopped: the torn tail of an unclean shutdown, or damage.
    pub stopped: Option<String>,
    /// When damage (not a torn tail) ended the readable part: a copy of the original file,
    /// kept as `.nrseg.quarantine`, so no byte is lost.
    pub preserved: Option<PathBuf>,
    /// SHA-256 of the closed file (None when quarantined).
    pub sha256: Option<[u8; 32]>,
}

impl std::fmt::Display for RecoveredPartial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (from, to) = (self.partial.display(), self.path.display());
        match self.outcome {
            RecoveryOutcome::Recovered => {
                write!(
                    f,
                    "recovered {from} -> {to}: {} block(s), {} packet(s) kept, {} of {} byte(s) after the last complete block dropped",
                    self.blocks,
                    self.counts.packets,
                    self.original_bytes.saturating_sub(self.kept_bytes),
                    self.original_bytes
                )?;
                if let Some(p) = &self.preserved {
                    write!(f, "; original kept as {}", p.display())?;
                }
            }
            RecoveryOutcome::Finalized => {
                write!(f, "finalized {from} -> {to}: complete with its trailer ({} block(s))", self.blocks)?
            }
            RecoveryOutcome::Quarantined => write!(f, "quarantined {from} -> {to}: nothing recoverable")?,
        }
        if let Some(why) = &self.stopped {
            write!(f, " ({why})")?;
        }
        Ok(())
    }
}

/// Why a `.partial` could not be dealt with (it is left in place).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    #[error("{path}: not a .partial segment name")]
    NotPartial { path: PathBuf },
    #[error("{path}: {target} already exists; not overwritten")]
    TargetExists { path: PathBuf, target: PathBuf },
    #[error("{path}: recovering: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Recovers every `.partial` of `dir`, in sequence order (see [`recover_partial`]). A file
/// that cannot be handled is left in place and its error returned with the others.
pub fn recover_dir(dir: &Path) -> io::Result<(Vec<RecoveredPartial>, Vec<RecoverError>)> {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for l in list_segments(dir)?.into_iter().filter(|l| l.name.partial) {
        match recover_partial(&l.path) {
            Ok(r) => done.push(r),
            Err(e) => failed.push(e),
        }
    }
    Ok((done, failed))
}

/// Closes a leftover `.partial` (SPEC.md §7.2): if it has a valid trailer it is renamed; else
/// it is cut after its last complete block, given a trailer marked recovered, synced and
/// renamed to `.nrseg`; with no complete block it is renamed to `.nrseg.quarantine`.
pub fn recover_partial(path: &Path) -> Result<RecoveredPartial, RecoverError> {
    let io_err = |source| RecoverError::Io { path: path.to_path_buf(), source };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(SegmentName::parse)
        .filter(|n| n.partial)
        .ok_or_else(|| RecoverError::NotPartial { path: path.to_path_buf() })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let original_bytes = fs::metadata(path).map_err(io_err)?.len();
    let mut out = RecoveredPartial {
        partial: path.to_path_buf(),
        outcome: RecoveryOutcome::Quarantined,
        path: PathBuf::new(),
        original_bytes,
        kept_bytes: 0,
        blocks: 0,
        counts: RecordCounts::default(),
        stopped: None,
        preserved: None,
        sha256: None,
    };
    let scan = scan_partial(path).map_err(io_err)?;
    let scan = match scan {
        Err(e) => {
            out.stopped = Some(e.to_string());
            return quarantine(path, dir, name, out);
        }
        Ok(s) => s,
    };
    out.stopped = scan.stopped.clone();
    if scan.trailer {
        let rep = verify_file(io::BufReader::new(File::open(path).map_err(io_err)?));
        if rep.is_intact() {
            let to = dir.join(name.closed().to_string());
            rename_new(path, &to)?;
            sync_dir(dir).map_err(io_err)?;
            out.outcome = RecoveryOutcome::Finalized;
            out.path = to;
            out.kept_bytes = original_bytes;
            out.blocks = rep.blocks;
            out.counts = rep.counts;
            out.sha256 = rep.sha256;
            return Ok(out);
        }
        out.stopped = rep.damage.map(|d| format!("offset {}: {}", d.offset, d.error));
    }
    if scan.index.is_empty() {
        return quarantine(path, dir, name, out);
    }
    let torn = !scan.trailer && scan.torn;
    if !torn {
        // Damage, not a crash, ended the readable part: keep the original bytes too.
        let keep = free_quarantine_name(dir, name);
        fs::copy(path, &keep).map_err(io_err)?;
        out.preserved = Some(keep);
    }
    let sha256 = close_with_recovery_trailer(path, &scan, original_bytes).map_err(io_err)?;
    let to = dir.join(name.closed().to_string());
    rename_new(path, &to)?;
    sync_dir(dir).map_err(io_err)?;
    out.outcome = RecoveryOutcome::Recovered;
    out.path = to;
    out.kept_bytes = scan.kept;
    out.blocks = scan.index.len() as u32;
    out.counts = scan.counts;
    out.sha256 = Some(sha256);
    Ok(out)
}

/// The readable part of a `.partial`.
struct PartialScan {
    prev_sha256: [u8; 32],
    /// Complete data blocks, in file order.
    index: Vec<IndexEntry>,
    counts: RecordCounts,
    /// Offset just after the last complete data block.
    kept: u64,
    /// A trailer follows the blocks.
    trailer: bool,
    /// Reading ended at a torn tail (cut inside a block or at a boundary): an unclean shutdown.
    torn: bool,
    stopped: Option<String>,
}

/// Reads a `.partial` up to its trailer or first damage. The inner error: the file header is
/// unusable (nothing to recover).
fn scan_partial(path: &Path) -> io::Result<Result<PartialScan, SegmentError>> {
    let f = io::BufReader::new(File::open(path)?);
    let mut rd = match SegmentReader::new(f, Recovery::TornTail) {
        Ok(rd) => rd,
        Err(SegmentError::Io(e)) => return Err(e),
        Err(e) => return Ok(Err(e)),
    };
    let mut s = PartialScan {
        prev_sha256: rd.header().prev_sha256,
        index: Vec::new(),
        counts: RecordCounts::default(),
        kept: rd.offset(),
        trailer: false,
        torn: false,
        stopped: None,
    };
    loop {
        match rd.next_block() {
            Ok(Some(b)) => {
                if matches!(b.body, BlockBody::Trailer(_)) {
                    s.trailer = true;
                    break;
                }
                let h = b.header;
                s.index.push(IndexEntry {
                    offset: b.offset,
                    block_type: h.block_type,
                    count: h.count,
                    min_ts: h.min_ts,
                    max_ts: h.max_ts,
                });
                s.counts.add(h.block_type, u64::from(h.count));
                s.kept = rd.offset();
            }
            Ok(None) => {
                if let Some(w) = rd.warnings().last() {
                    s.torn = matches!(w.kind, WarningKind::Truncated | WarningKind::MissingTrailer);
                    s.stopped = Some(w.to_string());
                }
                break;
            }
            Err(SegmentError::Io(e)) => return Err(e),
            Err(e) => {
                s.stopped = Some(e.to_string());
                break;
            }
        }
    }
    // Blocks of unknown optional types between known ones stay in the file: index them too.
    let known: Vec<IndexEntry> = rd
        .block_headers()
        .iter()
        .filter(|(o, h)| *o + BLOCK_HEADER_LEN as u64 + u64::from(h.stored_len) <= s.kept)
        .map(|(o, h)| IndexEntry {
            offset: *o,
            block_type: h.block_type,
            count: h.count,
            min_ts: h.min_ts,
            max_ts: h.max_ts,
        })
        .collect();
    if known.len() >= s.index.len() {
        s.index = known;
    }
    Ok(Ok(s))
}

/// Cuts the file after `scan.kept`, appends a trailer of layout 2 marked recovered, syncs.
/// Returns the SHA-256 of the closed file.
fn close_with_recovery_trailer(path: &Path, scan: &PartialScan, original_len: u64) -> io::Result<[u8; 32]> {
    let mut f = fs::OpenOptions::new().read(true).write(true).open(path)?;
    f.set_len(scan.kept)?;
    f.seek(io::SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = scan.kept;
    let cap = buf.len() as u64;
    while left > 0 {
        let n = f.read(&mut buf[..left.min(cap) as usize])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank during recovery"));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let trailer = Trailer {
        index: scan.index.clone(),
        totals: Trailer::totals_of(&scan.index),
        prev_sha256: scan.prev_sha256,
        content_sha256: hasher.clone().finalize().into(),
    };
    let mut payload = Vec::new();
    trailer.encode(&mut payload);
    TrailerExt { flags: TRAILER_FLAG_RECOVERED, original_len }.encode(&mut payload);
    let timed =
        scan.index.iter().filter(|e| BlockType::from_u16(e.block_type).is_some_and(BlockType::is_timed));
    let (min, max) = timed.fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.min_ts), hi.max(e.max_ts)));
    let (min_ts, max_ts) = if min <= max { (min, max) } else { (0, 0) };
    let h = BlockHeader {
        block_type: BlockType::Trailer as u16,
        codec: CODEC_NONE,
        layout: TRAILER_LAYOUT_EXT,
        stored_len: payload.len() as u32,
        raw_len: payload.len() as u32,
        count: scan.index.len() as u32,
        min_ts,
        max_ts,
        payload_crc: crc32c::crc32c(&payload),
    };
    let hb = h.encode();
    f.seek(io::SeekFrom::Start(scan.kept))?;
    f.write_all(&hb)?;
    f.write_all(&payload)?;
    f.sync_all()?;
    hasher.update(hb);
    hasher.update(&payload);
    Ok(hasher.finalize().into())
}

fn free_quarantine_name(dir: &Path, name: SegmentName) -> PathBuf {
    (0..)
        .map(|i| dir.join(name.quarantine_name(i)))
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(name.quarantine_name(u32::MAX)))
}

fn quarantine(
    path: &Path,
    dir: &Path,
    name: SegmentName,
    mut out: RecoveredPartial,
) -> Result<RecoveredPartial, RecoverError> {
    let to = free_quarantine_name(dir, name);
    rename_new(path, &to)?;
    sync_dir(dir).map_err(|source| RecoverError::Io { path: path.to_path_buf(), source })?;
    out.outcome = RecoveryOutcome::Quarantined;
    out.path = to;
    Ok(out)
}

/// Renames without replacing an existing file.
fn rename_new(from: &Path, to: &Path) -> Result<(), RecoverError> {
    if to.exists() {
        return Err(RecoverError::TargetExists { path: from.to_path_buf(), target: to.to_path_buf() });
    }
    fs::rename(from, to).map_err(|source| RecoverError::Io { path: from.to_path_buf(), source })
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Directory fsync makes the create/rename durable; not supported on every platform.
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if cfg!(not(unix)) => {
            let _ = e;
            Ok(())
        }
        r => r,
    }
}

/// When to start a new segment. Pure: all times are parameters. 0 / None disables a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationPolicy {
    pub max_bytes: u64,
    pub max_age_ns: u64,
    /// Rotate at every multiple of this many ns since the epoch (e.g. every hour on the hour).
    pub align_ns: Option<u64>,
}

impl RotationPolicy {
    pub fn should_rotate(&self, opened_at: Ts, now: Ts, bytes: u64) -> bool {
        if self.max_bytes > 0 && bytes >= self.max_bytes {
            return true;
        }
        if self.max_age_ns > 0 && now.saturating_sub(opened_at) >= self.max_age_ns {
            return true;
        }
        match self.align_ns {
            Some(a) if a > 0 => now.0 / a > opened_at.0 / a,
            _ => false,
        }
    }
}

/// A segment as seen by retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    /// File name (not a path).
    pub name: String,
    pub bytes: u64,
    /// When the file was closed (its modification time).
    pub closed_at: Ts,
}

/// What to keep. None disables a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep the total size of all segments (open ones included) at or below this.
    pub max_total_bytes: Option<u64>,
    /// Delete closed segments closed more than this long before `now`.
    pub max_age_ns: Option<u64>,
}

/// Names of the segments to delete, oldest first. Only closed segments with a valid name are
/// ever chosen; `.partial` files count towards the total but are never deleted.
pub fn plan_retention(entries: &[SegmentEntry], policy: RetentionPolicy, now: Ts) -> Vec<String> {
    let mut closed: Vec<(SegmentName, &SegmentEntry)> = entries
        .iter()
        .filter_map(|e| SegmentName::parse(&e.name).filter(|n| !n.partial).map(|n| (n, e)))
        .collect();
    closed.sort_by(|a, b| (a.0.seq, &a.1.name).cmp(&(b.0.seq, &b.1.name)));
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut out = Vec::new();
    for (_, e) in closed {
        let too_old = policy.max_age_ns.is_some_and(|age| now.saturating_sub(e.closed_at) > age);
        let too_big = policy.max_total_bytes.is_some_and(|max| total > max);
        if !(too_old || too_big) {
            // Oldest first: once one is kept by size, later ones could still be too old
            // (clock steps), so keep scanning for age only.
            if policy.max_age_ns.is_none() {
                break;
            }
            continue;
        }
        total -= e.bytes;
        out.push(e.name.clone());
    }
    out
}

/// A segment file found in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentListing {
    pub path: PathBuf,
    pub name: SegmentName,
    pub bytes: u64,
    /// Modification time, ns since the epoch (0 if unavailable).
    pub modified: Ts,
}

/// Segment files of `dir` (closed and partial), sorted by sequence number (a closed file
/// before a partial one of the same number). Other files are ignored.
pub fn list_segments(dir: &Path) -> io::Result<Vec<SegmentListing>> {
    let mut v = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let Some(name) = ent.file_name().to_str().and_then(SegmentName::parse) else {
            continue;
        };
        let md = ent.metadata()?;
        if !md.is_file() {
            continue;
        }
        let modified = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(Ts(0), |d| Ts(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
        v.push(SegmentListing { path: ent.path(), name, bytes: md.len(), modified });
    }
    v.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.path.cmp(&b.path)));
    Ok(v)
}

/// Applies [`plan_retention`] to `dir` (closed time = modification time) and returns the
/// deleted paths.
pub fn apply_retention(dir: &Path, policy: RetentionPolicy, now: Ts) -> io::Result<Vec<PathBuf>> {
    let list = list_segments(dir)?;
    let entries: Vec<SegmentEntry> = list
        .iter()
        .map(|l| SegmentEntry {
            name: l.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            bytes: l.bytes,
            closed_at: l.modified,
        })
        .collect();
    let mut deleted = Vec::new();
    for name in plan_retention(&entries, policy, now) {
        let p = dir.join(&name);
        match fs::remove_file(&p) {
            Ok(()) => deleted.push(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !deleted.is_empty() {
        sync_dir(dir)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000_000_000;

    #[test]
    fn rotation_by_size_and_age() {
        let p = RotationPolicy { max_bytes: 1000, max_age_ns: 10, align_ns: None };
        assert!(!p.should_rotate(Ts(100), Ts(105), 999));
        assert!(p.should_rotate(Ts(100), Ts(105), 1000));
        assert!(p.should_rotate(Ts(100), Ts(110), 0));
        assert!(!p.should_rotate(Ts(100), Ts(109), 0));
        // Time going backwards never rotates by age.
        assert!(!p.should_rotate(Ts(100), Ts(50), 0));
        assert!(!RotationPolicy::default().should_rotate(Ts(0), Ts(u64::MAX), u64::MAX));
    }

    #[test]
    fn rotation_aligned_to_the_hour() {
        let p = RotationPolicy { max_bytes: 0, max_age_ns: 0, align_ns: Some(H) };
        let t0 = 1_700_000_000 * 1_000_000_000u64; // 22:13:20 UTC
        let next_hour = (t0 / H + 1) * H;
        assert!(!p.should_rotate(Ts(t0), Ts(next_hour - 1), 0));
        assert!(p.should_rotate(Ts(t0), Ts(next_hour), 0));
        // Opened exactly on the hour: rotates at the next hour, not immediately.
        assert!(!p.should_rotate(Ts(next_hour), Ts(next_hour), 0));
        assert!(!p.should_rotate(Ts(next_hour), Ts(next_hour + H - 1), 0));
        assert!(p.should_rotate(Ts(next_hour), Ts(next_hour + H), 0));
    }

    fn entry(seq: u64, bytes: u64, closed_at: u64, partial: bool) -> SegmentEntry {
        let n = SegmentName::new(seq, Ts(seq * 1_000_000_000));
        let n = if partial { n.partial() } else { n };
        SegmentEntry { name: n.to_string(), bytes, closed_at: Ts(closed_at) }
    }

    #[test]
    fn retention_by_total_bytes_deletes_oldest_closed() {
        let es = vec![
            entry(3, 100, 30, false),
            entry(1, 100, 10, false),
            entry(2, 100, 20, false),
            entry(4, 100, 0, true),
        ];
        let p = RetentionPolicy { max_total_bytes: Some(250), max_age_ns: None };
        let del = plan_retention(&es, p, Ts(100));
        assert_eq!(del, vec![es[1].name.clone(), es[2].name.clone()]);
        // Never deletes the partial, even if it alone exceeds the limit.
        let p = RetentionPolicy { max_total_bytes: Some(10), max_age_ns: None };
        let del = plan_retention(&es, p, Ts(100));
        assert_eq!(del.len(), 3);
        assert!(del.iter().all(|n| !n.ends_with(".partial")));
    }

    #[test]
    fn retention_by_age() {
        let es = vec![
            entry(1, 1, 10, false),
            entry(2, 1, 50, false),
            entry(3, 1, 90, false),
            entry(4, 1, 0, true),
        ];
        let p = RetentionPolicy { max_total_bytes: None, max_age_ns: Some(40) };
        assert_eq!(plan_retention(&es, p, Ts(100)), vec![es[0].name.clone(), es[1].name.clone()]);
        assert!(plan_retention(&es, RetentionPolicy::default(), Ts(100)).is_empty());
        // Non-segment names are never deleted.
        let other = vec![SegmentEntry { name: "notes.txt".into(), bytes: 10_000, closed_at: Ts(0) }];
        let p = RetentionPolicy { max_total_bytes: Some(1), max_age_ns: Some(1) };
        assert!(plan_retention(&other, p, Ts(100)).is_empty());
    }

    fn meta() -> SegmentMeta {
        SegmentMeta {
            host: "h".into(),
            interfaces: vec![InterfaceInfo { index: 0, name: "eth0".into(), link_type: LinkType::ETHERNET }],
            snaplen: 64,
            clock_base_ns: 0,
            netrec_version: "test".into(),
            ruleset_digest: String::new(),
            ..SegmentMeta::default()
        }
    }

    fn packet(i: u64) -> PacketRecord {
        PacketRecord {
            ts: Ts(1_000_000_000 + i * 1000),
            iface: 0,
            direction: Direction::Ingress,
            link_type: LinkType::ETHERNET,
            wire_len: 60 + (i % 7) as u32,
            data: (0..40).map(|b| (b as u64 * 31 + i) as u8).collect(),
        }
    }

    /// An unclosed segment with `n` packets in blocks of about 1 KiB; returns its path and
    /// the packets.
    fn open_partial(dir: &Path, seq: u64, prev: [u8; 32], n: u64) -> (PathBuf, Vec<PacketRecord>) {
        let cfg = WriterConfig {
            max_block_bytes: 1024,
            max_block_age_ns: 0,
            zstd_level: 3,
            ..WriterConfig::default()
        };
        let info = SegmentHeaderInfo { seq, prev_sha256: prev, created_ns: 1_000_000_000 };
        let mut f = SegmentFile::create(dir, info, cfg).unwrap();
        f.write_meta(&meta()).unwrap();
        let pkts: Vec<PacketRecord> = (0..n).map(packet).collect();
        for p in &pkts {
            f.push_packet(&p.as_ref()).unwrap();
        }
        let path = f.partial_path();
        drop(f); // a crash: no flush, no trailer
        (path, pkts)
    }

    fn packets_of(path: &Path) -> Vec<PacketRecord> {
        let rd = SegmentReader::new(File::open(path).unwrap(), Recovery::Strict).unwrap();
        let mut out = Vec::new();
        for b in rd {
            if let BlockBody::Packets(p) = b.unwrap().body {
                out.extend(p.to_records());
            }
        }
        out
    }

    #[test]
    fn recovers_every_cut_of_a_partial_up_to_its_last_complete_block() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pkts) = open_partial(dir.path(), 7, [3; 32], 200);
        let full = fs::read(&path).unwrap();
        let mut recovered_any = 0;
        for cut in (0..=full.len()).step_by(97).chain([full.len()]) {
            let sub = tempfile::tempdir().unwrap();
            let p = sub.path().join(path.file_name().unwrap());
            fs::write(&p, &full[..cut]).unwrap();
            let r = recover_partial(&p).unwrap();
            assert!(!p.exists(), "cut {cut}: the .partial must be gone (renamed)");
            assert!(r.path.exists(), "cut {cut}");
            match r.outcome {
                RecoveryOutcome::Recovered => {
                    recovered_any += 1;
                    assert_eq!(
                        r.path.file_name().unwrap().to_str().unwrap(),
                        SegmentName::new(7, Ts(1_000_000_000)).to_string()
                    );
                    let rep = verify_file(File::open(&r.path).unwrap());
                    assert!(rep.is_intact(), "cut {cut}: {:?}", rep.damage);
                    assert!(rep.trailer_ext.recovered());
                    assert_eq!(rep.trailer_ext.original_len, cut as u64);
                    assert_eq!(rep.header.unwrap().prev_sha256, [3; 32]);
                    assert_eq!(rep.sha256, r.sha256);
                    let got = packets_of(&r.path);
                    assert_eq!(got, pkts[..got.len()], "cut {cut}: recovered packets are a prefix");
                    assert_eq!(got.len() as u64, r.counts.packets);
                    assert!(r.preserved.is_none(), "a torn tail needs no copy");
                }
                RecoveryOutcome::Quarantined => {
                    // Only when not even the meta block is complete.
                    assert!(cut < 200, "cut {cut} quarantined: {r}");
                    assert!(r.path.to_str().unwrap().ends_with(".nrseg.quarantine"));
                    assert_eq!(fs::read(&r.path).unwrap(), full[..cut], "quarantine keeps the bytes");
                }
                RecoveryOutcome::Finalized => panic!("cut {cut}: no trailer was written"),
            }
        }
        assert!(recovered_any > 10);
    }

    #[test]
    fn finalizes_a_partial_that_has_its_trailer() {
        let dir = tempfile::tempdir().unwrap();
        let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 5_000_000_000 };
        let mut f = SegmentFile::create(dir.path(), info, WriterConfig::default()).unwrap();
        f.write_meta(&meta()).unwrap();
        let partial = f.partial_path();
        let (closed, summary) = f.close().unwrap();
        fs::rename(&closed, &partial).unwrap(); // crash between trailer and rename
        let r = recover_partial(&partial).unwrap();
        assert_eq!(r.outcome, RecoveryOutcome::Finalized);
        assert_eq!(r.path, closed);
        assert_eq!(r.sha256, Some(summary.sha256));
        assert!(r.to_string().starts_with("finalized "), "{r}");
    }

    #[test]
    fn damage_inside_a_partial_keeps_a_copy_of_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pkts) = open_partial(dir.path(), 2, [0; 32], 200);
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let r = recover_partial(&path).unwrap();
        assert_eq!(r.outcome, RecoveryOutcome::Recovered, "{r}");
        let copy = r.preserved.clone().expect("original kept");
        assert_eq!(fs::read(&copy).unwrap(), bytes);
        let got = packets_of(&r.path);
        assert!(!got.is_empty() && got.len() < pkts.len());
        assert_eq!(got, pkts[..got.len()]);
        assert!(r.to_string().contains("original kept as"), "{r}");
    }

    #[test]
    fn garbage_and_empty_partials_are_quarantined_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let name = SegmentName::new(4, Ts(0)).partial();
        let p = dir.path().join(name.to_string());
        fs::write(&p, b"not a segment").unwrap();
        let r = recover_partial(&p).unwrap();
        assert_eq!(r.outcome, RecoveryOutcome::Quarantined);
        assert_eq!(fs::read(&r.path).unwrap(), b"not a segment");
        // A second one of the same name does not overwrite the first.
        fs::write(&p, b"").unwrap();
        let r2 = recover_partial(&p).unwrap();
        assert_ne!(r2.path, r.path);
        assert!(r.path.exists() && r2.path.exists());
        assert!(r2.to_string().contains("nothing recoverable"), "{r2}");
        // recover_dir reports every action; non-partials are untouched.
        let (done, failed) = recover_dir(dir.path()).unwrap();
        assert!(done.is_empty() && failed.is_empty());
        assert!(matches!(recover_partial(&r.path), Err(RecoverError::NotPartial { .. })));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any cut plus any byte changes of a `.partial`: recovery never panics, never loses the
        /// file (it is closed or quarantined), and what it keeps verifies and is a prefix of the
        /// packets written.
        #[test]
        fn recovery_of_damaged_partials_keeps_only_intact_prefixes(
            cut in 0.0f64..=1.0,
            flips in proptest::collection::vec((0.0f64..1.0, 1u8..=255), 0..3),
        ) {
            static ORIGINAL: std::sync::OnceLock<(String, Vec<u8>, Vec<PacketRecord>)> = std::sync::OnceLock::new();
            let (name, original, pkts) = ORIGINAL.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let (path, pkts) = open_partial(dir.path(), 3, [9; 32], 120);
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                (name, fs::read(&path).unwrap(), pkts)
            });
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            let mut bytes = original.clone();
            bytes.truncate((bytes.len() as f64 * cut) as usize);
            for (at, x) in flips {
                if !bytes.is_empty() {
                    let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                    bytes[i] ^= x;
                }
            }
            fs::write(&path, &bytes).unwrap();
            let r = recover_partial(&path).unwrap();
            proptest::prop_assert!(!path.exists());
            proptest::prop_assert!(r.path.exists());
            if r.outcome == RecoveryOutcome::Recovered {
                let rep = verify_file(File::open(&r.path).unwrap());
                proptest::prop_assert!(rep.is_intact(), "{:?}", rep.damage);
                let got = packets_of(&r.path);
                proptest::prop_assert_eq!(&got[..], &pkts[..got.len()]);
                if let Some(copy) = &r.preserved {
                    proptest::prop_assert_eq!(fs::read(copy).unwrap(), bytes);
                }
            }
        }
    }
}
