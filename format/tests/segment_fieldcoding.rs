//! Field-coded packet blocks (format 1.2, SPEC.md §5.2.2): exact round trips of structured
//! flows on every link type the coder understands (and some it does not), with real
//! checksums, damaged headers, cut captures and padded wire lengths; real captures; damaged
//! payloads that must give errors, never panics.

use netrec_format::segment::*;
use netrec_format::{Direction, LinkType, PacketRecord, Ts};
use proptest::prelude::*;

mod common;

use common::captures_dir;

fn info() -> SegmentHeaderInfo {
    SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 }
}

fn write(packets: &[PacketRecord], coding: PacketCoding, max_block_bytes: usize, level: i32) -> Vec<u8> {
    let cfg = WriterConfig { max_block_bytes, max_block_age_ns: 0, zstd_level: level, header_delta: true };
    let mut w = SegmentWriter::with_packet_coding(Vec::new(), info(), cfg, coding).unwrap();
    for p in packets {
        w.push_packet(&p.as_ref()).unwrap();
    }
    w.finish().unwrap();
    w.into_inner()
}

fn read_back(b: &[u8]) -> Result<Vec<PacketRecord>, SegmentError> {
    let mut out = Vec::new();
    for blk in SegmentReader::new(b, Recovery::Strict)? {
        if let BlockBody::Packets(p) = blk?.body {
            out.extend(p.to_records());
        }
    }
    Ok(out)
}

// ---------- a test-local packet builder (independent of the coder's parsing) ----------

/// Internet checksum of `parts` concatenated.
fn csum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut s: u32 = bytes.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[derive(Clone, Copy, Debug)]
struct FlowT {
    link: u32,
    v6: bool,
    proto: u8,
    vlan: bool,
}

const FLOWS: [FlowT; 8] = [
    FlowT { link: 1, v6: false, proto: 6, vlan: false },
    FlowT { link: 1, v6: true, proto: 6, vlan: false },
    FlowT { link: 1, v6: false, proto: 17, vlan: true },
    FlowT { link: 101, v6: false, proto: 6, vlan: false },
    FlowT { link: 113, v6: false, proto: 1, vlan: false },
    FlowT { link: 276, v6: true, proto: 58, vlan: false },
    FlowT { link: 1, v6: false, proto: 47, vlan: false },
    FlowT { link: 147, v6: false, proto: 6, vlan: false },
];

#[derive(Clone, Debug)]
struct Step {
    flow: usize,
    reverse: bool,
    payload: usize,
    flags: u8,
    tsopt: bool,
    good_checksums: bool,
    flip: Option<(prop::sample::Index, u8)>,
    cut: Option<prop::sample::Index>,
    pad: u8,
    ts: u32,
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        0..FLOWS.len(),
        any::<bool>(),
        prop_oneof![Just(0usize), 0usize..300],
        prop_oneof![Just(0x10u8), Just(0x18), Just(0x02), Just(0x12), Just(0x11), any::<u8>()],
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::option::weighted(0.15, (any::<prop::sample::Index>(), 1u8..=255)),
        prop::option::weighted(0.3, any::<prop::sample::Index>()),
        prop_oneof![4 => Just(0u8), 1 => 1u8..20],
        0u32..100_000,
    )
        .prop_map(|(flow, reverse, payload, flags, tsopt, good_checksums, flip, cut, pad, ts)| Step {
            flow,
            reverse,
            payload,
            flags,
            tsopt,
            good_checksums,
            flip,
            cut,
            pad,
            ts,
        })
}

/// Per flow and direction: next sequence number, IP id, timestamp value.
#[derive(Default, Clone, Copy)]
struct DirState {
    seq: u32,
    id: u16,
    tsval: u32,
}

