//! Segment files as a packet source: the packet-header blocks of a recording, replayed
//! through the same decoder and engine as captures.

use crate::pipeline::InputError;
use netrec_format::segment::{BlockBody, Recovery, SegmentReader};
use netrec_format::{PacketRef, Ts};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Reads packet blocks one at a time (bounded memory) and hands out their packets. A chain
/// (the rotated files of one recording) is read file after file as one stream.
pub struct SegmentPackets {
    path: PathBuf,
    /// Files of the chain still to read, in order (empty for a single file).
    rest: std::collections::VecDeque<PathBuf>,
    reader: SegmentReader<BufReader<File>>,
    block: Option<netrec_format::segment::PacketBlock>,
    next: usize,
    done: bool,
    warnings: Vec<String>,
    consumed: u64,
    /// Size of the chain's files already read.
    done_bytes: u64,
}

/// Latest packet time replayed: the database stores times as signed 64-bit integers, and the
/// capture readers clamp to the same bound (`source::pcapng`), so every output shows one time.
const MAX_TS_NS: u64 = i64::MAX as u64;

fn open_reader(path: &Path) -> Result<SegmentReader<BufReader<File>>, InputError> {
    let file = File::open(path).map_err(|source| InputError::Io { path: path.to_path_buf(), source })?;
    // A torn tail (crash, still being written) yields every complete block and a warning;
    // a corrupt block in the middle is skipped and reported, never fatal.
    SegmentReader::new(BufReader::with_capacity(1 << 20, file), Recovery::SkipCorrupt)
        .map_err(|source| InputError::Segment { path: path.to_path_buf(), source })
}

impl std::fmt::Debug for SegmentPackets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentPackets").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SegmentPackets {
    pub fn open(path: &Path) -> Result<SegmentPackets, InputError> {
        Self::open_chain(std::slice::from_ref(&path.to_path_buf()))
    }

    /// The files of a chain, read in the given order. A file whose header cannot be read is
    /// skipped with a warning (like a corrupt block inside a file: the rest of the recording is
    /// still replayed); the error is returned only when no file opens.
    pub fn open_chain(paths: &[PathBuf]) -> Result<SegmentPackets, InputError> {
        let mut warnings = Vec::new();
        let mut first_err = None;
        for (k, path) in paths.iter().enumerate() {
            match open_reader(path) {
                Ok(reader) => {
                    return Ok(SegmentPackets {
                        path: path.clone(),
                        rest: paths[k + 1..].iter().cloned().collect(),
                        reader,
                        block: None,
                        next: 0,
                        done: false,
                        warnings,
                        consumed: 0,
                        done_bytes: 0,
                    });
                }
                Err(e) => {
                    warnings.push(format!("{e}; file skipped"));
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| InputError::EmptyDirectory { path: PathBuf::new() }))
    }

    pub fn next_packet(&mut self) -> Result<Option<PacketRef<'_>>, InputError> {
        loop {
            if self.block.as_ref().is_some_and(|b| self.next < b.len()) {
                break;
            }
            self.block = None;
            self.next = 0;
            if self.done {
                return Ok(None);
            }
            match self.reader.next_block() {
                Ok(Some(block)) => {
                    self.consumed = self.reader.offset();
                    if let BlockBody::Packets(p) = block.body {
                        let late = p.iter().filter(|r| r.ts.0 > MAX_TS_NS).count();
                        if late > 0 {
                            self.warnings.push(format!(
                                "{}: packet block ending at byte {}: {late} packet times beyond {MAX_TS_NS} ns \
                                 (2262-04-11) clamped to it",
                                self.path.display(),
                                self.consumed
                            ));
                        }
                        self.block = Some(p);
                    }
                }
                Ok(None) => {
                    self.done = true;
                }
                Err(source) => {
                    self.done = true;
                    self.warnings.push(format!("{}: {source}", self.path.display()));
                }
            }
            for w in self.reader.take_warnings() {
                self.warnings.push(format!("{}: {w}", self.path.display()));
            }
            if self.done {
                self.next_file();
            }
        }
        let i = self.next;
        self.next += 1;
        Ok(self
            .block
            .as_ref()
            .and_then(|b| b.get(i))
            .map(|p| PacketRef { ts: Ts(p.ts.0.min(MAX_TS_NS)), ..p }))
    }

    /// Move on to the next file of the chain that opens (`done` stays set when there is none).
    fn next_file(&mut self) {
        while let Some(path) = self.rest.pop_front() {
            match open_reader(&path) {
                Ok(reader) => {
                    self.done_bytes += self.consumed;
                    self.consumed = 0;
                    self.reader = reader;
                    self.path = path;
                    self.done = false;
                    return;
                }
                Err(e) => self.warnings.push(format!("{e}; file skipped")),
            }
        }
    }

    /// Bytes of the chain's files consumed so far.
    pub fn bytes_consumed(&self) -> u64 {
        self.done_bytes + self.consumed
    }

    /// Reader warnings, each starting with the file it concerns.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_format::segment::{SegmentHeaderInfo, SegmentWriter, WriterConfig};
    use netrec_format::{Direction, LinkType};

    /// Times a crafted (or corrupted-then-recrced) segment carries beyond what the database
    /// stores are clamped as the capture readers clamp them, with one warning per block.
    #[test]
    fn packet_times_beyond_i64_are_clamped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.nrseg");
        let info = SegmentHeaderInfo { seq: 0, prev_sha256: [0; 32], created_ns: 0 };
        let cfg =
            WriterConfig { max_block_bytes: 1 << 20, max_block_age_ns: 0, zstd_level: 1, header_delta: true };
        let mut w = SegmentWriter::new(File::create(&path).unwrap(), info, cfg).unwrap();
        let frame = [0u8; 60];
        for ts in [5, u64::MAX, MAX_TS_NS + 1, MAX_TS_NS] {
            let p = PacketRef {
                ts: Ts(ts),
                iface: 0,
                direction: Direction::Unknown,
                link_type: LinkType::ETHERNET,
                wire_len: 60,
                data: &frame,
            };
            w.push_packet(&p).unwrap();
        }
        w.finish().unwrap();
        let mut src = SegmentPackets::open(&path).unwrap();
        let mut times = Vec::new();
        while let Some(p) = src.next_packet().unwrap() {
            times.push(p.ts.0);
        }
        assert_eq!(times, [5, MAX_TS_NS, MAX_TS_NS, MAX_TS_NS]);
        let w = src.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("2 packet times beyond") && w[0].contains("late.nrseg"), "{w:?}");
    }
}
