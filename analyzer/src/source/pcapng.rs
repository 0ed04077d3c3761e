//! pcapng reader (draft-ietf-opsawg-pcapng): SHB, IDB, EPB, SPB, OPB; every other block
//! is skipped by its length.

use super::buf::StreamBuf;
use super::{Ctx, HeaderFail, MAX_CAPTURED_LEN, Pkt, Step, WarningKind, rd16, rd32, rd64};
use netrec_format::{Direction, InterfaceInfo, LinkType, Ts};
use std::io;

const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 1;
const BT_OPB: u32 = 2;
const BT_SPB: u32 = 3;
const BT_NRB: u32 = 4;
const BT_ISB: u32 = 5;
const BT_EPB: u32 = 6;
const BT_SYSTEMD_JOURNAL: u32 = 9;
const BT_DSB: u32 = 10;
const BT_CUSTOM: u32 = 0x0000_0BAD;
const BT_CUSTOM_NOCOPY: u32 = 0x4000_0BAD;

const BOM: u32 = 0x1A2B_3C4D;
/// Blocks this reader parses must fit in memory at once; anything larger is damage.
/// (Packet data is bounded separately by `MAX_CAPTURED_LEN`.)
const MAX_PARSED_BLOCK: u32 = 4 << 20;
const MIN_BLOCK: u32 = 12;

const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// `epb_flags` (EPB) and `pack_flags` (OPB) share code 2.
const OPT_FLAGS: u16 = 2;

/// Timestamp unit of an interface: 10^-k or 2^-k seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsRes {
    Dec(u32),
    Bin(u32),
}

#[derive(Clone, Copy, Debug)]
struct Iface {
    global: u32,
    link_type: LinkType,
    snaplen: u32,
    res: TsRes,
    offset_s: i64,
}

#[derive(Debug)]
pub(crate) struct PcapNgParser {
    le: bool,
    /// Interfaces of the current section, by local id.
    ifaces: Vec<Iface>,
    last_ts: Ts,
}

#[inline]
fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Converts a raw pcapng timestamp to ns since the epoch; `None` when out of range.
fn ts_to_ns(raw: u64, res: TsRes, offset_s: i64) -> Option<u64> {
    let scaled: u128 = match res {
        TsRes::Dec(k) if k <= 9 => raw as u128 * 10u128.pow(9 - k),
        TsRes::Dec(k) => 10u128.checked_pow(k - 9).map_or(0, |d| raw as u128 / d),
        // raw < 2^64 and 1e9 < 2^30, so the product fits; k <= 127.
        TsRes::Bin(k) => (raw as u128 * 1_000_000_000) >> k.min(127),
    };
    let total = scaled as i128 + offset_s as i128 * 1_000_000_000;
    // At most i64::MAX: the database stores times as SQLite integers (signed 64 bits).
    u64::try_from(total).ok().filter(|&ns| ns <= i64::MAX as u64)
}

/// Walks a pcapng option list; `f(code, value)` for each option before `opt_endofopt`.
/// Returns false when an option runs past the end of the list.
fn for_each_option(opts: &[u8], le: bool, mut f: impl FnMut(u16, &[u8])) -> bool {
    let mut at = 0usize;
    while at + 4 <= opts.len() {
        let code = rd16(opts, at, le);
        let len = rd16(opts, at + 2, le) as usize;
        if code == OPT_ENDOFOPT {
            return true;
        }
        let Some(val) = opts.get(at + 4..at + 4 + len) else {
            return false;
        };
        f(code, val);
        at += 4 + pad4(len);
    }
    true
}

/// Reads the byte order from a SHB's byte-order magic.
fn shb_order(block: &[u8]) -> Option<bool> {
    if rd32(block, 8, true) == BOM {
        Some(true)
    } else if rd32(block, 8, false) == BOM {
        Some(false)
    } else {
        None
    }
}

