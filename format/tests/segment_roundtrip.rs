//! Encode -> decode identity, recovery modes, truncation and byte-flip robustness, time ranges.

use netrec_format::segment::sample::{PacketGen, golden_records};
use netrec_format::segment::*;
use netrec_format::*;
use proptest::prelude::*;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const T0: u64 = 1_700_000_000_000_000_000;

fn info(seq: u64) -> SegmentHeaderInfo {
    SegmentHeaderInfo { seq, prev_sha256: [0; 32], created_ns: T0 }
}

fn cfg(max_block_bytes: usize) -> WriterConfig {
    WriterConfig { max_block_bytes, max_block_age_ns: 0, zstd_level: 3, header_delta: true }
}

#[derive(Default, Debug, PartialEq)]
struct All {
    meta: Vec<SegmentMeta>,
    packets: Vec<PacketRecord>,
    flows: Vec<FlowRecord>,
    alerts: Vec<Alert>,
    loss: Vec<LossRecord>,
}

fn write_all(a: &All, c: WriterConfig) -> (Vec<u8>, SegmentSummary) {
    let mut w = SegmentWriter::new(Vec::new(), info(1), c).unwrap();
    for m in &a.meta {
        w.write_meta(m).unwrap();
    }
    for p in &a.packets {
        w.push_packet(&p.as_ref()).unwrap();
    }
    for f in &a.flows {
        w.push_flow(f).unwrap();
    }
    for x in &a.alerts {
        w.push_alert(x).unwrap();
    }
    for l in &a.loss {
        w.push_loss(l).unwrap();
    }
    let s = w.finish().unwrap();
    (w.into_inner(), s)
}

fn collect(blocks: &[DecodedBlock]) -> All {
    let mut a = All::default();
    for b in blocks {
        match &b.body {
            BlockBody::Meta(v) => a.meta.extend(v.iter().cloned()),
            BlockBody::Packets(p) => a.packets.extend(p.to_records()),
            BlockBody::Flows(v) => a.flows.extend(v.iter().cloned()),
            BlockBody::Alerts(v) => a.alerts.extend(v.iter().cloned()),
            BlockBody::Loss(v) => a.loss.extend(v.iter().cloned()),
            BlockBody::Trailer(_) => {}
        }
    }
    a
}

