//! Record codecs of each block type (SPEC.md §4). Packet headers are columnar; every other
//! type is a sequence of length-prefixed rows, so fields appended by later versions are
//! skipped by older readers.

use super::fcode;
use super::header::{BlockType, MAX_PAYLOAD_LEN};
use super::wire::*;
use crate::model::*;

/// Record layout version written by this implementation (the block header `layout` byte).
pub const LAYOUT_V1: u8 = 1;

/// Packet header columns, in payload order. Later layouts may append columns.
const PACKET_COLUMNS: usize = 7;
/// Header-delta files (v1.1) add the reference column.
const DELTA_COLUMNS: usize = 8;
const MAX_COLUMNS: usize = fcode::COLUMNS;

/// How packet blocks are coded; the file header's incompatible flags say which (SPEC.md §5.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketCoding {
    /// v1.0: captured bytes as they are.
    Plain,
    /// v1.1 (flag `HEADER_DELTA`): XOR against the previous packet of the same flow direction.
    HeaderDelta,
    /// v1.2 (flag `FIELD_CODING`): sparse residuals against a per-flow field prediction.
    #[default]
    FieldCoded,
}

/// Columnar accumulator of packet headers (the writer's open packet block).
#[derive(Debug, Default)]
pub struct PacketColumns {
    cols: [Vec<u8>; MAX_COLUMNS],
    last_ts: u64,
    pub count: u32,
    coding: PacketCoding,
    /// Header-delta coding: the open block's original bytes and the last packet of each flow.
    delta: Option<(Vec<u8>, super::hdelta::RefTable)>,
    field: Option<Box<fcode::Encoder>>,
}

const C_TS: usize = 0;
const C_IFACE: usize = 1;
const C_DIR: usize = 2;
const C_LINK: usize = 3;
const C_WIRE: usize = 4;
const C_CAPLEN: usize = 5;
const C_DATA: usize = 6;
const C_REF: usize = 7;

impl PacketColumns {
    pub fn new(coding: PacketCoding) -> PacketColumns {
        PacketColumns {
            coding,
            delta: (coding == PacketCoding::HeaderDelta).then(Default::default),
            field: (coding == PacketCoding::FieldCoded).then(Default::default),
            ..PacketColumns::default()
        }
    }

    #[inline]
    pub fn push(&mut self, p: &PacketRef<'_>) {
        let delta = p.ts.0.wrapping_sub(self.last_ts) as i64;
        self.last_ts = p.ts.0;
        if let Some(enc) = &mut self.field {
            let cols: &mut [Vec<u8>; MAX_COLUMNS] = &mut self.cols;
            fcode::put_split(cols, fcode::C_TS_LO, zigzag(delta));
            put_varint(&mut cols[fcode::C_IFACE], u64::from(p.iface));
            cols[fcode::C_DIR].push(p.direction as u8);
            put_varint(&mut cols[fcode::C_LINK], u64::from(p.link_type.0));
            enc.push(p.link_type, p.wire_len, p.data, cols);
            self.count += 1;
            return;
        }
        put_varint(&mut self.cols[C_TS], zigzag(delta));
        put_varint(&mut self.cols[C_IFACE], u64::from(p.iface));
        self.cols[C_DIR].push(p.direction as u8);
        put_varint(&mut self.cols[C_LINK], u64::from(p.link_type.0));
        put_varint(&mut self.cols[C_WIRE], u64::from(p.wire_len));
        put_varint(&mut self.cols[C_CAPLEN], p.data.len() as u64);
        match &mut self.delta {
            None => self.cols[C_DATA].extend_from_slice(p.data),
            Some((raw, refs)) => {
                let start = raw.len() as u32;
                match refs.lookup_and_insert(p.link_type, p.data, self.count, start) {
                    Some((dist, s, e, fields)) => {
                        put_varint(&mut self.cols[C_REF], u64::from(dist));
                        let reference = &raw[s as usize..e as usize];
                        super::hdelta::encode_into(p.data, reference, &fields, &mut self.cols[C_DATA]);
                    }
                    None => {
                        self.cols[C_REF].push(0);
                        self.cols[C_DATA].extend_from_slice(p.data);
                    }
                }
                raw.extend_from_slice(p.data);
            }
        }
        self.count += 1;
    }