impl PcapNgParser {
    /// Parses the first Section Header Block (magic already recognised) and consumes it.
    pub(crate) fn start(buf: &mut StreamBuf, _ctx: &mut Ctx) -> Result<PcapNgParser, HeaderFail> {
        let bad = |offset: u64, what: String| HeaderFail::Bad { offset, what };
        if !buf.fill(12).map_err(HeaderFail::Io)? {
            return Err(bad(0, format!("section header block cut short: {} bytes", buf.len())));
        }
        let Some(le) = shb_order(buf.avail()) else {
            return Err(bad(8, format!("bad byte-order magic 0x{:08x}", rd32(buf.avail(), 8, true))));
        };
        let total = rd32(buf.avail(), 4, le);
        if !(28..=MAX_PARSED_BLOCK).contains(&total) || !total.is_multiple_of(4) {
            return Err(bad(4, format!("section header block length {total} invalid")));
        }
        if !buf.fill(total as usize).map_err(HeaderFail::Io)? {
            return Err(bad(0, format!("section header block of {total} bytes cut after {}", buf.len())));
        }
        let block = buf.avail();
        let trailing = rd32(block, total as usize - 4, le);
        if trailing != total {
            return Err(bad(
                total as u64 - 4,
                format!("section header trailing length {trailing} differs from leading {total}"),
            ));
        }
        let major = rd16(block, 12, le);
        if major != 1 {
            return Err(bad(12, format!("unsupported pcapng version {major}.{}", rd16(block, 14, le))));
        }
        buf.consume(total as usize);
        Ok(PcapNgParser { le, ifaces: Vec::new(), last_ts: Ts::ZERO })
    }

    /// Processes blocks until a packet (or, with `stop_at_packet`, until a packet block
    /// is next, without consuming it) or the end of the input.
    pub(crate) fn next(
        &mut self,
        buf: &mut StreamBuf,
        ctx: &mut Ctx,
        stop_at_packet: bool,
    ) -> io::Result<Step> {
        loop {
            let offset = buf.offset();
            if !buf.fill(8)? {
                let left = buf.len();
                if left > 0 {
                    ctx.warnings.add(offset, WarningKind::TrailingGarbage, true, || {
                        format!("{left} bytes at end of input, too few for a block header")
                    });
                    buf.consume(left);
                }
                return Ok(Step::End);
            }
            let btype = rd32(buf.avail(), 0, self.le);
            // A SHB's magic reads the same in either byte order; its own BOM gives the
            // byte order of its length and of the whole new section.
            let le = if btype == BT_SHB {
                if !buf.fill(12)? {
                    return Ok(self.cut(buf, ctx, offset, 12));
                }
                match shb_order(buf.avail()) {
                    Some(le) => le,
                    None => {
                        ctx.warnings.add(offset, WarningKind::BadBlock, true, || {
                            "section header block with a bad byte-order magic; input ends here".into()
                        });
                        return Ok(Step::End);
                    }
                }
            } else {
                self.le
            };
            let total = rd32(buf.avail(), 4, le);
            if total < MIN_BLOCK || !total.is_multiple_of(4) {
                ctx.warnings.add(offset, WarningKind::BadBlock, true, || {
                    format!("block type 0x{btype:08x} has invalid total length {total}; input ends here")
                });
                return Ok(Step::End);
            }
            let parsed = matches!(btype, BT_SHB | BT_IDB | BT_EPB | BT_SPB | BT_OPB);
            if stop_at_packet && matches!(btype, BT_EPB | BT_SPB | BT_OPB) {
                return Ok(Step::AtPacket);
            }
            if !parsed || total > MAX_PARSED_BLOCK {
                if parsed {
                    ctx.warnings.add(offset, WarningKind::BadBlock, true, || {
                        format!("block type {btype} of {total} bytes exceeds the {MAX_PARSED_BLOCK}-byte limit; input ends here")
                    });
                    return Ok(Step::End);
                }
                if let Some(step) = self.skip_block(buf, ctx, offset, btype, total)? {
                    return Ok(step);
                }
                continue;
            }
            let total = total as usize;
            if !buf.fill(total)? {
                return Ok(self.cut(buf, ctx, offset, total));
            }
            let trailing = rd32(buf.avail(), total - 4, le);
            if trailing as usize != total {
                ctx.warnings.add(offset, WarningKind::BadBlock, true, || {
                    format!("block trailing length {trailing} differs from leading {total}; input ends here")
                });
                return Ok(Step::End);
            }
            let start = buf.pos();
            let block = buf.avail().get(..total).unwrap_or(&[]);
            let pkt = match btype {
                BT_SHB => {
                    let major = rd16(block, 12, le);
                    if major != 1 {
                        ctx.warnings.add(offset, WarningKind::BadBlock, true, || {
                            format!("section header of unsupported pcapng version {major}; input ends here")
                        });
                        return Ok(Step::End);
                    }
                    self.le = le;
                    self.ifaces.clear();
                    None
                }
                BT_IDB => {
                    self.parse_idb(block, ctx, offset);
                    None
                }
                BT_EPB | BT_OPB => self.parse_epb(block, btype, start, ctx, offset),
                _ => self.parse_spb(block, start, ctx, offset),
            };
            buf.consume(total);
            if let Some(p) = pkt {
                return Ok(Step::Packet(p));
            }
        }
    }

