//! Segment files as a packet source: the packet-header blocks of a recording, replayed
//! through the same decoder and engine as captures.

use crate::pipeline::InputError;
use netrec_format::PacketRef;
use netrec_format::segment::{BlockBody, Recovery, SegmentReader};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Reads packet blocks one at a time (bounded memory) and hands out their packets.
pub struct SegmentPackets {
    path: PathBuf,
    reader: SegmentReader<BufReader<File>>,
    block: Option<netrec_format::segment::PacketBlock>,
    next: usize,
    done: bool,
    warnings: Vec<String>,
    consumed: u64,
}

impl std::fmt::Debug for SegmentPackets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentPackets").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SegmentPackets {
    pub fn open(path: &Path) -> Result<SegmentPackets, InputError> {
        let file = File::open(path).map_err(|source| InputError::Io { path: path.to_path_buf(), source })?;
        // A torn tail (crash, still being written) yields every complete block and a warning;
        // a corrupt block in the middle is skipped and reported, never fatal.
        let reader = SegmentReader::new(BufReader::with_capacity(1 << 20, file), Recovery::SkipCorrupt)
            .map_err(|source| InputError::Segment { path: path.to_path_buf(), source })?;
        Ok(SegmentPackets {
            path: path.to_path_buf(),
            reader,
            block: None,
            next: 0,
            done: false,
            warnings: Vec::new(),
            consumed: 0,
        })
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
                    self.warnings.push(format!("{source}"));
                }
            }
            for w in self.reader.take_warnings() {
                self.warnings.push(w.to_string());
            }
        }
        let i = self.next;
        self.next += 1;
        Ok(self.block.as_ref().and_then(|b| b.get(i)))
    }

    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
