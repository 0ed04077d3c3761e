//! Field coding of packet blocks (SPEC.md §5.2.2, v1.2, incompatible flag `FIELD_CODING`).
//!
//! Each packet is coded against a *prediction* built from the flow's previous packets in the
//! block: the last packet of the same direction (or, for a flow's first packet in a direction,
//! the last packet of the other direction with addresses and ports swapped), with the fields a
//! protocol makes predictable filled in: IP id + 1, TCP seq = previous seq + segment length,
//! ack = the other direction's next seq, length fields from the wire length. Checksums are
//! recomputed from the packet itself. What differs from the prediction is stored sparsely (runs
//! of non-zero residual bytes) in columns of their own, so zstd sees homogeneous streams.
//!
//! Lossless for any bytes: every position and predicted value is computed from bytes the
//! decoder has already rebuilt (earlier packets, and for checksums the packet's own other
//! bytes), never from the packet being decoded.

use super::hdelta::network;
use super::wire::{Cur, WireResult, put_varint, unzigzag, zigzag};
use crate::model::LinkType;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// At most this many leading bytes of a packet are coded against the prediction (the longest
/// L2-L4 header netrec parses is 22 + 60 + 60 bytes).
pub const MAX_CODED: usize = 256;
const NONE: u32 = u32::MAX;

/// Where the headers of a packet are, from its own bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    l3: u16,
    l4: u16,
    /// End of the bytes coded against a prediction based on this packet (0: none).
    hdr_end: u16,
    /// Offset of the TCP timestamp option's kind byte (0: none).
    ts_opt: u16,
    /// 0 (not IP), 4 or 6.
    ver: u8,
    proto: u8,
    /// IPv4 header length in bytes.
    ihl: u8,
    has_l4: bool,
    /// Ethernet: MAC addresses at 0..12 (swapped for a reverse-direction prediction).
    eth: bool,
}

/// Bidirectional flow identity (encoder only): version, protocol, network offset, link type,
/// the two endpoints in canonical order.
type Key = [u8; 44];

fn be16(p: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(o)?, *p.get(o + 1)?]))
}
fn be32(p: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(o..o + 4)?.try_into().ok()?))
}

/// The shape of a packet and, for IP packets, its canonical key and whether the packet runs
/// against the canonical order.
pub fn shape(link: LinkType, p: &[u8], want_key: bool) -> (Shape, Option<(Key, bool)>) {
    let mut s = Shape::default();
    let Some((l3, et)) = network(link, p) else { return (s, None) };
    s.l3 = l3 as u16;
    s.eth = link == LinkType::ETHERNET;
    s.hdr_end = l3.min(MAX_CODED) as u16;
    let (src, dst, proto, l4) = match et {
        0x0800 => {
            let Some(&vihl) = p.get(l3) else { return (s, None) };
            let ihl = usize::from(vihl & 0x0f) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return (s, None);
            }
            let (Some(src), Some(dst), Some(&proto), Some(frag)) =
                (p.get(l3 + 12..l3 + 16), p.get(l3 + 16..l3 + 20), p.get(l3 + 9), be16(p, l3 + 6))
            else {
                return (s, None);
            };
            s.ver = 4;
            s.ihl = ihl as u8;
            (src, dst, proto, (frag & 0x1fff == 0).then_some(l3 + ihl))
        }
        0x86dd => {
            let (Some(src), Some(dst), Some(&proto)) =
                (p.get(l3 + 8..l3 + 24), p.get(l3 + 24..l3 + 40), p.get(l3 + 6))
            else {
                return (s, None);
            };
            s.ver = 6;
            (src, dst, proto, Some(l3 + 40))
        }
        _ => return (s, None),
    };
    s.proto = proto;
    let l3_end = if s.ver == 4 { l3 + usize::from(s.ihl) } else { l3 + 40 };
    let mut end = l3_end;
    let mut ports: &[u8] = &[0; 4];
    if let Some(l4) = l4 {
        s.l4 = l4 as u16;
        s.has_l4 = true;
        let hdr = match proto {
            6 => p.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4).max(20),
            17 | 1 | 58 => 8,
            _ => 0,
        };
        end = l4 + hdr;
        if (proto == 6 || proto == 17)
            && let Some(pp) = p.get(l4..l4 + 4)
        {
            ports = pp;
        }
        if proto == 6 {
            s.ts_opt = tcp_ts_option(p, l4).unwrap_or(0) as u16;
        }
    }
    s.hdr_end = end.min(MAX_CODED) as u16;
    if !want_key {
        return (s, None);
    }
    let mut key = [0u8; 44];
    key[0] = s.ver;
    key[1] = proto;
    key[2..4].copy_from_slice(&(l3 as u16).to_le_bytes());
    key[4..8].copy_from_slice(&link.0.to_le_bytes());
    // Canonical order: the smaller (address, port) endpoint first.
    let a = (src, &ports[0..2]);
    let b = (dst, &ports[2..4]);
    let rev = b < a;
    let (x, y) = if rev { (b, a) } else { (a, b) };
    key[8..8 + x.0.len()].copy_from_slice(x.0);
    key[24..24 + y.0.len()].copy_from_slice(y.0);
    key[40..42].copy_from_slice(x.1);
    key[42..44].copy_from_slice(y.1);
    (s, Some((key, rev)))
}