/// Reads every block; returns blocks, warnings and the error that ended reading, if any.
fn read(bytes: &[u8], mode: Recovery) -> (Vec<DecodedBlock>, Vec<ReadWarning>, Option<SegmentError>) {
    let mut r = match SegmentReader::new(bytes, mode) {
        Ok(r) => r,
        Err(e) => return (vec![], vec![], Some(e)),
    };
    let mut blocks = vec![];
    let err = loop {
        match r.next_block() {
            Ok(Some(b)) => blocks.push(b),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    (blocks, r.take_warnings(), err)
}

fn golden_all() -> All {
    let (meta, packets, flows, alerts, loss) = golden_records();
    All { meta: vec![meta], packets, flows, alerts, loss }
}

/// A segment with many small blocks of every type.
fn many_blocks() -> Vec<u8> {
    many_blocks_level(3)
}

fn many_blocks_level(zstd_level: i32) -> Vec<u8> {
    let mut a = golden_all();
    let mut pg = PacketGen::new(3, 20, Ts(T0), 96);
    for _ in 0..16 {
        let p = pg.next_packet();
        a.packets.push(PacketRecord {
            ts: p.ts,
            iface: p.iface,
            direction: p.direction,
            link_type: p.link_type,
            wire_len: p.wire_len,
            data: p.data.to_vec(),
        });
    }
    write_all(&a, WriterConfig { zstd_level, ..cfg(300) }).0
}

// ---------- strategies ----------

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn arb_dir() -> impl Strategy<Value = Direction> {
    (0u8..3).prop_map(|d| Direction::from_u8(d).unwrap())
}

fn arb_packet() -> impl Strategy<Value = PacketRecord> {
    (
        any::<u64>(),
        any::<u32>(),
        arb_dir(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(ts, iface, direction, lt, wire_len, data)| PacketRecord {
            ts: Ts(ts),
            iface,
            direction,
            link_type: LinkType(lt),
            wire_len,
            data,
        })
}

fn arb_stats() -> impl Strategy<Value = DirStats> {
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u8>(), any::<u64>(), any::<u64>(), any::<u64>())
        .prop_map(|(packets, bytes, payload_bytes, tcp_flags, retransmissions, out_of_order, zero_window)| {
            DirStats { packets, bytes, payload_bytes, tcp_flags, retransmissions, out_of_order, zero_window }
        })
}

fn arb_tunnel() -> impl Strategy<Value = Option<Tunnel>> {
    let kind = prop_oneof![
        Just(TunnelKind::Gre),
        Just(TunnelKind::Erspan),
        Just(TunnelKind::Vxlan),
        Just(TunnelKind::Geneve),
        Just(TunnelKind::IpInIp),
        Just(TunnelKind::GtpU),
        Just(TunnelKind::L2tp),
        Just(TunnelKind::Teredo),
        Just(TunnelKind::Pptp),
        Just(TunnelKind::MplsUdp),
        Just(TunnelKind::EtherIp)
    ];
    prop::option::of(
        (kind, any::<u32>(), arb_ip(), arb_ip()).prop_map(|(kind, id, outer_src, outer_dst)| Tunnel {
            kind,
            id,
            outer_src,
            outer_dst,
        }),
    )
}

fn arb_flow() -> impl Strategy<Value = FlowRecord> {
    let key = (any::<u16>(), arb_ip(), any::<u16>(), arb_ip(), any::<u16>(), any::<u16>(), any::<u32>())
        .prop_map(|(proto, src_ip, src_port, dst_ip, dst_port, vlan, tunnel_id)| FlowKey {
            proto,
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            vlan,
            tunnel_id,
        });
    (
        key,
        any::<u64>(),
        any::<u64>(),
        arb_stats(),
        arb_stats(),
        (0u8..8).prop_map(|s| TcpState::from_u8(s).unwrap()),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        (0u8..5).prop_map(|s| FlowEnd::from_u8(s).unwrap()),
        arb_tunnel(),
        any::<u64>(),
    )
        .prop_map(
            |(key, a, b, fwd, rev, tcp_state, rtt_server_ns, rtt_client_ns, end, tunnel, anomalies)| {
                FlowRecord {
                    key,
                    first_ts: Ts(a),
                    last_ts: Ts(b),
                    fwd,
                    rev,
                    tcp_state,
                    rtt_server_ns,
                    rtt_client_ns,
                    end,
                    tunnel,
                    anomalies,
                }
            },
        )
}

fn arb_alert() -> impl Strategy<Value = Alert> {
    let s = || any::<String>();
    let ips = || prop::collection::vec(arb_ip(), 0..5);
    (
        (
            any::<u64>(),
            s(),
            s(),
            (0u8..5).prop_map(|v| Severity::from_u8(v).unwrap()),
            s(),
            any::<u64>(),
            any::<u64>(),
        ),
        (ips(), any::<u64>(), ips(), any::<u64>(), prop::collection::vec(any::<u16>(), 0..10), any::<u64>()),
        prop::collection::vec((s(), -1e300f64..1e300), 0..4),
        ".{0,300}",
    )
        .prop_map(
            |(
                (id, rule_id, class, severity, attack_id, a, b),
                (src, src_count, dst, dst_count, dst_ports, count),
                stats,
                message,
            )| Alert {
                id,
                rule_id,
                class,
                severity,
                attack_id,
                first_ts: Ts(a),
                last_ts: Ts(b),
                src,
                src_count,
                dst,
                dst_count,
                dst_ports,
                count,
                stats,
                message,
            },
        )
}

fn arb_loss() -> impl Strategy<Value = LossRecord> {
    (any::<u64>(), any::<u32>(), any::<[u64; 6]>()).prop_map(|(ts, iface, c)| LossRecord {
        ts: Ts(ts),
        iface,
        kernel_packets: c[0],
        kernel_bytes: c[1],
        ring_drops: c[2],
        map_full: c[3],
        busy: c[4],
        writer_drops: c[5],
    })
}

fn arb_meta() -> impl Strategy<Value = SegmentMeta> {
    let iface = (any::<u32>(), any::<String>(), any::<u32>()).prop_map(|(index, name, lt)| InterfaceInfo {
        index,
        name,
        link_type: LinkType(lt),
    });
    (
        any::<String>(),
        prop::collection::vec(iface, 0..4),
        any::<u32>(),
        any::<u64>(),
        any::<String>(),
        any::<String>(),
    )
        .prop_map(|(host, interfaces, snaplen, clock_base_ns, netrec_version, ruleset_digest)| {
            SegmentMeta {
                host,
                interfaces,
                snaplen,
                clock_base_ns,
                netrec_version,
                ruleset_digest,
                ..Default::default()
            }
        })
}

fn arb_all() -> impl Strategy<Value = All> {
    (
        prop::collection::vec(arb_meta(), 0..2),
        prop::collection::vec(arb_packet(), 0..40),
        prop::collection::vec(arb_flow(), 0..10),
        prop::collection::vec(arb_alert(), 0..5),
        prop::collection::vec(arb_loss(), 0..5),
    )
        .prop_map(|(meta, packets, flows, alerts, loss)| All { meta, packets, flows, alerts, loss })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_identity(a in arb_all(), max_block in 1usize..5000, level in prop_oneof![Just(0), Just(1), Just(3)], delta in any::<bool>()) {
        let c = WriterConfig { max_block_bytes: max_block, max_block_age_ns: 0, zstd_level: level, header_delta: delta };
        let (bytes, summary) = write_all(&a, c);
        let (blocks, warnings, err) = read(&bytes, Recovery::Strict);
        prop_assert!(err.is_none(), "{err:?}");
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(summary.counts.packets, a.packets.len() as u64);
        prop_assert_eq!(summary.counts.flows, a.flows.len() as u64);
        prop_assert_eq!(summary.bytes, bytes.len() as u64);
        prop_assert_eq!(collect(&blocks), a);
        let rep = verify_file(&bytes[..]);
        prop_assert!(rep.is_intact(), "{:?}", rep.damage);
        prop_assert_eq!(rep.sha256, Some(summary.sha256));
    }

    #[test]
    fn random_damage_never_panics(pos in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<prop::sample::Index>()) {
        let good = many_blocks();
        let mut bad = good.clone();
        let i = pos.index(bad.len());
        bad[i] ^= xor;
        for mode in [Recovery::Strict, Recovery::TornTail, Recovery::SkipCorrupt] {
            let (_, _, err) = read(&bad, mode);
            if mode == Recovery::Strict {
                prop_assert!(err.is_some(), "flip at {i} undetected");
            }
        }
        prop_assert!(!verify_file(&bad[..]).is_intact());
        let c = cut.index(good.len());
        let (_, _, _) = read(&bad[..c], Recovery::SkipCorrupt);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A valid header followed by arbitrary bytes (sometimes with sync markers sprinkled in)
    /// never panics in any mode, and Strict never accepts it.
    #[test]
    fn garbage_after_a_valid_header_never_panics(tail in prop::collection::vec(any::<u8>(), 0..2000), syncs in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let mut b = SegmentHeader::new(1, [0; 32], 0).encode().to_vec();
        let mut tail = tail;
        for s in syncs {
            if tail.len() >= 4 {
                let i = s.index(tail.len() - 3);
                tail[i..i + 4].copy_from_slice(&[b'N', b'R', b'B', 0xb7]);
            }
        }
        b.extend_from_slice(&tail);
        for mode in [Recovery::Strict, Recovery::TornTail, Recovery::SkipCorrupt] {
            let (_, _, err) = read(&b, mode);
            if mode == Recovery::Strict {
                prop_assert!(err.is_some());
            }
        }
        prop_assert!(!verify_file(&b[..]).is_intact());
    }
}

/// Offsets at which each block ends, for the intact file.
fn block_ends(bytes: &[u8]) -> Vec<(u64, DecodedBlock)> {
    let (blocks, _, err) = read(bytes, Recovery::Strict);
    assert!(err.is_none());
    blocks.into_iter().map(|b| (b.offset + 48 + u64::from(b.header.stored_len), b)).collect()
}

/// Every cut of an uncompressed segment, every 5th cut of a compressed one (zstd is slow in
/// debug builds; framing does not depend on the codec).
#[test]
fn every_truncation_recovers_every_complete_block() {
    truncations(&many_blocks_level(0), 1);
    truncations(&many_blocks_level(3), 5);
}

fn truncations(bytes: &[u8], stride: usize) {
    let ends = block_ends(bytes);
    assert!(ends.len() > 10, "want many blocks, got {}", ends.len());
    let header_len = 80;
    for cut in (0..bytes.len()).step_by(stride) {
        let t = &bytes[..cut];
        let (blocks, warnings, err) = read(t, Recovery::TornTail);
        if cut < header_len {
            assert!(
                matches!(err, Some(SegmentError::Truncated { .. } | SegmentError::BadMagic { .. })),
                "cut {cut}: {err:?}"
            );
            continue;
        }
        assert!(err.is_none(), "cut {cut}: {err:?}");
        let expect: Vec<&DecodedBlock> =
            ends.iter().filter(|(e, _)| *e <= cut as u64).map(|(_, b)| b).collect();
        assert_eq!(blocks.len(), expect.len(), "cut {cut}");
        for (g, e) in blocks.iter().zip(&expect) {
            assert_eq!(&g, e);
        }
        // One warning, at the offset where the first missing block starts.
        assert_eq!(warnings.len(), 1, "cut {cut}");
        let next_start =
            expect.last().map_or(header_len as u64, |b| b.offset + 48 + u64::from(b.header.stored_len));
        assert_eq!(warnings[0].offset, next_start, "cut {cut}");
        // Strict refuses every proper prefix.
        let (_, _, err) = read(t, Recovery::Strict);
        assert!(
            matches!(err, Some(SegmentError::Truncated { .. } | SegmentError::MissingTrailer { .. })),
            "cut {cut}: {err:?}"
        );
    }
}

#[test]
fn every_single_byte_flip_is_detected_and_never_panics() {
    flips(&many_blocks_level(0), 1);
    flips(&many_blocks_level(3), 5);
}

fn flips(bytes: &[u8], stride: usize) {
    let n_blocks = block_ends(bytes).len();
    for i in (0..bytes.len()).step_by(stride) {
        let mut bad = bytes.to_vec();
        bad[i] ^= 0x5a;
        let (_, _, err) = read(&bad, Recovery::Strict);
        assert!(err.is_some(), "flip at {i} not detected");
        let (blocks, warnings, err) = read(&bad, Recovery::SkipCorrupt);
        if i >= 80 {
            // One damaged block is lost at most; the rest is recovered.
            assert!(err.is_none(), "flip at {i}: {err:?}");
            assert!(blocks.len() + 1 >= n_blocks, "flip at {i}: {} of {n_blocks}", blocks.len());
            assert!(!warnings.is_empty(), "flip at {i}");
        }
        let rep = verify_file(&bad[..]);
        let d = rep.damage.expect("damage reported");
        assert!(d.offset <= i as u64, "flip at {i} reported at {}", d.offset);
    }
}

#[test]
fn missing_trailer_by_mode() {
    let bytes = many_blocks();
    let ends = block_ends(&bytes);
    let trailer_at = ends.last().unwrap().1.offset as usize;
    let cut = &bytes[..trailer_at];
    let (_, _, err) = read(cut, Recovery::Strict);
    assert!(
        matches!(err, Some(SegmentError::MissingTrailer { offset, blocks }) if offset == trailer_at as u64 && blocks as usize == ends.len() - 1)
    );
    let (blocks, w, err) = read(cut, Recovery::TornTail);
    assert!(err.is_none());
    assert_eq!(blocks.len(), ends.len() - 1);
    assert!(matches!(w[0].kind, WarningKind::MissingTrailer));
    assert_eq!(w[0].offset, trailer_at as u64);
    let rep = verify_file(cut);
    assert!(!rep.trailer);
    assert!(matches!(rep.damage.unwrap().error, SegmentError::MissingTrailer { .. }));
}

#[test]
fn skip_corrupt_skips_one_block_by_length_or_by_resync() {
    let bytes = many_blocks();
    let ends = block_ends(&bytes);
    let victim = &ends[5].1;
    // Payload damage: the header is intact, skip by its length.
    let mut bad = bytes.clone();
    bad[victim.offset as usize + 48 + 1] ^= 0xff;
    let (blocks, w, err) = read(&bad, Recovery::SkipCorrupt);
    assert!(err.is_none());
    assert_eq!(blocks.len(), ends.len() - 1);
    assert!(blocks.iter().all(|b| b.offset != victim.offset));
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].offset, w[0].block), (victim.offset, 5));
    assert!(
        matches!(&w[0].kind, WarningKind::Skipped { error: SegmentError::PayloadCrc { offset, block: 5, .. }, resumed_at: Some(r) } if *offset == victim.offset && *r == ends[6].1.offset)
    );
    // Header damage: resync on the next valid block header.
    let mut bad = bytes.clone();
    bad[victim.offset as usize + 10] ^= 0xff;
    let (blocks, w, err) = read(&bad, Recovery::SkipCorrupt);
    assert!(err.is_none());
    assert_eq!(blocks.len(), ends.len() - 1);
    assert!(
        matches!(&w[0].kind, WarningKind::Skipped { error: SegmentError::BlockHeaderCrc { offset, .. }, resumed_at: Some(r) } if *offset == victim.offset && *r == ends[6].1.offset)
    );
    // The same damage is an error in the other modes, naming offset and block.
    for mode in [Recovery::Strict, Recovery::TornTail] {
        let (blocks, _, err) = read(&bad, mode);
        assert_eq!(blocks.len(), 5);
        assert!(
            matches!(err, Some(SegmentError::BlockHeaderCrc { offset, block: 5, .. }) if offset == victim.offset)
        );
    }
}