    /// Size of the open block for the block size limit: the payload if it were closed now,
    /// or, for field coding, the original bytes the decoder will rebuild if more (so a block
    /// holds as many packets as a v1.0 block would, and never decodes to more than the
    /// payload limit).
    pub fn raw_len(&self) -> usize {
        let n = self.columns();
        let cols: usize = self.cols[..n].iter().map(|c| c.len() + 10).sum();
        cols.max(self.field.as_ref().map_or(0, |f| f.raw_len()))
    }

    fn columns(&self) -> usize {
        match self.coding {
            PacketCoding::Plain => PACKET_COLUMNS,
            PacketCoding::HeaderDelta => DELTA_COLUMNS,
            PacketCoding::FieldCoded => MAX_COLUMNS,
        }
    }

    /// Upper bound of the encoded size of one packet (for the block size limit).
    pub fn record_bound(p: &PacketRef<'_>) -> usize {
        // Field coding: a block's size grows by at most the packet's bytes (literal or
        // original) plus its residual: <= MAX_CODED / 2 runs of two short varints, MAX_CODED
        // values.
        40 + p.data.len() + 4 * fcode::MAX_CODED
    }

    /// Appends the payload (each column: varint length, bytes) and resets the accumulator,
    /// keeping the column allocations.
    pub fn take_into(&mut self, out: &mut Vec<u8>) {
        let n = self.columns();
        for c in &mut self.cols[..n] {
            put_bytes(out, c);
            c.clear();
        }
        // Blocks are independent: references never cross a block boundary.
        if let Some((raw, refs)) = &mut self.delta {
            raw.clear();
            refs.clear();
        }
        if let Some(f) = &mut self.field {
            f.clear();
        }
        self.last_ts = 0;
        self.count = 0;
    }
}

/// Metadata of one decoded packet; its bytes are `PacketBlock::data[start..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts: Ts,
    pub iface: u32,
    pub direction: Direction,
    pub link_type: LinkType,
    pub wire_len: u32,
    start: u32,
    end: u32,
}

/// A decoded packet header block: one allocation for all captured bytes, borrowed views per
/// packet (no per-packet allocation on the replay path).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketBlock {
    pub packets: Vec<PacketMeta>,
    pub data: Vec<u8>,
}

impl PacketBlock {
    pub fn len(&self) -> usize {
        self.packets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
    pub fn get(&self, i: usize) -> Option<PacketRef<'_>> {
        let m = self.packets.get(i)?;
        let data = self.data.get(m.start as usize..m.end as usize)?;
        Some(PacketRef {
            ts: m.ts,
            iface: m.iface,
            direction: m.direction,
            link_type: m.link_type,
            wire_len: m.wire_len,
            data,
        })
    }
    pub fn iter(&self) -> impl Iterator<Item = PacketRef<'_>> + '_ {
        (0..self.packets.len()).filter_map(|i| self.get(i))
    }
    pub fn to_records(&self) -> Vec<PacketRecord> {
        self.iter()
            .map(|p| PacketRecord {
                ts: p.ts,
                iface: p.iface,
                direction: p.direction,
                link_type: p.link_type,
                wire_len: p.wire_len,
                data: p.data.to_vec(),
            })
            .collect()
    }
}

/// The coding of a packet block told by its payload alone, for a reader whose file header (which
/// names the coding) is damaged: each coding writes a fixed number of length-prefixed columns
/// (plain 7, header-delta 8, field-coded 12), so the number that ends exactly at the payload's
/// end names it. None when the columns do not tile the payload or their number is no coding's.
pub fn infer_packet_coding(payload: &[u8]) -> Option<PacketCoding> {
    let mut c = Cur::new(payload);
    let mut n = 0;
    while !c.is_empty() && n <= MAX_COLUMNS {
        c.bytes().ok()?;
        n += 1;
    }
    match n {
        _ if !c.is_empty() => None,
        PACKET_COLUMNS => Some(PacketCoding::Plain),
        DELTA_COLUMNS => Some(PacketCoding::HeaderDelta),
        MAX_COLUMNS => Some(PacketCoding::FieldCoded),
        _ => None,
    }
}