/// Offset of the TCP timestamp option (kind 8, length 10) inside the header, if any.
fn tcp_ts_option(p: &[u8], l4: usize) -> Option<usize> {
    let doff = usize::from(p.get(l4 + 12)? >> 4) * 4;
    let end = (l4 + doff).min(p.len());
    let mut o = l4 + 20;
    // At most 40 option bytes: bounded by the header length.
    while o < end {
        match p[o] {
            0 => return None,
            1 => o += 1,
            kind => {
                let len = usize::from(*p.get(o + 1)?);
                if len < 2 {
                    return None;
                }
                if kind == 8 && len == 10 && o + 10 <= end {
                    return Some(o);
                }
                o += len;
            }
        }
    }
    None
}

/// One coded packet as the block state remembers it.
#[derive(Clone, Copy, Debug)]
struct Pk {
    start: u32,
    end: u32,
    wire: u32,
    slot: u32,
    dir: u8,
    shape: Shape,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Last packet of each direction (NONE: none yet).
    last: [u32; 2],
    /// Captured length of the last truncated packet of each direction (0: none).
    trunc: [u32; 2],
}

/// The block state both sides keep: every packet's position and shape, and per flow the
/// last packet of each direction. Reset at every block.
#[derive(Debug, Default)]
struct State {
    pk: Vec<Pk>,
    slots: Vec<Slot>,
    last_new: Option<u32>,
    /// Captured length of the last truncated packet of the block (0: none).
    trunc: u32,
}

/// The prediction of one packet: bytes, fields coded arithmetically, checksum fields.
struct Plan {
    p: [u8; MAX_CODED],
    pn: usize,
    arith: [(u16, u8); 8],
    na: usize,
    /// IPv4 header checksum: (l3, ihl).
    ip_ck: Option<(usize, usize)>,
    /// Transport checksum: (field offset, l3, l4, version, protocol).
    l4_ck: Option<(usize, usize, usize, u8, u8)>,
    base_wire: u32,
    pred_cap: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            p: [0; MAX_CODED],
            pn: 0,
            arith: [(0, 0); 8],
            na: 0,
            ip_ck: None,
            l4_ck: None,
            base_wire: 0,
            pred_cap: 0,
        }
    }
}

/// How a packet refers to its flow, resolved against the state.
#[derive(Clone, Copy)]
struct Target {
    /// (slot, direction) of an existing flow; None: the packet opens a new flow slot.
    flow: Option<(u32, u8)>,
}

/// Big-endian value of a 2- or 4-byte field.
#[inline]
fn get_be(b: &[u8]) -> u32 {
    match *b {
        [x, y] => u32::from(u16::from_be_bytes([x, y])),
        [x, y, z, w] => u32::from_be_bytes([x, y, z, w]),
        _ => b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x)),
    }
}

/// Stores the low `b.len()` bytes of `v` big-endian (fields are 2 or 4 bytes wide).
#[inline]
fn put_be(b: &mut [u8], v: u32) {
    match b.len() {
        2 => b.copy_from_slice(&(v as u16).to_be_bytes()),
        4 => b.copy_from_slice(&v.to_be_bytes()),
        w => {
            for (i, x) in b.iter_mut().enumerate() {
                *x = (v >> (8 * (w - 1 - i))) as u8;
            }
        }
    }
}

impl State {
    fn clear(&mut self) {
        self.pk.clear();
        self.slots.clear();
        self.last_new = None;
        self.trunc = 0;
    }