/// A block header whose length lies under a valid CRC (rewritten, not flipped): the reader does
/// not jump by the lie over the blocks after it, it finds the next block inside the claimed
/// payload and loses only the one block.
#[test]
fn skip_corrupt_does_not_trust_a_length_that_lands_off_a_block() {
    let bytes = many_blocks();
    let ends = block_ends(&bytes);
    let victim = &ends[3].1;
    let mut h = victim.header;
    h.stored_len += 700;
    let mut bad = bytes.clone();
    let at = victim.offset as usize;
    bad[at..at + 48].copy_from_slice(&h.encode());
    let (blocks, w, err) = read(&bad, Recovery::SkipCorrupt);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(blocks.len(), ends.len() - 1, "{w:?}");
    assert!(blocks.iter().all(|b| b.offset != victim.offset));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        matches!(&w[0].kind, WarningKind::Skipped { resumed_at: Some(r), .. } if *r == ends[4].1.offset),
        "{w:?}"
    );
}

#[test]
fn time_range_skips_blocks_without_reading_their_payload() {
    // 10 packet blocks of 10 packets each, 1 s apart.
    let mut w = SegmentWriter::new(Vec::new(), info(1), cfg(1 << 20)).unwrap();
    let data = [0u8; 60];
    for blk in 0..10u64 {
        for i in 0..10u64 {
            let p = PacketRef {
                ts: Ts(T0 + blk * 1_000_000_000 + i),
                iface: 1,
                direction: Direction::Ingress,
                link_type: LinkType::ETHERNET,
                wire_len: 60,
                data: &data,
            };
            w.push_packet(&p).unwrap();
        }
        w.flush().unwrap();
    }
    w.finish().unwrap();
    let mut bytes = w.into_inner();
    let ends = block_ends(&bytes);
    // Destroy the payload of every block outside [3 s, 5 s]: a skipped block is not checked.
    for (_, b) in &ends {
        let first = (b.header.min_ts - T0) / 1_000_000_000;
        if b.header.block_type == BlockType::Packets as u16 && !(3..=5).contains(&first) {
            bytes[b.offset as usize + 48] ^= 0xff;
        }
    }
    let from = Ts(T0 + 3_000_000_000);
    let to = Ts(T0 + 5_000_000_005);
    let check = |blocks: Vec<DecodedBlock>| {
        let firsts: Vec<u64> = blocks
            .iter()
            .filter(|b| matches!(b.body, BlockBody::Packets(_)))
            .map(|b| (b.header.min_ts - T0) / 1_000_000_000)
            .collect();
        assert_eq!(firsts, vec![3, 4, 5]);
        assert!(matches!(blocks.last().unwrap().body, BlockBody::Trailer(_)));
    };
    let r = SegmentReader::new(&bytes[..], Recovery::Strict).unwrap().with_time_range(from, to);
    check(r.collect::<Result<Vec<_>, _>>().unwrap());
    let r =
        SegmentReader::new_seekable(Cursor::new(&bytes), Recovery::Strict).unwrap().with_time_range(from, to);
    check(r.collect::<Result<Vec<_>, _>>().unwrap());
    // Without the range the damage is found.
    assert!(matches!(read(&bytes, Recovery::Strict).2, Some(SegmentError::PayloadCrc { block: 0, .. })));
}