/// Decodes a packet block coded as the file header says.
pub fn decode_packets(payload: &[u8], count: u32, coding: PacketCoding) -> WireResult<PacketBlock> {
    if coding == PacketCoding::FieldCoded {
        return decode_field_coded(payload, count);
    }
    let header_delta = coding == PacketCoding::HeaderDelta;
    let mut c = Cur::new(payload);
    let mut cols: [Cur<'_>; PACKET_COLUMNS] = Default::default();
    for col in &mut cols {
        *col = Cur::new(c.bytes()?);
    }
    let mut refs = if header_delta { Some(Cur::new(c.bytes()?)) } else { None };
    // Columns appended by later layouts are ignored.
    let n = count as usize;
    // Each packet takes at least one byte in each of the first six columns.
    if n > cols[C_DIR].remaining() {
        return Err("record count exceeds the direction column");
    }
    let [ts_c, if_c, dir_c, link_c, wire_c, cap_c, data_c] = &mut cols;
    let mut data = data_c.take(data_c.remaining())?.to_vec();
    let mut packets = Vec::with_capacity(n);
    let mut ts = 0u64;
    let mut pos = 0usize;
    for _ in 0..n {
        ts = ts.wrapping_add(unzigzag(ts_c.varint()?) as u64);
        let iface = if_c.varint_u32()?;
        let direction = Direction::from_u8(dir_c.u8()?).ok_or("bad packet direction")?;
        let link_type = LinkType(link_c.varint_u32()?);
        let wire_len = wire_c.varint_u32()?;
        let cap = cap_c.varint()? as usize;
        let end =
            pos.checked_add(cap).filter(|e| *e <= data.len()).ok_or("captured bytes exceed data column")?;
        if let Some(refs) = &mut refs {
            let dist = refs.varint()? as usize;
            if dist > 0 {
                let i = packets.len();
                let r: &PacketMeta = packets
                    .get(i.checked_sub(dist).ok_or("packet reference before the block")?)
                    .ok_or("packet reference before the block")?;
                // The reference lies before this packet in `data`: split there, no copy.
                let (before, after) = data.split_at_mut(pos);
                let reference = &before[r.start as usize..r.end as usize];
                let fields = super::hdelta::analyze(r.link_type, reference).map(|x| x.1).unwrap_or_default();
                super::hdelta::decode_in_place(&mut after[..cap], reference, &fields);
            }
        }
        packets.push(PacketMeta {
            ts: Ts(ts),
            iface,
            direction,
            link_type,
            wire_len,
            start: pos as u32,
            end: end as u32,
        });
        pos = end;
    }
    if pos != data.len() {
        return Err("data column longer than the captured lengths");
    }
    Ok(PacketBlock { packets, data })
}

/// Field-coded packet block (v1.2, SPEC.md §5.2.2).
fn decode_field_coded(payload: &[u8], count: u32) -> WireResult<PacketBlock> {
    let mut c = Cur::new(payload);
    let mut cols: [Cur<'_>; MAX_COLUMNS] = Default::default();
    for col in &mut cols {
        *col = Cur::new(c.bytes()?);
    }
    // Columns appended by later layouts are ignored.
    let n = count as usize;
    // Each packet takes exactly one byte in the direction column.
    if n > cols[fcode::C_DIR].remaining() {
        return Err("record count exceeds the direction column");
    }
    let [ts_lo, ts_hi, if_c, dir_c, link_c, wire_c, cap_c, ref_lo, ref_hi, runs_c, val_c, lit_c] = cols;
    let (mut ts_lo, mut ts_hi, mut if_c, mut dir_c, mut link_c) = (ts_lo, ts_hi, if_c, dir_c, link_c);
    let mut dec = fcode::Decoder::new([wire_c, cap_c, ref_lo, ref_hi, runs_c, val_c, lit_c], n);
    let mut data = Vec::with_capacity(payload.len().saturating_mul(4).min(MAX_PAYLOAD_LEN as usize));
    let mut packets = Vec::with_capacity(n);
    let mut ts = 0u64;
    for _ in 0..n {
        ts = ts.wrapping_add(unzigzag(fcode::split(&mut ts_lo, &mut ts_hi)?) as u64);
        let iface = if_c.varint_u32()?;
        let direction = Direction::from_u8(dir_c.u8()?).ok_or("bad packet direction")?;
        let link_type = LinkType(link_c.varint_u32()?);
        let start = data.len() as u32;
        let wire_len = dec.next(link_type, &mut data, MAX_PAYLOAD_LEN as usize)?;
        packets.push(PacketMeta {
            ts: Ts(ts),
            iface,
            direction,
            link_type,
            wire_len,
            start,
            end: data.len() as u32,
        });
    }
    dec.finish()?;
    Ok(PacketBlock { packets, data })
}

/// Row-encoded record types.
pub trait Row: Sized {
    const BLOCK: BlockType;
    fn encode_body(&self, out: &mut Vec<u8>);
    fn decode_body(c: &mut Cur<'_>) -> WireResult<Self>;
    /// (min, max) time of the record for the block header.
    fn time_range(&self) -> (u64, u64);
}

/// Appends one row: varint body length, body.
pub fn put_row<T: Row>(out: &mut Vec<u8>, scratch: &mut Vec<u8>, r: &T) {
    scratch.clear();
    r.encode_body(scratch);
    put_bytes(out, scratch);
}

pub fn decode_rows<T: Row>(payload: &[u8], count: u32) -> WireResult<Vec<T>> {
    let mut c = Cur::new(payload);
    if count as usize > payload.len() {
        return Err("record count exceeds the payload length");
    }
    let mut v = Vec::with_capacity(count as usize);
    for _ in 0..count {
        // Fields a later layout appended to the row are skipped with the rest of the row.
        let mut row = Cur::new(c.bytes()?);
        v.push(T::decode_body(&mut row)?);
    }
    if !c.is_empty() {
        return Err("bytes after the last record");
    }
    Ok(v)
}

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            put_u64(out, x);
        }
    }
}