fn build(step: &Step, st: &mut [[DirState; 2]; FLOWS.len()], t: &mut u64) -> PacketRecord {
    let f = FLOWS[step.flow];
    let d = usize::from(step.reverse);
    let (me, peer) = (st[step.flow][d], st[step.flow][1 - d]);
    let (mut a, mut b) = (vec![10, 0, step.flow as u8, 1], vec![192, 0, 2, step.flow as u8]);
    if f.v6 {
        a = [&[0x20, 0x01, 0x0d, 0xb8][..], &[0; 11], &[step.flow as u8]].concat();
        b = [&[0xfe, 0x80][..], &[0; 13], &[9]].concat();
    }
    let (mut ports, ref mut src, ref mut dst) = ([40000u16 + step.flow as u16, 443], a, b);
    if step.reverse {
        std::mem::swap(src, dst);
        ports.swap(0, 1);
    }
    let payload: Vec<u8> = (0..step.payload).map(|i| (i as u8).wrapping_mul(31) ^ me.seq as u8).collect();
    let l4: Vec<u8> = match f.proto {
        6 => {
            let opts: Vec<u8> = if step.tsopt {
                [&[1, 1, 8, 10][..], &me.tsval.to_be_bytes(), &peer.tsval.to_be_bytes()].concat()
            } else {
                vec![]
            };
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&ports[0].to_be_bytes());
            h[2..4].copy_from_slice(&ports[1].to_be_bytes());
            h[4..8].copy_from_slice(&me.seq.to_be_bytes());
            h[8..12].copy_from_slice(&peer.seq.to_be_bytes());
            h[12] = (((20 + opts.len()) / 4) << 4) as u8;
            h[13] = step.flags;
            h[14..16].copy_from_slice(&502u16.to_be_bytes());
            [h, opts, payload].concat()
        }
        17 => {
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&ports[0].to_be_bytes());
            h[2..4].copy_from_slice(&ports[1].to_be_bytes());
            h[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            [h, payload].concat()
        }
        1 | 58 => {
            let mut h = vec![if step.reverse { 0 } else { 8 }, 0, 0, 0, 0, 7, 0, me.id as u8];
            if f.proto == 58 {
                h[0] += 120;
            }
            [h, payload].concat()
        }
        _ => payload,
    };
    let mut l4 = l4;
    let ck_at = match f.proto {
        6 => Some(16),
        17 => Some(6),
        1 | 58 => Some(2),
        _ => None,
    };
    let ip: Vec<u8> = if f.v6 {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, f.proto, 64];
        h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        if let (Some(at), true) = (ck_at, step.good_checksums && l4.len() >= 8) {
            let len = (l4.len() as u32).to_be_bytes();
            let c = csum(&[src, dst, &len, &[0, 0, 0, f.proto], &l4]);
            l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        [h, src.clone(), dst.clone()].concat()
    } else {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, f.proto, 0, 0];
        h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&me.id.to_be_bytes());
        let h = [h, src.clone(), dst.clone()].concat();
        let mut h = h;
        if step.good_checksums {
            let c = csum(&[&h]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            if let (Some(at), true) = (ck_at, l4.len() >= 8) {
                let c = if f.proto == 1 {
                    csum(&[&l4])
                } else {
                    csum(&[src, dst, &[0, f.proto], &(l4.len() as u16).to_be_bytes(), &l4])
                };
                l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        h
    };
    let et: u16 = if f.v6 { 0x86dd } else { 0x0800 };
    let l2: Vec<u8> = match f.link {
        1 => {
            let mut m = vec![2, 0, 0, 0, 0, d as u8, 2, 0, 0, 0, 0, 1 - d as u8];
            if f.vlan {
                m.extend_from_slice(&[0x81, 0, 0, 42]);
            }
            m.extend_from_slice(&et.to_be_bytes());
            m
        }
        113 => [&[0, d as u8, 0, 1, 0, 6][..], &[2, 0, 0, 0, 0, 1, 0, 0], &et.to_be_bytes()].concat(),
        276 => [&et.to_be_bytes()[..], &[0, 0, 0, 0, 0, 2, 0, 1, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0]].concat(),
        _ => vec![],
    };
    let mut data = [l2, ip, l4].concat();
    let wire_len = data.len() as u32 + u32::from(step.pad);
    if let Some((i, x)) = &step.flip {
        let i = i.index(data.len());
        data[i] ^= x;
    }
    if let Some(c) = &step.cut {
        data.truncate(c.index(data.len() + 1));
    }
    // Advance the flow as a TCP stack would.
    let s = &mut st[step.flow][d];
    s.seq = s.seq.wrapping_add(step.payload as u32 + u32::from(step.flags & 3 != 0));
    s.id = s.id.wrapping_add(1);
    s.tsval = s.tsval.wrapping_add(step.ts % 7);
    *t += u64::from(step.ts);
    PacketRecord {
        ts: Ts(*t),
        iface: if step.flow == 2 { 3 } else { 1 },
        direction: if step.reverse { Direction::Ingress } else { Direction::Egress },
        link_type: LinkType(f.link),
        wire_len,
        data,
    }
}

fn packets_of(steps: &[Step]) -> Vec<PacketRecord> {
    let mut st = [[DirState::default(); 2]; FLOWS.len()];
    for (i, s) in st.iter_mut().enumerate() {
        *s = [
            DirState { seq: 0xffff_ff00u32.wrapping_add(i as u32 * 77), id: 0xfffe, tsval: 1 },
            DirState { seq: 12345 * i as u32, id: 7, tsval: 99 },
        ];
    }
    let mut t = 1_700_000_000_000_000_000;
    steps.iter().map(|s| build(s, &mut st, &mut t)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Structured flows with every kind of damage decode to exactly the bytes written.
    #[test]
    fn structured_flows_round_trip(steps in prop::collection::vec(arb_step(), 1..120), block in 200usize..6000, level in prop_oneof![Just(0), Just(3)]) {
        let packets = packets_of(&steps);
        let b = write(&packets, PacketCoding::FieldCoded, block, level);
        prop_assert_eq!(read_back(&b).unwrap(), packets);
        prop_assert!(verify_file(&b[..]).is_intact());
    }

    /// Arbitrary bytes under any link type (including the ones with a known network offset)
    /// round-trip exactly.
    #[test]
    fn arbitrary_bytes_round_trip(
        pk in prop::collection::vec((prop_oneof![Just(1u32), Just(101), Just(113), Just(228), Just(229), Just(276), any::<u32>()],
            prop::collection::vec(any::<u8>(), 0..200), any::<u32>(), any::<bool>()), 1..60),
    ) {
        let packets: Vec<PacketRecord> = pk.into_iter().enumerate().map(|(i, (lt, mut data, wire, ip))| {
            // Half of them look like IP to get past the first checks.
            if ip && lt == 1 && data.len() > 14 { data[12] = 0x08; data[13] = 0; data[14] = 0x45; }
            if ip && (lt == 101 || lt == 228) && !data.is_empty() { data[0] = 0x45; }
            let wire_len = if wire % 2 == 0 { data.len() as u32 } else { wire };
            PacketRecord { ts: Ts(i as u64 * 1000), iface: 0, direction: Direction::Unknown, link_type: LinkType(lt), wire_len, data }
        }).collect();
        // Repeat them so that packets get references.
        let packets: Vec<PacketRecord> = packets.iter().chain(packets.iter()).cloned().collect();
        let b = write(&packets, PacketCoding::FieldCoded, 1 << 16, 3);
        prop_assert_eq!(read_back(&b).unwrap(), packets);
    }

    /// Damaged field-coded payloads (their CRC fixed up, so the decoder sees them) give an
    /// error or some records, never a panic; a cut payload is always an error.
    #[test]
    fn damaged_payloads_error_not_panic(steps in prop::collection::vec(arb_step(), 2..60), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4), cut in any::<prop::sample::Index>()) {
        let packets = packets_of(&steps);
        let good = write(&packets, PacketCoding::FieldCoded, 1 << 20, 0);
        let at = 80; // the only block before the trailer is the packet block
        prop_assert_eq!(&good[at + 4..at + 6], &0x8002u16.to_le_bytes());
        let len = u32::from_le_bytes(good[at + 8..at + 12].try_into().unwrap()) as usize;
        let fix = |b: &mut Vec<u8>, len: usize| {
            b[at + 8..at + 12].copy_from_slice(&(len as u32).to_le_bytes());
            b[at + 12..at + 16].copy_from_slice(&(len as u32).to_le_bytes());
            let crc = crc32c::crc32c(&b[at + 48..at + 48 + len]);
            b[at + 40..at + 44].copy_from_slice(&crc.to_le_bytes());
            let crc = crc32c::crc32c(&b[at..at + 44]);
            b[at + 44..at + 48].copy_from_slice(&crc.to_le_bytes());
        };
        let mut bad = good.clone();
        for (i, x) in &flips {
            bad[at + 48 + i.index(len)] ^= x;
        }
        fix(&mut bad, len);
        let _ = read_back(&bad);
        // Cut inside the payload: the columns no longer add up.
        let c = cut.index(len);
        let mut short = good[..at + 48 + c].to_vec();
        fix(&mut short, c);
        let r = SegmentReader::new(&short[..], Recovery::TornTail).unwrap().next();
        prop_assert!(matches!(r, Some(Err(SegmentError::BadRecord { .. }))), "{r:?}");
    }
}

/// Minimal classic-pcap reader (the pcapng-named files of the corpus with classic content
/// included); pcapng files are skipped.
fn read_pcap(b: &[u8]) -> Option<Vec<PacketRecord>> {
    let magic = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        _ => return None,
    };
    let rd = |o: usize| -> Option<u32> {
        let x: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(x) } else { u32::from_be_bytes(x) })
    };
    let link = LinkType(rd(20)? & 0x0fff_ffff);
    let mut o = 24;
    let mut v = Vec::new();
    while o + 16 <= b.len() {
        let (s, frac, cap, wire) = (rd(o)?, rd(o + 4)?, rd(o + 8)? as usize, rd(o + 12)?);
        let data = b.get(o + 16..o + 16 + cap)?.to_vec();
        let ns = u64::from(s) * 1_000_000_000 + u64::from(frac) * if nanos { 1 } else { 1000 };
        v.push(PacketRecord {
            ts: Ts(ns),
            iface: 1,
            direction: Direction::Unknown,
            link_type: link,
            wire_len: wire,
            data,
        });
        o += 16 + cap;
    }
    Some(v)
}

/// Every real capture, whole and cut to 96/64/54 bytes, round-trips exactly; in total the
/// field coding is smaller than the header-delta coding of the same records.
#[test]
fn real_captures_round_trip_and_shrink() {
    let dir = captures_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut field, mut delta, mut n) = (0usize, 0usize, 0usize);
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let Some(whole) = read_pcap(&std::fs::read(&path).unwrap()) else { continue };
        for snap in [usize::MAX, 96, 64, 54] {
            let packets: Vec<PacketRecord> = whole
                .iter()
                .map(|p| PacketRecord { data: p.data[..p.data.len().min(snap)].to_vec(), ..p.clone() })
                .collect();
            let b = write(&packets, PacketCoding::FieldCoded, 1 << 20, 3);
            assert!(read_back(&b).unwrap() == packets, "{name} snaplen {snap}: round trip differs");
            if snap == 64 {
                field += b.len();
                delta += write(&packets, PacketCoding::HeaderDelta, 1 << 20, 3).len();
            }
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} classic pcap files in {}", dir.display());
    assert!(field < delta, "field coding {field} B vs header delta {delta} B");
}
