//! Committed fixtures: corrupt inputs that must fail with an exact error, and the golden v1
//! segment with its decoded JSON. `NETREC_BLESS=1` regenerates them (see the READMEs).

use netrec_format::segment::sample::golden_records;
use netrec_format::segment::*;
use serde_json::{Value, json};
use std::path::PathBuf;

const T0: u64 = 1_700_000_000_000_000_000;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn bless() -> bool {
    std::env::var_os("NETREC_BLESS").is_some_and(|v| v == "1")
}

/// The golden segment's content and settings. Changing this changes `golden.nrseg`.
fn golden_bytes() -> Vec<u8> {
    golden_bytes_with(PacketCoding::Plain)
}

/// The golden of each version: same records, packet blocks coded with `coding` (v1.0 plain,
/// v1.1 header delta, v1.2 field coding).
fn golden_bytes_with(coding: PacketCoding) -> Vec<u8> {
    let info = SegmentHeaderInfo { seq: 7, prev_sha256: [0x11; 32], created_ns: T0 };
    let header_delta = coding != PacketCoding::Plain;
    let cfg = WriterConfig { max_block_bytes: 512, max_block_age_ns: 0, zstd_level: 3, header_delta };
    write_golden(SegmentWriter::with_packet_coding(Vec::new(), info, cfg, coding).unwrap())
}

/// Writes the golden records with `w`.
fn write_golden(mut w: SegmentWriter<Vec<u8>>) -> Vec<u8> {
    let (meta, packets, flows, alerts, loss) = golden_records();
    w.write_meta(&meta).unwrap();
    for p in &packets {
        w.push_packet(&p.as_ref()).unwrap();
    }
    w.flush().unwrap();
    for f in &flows {
        w.push_flow(f).unwrap();
    }
    for a in &alerts {
        w.push_alert(a).unwrap();
    }
    for l in &loss {
        w.push_loss(l).unwrap();
    }
    w.finish().unwrap();
    w.into_inner()
}

