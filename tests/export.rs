//! Issue #6 item 5 ("Export test"): `netrec export` writes recorded segments as pcapng that
//! tshark reads back. Segments are written in the test with the format crate's offline writer
//! (`SegmentFile`) from fixture pcaps; the ground truth is tshark's reading of the ORIGINAL
//! pcap (header fields) and the records the test wrote (times, lengths, bytes).

mod common;

use common::*;
use netrec_format::segment::{SegmentHeaderInfo, WriterConfig};
use netrec_format::store::SegmentFile;
use netrec_format::{Alert, Direction, InterfaceInfo, LinkType, PacketRecord, SegmentMeta, Severity, Ts};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const SNAPLEN: usize = 128;

// ------------------------------------------------------------------------------------------
// tshark

/// tshark is the independent reader of the export; a missing tshark is a failure, not a skip.
fn tshark() -> Command {
    let ok = Command::new("tshark").arg("-v").output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "tshark is not installed: the export tests need it (Debian: apt-get install tshark; .ci/run installs it)"
    );
    let mut c = Command::new("tshark");
    c.env("HOME", std::env::temp_dir()); // no user profile influences the output
    c
}

/// One row per frame: the requested fields, `;;` between repeated occurrences.
fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut c = tshark();
    c.args([
        "-n",
        "-r",
        s(file),
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;;",
    ]);
    for f in fields {
        c.args(["-e", f]);
    }
    let o = c.output().expect("run tshark");
    assert!(
        o.status.success(),
        "tshark failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .expect("utf-8 tshark output")
        .lines()
        .map(|l| {
            let mut v: Vec<String> = l.split('\t').map(str::to_owned).collect();
            v.resize(fields.len(), String::new());
            v
        })
        .collect()
}

/// A frame as tshark converted it to a nanosecond classic pcap: (ts ns, orig len, bytes).
type Frame = (u64, u32, Vec<u8>);

/// tshark rewrites the pcapng as a nanosecond pcap; the test parses that simple format itself.
fn tshark_frames(file: &Path) -> Vec<Frame> {
    tshark_pcap(file).1
}

/// tshark's rewrite of `file` as a nanosecond pcap: its link type and frames.
fn tshark_pcap(file: &Path) -> (u32, Vec<Frame>) {
    let out = file.with_extension("nsec.pcap");
    let o = tshark().args(["-r", s(file), "-F", "nsecpcap", "-w", s(&out)]).output().expect("run tshark");
    assert!(o.status.success(), "tshark -w failed: {}", String::from_utf8_lossy(&o.stderr));
    let b = std::fs::read(&out).expect("read converted pcap");
    assert_eq!(b[0..4], 0xa1b2_3c4du32.to_le_bytes(), "not a little-endian nanosecond pcap");
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let mut v = Vec::new();
    let mut i = 24;
    while i < b.len() {
        let (sec, ns, incl, orig) = (u32_at(i), u32_at(i + 4), u32_at(i + 8), u32_at(i + 12));
        let data = b[i + 16..i + 16 + incl as usize].to_vec();
        v.push((u64::from(sec) * 1_000_000_000 + u64::from(ns), orig, data));
        i += 16 + incl as usize;
    }
    (u32_at(20), v)
}

// ------------------------------------------------------------------------------------------
// Segments written by the test

fn read_packets(path: &Path) -> Vec<PacketRecord> {
    let out = capture_records(path, usize::MAX);
    assert!(out.len() > 20, "{} has too few packets", path.display());
    out
}

/// The fixture as a recorder would store it: first 128 bytes, a nanosecond part added to
/// every time (the fixture has microsecond times), directions cycling unknown/in/out.
fn recorded(fixture_pcap: &str, iface: u32) -> (Vec<PacketRecord>, Vec<Vec<u8>>) {
    let orig = read_packets(&fixture(fixture_pcap));
    let mut recs: Vec<PacketRecord> = Vec::with_capacity(orig.len());
    for (i, p) in orig.iter().enumerate() {
        let mut r = p.clone();
        // Strictly increasing, so time order and record order agree.
        let prev = recs.last().map_or(0, |q| q.ts.0 + 1);
        r.ts = Ts((p.ts.0 + (i as u64 * 37) % 1000).max(prev));
        r.iface = iface;
        r.direction = [Direction::Unknown, Direction::Ingress, Direction::Egress][i % 3];
        r.data.truncate(SNAPLEN);
        recs.push(r);
    }
    (recs, orig.into_iter().map(|p| p.data).collect())
}