#[test]
fn blocks_close_by_size_and_by_age() {
    let data = [1u8; 100];
    let p = |t: u64| PacketRef {
        ts: Ts(t),
        iface: 1,
        direction: Direction::Egress,
        link_type: LinkType::ETHERNET,
        wire_len: 100,
        data: &data,
    };
    // v1.0 columns: the byte counts below are those of plain packet blocks.
    let c = WriterConfig { max_block_bytes: 1000, max_block_age_ns: 50, zstd_level: 3, header_delta: false };
    let mut w = SegmentWriter::new(Vec::new(), info(1), c).unwrap();
    // By size: ~110 raw bytes per packet, so the 9th push closes a block.
    let closed: usize = (0..10).map(|i| w.push_packet(&p(T0 + i)).unwrap()).sum();
    assert_eq!(closed, 1);
    assert_eq!(w.blocks().len(), 1);
    // By age, counted from the last tick before the block's first record.
    assert_eq!(w.tick(Ts(T0 + 10)).unwrap(), 0);
    w.push_packet(&p(T0 + 10)).unwrap(); // joins the open block, opened at T0 (creation)
    assert_eq!(w.tick(Ts(T0 + 49)).unwrap(), 0);
    assert_eq!(w.tick(Ts(T0 + 50)).unwrap(), 1);
    w.push_flow(&golden_all().flows[0]).unwrap();
    assert_eq!(w.tick(Ts(T0 + 99)).unwrap(), 0);
    assert_eq!(w.tick(Ts(T0 + 100)).unwrap(), 1);
    let s = w.finish().unwrap();
    assert_eq!((s.blocks, s.counts.packets, s.counts.flows), (3, 11, 1));
    assert!(matches!(w.push_packet(&p(T0)), Err(SegmentError::Finished)));
}

