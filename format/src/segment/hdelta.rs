//! The header-delta transform of packet blocks (SPEC.md §5.2, incompatible flag `HEADER_DELTA`).
//!
//! Consecutive packets of one flow direction repeat almost every header byte; what changes
//! (IP id, TCP sequence and acknowledgement numbers, TCP timestamps) changes by small amounts.
//! So each packet is stored relative to the previous packet of the same directional 5-tuple in
//! the same block: XOR byte by byte (equal bytes become zeros), except for those counter fields,
//! which are stored as big-endian wrapping differences. zstd then sees long runs of zeros.
//! Lossless for every byte: the reference is a packet the decoder has already rebuilt, and the
//! field positions are derived from the reference's bytes, so both sides compute the same ones.

use crate::model::LinkType;
use std::collections::HashMap;

/// At most this many arithmetic fields per reference packet.
pub const MAX_FIELDS: usize = 5;

/// Positions (offset, width 2 or 4) of the counter fields of a packet, from its own bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pos: [(u16, u8); MAX_FIELDS],
    n: u8,
    /// End of the L2-L4 headers: only these bytes are coded against the reference; payload
    /// bytes are stored as they are (XOR of two unrelated payloads only adds entropy).
    hdr_end: u16,
}

impl Fields {
    fn push(&mut self, off: usize, width: u8) {
        if (self.n as usize) < MAX_FIELDS && off <= u16::MAX as usize {
            self.pos[self.n as usize] = (off as u16, width);
            self.n += 1;
        }
    }
    pub fn header_end(&self) -> usize {
        self.hdr_end as usize
    }
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.pos[..self.n as usize].iter().map(|&(o, w)| (o as usize, w as usize))
    }
}

/// Directional flow identity used to find a reference: IP version, protocol, offset of the
/// network header, addresses, ports. Only compared for equality, never stored.
pub type Key = [u8; 40];

fn be16(p: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(o)?, *p.get(o + 1)?]))
}

/// Offset of the network header and its ethertype-like protocol for the link types netrec
/// records most; None for the others (they are stored without a reference).
pub(crate) fn network(link: LinkType, p: &[u8]) -> Option<(usize, u16)> {
    match link.0 {
        // Ethernet, with up to two 802.1Q/802.1ad tags.
        1 => {
            let mut off = 12;
            let mut et = be16(p, off)?;
            for _ in 0..2 {
                if et == 0x8100 || et == 0x88a8 {
                    off += 4;
                    et = be16(p, off)?;
                }
            }
            Some((off + 2, et))
        }
        // Raw IP (LINKTYPE_RAW, IPV4, IPV6): the version nibble decides.
        101 | 228 | 229 => match p.first()? >> 4 {
            4 => Some((0, 0x0800)),
            6 => Some((0, 0x86dd)),
            _ => None,
        },
        // Linux cooked v1 and v2.
        113 => Some((16, be16(p, 14)?)),
        276 => Some((20, be16(p, 0)?)),
        _ => None,
    }
}

/// The flow key and counter-field positions of a packet.
pub fn analyze(link: LinkType, p: &[u8]) -> Option<(Key, Fields)> {
    let (l3, et) = network(link, p)?;
    let mut key = [0u8; 40];
    let mut fields = Fields::default();
    let (proto, l4) = match et {
        0x0800 => {
            let vihl = *p.get(l3)?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return None;
            }
            fields.hdr_end = (l3 + ihl).min(u16::MAX as usize) as u16;
            key[0] = 4;
            key[4..8].copy_from_slice(p.get(l3 + 12..l3 + 16)?);
            key[20..24].copy_from_slice(p.get(l3 + 16..l3 + 20)?);
            fields.push(l3 + 4, 2);
            // Non-first fragments have no transport header.
            let first = be16(p, l3 + 6)? & 0x1fff == 0;
            (*p.get(l3 + 9)?, first.then_some(l3 + ihl))
        }
        0x86dd => {
            key[0] = 6;
            fields.hdr_end = (l3 + 40) as u16;
            key[4..20].copy_from_slice(p.get(l3 + 8..l3 + 24)?);
            key[20..36].copy_from_slice(p.get(l3 + 24..l3 + 40)?);
            (*p.get(l3 + 6)?, Some(l3 + 40))
        }
        _ => return None,
    };
    key[1] = proto;
    key[2..4].copy_from_slice(&(l3 as u16).to_le_bytes());
    if let Some(l4) = l4 {
        let hdr = match proto {
            6 => p.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4).max(20),
            17 | 1 | 58 => 8,
            _ => 0,
        };
        fields.hdr_end = (l4 + hdr).min(u16::MAX as usize) as u16;
        if (proto == 6 || proto == 17)
            && let Some(ports) = p.get(l4..l4 + 4)
        {
            key[36..40].copy_from_slice(ports);
            if proto == 6 {
                fields.push(l4 + 4, 4);
                fields.push(l4 + 8, 4);
                tcp_timestamps(p, l4, &mut fields);
            }
        }
    }
    Some((key, fields))
}

/// TSval and TSecr of the TCP timestamp option, when the options hold one.
fn tcp_timestamps(p: &[u8], l4: usize, fields: &mut Fields) {
    let Some(doff) = p.get(l4 + 12).map(|b| usize::from(b >> 4) * 4) else { return };
    let end = (l4 + doff).min(p.len());
    let mut o = l4 + 20;
    // At most 40 option bytes: the loop is bounded by the header length.
    while o < end {
        match p[o] {
            0 => return,
            1 => o += 1,
            kind => {
                let Some(&len) = p.get(o + 1) else { return };
                if len < 2 {
                    return;
                }
                if kind == 8 && len == 10 && o + 10 <= end {
                    fields.push(o + 2, 4);
                    fields.push(o + 6, 4);
                    return;
                }
                o += usize::from(len);
            }
        }
    }
}

