//! pcapng writer: one little-endian section, IDBs with `if_tsresol` = 9 (nanoseconds),
//! EPBs with optional `opt_comment` and `epb_flags` direction.

use super::CapWriteError;
use netrec_format::{Direction, LinkType, PacketRef};
use std::io::Write;

const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 1;
const BT_EPB: u32 = 6;
const OPT_COMMENT: u16 = 1;
const OPT_EPB_FLAGS: u16 = 2;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_TSRESOL: u16 = 9;
const ZEROS: [u8; 4] = [0; 4];

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Size of one option (header + padded value).
fn opt_len(val: usize) -> usize {
    4 + pad4(val)
}

fn check_opt(what: &'static str, len: usize) -> Result<(), CapWriteError> {
    if len > u16::MAX as usize { Err(CapWriteError::OptionTooLong { what, len }) } else { Ok(()) }
}

/// Writes a pcapng file with one section.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    w: W,
    /// Snaplen of each added interface (0 = no limit).
    snaplens: Vec<u32>,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the Section Header Block.
    pub fn new(mut w: W) -> Result<PcapNgWriter<W>, CapWriteError> {
        let appl = concat!("netrec ", env!("CARGO_PKG_VERSION")).as_bytes();
        let total = 28 + opt_len(appl.len()) + 4;
        let total32 = total as u32;
        w.write_all(&BT_SHB.to_le_bytes())?;
        w.write_all(&total32.to_le_bytes())?;
        w.write_all(&0x1A2B_3C4Du32.to_le_bytes())?;
        w.write_all(&1u16.to_le_bytes())?;
        w.write_all(&0u16.to_le_bytes())?;
        w.write_all(&(-1i64).to_le_bytes())?;
        write_opt(&mut w, OPT_SHB_USERAPPL, appl)?;
        w.write_all(&ZEROS)?; // opt_endofopt
        w.write_all(&total32.to_le_bytes())?;
        Ok(PcapNgWriter { w, snaplens: Vec::new() })
    }

    /// Writes an Interface Description Block and returns its interface id (0, 1, ...).
    pub fn add_interface(
        &mut self,
        link_type: LinkType,
        snaplen: u32,
        name: &str,
    ) -> Result<u32, CapWriteError> {
        self.add_interface_described(link_type, snaplen, name, "")
    }

    /// Like [`Self::add_interface`], with an `if_description` option (left out when empty).
    pub fn add_interface_described(
        &mut self,
        link_type: LinkType,
        snaplen: u32,
        name: &str,
        description: &str,
    ) -> Result<u32, CapWriteError> {
        check_opt("if_name", name.len())?;
        check_opt("if_description", description.len())?;
        let link16 = u16::try_from(link_type.0).map_err(|_| CapWriteError::OptionTooLong {
            what: "link type (16 bits in pcapng)",
            len: link_type.0 as usize,
        })?;
        let mut opts = opt_len(1) + 4;
        for v in [name, description] {
            if !v.is_empty() {
                opts += opt_len(v.len());
            }
        }
        let total = (20 + opts) as u32;
        let w = &mut self.w;
        w.write_all(&BT_IDB.to_le_bytes())?;
        w.write_all(&total.to_le_bytes())?;
        w.write_all(&link16.to_le_bytes())?;
        w.write_all(&0u16.to_le_bytes())?;
        w.write_all(&snaplen.to_le_bytes())?;
        if !name.is_empty() {
            write_opt(w, OPT_IF_NAME, name.as_bytes())?;
        }
        if !description.is_empty() {
            write_opt(w, OPT_IF_DESCRIPTION, description.as_bytes())?;
        }
        write_opt(w, OPT_IF_TSRESOL, &[9])?;
        w.write_all(&ZEROS)?;
        w.write_all(&total.to_le_bytes())?;
        self.snaplens.push(snaplen);
        Ok(self.snaplens.len() as u32 - 1)
    }

    /// Writes an Enhanced Packet Block on interface `iface_id` (from `add_interface`).
    /// `p.iface` is not used. Data beyond the interface's snaplen is cut.
    pub fn write_packet(
        &mut self,
        iface_id: u32,
        p: &PacketRef<'_>,
        comment: Option<&str>,
    ) -> Result<(), CapWriteError> {
        match comment {
            Some(c) => self.write_packet_comments(iface_id, p, &[c]),
            None => self.write_packet_comments(iface_id, p, &[]),
        }
    }

    /// Like [`Self::write_packet`] with any number of `opt_comment` options (pcapng allows
    /// the option to repeat; empty comments are left out).
    pub fn write_packet_comments(
        &mut self,
        iface_id: u32,
        p: &PacketRef<'_>,
        comments: &[&str],
    ) -> Result<(), CapWriteError> {
        let Some(&snaplen) = self.snaplens.get(iface_id as usize) else {
            return Err(CapWriteError::UnknownInterface {
                iface: iface_id,
                count: self.snaplens.len() as u32,
            });
        };
        let mut data = p.data;
        if snaplen != 0 && data.len() > snaplen as usize {
            data = &data[..snaplen as usize];
        }
        let caplen =
            u32::try_from(data.len()).map_err(|_| CapWriteError::PacketTooLong { len: data.len() })?;
        let flags = match p.direction {
            Direction::Unknown => None,
            Direction::Ingress => Some(1u32),
            Direction::Egress => Some(2u32),
        };
        let mut opts = 0usize;
        for c in comments.iter().filter(|c| !c.is_empty()) {
            check_opt("opt_comment", c.len())?;
            opts += opt_len(c.len());
        }
        if flags.is_some() {
            opts += opt_len(4);
        }
        if opts > 0 {
            opts += 4;
        }
        let total = 28 + pad4(data.len()) + opts + 4;
        let total = u32::try_from(total).map_err(|_| CapWriteError::PacketTooLong { len: data.len() })?;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&BT_EPB.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..12].copy_from_slice(&iface_id.to_le_bytes());
        h[12..16].copy_from_slice(&((p.ts.0 >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(p.ts.0 as u32).to_le_bytes());
        h[20..24].copy_from_slice(&caplen.to_le_bytes());
        h[24..28].copy_from_slice(&p.wire_len.max(caplen).to_le_bytes());
        let w = &mut self.w;
        w.write_all(&h)?;
        w.write_all(data)?;
        w.write_all(&ZEROS[..pad4(data.len()) - data.len()])?;
        for c in comments.iter().filter(|c| !c.is_empty()) {
            write_opt(w, OPT_COMMENT, c.as_bytes())?;
        }
        if let Some(f) = flags {
            write_opt(w, OPT_EPB_FLAGS, &f.to_le_bytes())?;
        }
        if opts > 0 {
            w.write_all(&ZEROS)?;
        }
        w.write_all(&total.to_le_bytes())?;
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

/// Writes one option (caller checked that `val` fits in 16 bits).
fn write_opt<W: Write>(w: &mut W, code: u16, val: &[u8]) -> Result<(), CapWriteError> {
    w.write_all(&code.to_le_bytes())?;
    w.write_all(&(val.len() as u16).to_le_bytes())?;
    w.write_all(val)?;
    w.write_all(&ZEROS[..pad4(val.len()) - val.len()])?;
    Ok(())
}