    fn bytes<'a>(&self, data: &'a [u8], i: u32) -> &'a [u8] {
        let k = &self.pk[i as usize];
        data.get(k.start as usize..k.end as usize).unwrap_or_default()
    }

    /// TCP next sequence number after packet `i` (seq + payload + SYN + FIN), from its bytes.
    fn tcp_next(&self, data: &[u8], i: u32) -> Option<u32> {
        let k = &self.pk[i as usize];
        let s = k.shape;
        if !(s.has_l4 && s.proto == 6) {
            return None;
        }
        let b = self.bytes(data, i);
        let (l3, l4) = (usize::from(s.l3), usize::from(s.l4));
        let seq = be32(b, l4 + 4)?;
        let flags = *b.get(l4 + 13)?;
        let doff = u32::from(b.get(l4 + 12)? >> 4) * 4;
        let ip_payload = if s.ver == 4 {
            u32::from(be16(b, l3 + 2)?).saturating_sub(u32::from(s.ihl))
        } else {
            u32::from(be16(b, l3 + 4)?)
        };
        let len = ip_payload.saturating_sub(doff) + u32::from(flags & 2 != 0) + u32::from(flags & 1 != 0);
        Some(seq.wrapping_add(len))
    }

    fn tcp_field(&self, data: &[u8], i: u32, rel: usize) -> Option<u32> {
        let s = self.pk[i as usize].shape;
        (s.has_l4 && s.proto == 6).then_some(())?;
        be32(self.bytes(data, i), usize::from(s.l4) + rel)
    }

    fn ts_field(&self, data: &[u8], i: u32, rel: usize) -> Option<u32> {
        let s = self.pk[i as usize].shape;
        (s.ts_opt != 0).then_some(())?;
        be32(self.bytes(data, i), usize::from(s.ts_opt) + rel)
    }

    /// The packet a prediction starts from: (base, swapped, last of the same direction, last
    /// of the other direction); None for a block's first new flow.
    fn resolve(&self, t: Target) -> Option<(u32, bool, Option<u32>, Option<u32>)> {
        match t.flow {
            Some((slot, dir)) => {
                let sl = &self.slots[slot as usize];
                let (s, r) = (sl.last[usize::from(dir)], sl.last[usize::from(dir ^ 1)]);
                let some = |x: u32| (x != NONE).then_some(x);
                // A slot always holds at least one packet.
                Some(if s != NONE { (s, false, Some(s), some(r)) } else { (r, true, None, some(r)) })
            }
            None => self.last_new.map(|b| (b, false, None, None)),
        }
    }

    fn base_wire(&self, t: Target) -> u32 {
        self.resolve(t).map_or(0, |(b, ..)| self.pk[b as usize].wire)
    }

    /// Builds the prediction of the next packet (`wire` bytes on the wire) into `pl` (reused:
    /// only `pl.p[..pl.pn]` is meaningful, so nothing is cleared).
    fn plan_into(&self, data: &[u8], t: Target, wire: u32, pl: &mut Plan) {
        pl.pn = 0;
        pl.na = 0;
        pl.ip_ck = None;
        pl.l4_ck = None;
        pl.base_wire = 0;
        pl.pred_cap = wire;
        let resolved = self.resolve(t);
        // Captured length: like the base if it was cut, else like the last packet cut (of
        // this direction, else of the block), else all of it.
        let trunc = match t.flow {
            Some((slot, dir)) => match self.slots[slot as usize].trunc[usize::from(dir)] {
                0 => self.trunc,
                x => x,
            },
            None => self.trunc,
        };
        let bcut = resolved.and_then(|(b, ..)| {
            let k = &self.pk[b as usize];
            (t.flow.is_some() && k.end - k.start < k.wire).then_some(k.end - k.start)
        });
        if let Some(c) = bcut.or((trunc != 0).then_some(trunc)) {
            pl.pred_cap = wire.min(c);
        }
        let Some((base, swap, same, rev)) = resolved else { return };
        let bk = self.pk[base as usize];
        let bytes = self.bytes(data, base);
        let sh = bk.shape;
        let pn = bytes.len().min(usize::from(sh.hdr_end));
        pl.pn = pn;
        pl.base_wire = bk.wire;
        pl.p[..pn].copy_from_slice(&bytes[..pn]);
        let (l3, l4) = (usize::from(sh.l3), usize::from(sh.l4));
        let swap_ranges = |p: &mut [u8; MAX_CODED], a: usize, b: usize, w: usize| {
            if b + w <= pn && a + w <= b {
                let (x, y) = p.split_at_mut(b);
                x[a..a + w].swap_with_slice(&mut y[..w]);
            }
        };
        if swap {
            if sh.eth {
                swap_ranges(&mut pl.p, 0, 6, 6);
            }
            match sh.ver {
                4 => swap_ranges(&mut pl.p, l3 + 12, l3 + 16, 4),
                6 => swap_ranges(&mut pl.p, l3 + 8, l3 + 24, 16),
                _ => {}
            }
            if sh.has_l4 && (sh.proto == 6 || sh.proto == 17) {
                swap_ranges(&mut pl.p, l4, l4 + 2, 2);
            }
        }
        let same_wire = wire == bk.wire;
        let set = |pl: &mut Plan, off: usize, w: u8, v: Option<u32>| {
            if off + usize::from(w) <= pn && pl.na < pl.arith.len() {
                if let Some(v) = v {
                    put_be(&mut pl.p[off..off + usize::from(w)], v);
                }
                pl.arith[pl.na] = (off as u16, w);
                pl.na += 1;
            }
        };
        let len_from_wire = |hdr: usize| (!same_wire).then(|| wire.wrapping_sub(hdr as u32) & 0xffff);
        match sh.ver {
            4 => {
                set(pl, l3 + 2, 2, len_from_wire(l3));
                let id = same
                    .and_then(|s| be16(self.bytes(data, s), l3 + 4))
                    .map(|v| u32::from(v.wrapping_add(1)));
                set(pl, l3 + 4, 2, id);
                pl.ip_ck = Some((l3, usize::from(sh.ihl)));
            }
            6 => set(pl, l3 + 4, 2, len_from_wire(l3 + 40)),
            _ => {}
        }
        if sh.has_l4 {
            match sh.proto {
                6 => {
                    let (seq, ack) = match (same, rev) {
                        (Some(s), r) => (self.tcp_next(data, s), r.and_then(|r| self.tcp_next(data, r))),
                        (None, Some(r)) => (self.tcp_field(data, r, 8), self.tcp_next(data, r)),
                        (None, None) => (None, None),
                    };
                    set(pl, l4 + 4, 4, seq);
                    set(pl, l4 + 8, 4, ack);
                    if sh.ts_opt != 0 {
                        let o = usize::from(sh.ts_opt);
                        let (tsval, tsecr) = match (same, rev) {
                            (Some(_), r) => (None, r.and_then(|r| self.ts_field(data, r, 2))),
                            (None, Some(r)) => (self.ts_field(data, r, 6), self.ts_field(data, r, 2)),
                            (None, None) => (None, None),
                        };
                        set(pl, o + 2, 4, tsval);
                        set(pl, o + 6, 4, tsecr);
                    }
                    pl.l4_ck = Some((l4 + 16, l3, l4, sh.ver, 6));
                }
                17 => {
                    set(pl, l4 + 4, 2, len_from_wire(l4));
                    pl.l4_ck = Some((l4 + 6, l3, l4, sh.ver, 17));
                }
                1 | 58 => pl.l4_ck = Some((l4 + 2, l3, l4, sh.ver, sh.proto)),
                _ => {}
            }
        }
    }

    /// Records packet `i` (already in `data[start..end]`) in the state.
    fn push(&mut self, link: LinkType, data: &[u8], start: usize, wire: u32, t: Target) -> u32 {
        let end = data.len();
        let (shape, _) = shape(link, &data[start..end], false);
        self.push_shaped(start, end, wire, t, shape)
    }

    fn push_shaped(&mut self, start: usize, end: usize, wire: u32, t: Target, shape: Shape) -> u32 {
        let i = self.pk.len() as u32;
        let (slot, dir) = match t.flow {
            Some(f) => f,
            None => {
                self.slots.push(Slot { last: [NONE; 2], trunc: [0; 2] });
                self.last_new = Some(i);
                (self.slots.len() as u32 - 1, 0)
            }
        };
        let cap = (end - start) as u32;
        let sl = &mut self.slots[slot as usize];
        sl.last[usize::from(dir)] = i;
        if cap < wire {
            sl.trunc[usize::from(dir)] = cap;
            self.trunc = cap;
        }
        self.pk.push(Pk { start: start as u32, end: end as u32, wire, slot, dir, shape });
        i
    }
}

