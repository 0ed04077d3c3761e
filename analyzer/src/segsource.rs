//! Segment files as a packet source: the packet-header blocks of a recording, replayed
//! through the same decoder and engine as captures.

use crate::pipeline::InputError;
use netrec_format::PacketRef;
use netrec_format::segment::{BlockBody, Recovery, SegmentReader};
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
        Ok(self.block.as_ref().and_then(|b| b.get(i)))
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
