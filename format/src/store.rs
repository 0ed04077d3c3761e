//! Segment files on disk: create as `.partial`, fsync each block, rename when closed;
//! rotation and retention policies (pure, time passed in); directory listing.
//!
//! Only `std::fs`; no clock is read: every time is a parameter.

use crate::model::*;
use crate::segment::{
    SegmentError, SegmentHeaderInfo, SegmentName, SegmentSummary, SegmentWriter, WriterConfig,
};
use std::fs::{self, File};
use std::io;
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
        let w = SegmentWriter::new(f, info, cfg)?;
        let sf = SegmentFile { dir: dir.to_owned(), name, opened_at: Ts(info.created_ns), w };
        sf.sync(1)?;
        sync_dir(dir)?;
        Ok(sf)
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
}