/// Ones'-complement sum of `b` as big-endian 16-bit words (odd tail padded with zero), taken
/// four bytes at a time: a 32-bit word is congruent to the sum of its halves modulo 0xffff,
/// and [`fold`] reduces modulo 0xffff.
fn sum16(mut acc: u64, b: &[u8]) -> u64 {
    let (words, rest) = b.as_chunks::<4>();
    for w in words {
        acc += u64::from(u32::from_be_bytes(*w));
    }
    match *rest {
        [x] => acc += u64::from(x) << 8,
        [x, y] => acc += u64::from(u16::from_be_bytes([x, y])),
        [x, y, z] => acc += u64::from(u16::from_be_bytes([x, y])) + (u64::from(z) << 8),
        _ => {}
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Sum of `b[start..end]` with the two bytes at `skip` counted as zero.
fn sum_skipping(b: &[u8], start: usize, end: usize, skip: usize) -> u64 {
    sum16(sum16(0, &b[start..skip]), &b[skip + 2..end])
}

fn ipv4_checksum(b: &[u8], l3: usize, ihl: usize) -> u16 {
    fold(sum_skipping(b, l3, l3 + ihl, l3 + 10))
}

/// The transport checksum of a fully captured packet, computed over its own bytes with the
/// checksum field counted as zero; None when the packet is not whole or its lengths disagree.
fn l4_checksum(b: &[u8], wire: u32, ck: (usize, usize, usize, u8, u8)) -> Option<u16> {
    let (field, l3, l4, ver, proto) = ck;
    if b.len() != wire as usize || field + 2 > b.len() || field < l4 {
        return None;
    }
    let len = if ver == 4 {
        usize::from(be16(b, l3 + 2)?).checked_sub(l4 - l3)?
    } else {
        usize::from(be16(b, l3 + 4)?).checked_sub(l4 - l3 - 40)?
    };
    let end = l4.checked_add(len).filter(|e| *e <= b.len() && *e >= field + 2)?;
    // Even-aligned relative to l4, so the skipped field stays word-aligned.
    if (field - l4) % 2 != 0 {
        return None;
    }
    let mut acc = 0u64;
    if !(ver == 4 && proto == 1) {
        if ver == 4 {
            acc = sum16(acc, b.get(l3 + 12..l3 + 20)?);
        } else {
            acc = sum16(acc, b.get(l3 + 8..l3 + 40)?);
        }
        acc += u64::from(proto) + len as u64;
    }
    acc = sum16(acc, &b[l4..field]);
    acc = sum16(acc, &b[field + 2..end]);
    let c = fold(acc);
    // UDP transmits a computed zero as all ones.
    Some(if proto == 17 && c == 0 { 0xffff } else { c })
}

/// Runs of non-zero bytes of a residual: varint count, then per run varint gap from the end
/// of the previous run and varint length - 1; the run bytes go to the values column.
fn put_runs(t: &[u8], runs: &mut Vec<u8>, values: &mut Vec<u8>) {
    let count_at = runs.len();
    runs.push(0);
    let mut count = 0u64;
    let mut prev_end = 0usize;
    let mut j = 0;
    while j < t.len() {
        if t[j] == 0 {
            j += 1;
            continue;
        }
        let s = j;
        while j < t.len() && t[j] != 0 {
            j += 1;
        }
        put_varint(runs, (s - prev_end) as u64);
        put_varint(runs, (j - s - 1) as u64);
        values.extend_from_slice(&t[s..j]);
        prev_end = j;
        count += 1;
    }
    if count < 0x80 {
        runs[count_at] = count as u8;
    } else {
        // Rare (at most MAX_CODED / 2 runs): re-encode the count in front.
        let mut head = Vec::with_capacity(2);
        put_varint(&mut head, count);
        runs.splice(count_at..count_at + 1, head);
    }
}

/// `out = a XOR b` (equal lengths), eight bytes at a time.
#[inline]
fn xor_into(out: &mut [u8], a: &[u8], b: &[u8]) {
    let (o8, o_rest) = out.as_chunks_mut::<8>();
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for ((o, x), y) in o8.iter_mut().zip(a8).zip(b8) {
        *o = (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y)).to_ne_bytes();
    }
    for ((o, x), y) in o_rest.iter_mut().zip(a_rest).zip(b_rest) {
        *o = x ^ y;
    }
}

/// Residual of `cur` against a plan, into `t[..n]`.
fn residual(cur: &[u8], wire: u32, pl: &Plan, t: &mut [u8; MAX_CODED]) -> usize {
    let n = cur.len().min(pl.pn);
    xor_into(&mut t[..n], &cur[..n], &pl.p[..n]);
    for &(off, w) in &pl.arith[..pl.na] {
        let (o, e) = (usize::from(off), usize::from(off) + usize::from(w));
        if e <= n {
            put_be(&mut t[o..e], get_be(&cur[o..e]).wrapping_sub(get_be(&pl.p[o..e])));
        }
    }
    if let Some((l3, ihl)) = pl.ip_ck
        && l3 + ihl <= n
    {
        let c = ipv4_checksum(cur, l3, ihl).to_be_bytes();
        t[l3 + 10] = cur[l3 + 10] ^ c[0];
        t[l3 + 11] = cur[l3 + 11] ^ c[1];
    }
    if let Some(ck) = pl.l4_ck
        && ck.0 + 2 <= n
        && let Some(c) = l4_checksum(cur, wire, ck)
    {
        let c = c.to_be_bytes();
        t[ck.0] = cur[ck.0] ^ c[0];
        t[ck.0 + 1] = cur[ck.0 + 1] ^ c[1];
    }
    n
}

/// Inverse of [`residual`]: `b` holds the packet with its first `n` bytes unknown (the rest is
/// final); `t[..n]` is the residual.
fn restore(b: &mut [u8], n: usize, wire: u32, pl: &Plan, t: &[u8; MAX_CODED]) {
    xor_into(&mut b[..n], &t[..n], &pl.p[..n]);
    for &(off, w) in &pl.arith[..pl.na] {
        let (o, e) = (usize::from(off), usize::from(off) + usize::from(w));
        if e <= n {
            put_be(&mut b[o..e], get_be(&t[o..e]).wrapping_add(get_be(&pl.p[o..e])));
        }
    }
    // Checksums last: they depend on every other byte, never on their own field.
    if let Some((l3, ihl)) = pl.ip_ck
        && l3 + ihl <= n
    {
        let c = ipv4_checksum(b, l3, ihl).to_be_bytes();
        b[l3 + 10] = t[l3 + 10] ^ c[0];
        b[l3 + 11] = t[l3 + 11] ^ c[1];
    }
    if let Some(ck) = pl.l4_ck
        && ck.0 + 2 <= n
        && let Some(c) = l4_checksum(b, wire, ck)
    {
        let c = c.to_be_bytes();
        b[ck.0] = t[ck.0] ^ c[0];
        b[ck.0 + 1] = t[ck.0 + 1] ^ c[1];
    }
}

/// A fast, deterministic hasher for flow keys (the map is never iterated).
#[derive(Default)]
struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Columns of a field-coded packet block (SPEC.md §5.2.2). Values that spread over many
/// magnitudes (time deltas, references) are split into a low byte and a varint of the rest,
/// so each column holds one kind of symbol for zstd's entropy coder.
pub const COLUMNS: usize = 12;
pub const C_TS_LO: usize = 0;
pub const C_IFACE: usize = 2;
pub const C_DIR: usize = 3;
pub const C_LINK: usize = 4;
const C_WIRE: usize = 5;
const C_CAPLEN: usize = 6;
const C_REF_LO: usize = 7;
#[cfg(test)]
const C_VALUES: usize = 10;
#[cfg(test)]
const C_LITERAL: usize = 11;
/// Runs, values and literal bytes are the last three columns.
const C_RUNS: usize = 9;
const _: () = assert!(C_RUNS + 3 == COLUMNS);

/// Appends `v` split: low byte to `cols[at]`, varint of the rest to `cols[at + 1]`.
pub fn put_split(cols: &mut [Vec<u8>], at: usize, v: u64) {
    cols[at].push(v as u8);
    put_varint(&mut cols[at + 1], v >> 8);
}

/// Reads a value written by [`put_split`].
pub fn split(lo: &mut Cur<'_>, hi: &mut Cur<'_>) -> WireResult<u64> {
    let l = lo.u8()?;
    let h = hi.varint()?;
    if h >> 56 != 0 {
        return Err("split value overflows u64");
    }
    Ok((h << 8) | u64::from(l))
}

/// Encoder of the open block.
#[derive(Default)]
pub struct Encoder {
    st: State,
    /// Original bytes of the block's packets (predictions read them).
    raw: Vec<u8>,
    /// Canonical key -> (slot, whether the slot's direction 0 runs against canonical order).
    map: HashMap<Key, (u32, bool), BuildHasherDefault<KeyHasher>>,
    /// Reused prediction (not moved per packet).
    plan: Box<Plan>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("packets", &self.st.pk.len()).finish_non_exhaustive()
    }
}