/// Block start offsets found by walking the fixed-width headers directly (independent of
/// the reader): header length at 12..16, stored length at block+8..block+12.
fn walk_blocks(b: &[u8]) -> Vec<usize> {
    let mut at = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let mut v = vec![];
    while at + 48 <= b.len() {
        v.push(at);
        at += 48 + u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    v
}

fn decoded_json(bytes: &[u8]) -> Value {
    let mut r = SegmentReader::new(bytes, Recovery::Strict).unwrap();
    let h = r.header().clone();
    let mut blocks = vec![];
    let mut trailer = Value::Null;
    for b in r.by_ref() {
        let b = b.unwrap();
        let hd = b.header;
        match b.body {
            BlockBody::Trailer(t) => {
                trailer = json!({
                    "offset": b.offset,
                    "index": t.index.iter().map(|e| json!({"offset": e.offset, "type": e.block_type,
                        "count": e.count, "min_ts": e.min_ts, "max_ts": e.max_ts})).collect::<Vec<_>>(),
                    "totals": t.totals.iter().map(|t| json!({"type": t.block_type, "blocks": t.blocks,
                        "records": t.records})).collect::<Vec<_>>(),
                    "prev_sha256": hex::encode(t.prev_sha256),
                    "content_sha256": hex::encode(t.content_sha256),
                });
            }
            body => blocks.push(json!({
                "index": b.index, "offset": b.offset, "type": hd.block_type, "codec": hd.codec,
                "layout": hd.layout, "stored_len": hd.stored_len, "raw_len": hd.raw_len,
                "count": hd.count, "min_ts": hd.min_ts, "max_ts": hd.max_ts,
                "records": body.into_records(),
            })),
        }
    }
    assert!(r.warnings().is_empty());
    json!({
        "header": {"major": h.major, "minor": h.minor, "header_len": h.header_len, "seq": h.seq,
            "prev_sha256": hex::encode(h.prev_sha256), "created_ns": h.created_ns,
            "incompat_flags": h.incompat_flags, "compat_flags": h.compat_flags},
        "blocks": blocks,
        "trailer": trailer,
    })
}

#[test]
fn golden_v1_segment() {
    check_golden("segments/v1", PacketCoding::Plain);
}

fn read_golden(dir: &str) -> Vec<Record> {
    let b = std::fs::read(fixtures().join(dir).join("golden.nrseg")).unwrap();
    SegmentReader::new(&b[..], Recovery::Strict)
        .unwrap()
        .flat_map(|b| b.unwrap().body.into_records())
        .collect()
}

#[test]
fn golden_v1_1_segment() {
    check_golden("segments/v1.1", PacketCoding::HeaderDelta);
    // The 1.1 file decodes to the same records as the 1.0 file.
    assert_eq!(read_golden("segments/v1.1"), read_golden("segments/v1"));
}

#[test]
fn golden_v1_2_segment() {
    check_golden("segments/v1.2", PacketCoding::FieldCoded);
    assert_eq!(read_golden("segments/v1.2"), read_golden("segments/v1"));
    let b = std::fs::read(fixtures().join("segments/v1.2/golden.nrseg")).unwrap();
    // Minor version 2, flag FIELD_CODING only.
    assert_eq!((&b[10..12], &b[16..20]), (&[2u8, 0][..], &[2u8, 0, 0, 0][..]));
    // What `SegmentWriter::new` writes with header_delta on.
    let info = SegmentHeaderInfo { seq: 7, prev_sha256: [0x11; 32], created_ns: T0 };
    let cfg = WriterConfig { max_block_bytes: 512, max_block_age_ns: 0, zstd_level: 3, header_delta: true };
    let w = write_golden(SegmentWriter::new(Vec::new(), info, cfg).unwrap());
    assert!(w == b, "SegmentWriter::new(header_delta: true) is not the v1.2 golden");
}

fn check_golden(rel: &str, coding: PacketCoding) {
    let dir = fixtures().join(rel);
    let seg = dir.join("golden.nrseg");
    let js = dir.join("golden.json");
    let golden_bytes = || golden_bytes_with(coding);
    if bless() {
        let b = golden_bytes();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&seg, &b).unwrap();
        std::fs::write(&js, serde_json::to_string_pretty(&decoded_json(&b)).unwrap() + "\n").unwrap();
    }
    let committed = std::fs::read(&seg).expect("golden.nrseg (bless with NETREC_BLESS=1)");
    let want: Value = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
    // Decoding the committed v1 file must not change, whatever the writer does.
    assert_eq!(decoded_json(&committed), want, "decoded golden.nrseg differs from golden.json");
    let rep = verify_file(&committed[..]);
    assert!(rep.is_intact(), "{:?}", rep.damage);
    // Independent checks of the committed JSON against the source records.
    let (meta, packets, flows, alerts, loss) = golden_records();
    let types: Vec<&str> = want["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["records"].as_array().unwrap())
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    let n = |t: &str| types.iter().filter(|x| **x == t).count();
    assert_eq!(
        (n("meta"), n("packet"), n("flow"), n("alert"), n("loss")),
        (1, packets.len(), flows.len(), alerts.len(), loss.len())
    );
    assert_eq!(want["blocks"][0]["records"][0]["host"], meta.host.as_str());
    // The committed file decodes to exactly the source records, in writing order.
    let mut expect = vec![Record::Meta(meta)];
    expect.extend(packets.into_iter().map(Record::Packet));
    expect.extend(flows.into_iter().map(Record::Flow));
    expect.extend(alerts.into_iter().map(Record::Alert));
    expect.extend(loss.into_iter().map(Record::Loss));
    let got: Vec<Record> = SegmentReader::new(&committed[..], Recovery::Strict)
        .unwrap()
        .flat_map(|b| b.unwrap().body.into_records())
        .collect();
    assert_eq!(got, expect);
    // Writing the same records reproduces the same bytes.
    assert!(golden_bytes() == committed, "writer output differs from golden.nrseg");
}

struct Corrupt {
    name: &'static str,
    make: fn(&[u8], &[usize]) -> Vec<u8>,
    check: fn(&SegmentError, &[usize]) -> bool,
}

fn set_header_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[..76]);
    b[76..80].copy_from_slice(&crc.to_le_bytes());
}

