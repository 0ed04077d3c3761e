//! Classic pcap writer (nanosecond magic `a1b23c4d`, little-endian, version 2.4).

use super::CapWriteError;
use netrec_format::{LinkType, PacketRef};
use std::io::Write;

/// Writes a classic pcap file with nanosecond timestamps.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. `snaplen` 0 means "no limit" when writing records (the
    /// header then says 262144).
    pub fn new(mut w: W, link_type: LinkType, snaplen: u32) -> Result<PcapWriter<W>, CapWriteError> {
        let header_snaplen = if snaplen == 0 { 262_144 } else { snaplen };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&header_snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link_type.0.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, snaplen })
    }

    /// Writes one record; data beyond the snaplen is cut (the original length is kept).
    pub fn write_packet(&mut self, p: &PacketRef<'_>) -> Result<(), CapWriteError> {
        let sec = p.ts.0 / 1_000_000_000;
        let sec = u32::try_from(sec).map_err(|_| CapWriteError::TimestampOutOfRange { ts_ns: p.ts.0 })?;
        let ns = (p.ts.0 % 1_000_000_000) as u32;
        let mut data = p.data;
        if self.snaplen != 0 && data.len() > self.snaplen as usize {
            data = &data[..self.snaplen as usize];
        }
        let incl = u32::try_from(data.len()).map_err(|_| CapWriteError::PacketTooLong { len: data.len() })?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&ns.to_le_bytes());
        h[8..12].copy_from_slice(&incl.to_le_bytes());
        h[12..16].copy_from_slice(&p.wire_len.max(incl).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), CapWriteError> {
        Ok(self.w.flush()?)
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> Result<W, CapWriteError> {
        self.w.flush()?;
        Ok(self.w)
    }
}