impl Encoder {
    /// Original bytes held for the open block.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Codes one packet into `cols[C_WIRE..]`.
    pub fn push(&mut self, link: LinkType, wire: u32, data: &[u8], cols: &mut [Vec<u8>; COLUMNS]) {
        let i = self.st.pk.len() as u32;
        let (shape, key) = shape(link, data, true);
        let mut code = 0u64;
        let mut target = Target { flow: None };
        if let Some((key, rev)) = key {
            match self.map.get(&key) {
                Some(&(slot, first_rev)) => {
                    let dir = u8::from(rev != first_rev);
                    let last = self.st.slots[slot as usize].last;
                    // The flow's most recent packet: the shortest distance.
                    let r = match (last[0], last[1]) {
                        (NONE, b) => b,
                        (a, NONE) => a,
                        (a, b) => a.max(b),
                    };
                    let flip = u64::from(dir ^ self.st.pk[r as usize].dir);
                    code = (u64::from(i - r) << 1) | flip;
                    target.flow = Some((slot, dir));
                }
                None => {
                    self.map.insert(key, (self.st.slots.len() as u32, rev));
                }
            }
        }
        let pl = &mut self.plan;
        self.st.plan_into(&self.raw, target, wire, pl);
        put_varint(&mut cols[C_WIRE], zigzag(i64::from(wire) - i64::from(pl.base_wire)));
        put_varint(&mut cols[C_CAPLEN], zigzag(data.len() as i64 - i64::from(pl.pred_cap)));
        put_split(cols, C_REF_LO, code);
        let mut t = [0u8; MAX_CODED];
        let n = residual(data, wire, pl, &mut t);
        let [.., runs, values, literal] = cols;
        put_runs(&t[..n], runs, values);
        literal.extend_from_slice(&data[n..]);
        let start = self.raw.len();
        self.raw.extend_from_slice(data);
        self.st.push_shaped(start, self.raw.len(), wire, target, shape);
    }