fn corrupt_cases() -> Vec<Corrupt> {
    vec![
        Corrupt {
            name: "bad_magic",
            make: |g, _| {
                let mut b = g.to_vec();
                b[0] = b'P'; // e.g. an 8-bit byte lost to a 7-bit channel
                b
            },
            check: |e, _| matches!(e, SegmentError::BadMagic { found } if found[0] == b'P'),
        },
        Corrupt {
            name: "newer_major",
            make: |g, _| {
                let mut b = g.to_vec();
                b[8..10].copy_from_slice(&2u16.to_le_bytes());
                set_header_crc(&mut b);
                b
            },
            check: |e, _| matches!(e, SegmentError::NewerMajor { found: 2, supported: 1 }),
        },
        Corrupt {
            name: "unknown_incompat_flags",
            make: |g, _| {
                let mut b = g.to_vec();
                b[16..20].copy_from_slice(&0x10u32.to_le_bytes());
                set_header_crc(&mut b);
                b
            },
            check: |e, _| matches!(e, SegmentError::UnknownIncompatibleFlags { flags: 0x10 }),
        },
        Corrupt {
            name: "bad_header_crc",
            make: |g, _| {
                let mut b = g.to_vec();
                b[24] ^= 0x01; // sequence number changed, CRC not updated
                b
            },
            check: |e, _| matches!(e, SegmentError::HeaderCrc { expected, actual } if expected != actual),
        },
        Corrupt {
            name: "bad_block_header_crc",
            make: |g, blocks| {
                let mut b = g.to_vec();
                b[blocks[1] + 16] ^= 0x01; // record count
                b
            },
            check: |e, blocks| matches!(e, SegmentError::BlockHeaderCrc { offset, block: 1, .. } if *offset == blocks[1] as u64),
        },
        Corrupt {
            name: "bad_payload_crc",
            make: |g, blocks| {
                let mut b = g.to_vec();
                b[blocks[1] + 48 + 3] ^= 0x20;
                b
            },
            check: |e, blocks| matches!(e, SegmentError::PayloadCrc { offset, block: 1, expected, actual } if *offset == blocks[1] as u64 && expected != actual),
        },
        Corrupt {
            name: "truncated_block",
            make: |g, blocks| g[..blocks[2] + 48 + 5].to_vec(),
            check: |e, blocks| matches!(e, SegmentError::Truncated { offset, block: 2, what: "block payload" } if *offset == blocks[2] as u64),
        },
        Corrupt {
            name: "missing_trailer",
            make: |g, blocks| g[..*blocks.last().unwrap()].to_vec(),
            check: |e, blocks| matches!(e, SegmentError::MissingTrailer { offset, blocks: n } if *offset == *blocks.last().unwrap() as u64 && *n as usize == blocks.len() - 1),
        },
        Corrupt {
            name: "unknown_critical_block",
            make: |g, blocks| {
                let payload = b"from the future";
                let h = BlockHeader {
                    block_type: 0x8100,
                    codec: 0,
                    layout: 1,
                    stored_len: payload.len() as u32,
                    raw_len: payload.len() as u32,
                    count: 1,
                    min_ts: 0,
                    max_ts: 0,
                    payload_crc: crc32c::crc32c(payload),
                };
                let mut b = g[..blocks[1]].to_vec();
                b.extend_from_slice(&h.encode());
                b.extend_from_slice(payload);
                b.extend_from_slice(&g[blocks[1]..]);
                b
            },
            check: |e, blocks| matches!(e, SegmentError::UnknownCriticalBlock { offset, block: 1, block_type: 0x8100 } if *offset == blocks[1] as u64),
        },
    ]
}

fn first_error(b: &[u8]) -> Option<SegmentError> {
    let mut r = match SegmentReader::new(b, Recovery::Strict) {
        Ok(r) => r,
        Err(e) => return Some(e),
    };
    r.find_map(Result::err)
}

#[test]
fn corrupt_fixtures_fail_with_the_exact_error() {
    let dir = fixtures().join("corrupt");
    let golden = golden_bytes();
    let gblocks = walk_blocks(&golden);
    for c in corrupt_cases() {
        let path = dir.join(format!("{}.nrseg", c.name));
        if bless() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, (c.make)(&golden, &gblocks)).unwrap();
        }
        let b = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless with NETREC_BLESS=1)", path.display()));
        // Offsets come from the committed file itself (walked without the reader); a
        // truncated file is walked on the golden prefix it was cut from.
        let blocks = if c.name == "truncated_block" || c.name == "missing_trailer" {
            gblocks.clone()
        } else {
            walk_blocks(&b)
        };
        let err = first_error(&b).unwrap_or_else(|| panic!("{}: no error", c.name));
        assert!((c.check)(&err, &blocks), "{}: unexpected error {err:?}", c.name);
        // verify_file reports the same damage; no panic in any mode.
        let rep = verify_file(&b[..]);
        let d = rep.damage.unwrap_or_else(|| panic!("{}: verify found nothing", c.name));
        assert!((c.check)(&d.error, &blocks), "{}: verify reported {:?}", c.name, d.error);
        for mode in [Recovery::TornTail, Recovery::SkipCorrupt] {
            if let Ok(r) = SegmentReader::new(&b[..], mode) {
                r.for_each(drop);
            }
        }
    }
}