#[test]
fn writing_is_deterministic() {
    let a = golden_all();
    assert_eq!(write_all(&a, cfg(300)).0, write_all(&a, cfg(300)).0);
}

#[test]
fn unknown_optional_block_is_skipped_and_critical_fails() {
    let bytes = many_blocks();
    let ends = block_ends(&bytes);
    let at = ends[2].1.offset as usize;
    let insert = |block_type: u16| {
        let payload = b"future stuff";
        let h = BlockHeader {
            block_type,
            codec: 0,
            layout: 1,
            stored_len: payload.len() as u32,
            raw_len: payload.len() as u32,
            count: 1,
            min_ts: 0,
            max_ts: 0,
            payload_crc: crc32c::crc32c(payload),
        };
        let mut v = bytes[..at].to_vec();
        v.extend_from_slice(&h.encode());
        v.extend_from_slice(payload);
        v.extend_from_slice(&bytes[at..]);
        v
    };
    let (blocks, w, err) = read(&insert(0x0100), Recovery::TornTail);
    assert!(err.is_none());
    assert_eq!(blocks.len(), ends.len());
    assert!(matches!(w[0].kind, WarningKind::UnknownOptionalBlock { block_type: 0x0100 }));
    assert_eq!(w[0].offset, at as u64);
    for mode in [Recovery::Strict, Recovery::SkipCorrupt] {
        let (blocks, _, err) = read(&insert(0x8100), mode);
        assert_eq!(blocks.len(), 2);
        assert!(
            matches!(err, Some(SegmentError::UnknownCriticalBlock { offset, block: 2, block_type: 0x8100 }) if offset == at as u64)
        );
    }
}

