//! Classic pcap writer (nanosecond magic, Ethernet link type) and a minimal reader for tests.

use std::io::{self, Write};

pub const MAGIC_NS: u32 = 0xa1b2_3c4d;
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Streams records; frames longer than `snaplen` are truncated with the original length kept.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// `snaplen == 0` means "no truncation" (header says 262144).
    pub fn new(mut w: W, snaplen: u32) -> io::Result<Self> {
        let snaplen = if snaplen == 0 { 262_144 } else { snaplen };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs = 0
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, snaplen })
    }

    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Write a whole frame, truncating to the snaplen.
    #[inline]
    pub fn write_frame(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let incl = frame.len().min(self.snaplen as usize);
        self.write_record(ts_ns, &frame[..incl], frame.len() as u32)
    }

    /// Write an already-truncated record with its original wire length.
    #[inline]
    pub fn write_record(&mut self, ts_ns: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// One record read back: (timestamp ns, captured bytes, original length).
pub type Record<'a> = (u64, &'a [u8], u32);

/// Parse a whole nanosecond pcap produced by [`PcapWriter`]; `None` if malformed.
pub fn parse(bytes: &[u8]) -> Option<(u32, Vec<Record<'_>>)> {
    let u32_at =
        |b: &[u8], o: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)) };
    if u32_at(bytes, 0)? != MAGIC_NS || u32_at(bytes, 20)? != LINKTYPE_ETHERNET {
        return None;
    }
    let snaplen = u32_at(bytes, 16)?;
    let mut out = Vec::new();
    let mut off = 24;
    while off < bytes.len() {
        let sec = u32_at(bytes, off)? as u64;
        let nsec = u32_at(bytes, off + 4)? as u64;
        let incl = u32_at(bytes, off + 8)? as usize;
        let orig = u32_at(bytes, off + 12)?;
        let data = bytes.get(off + 16..off + 16 + incl)?;
        if nsec >= 1_000_000_000 || incl > snaplen as usize || incl as u32 > orig {
            return None;
        }
        out.push((sec * 1_000_000_000 + nsec, data, orig));
        off += 16 + incl;
    }
    Some((snaplen, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new(), 4).unwrap();
        w.write_frame(1_767_225_600_000_000_123, &[1, 2, 3, 4, 5, 6]).unwrap();
        let b = w.into_inner();
        assert_eq!(&b[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(b.len(), 24 + 16 + 4);
        let (snap, recs) = parse(&b).unwrap();
        assert_eq!(snap, 4);
        assert_eq!(recs, vec![(1_767_225_600_000_000_123, &[1u8, 2, 3, 4][..], 6)]);
    }

    #[test]
    fn parse_rejects_truncated_record() {
        let mut w = PcapWriter::new(Vec::new(), 0).unwrap();
        w.write_frame(5, &[9; 10]).unwrap();
        let b = w.into_inner();
        assert!(parse(&b[..b.len() - 1]).is_none());
    }
}