fn meta(host: &str, iface: u32, name: &str) -> SegmentMeta {
    SegmentMeta {
        host: host.into(),
        interfaces: vec![InterfaceInfo { index: iface, name: name.into(), link_type: LinkType::ETHERNET }],
        snaplen: SNAPLEN as u32,
        clock_base_ns: 0,
        netrec_version: "test".into(),
        ..Default::default()
    }
}

/// Writes `packets` (and `alerts`, after the packets of the last segment, as the recorder
/// does) as a chain of `parts` closed segments in `dir`; returns the paths.
fn write_chain(
    dir: &Path,
    meta: &SegmentMeta,
    packets: &[PacketRecord],
    alerts: &[Alert],
    parts: usize,
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let cfg =
        WriterConfig { max_block_bytes: 16 * 1024, max_block_age_ns: 0, zstd_level: 1, header_delta: true };
    let per = packets.len().div_ceil(parts);
    let mut prev = [0u8; 32];
    let mut out = Vec::new();
    let chunks: Vec<&[PacketRecord]> = packets.chunks(per).collect();
    for (seq, chunk) in chunks.iter().enumerate() {
        let info = SegmentHeaderInfo { seq: seq as u64, prev_sha256: prev, created_ns: chunk[0].ts.0 };
        let mut f = SegmentFile::create(dir, info, cfg).expect("create segment");
        f.write_meta(meta).expect("meta");
        for p in *chunk {
            f.push_packet(&p.as_ref()).expect("packet");
        }
        if seq + 1 == chunks.len() {
            for a in alerts {
                f.push_alert(a).expect("alert");
            }
        }
        let (path, summary) = f.close().expect("close");
        prev = summary.sha256;
        out.push(path);
    }
    out
}

fn alert(id: u64, rule: &str, first: Ts, last: Ts, src: &[IpAddr], src_count: u64, dst: &[IpAddr]) -> Alert {
    Alert {
        id,
        rule_id: rule.into(),
        class: "test".into(),
        severity: Severity::High,
        attack_id: "T0000".into(),
        first_ts: first,
        last_ts: last,
        src: src.to_vec(),
        src_count,
        dst: dst.to_vec(),
        dst_count: dst.len() as u64,
        dst_ports: vec![],
        count: 1,
        stats: vec![],
        message: format!("test alert {id}"),
    }
}

fn export(args: &[&str]) -> std::process::Output {
    let mut v = vec!["export"];
    v.extend_from_slice(args);
    let o = netrec(&v);
    assert_no_panic(&o, &format!("{v:?}"));
    o
}

/// tshark's view of one exported frame.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    ts: u64,
    a: Option<IpAddr>,
    b: Option<IpAddr>,
    ports: Vec<u16>,
    proto: String,
    comments: Vec<String>,
}

const ROW_FIELDS: &[&str] = &[
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "tcp.port",
    "udp.port",
    "ip.proto",
    "frame.comment",
];

fn rows(file: &Path) -> Vec<Row> {
    tshark_fields(file, ROW_FIELDS)
        .into_iter()
        .map(|f| {
            let ip = |v4: &str, v6: &str| {
                let t = if v4.is_empty() { v6 } else { v4 };
                (!t.is_empty()).then(|| t.parse::<IpAddr>().unwrap_or_else(|e| panic!("{t}: {e}")))
            };
            let ports = f[5]
                .split([',', ';'])
                .chain(f[6].split([',', ';']))
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().expect("port"))
                .collect();
            Row {
                ts: ts_ns(&f[0]),
                a: ip(&f[1], &f[2]),
                b: ip(&f[3], &f[4]),
                ports,
                proto: f[7].clone(),
                comments: f[8].split(";;").filter(|c| !c.is_empty()).map(str::to_owned).collect(),
            }
        })
        .collect()
}