fn opt_u64(c: &mut Cur<'_>) -> WireResult<Option<u64>> {
    match c.u8()? {
        0 => Ok(None),
        1 => Ok(Some(c.u64()?)),
        _ => Err("bad option tag"),
    }
}

fn put_dir_stats(out: &mut Vec<u8>, d: &DirStats) {
    put_varint(out, d.packets);
    put_varint(out, d.bytes);
    put_varint(out, d.payload_bytes);
    out.push(d.tcp_flags);
    put_varint(out, d.retransmissions);
    put_varint(out, d.out_of_order);
    put_varint(out, d.zero_window);
}

fn dir_stats(c: &mut Cur<'_>) -> WireResult<DirStats> {
    Ok(DirStats {
        packets: c.varint()?,
        bytes: c.varint()?,
        payload_bytes: c.varint()?,
        tcp_flags: c.u8()?,
        retransmissions: c.varint()?,
        out_of_order: c.varint()?,
        zero_window: c.varint()?,
    })
}

fn tunnel_kind_code(k: TunnelKind) -> u8 {
    match k {
        TunnelKind::Gre => 1,
        TunnelKind::Erspan => 2,
        TunnelKind::Vxlan => 3,
        TunnelKind::Geneve => 4,
        TunnelKind::IpInIp => 5,
        TunnelKind::GtpU => 6,
        TunnelKind::L2tp => 7,
        TunnelKind::Teredo => 8,
        TunnelKind::Pptp => 9,
        TunnelKind::MplsUdp => 10,
        TunnelKind::EtherIp => 11,
    }
}

fn tunnel_kind(v: u8) -> WireResult<TunnelKind> {
    Ok(match v {
        1 => TunnelKind::Gre,
        2 => TunnelKind::Erspan,
        3 => TunnelKind::Vxlan,
        4 => TunnelKind::Geneve,
        5 => TunnelKind::IpInIp,
        6 => TunnelKind::GtpU,
        7 => TunnelKind::L2tp,
        8 => TunnelKind::Teredo,
        9 => TunnelKind::Pptp,
        10 => TunnelKind::MplsUdp,
        11 => TunnelKind::EtherIp,
        _ => return Err("bad tunnel kind"),
    })
}