/// Realistic packets (many per flow, both directions, TCP options): the header-delta encoding
/// references earlier packets of the same flow, decodes to the same bytes, and is smaller.
#[test]
fn header_delta_round_trips_real_flows_and_is_smaller() {
    let mut g = PacketGen::new(7, 300, Ts(1_700_000_000_000_000_000), 128);
    let packets: Vec<PacketRecord> = (0..20_000)
        .map(|_| {
            let p = g.next_packet();
            PacketRecord {
                ts: p.ts,
                iface: p.iface,
                direction: p.direction,
                link_type: p.link_type,
                wire_len: p.wire_len,
                data: p.data.to_vec(),
            }
        })
        .collect();
    let write = |delta: bool| {
        let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
        let cfg = WriterConfig { header_delta: delta, ..WriterConfig::default() };
        let mut w = SegmentWriter::new(Vec::new(), info, cfg).unwrap();
        for p in &packets {
            w.push_packet(&p.as_ref()).unwrap();
        }
        w.finish().unwrap();
        w.into_inner()
    };
    let (plain, delta) = (write(false), write(true));
    let back = |b: &[u8]| -> Vec<PacketRecord> {
        SegmentReader::new(b, Recovery::Strict)
            .unwrap()
            .flat_map(|b| b.unwrap().body.into_records())
            .filter_map(|r| if let Record::Packet(p) = r { Some(p) } else { None })
            .collect()
    };
    assert_eq!(back(&delta), packets);
    assert_eq!(back(&plain), packets);
    assert!(delta.len() < plain.len(), "delta {} vs plain {}", delta.len(), plain.len());
    let h = SegmentReader::new(&delta[..], Recovery::Strict).unwrap().header().clone();
    assert_eq!((h.minor, h.incompat_flags), (2, 2));
    let h = SegmentReader::new(&plain[..], Recovery::Strict).unwrap().header().clone();
    assert_eq!((h.minor, h.incompat_flags), (0, 0));
}