fn ts_list(r: &[Row]) -> Vec<u64> {
    r.iter().map(|r| r.ts).collect()
}

// ------------------------------------------------------------------------------------------
// Tests

/// pcap -> segments (snaplen 128, two files) -> pcapng: every frame, time (ns), length and
/// header byte comes back; header fields equal tshark's reading of the original pcap.
#[test]
fn round_trip_preserves_times_lengths_and_header_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, orig_data) = recorded("pcap/demo.pcap", 7);
    let segs = dir.path().join("segs");
    write_chain(&segs, &meta("h1", 7, "eth7"), &recs, &[], 2);
    let out = dir.path().join("out.pcapng");
    let o = export(&["--pcap", s(&out), s(&segs)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Bytes, times and lengths, through tshark's own rewrite of the file.
    let frames = tshark_frames(&out);
    assert_eq!(frames.len(), recs.len(), "frame count");
    for (i, ((ts, orig_len, data), r)) in frames.iter().zip(&recs).enumerate() {
        assert_eq!(*ts, r.ts.0, "frame {i}: timestamp");
        assert_eq!(*orig_len, r.wire_len, "frame {i}: original length");
        let want = &orig_data[i][..orig_data[i].len().min(SNAPLEN)];
        assert_eq!(data.as_slice(), want, "frame {i}: bytes differ from the original truncated to {SNAPLEN}");
    }

    // Interface, direction, lengths and header fields as tshark reports them; the header
    // fields of the export (128 bytes per frame) equal tshark's reading of the original.
    let hdr = [
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "ip.proto",
        "ip.ttl",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.flags",
        "tcp.seq_raw",
        "udp.srcport",
        "udp.dstport",
    ];
    let meta_fields = [
        "frame.len",
        "frame.cap_len",
        "frame.interface_name",
        "frame.interface_description",
        "frame.packet_flags_direction",
    ];
    let all_fields: Vec<&str> = meta_fields.iter().chain(&hdr).copied().collect();
    let f = tshark_fields(&out, &all_fields);
    let original = tshark_fields(&fixture("pcap/demo.pcap"), &hdr);
    assert_eq!(f.len(), recs.len());
    assert_eq!(original.len(), recs.len());
    for (i, ((row, r), orig)) in f.iter().zip(&recs).zip(&original).enumerate() {
        assert_eq!(row[0], r.wire_len.to_string(), "frame {i}: frame.len");
        assert_eq!(row[1], r.data.len().to_string(), "frame {i}: frame.cap_len");
        assert_eq!(row[2], "eth7", "frame {i}: interface name");
        assert_eq!(row[3], "h1", "frame {i}: interface description (host)");
        let dir = match r.direction {
            Direction::Unknown => "",
            Direction::Ingress => "1",
            Direction::Egress => "2",
        };
        let got = row[4].trim_start_matches("0x").trim_start_matches('0');
        assert_eq!(got, dir, "frame {i}: direction flags {:?}", row[4]);
        assert_eq!(&row[meta_fields.len()..], &orig[..], "frame {i}: header fields differ ({hdr:?})");
    }
    assert!(original.iter().filter(|r| !r[6].is_empty()).count() > 1000, "too few TCP frames to mean much");
}

/// Alert comments: a packet carries the comment of every alert whose window contains it and
/// whose sources and targets it connects (either direction; a capped or empty side matches
/// any address). Updates of an alert (same id) widen its window. `--alert ID` exports exactly
/// the commented packets of that alert.
#[test]
fn alert_comments_mark_exactly_the_evidence_and_alert_exports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/benign_browsing.pcap", 2);
    // Addresses as tshark reads them from the original capture, times as recorded.
    let mut base = rows(&fixture("pcap/benign_browsing.pcap"));
    assert_eq!(base.len(), recs.len());
    for (b, r) in base.iter_mut().zip(&recs) {
        b.ts = r.ts.0;
    }

    let pick = |i: usize| (base[i].a.expect("ip frame"), base[i].b.expect("ip frame"));
    let (a1, b1) = pick(1500);
    let (a2, _) = pick(2500);
    let (_, b3) = pick(3500);
    let t = |i: usize| Ts(base[i].ts);
    let first_version = alert(1, "r.one", t(1000), t(1300), &[a1], 1, &[b1]);
    let final_version = alert(1, "r.one", t(1000), t(4000), &[a1], 1, &[b1]);
    let any_dst = alert(2, "r.two", t(2000), t(3000), &[a2], 1, &[]);
    // src lists 1 of 5 sources: capped, so any source to/from b3 counts.
    let capped = alert(3, "r.three", t(3200), t(4500), &[a1], 5, &[b3]);
    let alerts = [first_version, any_dst, capped, final_version];
    let segs = dir.path().join("segs");
    write_chain(&segs, &meta("h", 2, "eth0"), &recs, &alerts, 3);
    let out = dir.path().join("out.pcapng");
    let o = export(&["--pcap", s(&out), s(&segs)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rows(&out);
    assert_eq!(ts_list(&got), ts_list(&base));

    let between = |r: &Row, s: &dyn Fn(IpAddr) -> bool, d: &dyn Fn(IpAddr) -> bool| match (r.a, r.b) {
        (Some(x), Some(y)) => (s(x) && d(y)) || (s(y) && d(x)),
        _ => false,
    };
    let win = |r: &Row, a: &Alert| r.ts >= a.first_ts.0 && r.ts <= a.last_ts.0;
    let expect = |r: &Row| {
        let mut c = Vec::new();
        // Comment order: by first_ts, then id.
        if win(r, &alerts[3]) && between(r, &|x| x == a1, &|y| y == b1) {
            c.push("netrec alert 1 r.one: test alert 1".to_string());
        }
        if win(r, &alerts[1]) && between(r, &|x| x == a2, &|_| true) {
            c.push("netrec alert 2 r.two: test alert 2".to_string());
        }
        if win(r, &alerts[2]) && between(r, &|_| true, &|y| y == b3) {
            c.push("netrec alert 3 r.three: test alert 3".to_string());
        }
        c
    };
    let mut counts = [0usize; 3];
    for (i, r) in got.iter().enumerate() {
        let want = expect(&base[i]);
        assert_eq!(r.comments, want, "frame {i} ({:?} -> {:?} at {})", r.a, r.b, r.ts);
        for (k, n) in counts.iter_mut().enumerate() {
            *n += usize::from(want.iter().any(|c| c.starts_with(&format!("netrec alert {} ", k + 1))));
        }
    }
    assert!(counts.iter().all(|&n| n > 10), "each alert should mark a fair number of packets: {counts:?}");
    // The update widened alert 1 beyond its first version's last_ts.
    assert!(
        got.iter().any(|r| r.ts > alerts[0].last_ts.0 && r.comments.iter().any(|c| c.contains("alert 1 ")))
    );

    for id in 1..=3u64 {
        let one = dir.path().join(format!("alert{id}.pcapng"));
        let o = export(&["--pcap", s(&one), "--alert", &id.to_string(), s(&segs)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let tag = format!("netrec alert {id} ");
        let want: Vec<u64> =
            got.iter().filter(|r| r.comments.iter().any(|c| c.starts_with(&tag))).map(|r| r.ts).collect();
        assert_eq!(ts_list(&rows(&one)), want, "--alert {id}");
    }
}

/// `--flow` is bidirectional and exact; `--from`/`--to` are inclusive, in RFC 3339 or unix seconds.
#[test]
fn flow_and_time_filters_select_exactly_the_right_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/benign_browsing.pcap", 2);
    let segs = dir.path().join("segs");
    write_chain(&segs, &meta("h", 2, "eth0"), &recs, &[], 2);
    let all_out = dir.path().join("all.pcapng");
    assert_eq!(code(&export(&["--pcap", s(&all_out), s(&segs)])), 0);
    let all = rows(&all_out);

    // A TCP conversation, named in the reverse direction of its first packet.
    let r0 =
        all.iter().find(|r| r.proto == "6" && r.ports.len() == 2 && r.ports[0] > 1024).expect("a tcp frame");
    let (a, b, port) = (r0.a.unwrap(), r0.b.unwrap(), r0.ports[0]);
    let spec = format!("src={b} dst={a} port={port} proto=tcp");
    let out = dir.path().join("flow.pcapng");
    let o = export(&["--pcap", s(&out), "--flow", &spec, s(&segs)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want: Vec<u64> = all
        .iter()
        .filter(|r| r.proto == "6" && r.ports.contains(&port))
        .filter(|r| (r.a, r.b) == (Some(a), Some(b)) || (r.a, r.b) == (Some(b), Some(a)))
        .map(|r| r.ts)
        .collect();
    let got = rows(&out);
    assert!(want.len() >= 3, "conversation too small: {}", want.len());
    assert!(got.iter().any(|r| r.a == Some(a)) && got.iter().any(|r| r.a == Some(b)), "both directions");
    assert_eq!(ts_list(&got), want, "--flow {spec}");

    // Address-only filter: both directions between two hosts, any protocol.
    let out = dir.path().join("hosts.pcapng");
    assert_eq!(code(&export(&["--pcap", s(&out), "--flow", &format!("src={a} dst={b}"), s(&segs)])), 0);
    let want: Vec<u64> = all
        .iter()
        .filter(|r| (r.a, r.b) == (Some(a), Some(b)) || (r.a, r.b) == (Some(b), Some(a)))
        .map(|r| r.ts)
        .collect();
    assert_eq!(ts_list(&rows(&out)), want);

    // Time range: bounds are packet times (inclusive); --from as RFC 3339, --to as unix seconds.
    let (lo, hi) = (all[1000].ts, all[2000].ts);
    let from = rfc3339(lo);
    let to = format!("{}.{:09}", hi / 1_000_000_000, hi % 1_000_000_000);
    let out = dir.path().join("range.pcapng");
    let o = export(&["--pcap", s(&out), "--from", &from, "--to", &to, s(&segs)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want: Vec<u64> = all.iter().map(|r| r.ts).filter(|&t| t >= lo && t <= hi).collect();
    assert_eq!(ts_list(&rows(&out)), want, "--from {from} --to {to}");
    // The same instant with an offset.
    let out2 = dir.path().join("range2.pcapng");
    let from_offset = rfc3339_plus_one_hour(lo);
    assert_eq!(code(&export(&["--pcap", s(&out2), "--from", &from_offset, "--to", &to, s(&segs)])), 0);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap(), "{from_offset} == {from}");
}

/// Unix ns -> `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (civil-from-days, H. Hinnant), written here
/// independently of netrec's parser.
fn civil(ns: u64) -> (i64, i64, i64, u64, u64, u64, u64) {
    let secs = ns / 1_000_000_000;
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let sod = secs % 86_400;
    (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, ns % 1_000_000_000)
}

fn rfc3339(ns: u64) -> String {
    let (y, m, d, h, mi, s, f) = civil(ns);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:09}Z")
}

fn rfc3339_plus_one_hour(ns: u64) -> String {
    let (y, m, d, h, mi, s, f) = civil(ns + 3_600_000_000_000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:09}+01:00")
}

/// Two recordings (two directories) are merged by time; equal times keep the order of the
/// arguments; each recording's interface gets its own IDB.
#[test]
fn chains_are_merged_by_time_stably() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/land.pcap", 1);
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for (i, r) in recs.iter().enumerate() {
        if i % 2 == 0 { one.push(r.clone()) } else { two.push(r.clone()) }
    }
    // A tie: the second recording also has the first packet's time.
    let mut tie = two[0].clone();
    tie.ts = one[0].ts;
    two.insert(0, tie);
    let (d1, d2) = (dir.path().join("a"), dir.path().join("b"));
    write_chain(&d1, &meta("host-a", 1, "ethA"), &one, &[], 2);
    write_chain(&d2, &meta("host-b", 1, "ethB"), &two, &[], 2);
    let out = dir.path().join("m.pcapng");
    // b first: ties go to b.
    let o = export(&["--pcap", s(&out), s(&d2), s(&d1)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let f = tshark_fields(&out, &["frame.time_epoch", "frame.interface_name", "frame.interface_description"]);
    let mut want: Vec<(u64, &str, &str)> = two.iter().map(|r| (r.ts.0, "ethB", "host-b")).collect();
    want.extend(one.iter().map(|r| (r.ts.0, "ethA", "host-a")));
    // Stable sort: b's packets (listed first) before a's at equal times.
    want.sort_by_key(|w| w.0);
    let got: Vec<(u64, &str, &str)> =
        f.iter().map(|r| (ts_ns(&r[0]), r[1].as_str(), r[2].as_str())).collect();
    assert_eq!(got, want);
    assert_eq!(got[0].1, "ethB", "tie goes to the chain named first");
}

/// A damaged block is skipped with a warning naming the file and offset, a torn `.partial`
/// tail is recovered up to its last complete block; everything else is exported; exit 2.
#[test]
fn damaged_segments_export_everything_recoverable_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/port_scan_syn.pcap", 1);
    let segs = dir.path().join("segs");
    let paths = write_chain(&segs, &meta("h", 1, "eth0"), &recs, &[], 3);
    let per = recs.len().div_ceil(3);
    // Flip a byte in the middle of the second file (inside a packet block).
    let mid = &paths[1];
    let mut bytes = std::fs::read(mid).unwrap();
    let pos = bytes.len() / 2;
    bytes[pos] ^= 0xff;
    std::fs::write(mid, &bytes).unwrap();
    // Tear the third: a crash while it was written.
    let last = &paths[2];
    let torn = std::fs::read(last).unwrap();
    std::fs::remove_file(last).unwrap();
    let partial = PathBuf::from(format!("{}.partial", last.display()));
    std::fs::write(&partial, &torn[..torn.len() * 2 / 3]).unwrap();

    let out = dir.path().join("out.pcapng");
    let o = export(&["--pcap", s(&out), s(&segs)]);
    assert_eq!(code(&o), 2, "damage must give exit 2:\n{}", stderr(&o));
    let lines = err_lines(&o);
    let warn_mid = lines
        .iter()
        .filter(|l| l.starts_with(&format!("netrec: warning: {}: offset ", mid.display())))
        .count();
    let warn_torn = lines
        .iter()
        .filter(|l| l.starts_with(&format!("netrec: warning: {}: offset ", partial.display())))
        .count();
    assert_eq!((warn_mid, warn_torn), (1, 1), "one warning per damage:\n{}", stderr(&o));

    let got: Vec<u64> = rows(&out).iter().map(|r| r.ts).collect();
    let first: Vec<u64> = recs[..per].iter().map(|r| r.ts.0).collect();
    assert_eq!(got[..per], first[..], "the intact first segment is exported whole");
    let all: BTreeSet<u64> = recs.iter().map(|r| r.ts.0).collect();
    assert!(got.iter().all(|t| all.contains(t)), "only recorded packets");
    assert!(got.len() < recs.len(), "damaged parts cannot be exported");
    assert!(got.len() > per + per / 2, "too little recovered: {} of {}", got.len(), recs.len());
    assert!(got.windows(2).all(|w| w[0] <= w[1]), "still in time order");
}

#[test]
fn bad_options_are_clear_errors_and_create_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/land.pcap", 1);
    let segs = dir.path().join("segs");
    let a = alert(5, "r.x", recs[1].ts, recs[9].ts, &[], 0, &[]);
    write_chain(&segs, &meta("h", 1, "eth0"), &recs, &[a], 1);
    let out = dir.path().join("out.pcapng");
    let cases: &[(&[&str], &str)] = &[
        (&["--from", "yesterday"], "invalid time \"yesterday\""),
        (&["--from", "2026-02-30T00:00:00Z"], "no such date"),
        (&["--to", "2026-11-29T14:00:00"], "expected 'Z' or an offset"),
        (&["--flow", "src=10.0.0"], "flow filter src=\"10.0.0\" is not an IP address"),
        (&["--flow", "host=10.0.0.1"], "flow filter key \"host\" is unknown"),
        (&["--flow", "port=70000"], "is not a port number"),
        (&["--flow", "proto=sctpx"], "proto=\"sctpx\" is unknown"),
        (&["--alert", "x"], "invalid value 'x'"),
        (&["--alert", "99"], "alert 99 is not among the recorded alerts"),
        (&["--from", "200", "--to", "100"], "is after --to"),
    ];
    for (args, msg) in cases {
        let mut v = vec!["--pcap", s(&out)];
        v.extend_from_slice(args);
        v.push(s(&segs));
        let o = export(&v);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: expected {msg:?} in:\n{}", stderr(&o));
        assert!(!out.exists(), "{args:?}: output created despite the error");
    }
    let o = export(&["--pcap", s(&out), s(&dir.path().join("nothing-here"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nothing-here"), "{}", stderr(&o));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = export(&["--pcap", s(&dir.path().join("x.pcapng")), s(&empty)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no segment files"), "{}", stderr(&o));
}

/// `--pcap -` writes the same bytes to stdout as to a file, and two runs are identical.
#[test]
fn stdout_output_is_identical_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/land.pcap", 1);
    let segs = dir.path().join("segs");
    let a = alert(1, "r.x", recs[3].ts, recs[20].ts, &[], 0, &[]);
    write_chain(&segs, &meta("h", 1, "eth0"), &recs, &[a], 2);
    let out = dir.path().join("out.pcapng");
    assert_eq!(code(&export(&["--pcap", s(&out), s(&segs)])), 0);
    let o = export(&["--pcap", "-", "--quiet", s(&segs)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "--quiet: {}", stderr(&o));
    let file = std::fs::read(&out).unwrap();
    assert_eq!(o.stdout, file, "stdout and file output differ");
    let again = dir.path().join("again.pcapng");
    assert_eq!(code(&export(&["--pcap", s(&again), s(&segs)])), 0);
    assert_eq!(std::fs::read(&again).unwrap(), file, "not deterministic");
    // Alert with no addresses: every packet of its window, both ends included.
    let marked: Vec<usize> =
        rows(&out).iter().enumerate().filter(|(_, r)| !r.comments.is_empty()).map(|(i, _)| i).collect();
    assert_eq!(marked, (3..=20).collect::<Vec<_>>());
}

/// The same alert id in two recordings: `--alert` refuses to guess and names both; a time
/// range that contains only one of them selects it.
#[test]
fn repeated_alert_ids_are_disambiguated_by_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = recorded("pcap/land.pcap", 1);
    let half = recs.len() / 2;
    let (d1, d2) = (dir.path().join("run1"), dir.path().join("run2"));
    let a1 = alert(1, "r.x", recs[2].ts, recs[5].ts, &[], 0, &[]);
    let a2 = alert(1, "r.x", recs[half + 2].ts, recs[half + 5].ts, &[], 0, &[]);
    // Two runs of the recorder (ids restart at 1 in each).
    let run = |id| SegmentMeta { run_id: id, ..meta("h", 1, "eth0") };
    write_chain(&d1, &run(111), &recs[..half], &[a1], 1);
    write_chain(&d2, &run(222), &recs[half..], &[a2], 1);
    let out = dir.path().join("out.pcapng");
    let o = export(&["--pcap", s(&out), "--alert", "1", s(&d1), s(&d2)]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.contains("alert id 1 is ambiguous: 2 different recorded alerts"), "{e}");
    assert!(e.contains("run 111 r.x") && e.contains("run1"), "{e}");
    assert!(e.contains("run 222 r.x") && e.contains("run2"), "{e}");
    let from = format!("{}", recs[half].ts);
    let o = export(&["--pcap", s(&out), "--alert", "1", "--from", &from, s(&d1), s(&d2)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want: Vec<u64> = recs[half + 2..=half + 5].iter().map(|r| r.ts.0).collect();
    assert_eq!(ts_list(&rows(&out)), want);
}

/// Throughput, run by hand once with `--release` (ignored by default: it writes ~1M packets):
/// `cargo test --release -p netrec --test export -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = recorded("pcap/syn_flood.pcap", 1);
    let span = base.last().unwrap().ts.0 - base[0].ts.0 + 1_000_000;
    let reps = 1_000_000usize.div_ceil(base.len());
    let mut recs = Vec::with_capacity(base.len() * reps);
    for k in 0..reps as u64 {
        recs.extend(base.iter().map(|r| PacketRecord { ts: Ts(r.ts.0 + k * span), ..r.clone() }));
    }
    let n = recs.len();
    // An alert over a tenth of the packets, addressed like the flood.
    let (first, last) = (recs[n / 2].ts, recs[n / 2 + n / 10].ts);
    let a = alert(1, "r.flood", first, last, &[], 0, &[]);
    let segs = dir.path().join("segs");
    write_chain(&segs, &meta("h", 1, "eth0"), &recs, &[a], 4);
    drop(recs);
    let out = dir.path().join("out.pcapng");
    for (what, extra) in [("all", vec![]), ("flow filter", vec!["--flow", "proto=tcp port=80"])] {
        let mut args = vec!["--pcap", s(&out)];
        args.extend(extra);
        args.push(s(&segs));
        let t = std::time::Instant::now();
        let o = export(&args);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let size = std::fs::metadata(&out).unwrap().len();
        eprintln!(
            "{what}: {n} packets in {secs:.2} s = {:.2} M packets/s, {size} bytes out; {}",
            n as f64 / secs / 1e6,
            stderr(&o).trim()
        );
    }
}

/// Real third-party captures of every link type netrec decodes (and a two-interface pcapng)
/// survive capture -> segment (snaplen 128) -> pcapng: tshark reads each export with the
/// original link type, every frame's time, original length and first 128 bytes intact.
/// (`timestamp-invalid-nano.pcap` is left out: its invalid nanosecond fields have no single
/// right reading to compare with.)
#[test]
fn real_captures_of_every_link_type_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "linktype-ipv4.pcap",
        "linktype-nflog.pcap",
        "linktype-ppp.pcap",
        "linktype-raw-ipv4.pcap",
        "linux-sll2.pcap",
        "tcp-handshake-nanosecond.pcap",
        "pcapng-multi-interface.pcapng",
    ];
    for name in names {
        let path = captures_dir().join(name);
        let orig = read_packets_any(&path);
        let mut ifaces: Vec<InterfaceInfo> = Vec::new();
        let recs: Vec<PacketRecord> = orig
            .iter()
            .map(|p| {
                if !ifaces.iter().any(|i| i.index == p.iface) {
                    let name = format!("cap{}", p.iface);
                    ifaces.push(InterfaceInfo { index: p.iface, name, link_type: p.link_type });
                }
                let mut r = p.clone();
                r.data.truncate(SNAPLEN);
                r
            })
            .collect();
        let m = SegmentMeta { interfaces: ifaces, ..meta("real", 0, "x") };
        let segs = dir.path().join(name);
        write_chain(&segs, &m, &recs, &[], 1);
        let out = dir.path().join(format!("{name}.out.pcapng"));
        let o = export(&["--pcap", s(&out), s(&segs)]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        let (link, frames) = tshark_pcap(&out);
        assert_eq!(link, recs[0].link_type.0, "{name}: link type of tshark's rewrite");
        assert_eq!(frames.len(), recs.len(), "{name}: frame count");
        for (i, ((ts, len, data), r)) in frames.iter().zip(&recs).enumerate() {
            assert_eq!((*ts, *len), (r.ts.0, r.wire_len), "{name} frame {i}: time, length");
            assert_eq!(data, &r.data, "{name} frame {i}: bytes");
        }
    }
}

/// Every packet of a capture (any count, unlike `read_packets`).
fn read_packets_any(path: &Path) -> Vec<PacketRecord> {
    let out = capture_records(path, usize::MAX);
    assert!(!out.is_empty(), "{} has no packets", path.display());
    out
}