impl Row for FlowRecord {
    const BLOCK: BlockType = BlockType::Flows;
    fn encode_body(&self, out: &mut Vec<u8>) {
        let k = &self.key;
        put_u16(out, k.proto);
        put_ip(out, &k.src_ip);
        put_u16(out, k.src_port);
        put_ip(out, &k.dst_ip);
        put_u16(out, k.dst_port);
        put_u16(out, k.vlan);
        put_u32(out, k.tunnel_id);
        put_u64(out, self.first_ts.0);
        put_u64(out, self.last_ts.0);
        put_dir_stats(out, &self.fwd);
        put_dir_stats(out, &self.rev);
        out.push(self.tcp_state as u8);
        put_opt_u64(out, self.rtt_server_ns);
        put_opt_u64(out, self.rtt_client_ns);
        out.push(self.end as u8);
        match &self.tunnel {
            None => out.push(0),
            Some(t) => {
                out.push(tunnel_kind_code(t.kind));
                put_u32(out, t.id);
                put_ip(out, &t.outer_src);
                put_ip(out, &t.outer_dst);
            }
        }
        put_varint(out, self.anomalies);
    }
    fn decode_body(c: &mut Cur<'_>) -> WireResult<Self> {
        let key = FlowKey {
            proto: c.u16()?,
            src_ip: c.ip()?,
            src_port: c.u16()?,
            dst_ip: c.ip()?,
            dst_port: c.u16()?,
            vlan: c.u16()?,
            tunnel_id: c.u32()?,
        };
        Ok(FlowRecord {
            key,
            first_ts: Ts(c.u64()?),
            last_ts: Ts(c.u64()?),
            fwd: dir_stats(c)?,
            rev: dir_stats(c)?,
            tcp_state: TcpState::from_u8(c.u8()?).ok_or("bad TCP state")?,
            rtt_server_ns: opt_u64(c)?,
            rtt_client_ns: opt_u64(c)?,
            end: FlowEnd::from_u8(c.u8()?).ok_or("bad flow end reason")?,
            tunnel: match c.u8()? {
                0 => None,
                k => Some(Tunnel {
                    kind: tunnel_kind(k)?,
                    id: c.u32()?,
                    outer_src: c.ip()?,
                    outer_dst: c.ip()?,
                }),
            },
            anomalies: c.varint()?,
        })
    }
    fn time_range(&self) -> (u64, u64) {
        (self.first_ts.0.min(self.last_ts.0), self.first_ts.0.max(self.last_ts.0))
    }
}

impl Row for Alert {
    const BLOCK: BlockType = BlockType::Alerts;
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_varint(out, self.id);
        put_str(out, &self.rule_id);
        put_str(out, &self.class);
        out.push(self.severity as u8);
        put_str(out, &self.attack_id);
        put_u64(out, self.first_ts.0);
        put_u64(out, self.last_ts.0);
        put_varint(out, self.src.len() as u64);
        self.src.iter().for_each(|ip| put_ip(out, ip));
        put_varint(out, self.src_count);
        put_varint(out, self.dst.len() as u64);
        self.dst.iter().for_each(|ip| put_ip(out, ip));
        put_varint(out, self.dst_count);
        put_varint(out, self.dst_ports.len() as u64);
        self.dst_ports.iter().for_each(|p| put_u16(out, *p));
        put_varint(out, self.count);
        put_varint(out, self.stats.len() as u64);
        for (name, v) in &self.stats {
            put_str(out, name);
            put_u64(out, v.to_bits());
        }
        put_str(out, &self.message);
    }
    fn decode_body(c: &mut Cur<'_>) -> WireResult<Self> {
        let id = c.varint()?;
        let rule_id = c.string()?;
        let class = c.string()?;
        let severity = Severity::from_u8(c.u8()?).ok_or("bad severity")?;
        let attack_id = c.string()?;
        let first_ts = Ts(c.u64()?);
        let last_ts = Ts(c.u64()?);
        let n = c.count(5)?;
        let src = (0..n).map(|_| c.ip()).collect::<WireResult<Vec<_>>>()?;
        let src_count = c.varint()?;
        let n = c.count(5)?;
        let dst = (0..n).map(|_| c.ip()).collect::<WireResult<Vec<_>>>()?;
        let dst_count = c.varint()?;
        let n = c.count(2)?;
        let dst_ports = (0..n).map(|_| c.u16()).collect::<WireResult<Vec<_>>>()?;
        let count = c.varint()?;
        let n = c.count(9)?;
        let stats =
            (0..n).map(|_| Ok((c.string()?, f64::from_bits(c.u64()?)))).collect::<WireResult<Vec<_>>>()?;
        let message = c.string()?;
        Ok(Alert {
            id,
            rule_id,
            class,
            severity,
            attack_id,
            first_ts,
            last_ts,
            src,
            src_count,
            dst,
            dst_count,
            dst_ports,
            count,
            stats,
            message,
        })
    }
    fn time_range(&self) -> (u64, u64) {
        (self.first_ts.0.min(self.last_ts.0), self.first_ts.0.max(self.last_ts.0))
    }
}