/// `out = cur ⊖ reference`: XOR, or wrapping big-endian difference on the reference's fields.
pub fn encode_into(cur: &[u8], reference: &[u8], fields: &Fields, out: &mut Vec<u8>) {
    let n = cur.len().min(reference.len()).min(fields.header_end());
    let start = out.len();
    out.extend(cur[..n].iter().zip(&reference[..n]).map(|(a, b)| a ^ b));
    out.extend_from_slice(&cur[n..]);
    let o = &mut out[start..];
    for (off, w) in fields.iter() {
        if off + w <= n {
            put_be(
                &mut o[off..off + w],
                get_be(&cur[off..off + w]).wrapping_sub(get_be(&reference[off..off + w])),
            );
        }
    }
}

/// Inverse of [`encode_into`], in place: `buf` holds the transformed bytes of one packet.
pub fn decode_in_place(buf: &mut [u8], reference: &[u8], fields: &Fields) {
    let n = buf.len().min(reference.len()).min(fields.header_end());
    let mut diffs = [0u32; MAX_FIELDS];
    for (i, (off, w)) in fields.iter().enumerate() {
        if off + w <= n {
            diffs[i] = get_be(&buf[off..off + w]);
        }
    }
    for (a, b) in buf[..n].iter_mut().zip(&reference[..n]) {
        *a ^= b;
    }
    for (i, (off, w)) in fields.iter().enumerate() {
        if off + w <= n {
            put_be(&mut buf[off..off + w], diffs[i].wrapping_add(get_be(&reference[off..off + w])));
        }
    }
}

fn get_be(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
}

fn put_be(b: &mut [u8], v: u32) {
    let w = b.len();
    for (i, x) in b.iter_mut().enumerate() {
        *x = (v >> (8 * (w - 1 - i))) as u8;
    }
}

/// Encoder state of one open block: the last packet of each flow direction.
#[derive(Debug, Default)]
pub struct RefTable {
    last: HashMap<Key, (u32, u32, u32, Fields)>,
}

impl RefTable {
    /// For packet `index` (its bytes at `start..end` of the block's raw data), the reference to
    /// use, as (distance back in packets, start, end, fields of the reference); and remember it.
    pub fn lookup_and_insert(
        &mut self,
        link: LinkType,
        data: &[u8],
        index: u32,
        start: u32,
    ) -> Option<(u32, u32, u32, Fields)> {
        let (key, fields) = analyze(link, data)?;
        let end = start + data.len() as u32;
        let prev = self.last.insert(key, (index, start, end, fields));
        prev.map(|(i, s, e, f)| (index - i, s, e, f))
    }

    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_frame(seq: u32, ack: u32, id: u16, tsval: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2];
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        let mut tcp = vec![0u8; 32];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = 0x18;
        tcp[20..24].copy_from_slice(&[1, 1, 8, 10]);
        tcp[24..28].copy_from_slice(&tsval.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn finds_the_counter_fields_of_a_tcp_packet() {
        let f = tcp_frame(1, 2, 3, 4, b"x");
        let (key, fields) = analyze(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(key[0], 4);
        assert_eq!(key[1], 6);
        let got: Vec<_> = fields.iter().collect();
        assert_eq!(got, vec![(18, 2), (38, 4), (42, 4), (58, 4), (62, 4)]);
    }

    #[test]
    fn same_flow_packets_become_mostly_zeros_and_round_trip() {
        let a = tcp_frame(0xffff_fff0, 100, 7, 1000, b"hello");
        let b = tcp_frame(0x0000_0005, 100, 8, 1003, b"world!");
        let (_, fields) = analyze(LinkType::ETHERNET, &a).unwrap();
        let mut enc = Vec::new();
        encode_into(&b, &a, &fields, &mut enc);
        // Headers: zeros but for the counter differences; payload: as it is.
        let zeros = enc[..66].iter().filter(|x| **x == 0).count();
        assert!(zeros >= 66 - 8, "{enc:?}");
        assert_eq!(&enc[66..], b"world!");
        assert_eq!(&enc[38..42], &0x15u32.to_be_bytes(), "seq difference wraps");
        decode_in_place(&mut enc, &a, &fields);
        assert_eq!(enc, b);
    }

    #[test]
    fn any_bytes_round_trip_against_any_reference() {
        // Lossless whatever the bytes are: lengths differ, fields cut by the shorter packet.
        let mut s = 0x9e37_79b9_u32;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let base = tcp_frame(1, 2, 3, 4, b"payload-bytes");
        for _ in 0..2000 {
            let mut r = base.clone();
            let mut c = base.clone();
            for _ in 0..(rnd() % 6) {
                let i = rnd() as usize % r.len();
                r[i] = rnd() as u8;
                let j = rnd() as usize % c.len();
                c[j] = rnd() as u8;
            }
            r.truncate(rnd() as usize % (r.len() + 1));
            c.truncate(rnd() as usize % (c.len() + 1));
            let fields = analyze(LinkType::ETHERNET, &r).map(|x| x.1).unwrap_or_default();
            let mut enc = Vec::new();
            encode_into(&c, &r, &fields, &mut enc);
            assert_eq!(enc.len(), c.len());
            decode_in_place(&mut enc, &r, &fields);
            assert_eq!(enc, c);
        }
    }

    #[test]
    fn other_link_types_and_garbage_have_no_key() {
        assert!(analyze(LinkType(147), &[0; 64]).is_none());
        assert!(analyze(LinkType::ETHERNET, &[0; 10]).is_none());
        assert!(analyze(LinkType::ETHERNET, &[]).is_none());
    }
}