/// Reads `b` in SkipCorrupt mode: its records and warnings, or the error.
fn read_recovering(b: &[u8]) -> Result<(Vec<Record>, Vec<ReadWarning>), SegmentError> {
    let mut rd = SegmentReader::new(b, Recovery::SkipCorrupt)?;
    let mut records = Vec::new();
    for block in rd.by_ref() {
        records.extend(block?.body.into_records());
    }
    Ok((records, rd.take_warnings()))
}

/// A damaged file header loses nothing in SkipCorrupt mode (SPEC.md §7.4): every bit of the 80
/// header bytes of each version's golden, flipped alone, still gives every record of the file
/// (each packet block's coding told by its columns, as the flags are not trusted) with one
/// warning at offset 0; Strict still refuses the file.
#[test]
fn every_header_bit_flip_is_read_past_in_skip_corrupt() {
    for dir in ["segments/v1", "segments/v1.1", "segments/v1.2"] {
        let good = std::fs::read(fixtures().join(dir).join("golden.nrseg")).unwrap();
        let want = read_golden(dir);
        for bit in 0..80 * 8 {
            let mut b = good.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let ctx = format!("{dir}: byte {} bit {}", bit / 8, bit % 8);
            assert!(
                SegmentReader::new(&b[..], Recovery::Strict).is_err(),
                "{ctx}: Strict read a damaged header"
            );
            let (got, warnings) = read_recovering(&b).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(got == want, "{ctx}: records differ from the intact file's");
            assert_eq!(warnings.len(), 1, "{ctx}: {warnings:?}");
            let w = &warnings[0];
            assert!(
                w.offset == 0 && matches!(w.kind, WarningKind::HeaderDamaged { resumed_at: Some(80), .. }),
                "{ctx}: {w}"
            );
            assert!(w.to_string().starts_with("offset 0: file header is damaged ("), "{ctx}: {w}");
        }
    }
}

/// What is not damage stays an error: a foreign magic (two bytes off), a header whose CRC holds
/// (a newer writer's flags or major version: refusing is the reader's duty), and a file too
/// short to hold a header.
#[test]
fn header_faults_that_are_not_damage_stay_errors() {
    let good = std::fs::read(fixtures().join("segments/v1.2/golden.nrseg")).unwrap();
    let reseal = |b: &mut Vec<u8>| {
        let crc = crc32c::crc32c(&b[..76]);
        b[76..80].copy_from_slice(&crc.to_le_bytes());
    };
    let mut magic2 = good.clone();
    magic2[1] ^= 1;
    magic2[5] ^= 1;
    assert!(matches!(read_recovering(&magic2), Err(SegmentError::BadMagic { .. })));
    let mut flags = good.clone();
    flags[16] |= 0x80;
    reseal(&mut flags);
    assert!(matches!(read_recovering(&flags), Err(SegmentError::UnknownIncompatibleFlags { flags: 0x82 })));
    let mut major = good.clone();
    major[8] = 9;
    reseal(&mut major);
    assert!(matches!(read_recovering(&major), Err(SegmentError::NewerMajor { found: 9, .. })));
    let mut short = good[..79].to_vec();
    short[20] ^= 4;
    assert!(matches!(read_recovering(&short), Err(SegmentError::Truncated { offset: 0, .. })));
}

/// A damaged header length that points past the end of a small file, and a whole header of
/// zeros after the magic: both read on from block 0.
#[test]
fn header_length_and_zeroed_header_are_read_past() {
    let good = std::fs::read(fixtures().join("segments/v1.1/golden.nrseg")).unwrap();
    let want = read_golden("segments/v1.1");
    let mut long = good.clone();
    long[12..16].copy_from_slice(&4000u32.to_le_bytes());
    let mut zeroed = good.clone();
    zeroed[8..80].fill(0);
    for (name, b) in [("header_len 4000", long), ("zeroed", zeroed)] {
        let (got, w) = read_recovering(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == want, "{name}: records differ");
        assert!(
            matches!(w[..], [ReadWarning { offset: 0, kind: WarningKind::HeaderDamaged { .. }, .. }]),
            "{name}: {w:?}"
        );
    }
}