    /// The input ended inside a block of `need` bytes starting at `offset`.
    fn cut(&self, buf: &mut StreamBuf, ctx: &mut Ctx, offset: u64, need: usize) -> Step {
        let have = buf.len();
        ctx.warnings.add(offset, WarningKind::TruncatedRecord, true, || {
            format!("block of {need} bytes cut after {have} bytes at end of input")
        });
        buf.consume(have);
        Step::End
    }

    /// Skips a block this reader does not parse, streaming, and checks its trailing length.
    fn skip_block(
        &self,
        buf: &mut StreamBuf,
        ctx: &mut Ctx,
        offset: u64,
        btype: u32,
        total: u32,
    ) -> io::Result<Option<Step>> {
        let known =
            matches!(btype, BT_NRB | BT_ISB | BT_DSB | BT_SYSTEMD_JOURNAL | BT_CUSTOM | BT_CUSTOM_NOCOPY);
        let body = total as u64 - 4;
        if buf.skip(body)? < body || !buf.fill(4)? {
            return Ok(Some(self.cut(buf, ctx, offset, total as usize)));
        }
        let trailing = rd32(buf.avail(), 0, self.le);
        if trailing != total {
            ctx.warnings.add(offset, WarningKind::BadBlock, true, || {
                format!("block trailing length {trailing} differs from leading {total}; input ends here")
            });
            return Ok(Some(Step::End));
        }
        buf.consume(4);
        if !known {
            ctx.warnings.add(offset, WarningKind::UnknownBlock, false, || {
                format!("unknown block type 0x{btype:08x} ({total} bytes) skipped")
            });
        }
        Ok(None)
    }