impl Row for LossRecord {
    const BLOCK: BlockType = BlockType::Loss;
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.ts.0);
        put_varint(out, u64::from(self.iface));
        put_varint(out, self.kernel_packets);
        put_varint(out, self.kernel_bytes);
        put_varint(out, self.ring_drops);
        put_varint(out, self.map_full);
        put_varint(out, self.busy);
        put_varint(out, self.writer_drops);
    }
    fn decode_body(c: &mut Cur<'_>) -> WireResult<Self> {
        Ok(LossRecord {
            ts: Ts(c.u64()?),
            iface: c.varint_u32()?,
            kernel_packets: c.varint()?,
            kernel_bytes: c.varint()?,
            ring_drops: c.varint()?,
            map_full: c.varint()?,
            busy: c.varint()?,
            writer_drops: c.varint()?,
        })
    }
    fn time_range(&self) -> (u64, u64) {
        (self.ts.0, self.ts.0)
    }
}

impl Row for SegmentMeta {
    const BLOCK: BlockType = BlockType::Meta;
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_str(out, &self.host);
        put_varint(out, self.interfaces.len() as u64);
        for i in &self.interfaces {
            put_varint(out, u64::from(i.index));
            put_str(out, &i.name);
            put_varint(out, u64::from(i.link_type.0));
        }
        put_varint(out, u64::from(self.snaplen));
        put_u64(out, self.clock_base_ns);
        put_str(out, &self.netrec_version);
        put_str(out, &self.ruleset_digest);
        // Appended fields: omitted while at their defaults, which a reader of the shorter body
        // restores (SPEC.md 5.1), so metadata without them is byte-identical to layout 1.
        if !self.ruleset_text.is_empty() || self.run_id != 0 {
            put_str(out, &self.ruleset_text);
            put_u64(out, self.run_id);
        }
    }
    fn decode_body(c: &mut Cur<'_>) -> WireResult<Self> {
        let host = c.string()?;
        let n = c.count(3)?;
        let interfaces = (0..n)
            .map(|_| {
                Ok(InterfaceInfo {
                    index: c.varint_u32()?,
                    name: c.string()?,
                    link_type: LinkType(c.varint_u32()?),
                })
            })
            .collect::<WireResult<Vec<_>>>()?;
        let snaplen = c.varint_u32()?;
        let clock_base_ns = c.u64()?;
        let netrec_version = c.string()?;
        let ruleset_digest = c.string()?;
        let ruleset_text = if c.is_empty() { String::new() } else { c.string()? };
        let run_id = if c.is_empty() { 0 } else { c.u64()? };
        Ok(SegmentMeta {
            host,
            interfaces,
            snaplen,
            clock_base_ns,
            netrec_version,
            ruleset_digest,
            ruleset_text,
            run_id,
        })
    }
    fn time_range(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// One entry of the trailer's block index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset of the block header from the start of the file.
    pub offset: u64,
    pub block_type: u16,
    pub count: u32,
    pub min_ts: u64,
    pub max_ts: u64,
}

/// Totals of one block type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TypeTotals {
    pub block_type: u16,
    pub blocks: u64,
    pub records: u64,
}

/// The trailer block's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub index: Vec<IndexEntry>,
    /// Sorted by block type.
    pub totals: Vec<TypeTotals>,
    pub prev_sha256: [u8; 32],
    /// SHA-256 of every file byte before the trailer block's header.
    pub content_sha256: [u8; 32],
}