    pub fn clear(&mut self) {
        self.st.clear();
        self.raw.clear();
        self.map.clear();
    }
}

/// Decoder of one block: call [`Decoder::next`] once per packet, in order.
pub struct Decoder<'a> {
    st: State,
    plan: Box<Plan>,
    wire: Cur<'a>,
    cap: Cur<'a>,
    ref_lo: Cur<'a>,
    ref_hi: Cur<'a>,
    runs: Cur<'a>,
    values: Cur<'a>,
    literal: Cur<'a>,
}

impl<'a> Decoder<'a> {
    pub fn new(cols: [Cur<'a>; 7], count: usize) -> Decoder<'a> {
        let [wire, cap, ref_lo, ref_hi, runs, values, literal] = cols;
        let st = State { pk: Vec::with_capacity(count), ..State::default() };
        Decoder { st, plan: Box::default(), wire, cap, ref_lo, ref_hi, runs, values, literal }
    }

    /// Decodes the next packet, appending its bytes to `data`; returns its wire length.
    pub fn next(&mut self, link: LinkType, data: &mut Vec<u8>, limit: usize) -> WireResult<u32> {
        let i = self.st.pk.len() as u64;
        let code = split(&mut self.ref_lo, &mut self.ref_hi)?;
        let target = if code == 0 {
            Target { flow: None }
        } else {
            let d = code >> 1;
            if d == 0 || d > i {
                return Err("packet reference before the block");
            }
            let r = &self.st.pk[(i - d) as usize];
            Target { flow: Some((r.slot, r.dir ^ (code & 1) as u8)) }
        };
        let wire = i64::from(self.st.base_wire(target)) + unzigzag(self.wire.varint()?);
        let wire = u32::try_from(wire).map_err(|_| "wire length out of range")?;
        let pl = &mut *self.plan;
        self.st.plan_into(data, target, wire, pl);
        let cap = i64::from(pl.pred_cap) + unzigzag(self.cap.varint()?);
        let cap = usize::try_from(cap).map_err(|_| "captured length out of range")?;
        let start = data.len();
        if cap > limit.saturating_sub(start) {
            return Err("captured bytes exceed the block limit");
        }
        let n = cap.min(pl.pn);
        let mut t = [0u8; MAX_CODED];
        let nruns = self.runs.varint()?;
        let mut pos = 0usize;
        for _ in 0..nruns {
            let s = pos.checked_add(self.runs.varint()? as usize).ok_or("bad residual run")?;
            let len = (self.runs.varint()? as usize).checked_add(1).ok_or("bad residual run")?;
            let e = s.checked_add(len).filter(|e| *e <= n).ok_or("residual run past the coded bytes")?;
            // Runs are short: a byte loop beats a memcpy call.
            for (d, v) in t[s..e].iter_mut().zip(self.values.take(len)?) {
                *d = *v;
            }
            pos = e;
        }
        let tail = self.literal.take(cap - n)?;
        data.resize(start + n, 0);
        data.extend_from_slice(tail);
        restore(&mut data[start..], n, wire, pl, &t);
        self.st.push(link, data, start, wire, target);
        Ok(wire)
    }

    /// Checks that every residual and literal byte was used.
    pub fn finish(&self) -> WireResult<()> {
        if !self.runs.is_empty() || !self.values.is_empty() || !self.literal.is_empty() {
            return Err("packet columns longer than their packets");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Internet checksum, written independently of the coder's.
    fn csum(b: &[u8]) -> u16 {
        let mut s: u32 = b.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// Ethernet/IPv4/TCP frame with correct lengths and checksums.
    fn frame(up: bool, seq: u32, ack: u32, id: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (a, b) = ([10u8, 0, 0, 1], [192u8, 0, 2, 7]);
        let (src, dst, sp, dp) = if up { (a, b, 40000u16, 443u16) } else { (b, a, 443, 40000) };
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&sp.to_be_bytes());
        tcp[2..4].copy_from_slice(&dp.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&1000u16.to_be_bytes());
        tcp.extend_from_slice(payload);
        let pseudo = [&src[..], &dst, &[0, 6], &(tcp.len() as u16).to_be_bytes(), &tcp].concat();
        let c = csum(&pseudo);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = csum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![2, 0, 0, 0, 0, u8::from(up), 2, 0, 0, 0, 0, u8::from(!up), 8, 0];
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        f
    }

    #[test]
    fn a_well_behaved_tcp_flow_leaves_no_residual() {
        // Client sends data, server ACKs each segment; sizes vary, every packet whole.
        // Flags differ between bare ACKs and data (0x10 / 0x18): the only residual allowed.
        let (mut cseq, mut sseq, mut cid, mut sid) = (0xffff_fff0u32, 77u32, 0xfffeu16, 9u16);
        let mut frames = Vec::new();
        for k in 0..12usize {
            let payload = vec![k as u8; 100 + 37 * k];
            frames.push(frame(true, cseq, sseq, cid, 0x18, &payload));
            cseq = cseq.wrapping_add(payload.len() as u32);
            cid = cid.wrapping_add(1);
            // The server answers every third segment with data, else with a bare ACK.
            let answer = if k % 3 == 0 { vec![0xa5; 50 + k] } else { Vec::new() };
            frames.push(frame(false, sseq, cseq, sid, if answer.is_empty() { 0x10 } else { 0x18 }, &answer));
            sseq = sseq.wrapping_add(answer.len() as u32);
            sid = sid.wrapping_add(1);
        }
        let mut enc = Encoder::default();
        let mut cols: [Vec<u8>; COLUMNS] = Default::default();
        for (i, f) in frames.iter().enumerate() {
            let runs_before = cols[C_RUNS].len();
            enc.push(LinkType::ETHERNET, f.len() as u32, f, &mut cols);
            let runs = &cols[C_RUNS][runs_before..];
            // The first packet of each direction is predicted from another packet; from the
            // third on, sequence, acknowledgement, id, lengths and checksums are all predicted.
            let flags_changed = i >= 2 && frames[i][47] != frames[i - 2][47];
            if i >= 2 && !flags_changed {
                assert_eq!(runs, &[0], "packet {i}: residual runs {runs:?}");
            }
            if flags_changed {
                // One run: the flags byte (offset 47), one byte long.
                assert_eq!(runs, &[1, 47, 0], "packet {i}");
            }
        }
        // Only the payload bytes remain literal after the first two packets.
        let payload: usize = frames.iter().skip(2).map(|f| f.len() - 54).sum();
        let first_two = frames[0].len() + frames[1].len();
        assert!(cols[C_VALUES].len() + cols[C_LITERAL].len() <= first_two + payload);
        assert!(cols[C_LITERAL].len() >= payload);
    }

    #[test]
    fn the_wire_length_is_predicted_from_the_flow() {
        let f = frame(true, 1, 2, 3, 0x10, &[]);
        let mut enc = Encoder::default();
        let mut cols: [Vec<u8>; COLUMNS] = Default::default();
        enc.push(LinkType::ETHERNET, 60, &f, &mut cols);
        enc.push(LinkType::ETHERNET, 60, &f, &mut cols);
        // First: 60 against no base; second: the same as its base (zigzag 0).
        assert_eq!(cols[C_WIRE], [120, 0]);
    }
}

#[cfg(test)]
mod study {
    //! `NETREC_SEG_DUMP=file.nrseg cargo test --release -p netrec-format study -- --ignored
    //! --nocapture`: bytes per packet of each column of a field-coded file, for codec work
    //! (the dump comes from `xtask seg-bench --dump`).
    use super::*;
    use crate::segment::{BlockBody, PacketCoding, Recovery, SegmentReader};

    #[test]
    #[ignore]
    fn column_costs() {
        let Some(path) = std::env::var_os("NETREC_SEG_DUMP") else { return };
        let bytes = std::fs::read(path).unwrap();
        let mut packets = Vec::new();
        for b in SegmentReader::new(&bytes[..], Recovery::Strict).unwrap() {
            if let BlockBody::Packets(p) = b.unwrap().body {
                packets.extend(p.to_records());
            }
        }
        let level: i32 = std::env::var("LEVEL").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        let block: usize = std::env::var("BLOCK").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 20);
        let mut pc = crate::segment::records::PacketColumns::new(PacketCoding::FieldCoded);
        let mut per_col = [0usize; COLUMNS];
        let mut whole = 0usize;
        let mut flush = |pc: &mut crate::segment::records::PacketColumns| {
            let mut out = Vec::new();
            pc.take_into(&mut out);
            whole += zstd::bulk::compress(&out, level).unwrap().len();
            let mut c = Cur::new(&out);
            for col in &mut per_col {
                let b = c.bytes().unwrap();
                *col += zstd::bulk::compress(b, 3).unwrap().len();
            }
        };
        for p in &packets {
            pc.push(&p.as_ref());
            if pc.raw_len() >= block {
                flush(&mut pc);
            }
        }
        flush(&mut pc);
        // Lossless on this input, through the public writer and reader.
        let info = crate::segment::SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
        let mut w = crate::segment::SegmentWriter::new(Vec::new(), info, Default::default()).unwrap();
        for p in &packets {
            w.push_packet(&p.as_ref()).unwrap();
        }
        w.finish().unwrap();
        let seg = w.into_inner();
        let mut back = Vec::new();
        for b in SegmentReader::new(&seg[..], Recovery::Strict).unwrap() {
            if let BlockBody::Packets(p) = b.unwrap().body {
                back.extend(p.to_records());
            }
        }
        assert!(back == packets, "round trip differs");
        let reps: u32 = std::env::var("READS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        if reps > 0 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                for b in SegmentReader::new(&seg[..], Recovery::Strict).unwrap() {
                    std::hint::black_box(b.unwrap());
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / f64::from(reps) / packets.len() as f64;
            println!("read: {ns:.0} ns/packet");
            return;
        }
        // Residual bytes by offset (where the predictions miss).
        let mut hist = vec![0u64; MAX_CODED];
        let mut masks = Vec::new();
        let mut enc = Encoder::default();
        let mut cols: [Vec<u8>; COLUMNS] = Default::default();
        for (k, p) in packets.iter().enumerate() {
            if k % 16384 == 0 {
                enc.clear();
            }
            let (_, key) = shape(p.link_type, &p.data, true);
            let target = match key.and_then(|(k, rev)| enc.map.get(&k).map(|&(s, f)| (s, u8::from(rev != f))))
            {
                Some(f) => Target { flow: Some(f) },
                None => Target { flow: None },
            };
            let mut pl = Plan::default();
            enc.st.plan_into(&enc.raw, target, p.wire_len, &mut pl);
            let mut t = [0u8; MAX_CODED];
            let n = residual(&p.data, p.wire_len, &pl, &mut t);
            for (j, x) in t[..n].iter().enumerate() {
                hist[j] += u64::from(*x != 0);
            }
            for chunk in t[..n].chunks(8) {
                masks.push(chunk.iter().enumerate().fold(0u8, |m, (b, x)| m | (u8::from(*x != 0) << b)));
            }
            enc.push(p.link_type, p.wire_len, &p.data, &mut cols);
            cols.iter_mut().for_each(Vec::clear);
        }
        let top: Vec<String> = hist
            .iter()
            .enumerate()
            .filter(|(_, c)| **c * 100 > packets.len() as u64)
            .map(|(j, c)| format!("{j}:{:.2}", *c as f64 / packets.len() as f64))
            .collect();
        println!("non-zero residual share by offset (>1%): {}", top.join(" "));
        let mc: usize = masks.chunks(1 << 18).map(|c| zstd::bulk::compress(c, 3).unwrap().len()).sum();
        println!("bitmap masks instead of runs: {:.3} B/packet", mc as f64 / packets.len() as f64);
        let n = packets.len() as f64;
        let names = [
            "ts_lo", "ts_hi", "iface", "dir", "link", "wire", "caplen", "ref_lo", "ref_hi", "runs", "values",
            "literal",
        ];
        for (name, b) in names.iter().zip(per_col) {
            println!("{name:>8} {:.3}", b as f64 / n);
        }
        println!("   whole {:.3} B/packet ({} packets)", whole as f64 / n, packets.len());
    }
}
