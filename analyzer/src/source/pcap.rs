//! Classic pcap (libpcap) reader: 24-byte file header, 16-byte record headers.

use super::buf::StreamBuf;
use super::{Ctx, HeaderFail, MAX_CAPTURED_LEN, Pkt, Step, WarningKind, rd16, rd32};
use netrec_format::{Direction, InterfaceInfo, LinkType, Ts};
use std::io;

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// Low 16 bits of the header's link-type field; the upper bits carry FCS information.
const LINKTYPE_MASK: u32 = 0xFFFF;

#[derive(Debug)]
pub(crate) struct PcapParser {
    le: bool,
    nanos: bool,
    link_type: LinkType,
    /// Captured lengths above this mean the framing is damaged.
    max_caplen: u32,
}

impl PcapParser {
    /// Parses the file header (magic already recognised) and consumes it.
    pub(crate) fn start(
        buf: &mut StreamBuf,
        ctx: &mut Ctx,
        le: bool,
        nanos: bool,
    ) -> Result<PcapParser, HeaderFail> {
        if !buf.fill(FILE_HEADER_LEN).map_err(HeaderFail::Io)? {
            return Err(HeaderFail::Bad {
                offset: 0,
                what: format!("pcap file header cut short: {} of {FILE_HEADER_LEN} bytes", buf.len()),
            });
        }
        let h = buf.avail();
        let major = rd16(h, 4, le);
        let minor = rd16(h, 6, le);
        if major != 2 {
            return Err(HeaderFail::Bad {
                offset: 4,
                what: format!("unsupported pcap version {major}.{minor} (expected 2.x)"),
            });
        }
        let snaplen = rd32(h, 16, le);
        let link_type = LinkType(rd32(h, 20, le) & LINKTYPE_MASK);
        buf.consume(FILE_HEADER_LEN);
        ctx.interfaces.push(InterfaceInfo { index: 0, name: String::new(), link_type });
        // Trust a larger header snaplen up to a sane bound (some link types exceed 256 KiB).
        let max_caplen = MAX_CAPTURED_LEN.max(snaplen.min(16 << 20));
        Ok(PcapParser { le, nanos, link_type, max_caplen })
    }

    pub(crate) fn next(&mut self, buf: &mut StreamBuf, ctx: &mut Ctx) -> io::Result<Step> {
        let offset = buf.offset();
        if !buf.fill(RECORD_HEADER_LEN)? {
            let left = buf.len();
            if left > 0 {
                ctx.warnings.add(offset, WarningKind::TrailingGarbage, true, || {
                    format!("{left} bytes at end of input, too few for a record header")
                });
                buf.consume(left);
            }
            return Ok(Step::End);
        }
        let h = buf.avail();
        let le = self.le;
        let (sec, frac, incl, orig) = (rd32(h, 0, le), rd32(h, 4, le), rd32(h, 8, le), rd32(h, 12, le));
        if incl > self.max_caplen {
            let max = self.max_caplen;
            ctx.warnings.add(offset, WarningKind::BadRecordLength, true, || {
                format!(
                    "record header claims {incl} captured bytes (limit {max}); framing lost, input ends here"
                )
            });
            return Ok(Step::End);
        }
        let total = RECORD_HEADER_LEN + incl as usize;
        if !buf.fill(total)? {
            let have = buf.len() - RECORD_HEADER_LEN;
            ctx.warnings.add(offset, WarningKind::TruncatedRecord, true, || {
                format!("record of {incl} captured bytes cut after {have} bytes at end of input")
            });
            buf.consume(buf.len());
            return Ok(Step::End);
        }
        let (frac_ns, limit) =
            if self.nanos { (frac as u64, 1_000_000_000) } else { (frac as u64 * 1000, 1_000_000) };
        if frac >= limit {
            let unit = if self.nanos { "ns" } else { "us" };
            ctx.warnings.add(offset, WarningKind::InvalidTimestamp, false, || {
                format!("sub-second field {frac} {unit} out of range; used seconds + fraction as is")
            });
        }
        let start = buf.pos() + RECORD_HEADER_LEN;
        buf.consume(total);
        Ok(Step::Packet(Pkt {
            ts: Ts(sec as u64 * 1_000_000_000 + frac_ns),
            iface: 0,
            direction: Direction::Unknown,
            link_type: self.link_type,
            wire_len: orig.max(incl),
            start,
            len: incl as usize,
        }))
    }
}