impl Trailer {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.index.len() as u64);
        for e in &self.index {
            put_u64(out, e.offset);
            put_u16(out, e.block_type);
            put_u32(out, e.count);
            put_u64(out, e.min_ts);
            put_u64(out, e.max_ts);
        }
        put_varint(out, self.totals.len() as u64);
        for t in &self.totals {
            put_u16(out, t.block_type);
            put_varint(out, t.blocks);
            put_varint(out, t.records);
        }
        out.extend_from_slice(&self.prev_sha256);
        out.extend_from_slice(&self.content_sha256);
    }

    pub fn decode(payload: &[u8]) -> WireResult<Trailer> {
        let mut c = Cur::new(payload);
        let n = c.count(30)?;
        let mut index = Vec::with_capacity(n);
        for _ in 0..n {
            index.push(IndexEntry {
                offset: c.u64()?,
                block_type: c.u16()?,
                count: c.u32()?,
                min_ts: c.u64()?,
                max_ts: c.u64()?,
            });
        }
        let n = c.count(4)?;
        let mut totals = Vec::with_capacity(n);
        for _ in 0..n {
            totals.push(TypeTotals { block_type: c.u16()?, blocks: c.varint()?, records: c.varint()? });
        }
        let mut prev_sha256 = [0u8; 32];
        prev_sha256.copy_from_slice(c.take(32)?);
        let mut content_sha256 = [0u8; 32];
        content_sha256.copy_from_slice(c.take(32)?);
        // Fields appended by later layouts follow; ignored.
        Ok(Trailer { index, totals, prev_sha256, content_sha256 })
    }

    /// Totals computed from an index (sorted by type).
    pub fn totals_of(index: &[IndexEntry]) -> Vec<TypeTotals> {
        let mut m = std::collections::BTreeMap::<u16, TypeTotals>::new();
        for e in index {
            let t = m
                .entry(e.block_type)
                .or_insert(TypeTotals { block_type: e.block_type, ..Default::default() });
            t.blocks += 1;
            t.records += u64::from(e.count);
        }
        m.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_before_the_block_is_an_error_not_a_panic() {
        // One packet whose reference column points 3 packets back.
        let mut payload = Vec::new();
        let cols: [&[u8]; 8] = [&[0], &[0], &[1], &[1], &[4], &[4], &[1, 2, 3, 4], &[3]];
        for c in cols {
            put_bytes(&mut payload, c);
        }
        assert_eq!(
            decode_packets(&payload, 1, PacketCoding::HeaderDelta),
            Err("packet reference before the block")
        );
        // Without the flag, the same block reads as v1.0 (the extra column is ignored).
        assert_eq!(decode_packets(&payload, 1, PacketCoding::Plain).unwrap().len(), 1);
    }

    fn meta() -> SegmentMeta {
        SegmentMeta { host: "h".into(), snaplen: 96, ruleset_digest: "ab".into(), ..Default::default() }
    }

    fn roundtrip(m: &SegmentMeta) -> (Vec<u8>, SegmentMeta) {
        let mut body = Vec::new();
        m.encode_body(&mut body);
        let back = SegmentMeta::decode_body(&mut Cur::new(&body)).expect("decodes");
        (body, back)
    }

    #[test]
    fn meta_without_appended_fields_keeps_the_layout_1_bytes() {
        let m = meta();
        let (body, back) = roundtrip(&m);
        assert_eq!(back, m);
        // Layout 1 ends with the digest: "ab" as varint length + bytes.
        assert_eq!(&body[body.len() - 3..], &[2, b'a', b'b']);
    }

    #[test]
    fn meta_appended_fields_round_trip() {
        let m = SegmentMeta { ruleset_text: "netrec-rules v1\n".into(), run_id: 42, ..meta() };
        let (_, back) = roundtrip(&m);
        assert_eq!(back, m);
        let m = SegmentMeta { run_id: 7, ..meta() };
        assert_eq!(roundtrip(&m).1, m);
    }

    #[test]
    fn truncated_appended_fields_are_an_error_not_a_panic() {
        let m = SegmentMeta { ruleset_text: "abc".into(), run_id: 9, ..meta() };
        let mut body = Vec::new();
        m.encode_body(&mut body);
        for cut in 0..body.len() {
            let _ = SegmentMeta::decode_body(&mut Cur::new(&body[..cut]));
        }
        // Cut inside run_id: an error (a partly present field is damage, not a default).
        assert!(SegmentMeta::decode_body(&mut Cur::new(&body[..body.len() - 2])).is_err());
    }
}