    fn parse_idb(&mut self, block: &[u8], ctx: &mut Ctx, offset: u64) {
        let le = self.le;
        let body_end = block.len() - 4;
        let global = ctx.interfaces.len() as u32;
        let mut iface = Iface {
            global,
            link_type: LinkType(rd16(block, 8, le) as u32),
            snaplen: rd32(block, 12, le),
            res: TsRes::Dec(6),
            offset_s: 0,
        };
        let mut name = String::new();
        if body_end < 16 {
            // Keep the numbering of later interfaces right even for a damaged IDB.
            ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                format!("interface description block too short ({} bytes)", block.len())
            });
        } else {
            let opts = block.get(16..body_end).unwrap_or(&[]);
            let ok = for_each_option(opts, le, |code, val| match code {
                OPT_IF_NAME => name = String::from_utf8_lossy(val).trim_end_matches('\0').to_owned(),
                OPT_IF_TSRESOL => {
                    if let Some(&r) = val.first() {
                        iface.res =
                            if r & 0x80 != 0 { TsRes::Bin((r & 0x7f) as u32) } else { TsRes::Dec(r as u32) };
                    }
                }
                OPT_IF_TSOFFSET => iface.offset_s = rd64(val, 0, le) as i64,
                _ => {}
            });
            if !ok {
                ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                    "interface description block options run past the block".into()
                });
            }
        }
        self.ifaces.push(iface);
        ctx.interfaces.push(InterfaceInfo { index: global, name, link_type: iface.link_type });
    }

    /// Enhanced (type 6) or obsolete (type 2) packet block.
    fn parse_epb(
        &mut self,
        block: &[u8],
        btype: u32,
        start: usize,
        ctx: &mut Ctx,
        offset: u64,
    ) -> Option<Pkt> {
        let le = self.le;
        let body_end = block.len() - 4;
        if body_end < 28 {
            ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                format!("packet block too short ({} bytes); skipped", block.len())
            });
            return None;
        }
        let id = if btype == BT_OPB { rd16(block, 8, le) as u32 } else { rd32(block, 8, le) };
        let raw_ts = (rd32(block, 12, le) as u64) << 32 | rd32(block, 16, le) as u64;
        let caplen = rd32(block, 20, le);
        let orig = rd32(block, 24, le);
        let Some(iface) = self.ifaces.get(id as usize).copied() else {
            ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                format!("packet block names interface {id}, not described in this section; skipped")
            });
            return None;
        };
        if caplen > MAX_CAPTURED_LEN {
            ctx.warnings.add(offset, WarningKind::BadRecordLength, false, || {
                format!("packet block claims {caplen} captured bytes (limit {MAX_CAPTURED_LEN}); skipped")
            });
            return None;
        }
        let data_end = 28 + pad4(caplen as usize);
        if data_end > body_end {
            ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                format!("packet block claims {caplen} captured bytes, more than the block holds; skipped")
            });
            return None;
        }
        let mut direction = Direction::Unknown;
        let opts = block.get(data_end..body_end).unwrap_or(&[]);
        if !opts.is_empty() {
            let ok = for_each_option(opts, le, |code, val| {
                if code == OPT_FLAGS && val.len() >= 4 {
                    direction = match rd32(val, 0, le) & 3 {
                        1 => Direction::Ingress,
                        2 => Direction::Egress,
                        _ => Direction::Unknown,
                    };
                }
            });
            if !ok {
                ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                    "packet block options run past the block".into()
                });
            }
        }
        let ts = self.ts(raw_ts, &iface, ctx, offset);
        self.last_ts = ts;
        Some(Pkt {
            ts,
            iface: iface.global,
            direction,
            link_type: iface.link_type,
            wire_len: orig.max(caplen),
            start: start + 28,
            len: caplen as usize,
        })
    }

    /// Simple packet block: interface 0, no timestamp (reuses the previous packet's).
    fn parse_spb(&mut self, block: &[u8], start: usize, ctx: &mut Ctx, offset: u64) -> Option<Pkt> {
        let le = self.le;
        let body_end = block.len() - 4;
        let Some(iface) = self.ifaces.first().copied() else {
            ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                "simple packet block before any interface description; skipped".into()
            });
            return None;
        };
        if body_end < 12 {
            ctx.warnings.add(offset, WarningKind::BadBlock, false, || {
                format!("simple packet block too short ({} bytes); skipped", block.len())
            });
            return None;
        }
        let orig = rd32(block, 8, le);
        let mut caplen = (orig as usize).min(body_end - 12);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        let caplen = caplen.min(MAX_CAPTURED_LEN as usize);
        Some(Pkt {
            ts: self.last_ts,
            iface: iface.global,
            direction: Direction::Unknown,
            link_type: iface.link_type,
            wire_len: orig.max(caplen as u32),
            start: start + 12,
            len: caplen,
        })
    }

    fn ts(&self, raw: u64, iface: &Iface, ctx: &mut Ctx, offset: u64) -> Ts {
        match ts_to_ns(raw, iface.res, iface.offset_s) {
            Some(ns) => Ts(ns),
            None => {
                ctx.warnings.add(offset, WarningKind::InvalidTimestamp, false, || {
                    format!(
                        "timestamp {raw} (offset {} s) outside the representable range; clamped",
                        iface.offset_s
                    )
                });
                Ts(if iface.offset_s < 0 { 0 } else { i64::MAX as u64 })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(ts_to_ns(1_500_000, TsRes::Dec(6), 0), Some(1_500_000_000));
        assert_eq!(ts_to_ns(7, TsRes::Dec(9), 0), Some(7));
        assert_eq!(ts_to_ns(12_345, TsRes::Dec(12), 0), Some(12));
        assert_eq!(ts_to_ns(3, TsRes::Dec(0), 10), Some(13_000_000_000));
        // 2^-20 s units: 1.5 s is 1.5 * 2^20.
        assert_eq!(ts_to_ns(3 << 19, TsRes::Bin(20), 0), Some(1_500_000_000));
        assert_eq!(ts_to_ns(1, TsRes::Bin(127), 0), Some(0));
        assert_eq!(ts_to_ns(u64::MAX, TsRes::Dec(0), 0), None);
        // Up to i64::MAX ns, not beyond (the database's integers).
        assert_eq!(ts_to_ns(i64::MAX as u64, TsRes::Dec(9), 0), Some(i64::MAX as u64));
        assert_eq!(ts_to_ns(i64::MAX as u64 + 1, TsRes::Dec(9), 0), None);
        assert_eq!(ts_to_ns(0, TsRes::Dec(6), -1), None);
        assert_eq!(ts_to_ns(1, TsRes::Dec(127), 0), Some(0));
    }

    #[test]
    fn options_walk_stops_at_end_and_flags_overrun() {
        let mut seen = Vec::new();
        let opts = [2, 0, 3, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0, 9, 0, 1, 0];
        assert!(for_each_option(&opts, true, |c, v| seen.push((c, v.to_vec()))));
        assert_eq!(seen, vec![(2, b"abc".to_vec())]);
        assert!(!for_each_option(&[2, 0, 9, 0, 1], true, |_, _| {}));
    }
}
