//! Every shared third-party capture reads to the end and matches MANIFEST.tsv
//! (packet counts and first/last timestamps measured with capinfos/tshark).

use netrec_analyzer::source::{CaptureFormat, CaptureSource, WarningKind};

#[path = "../../tests/common/captures.rs"]
mod captures;
use captures::captures_dir;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses "YYYY-MM-DD HH:MM:SS.frac" (UTC, 1-9 fraction digits) to ns since the epoch.
fn parse_utc(s: &str) -> u64 {
    let (date, time) = s.split_once(' ').expect("date and time");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').expect("fraction");
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    assert!(!frac.is_empty() && frac.len() <= 9, "fraction {frac}");
    let frac_ns: u64 = frac.parse::<u64>().unwrap() * 10u64.pow(9 - frac.len() as u32);
    let secs = days_from_civil(d[0], d[1], d[2]) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    secs as u64 * 1_000_000_000 + frac_ns
}

#[test]
fn parse_utc_known_values() {
    // tcpdump -tt prints 1418145369.924505488 for 2014-12-09 17:16:09.924505488 UTC.
    assert_eq!(parse_utc("2014-12-09 17:16:09.924505488"), 1_418_145_369_924_505_488);
    assert_eq!(parse_utc("1970-01-01 00:00:01.031048"), 1_031_048_000);
}

struct Row {
    file: String,
    link: String,
    count: u64,
    first: String,
    last: String,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(captures_dir().join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (fi, li, ci, ti, ui) =
        (col("file"), col("link_type"), col("packet_count"), col("first_ts"), col("last_ts"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                file: f[fi].to_owned(),
                link: f[li].to_owned(),
                count: f[ci].parse().unwrap(),
                first: f[ti].to_owned(),
                last: f[ui].to_owned(),
            }
        })
        .collect()
}

#[test]
fn every_shared_capture_matches_manifest() {
    let rows = manifest();
    assert!(rows.len() >= 30, "manifest has {} rows", rows.len());
    let mut checked = 0;
    for row in &rows {
        let path = captures_dir().join(&row.file);
        let mut src = CaptureSource::open(&path).unwrap_or_else(|e| panic!("{e}"));
        // Format by magic: MANIFEST says "pcap usec/nsec" or "pcapng", whatever the name.
        let want_format =
            if row.link.contains("pcapng") { CaptureFormat::PcapNg } else { CaptureFormat::Pcap };
        assert_eq!(src.format(), want_format, "{}", row.file);
        let (mut n, mut first, mut last) = (0u64, None, None);
        while let Some(p) = src.next_packet().unwrap_or_else(|e| panic!("{e}")) {
            assert!(p.data.len() as u32 <= p.wire_len, "{}", row.file);
            first.get_or_insert(p.ts.0);
            last = Some(p.ts.0);
            n += 1;
        }
        assert_eq!(n, row.count, "{}: packet count", row.file);
        assert_eq!(src.packets(), n);
        let invalid_ts = src.warnings().iter().filter(|w| w.kind == WarningKind::InvalidTimestamp).count();
        match row.file.as_str() {
            // MANIFEST says n/a: no packets.
            "empty.pcap" => {
                assert_eq!((row.first.as_str(), first), ("n/a", None));
                assert_eq!(src.warning_count(), 0);
            }
            // MANIFEST prints the raw invalid fraction ("17:16:10.-2147483648"), which is
            // not a time. The file's packets 2 and 3 carry 1000000000 and 2147483648 ns
            // (EXPECTED.md); we define ts = sec * 1e9 + frac and warn for each.
            "timestamp-invalid-nano.pcap" => {
                assert_eq!(first, Some(parse_utc(&row.first)));
                let sec10 = parse_utc("2014-12-09 17:16:10.0");
                assert_eq!(last, Some(sec10 + 2_147_483_648));
                assert_eq!(invalid_ts, 2);
                assert_eq!(src.warning_count(), 2);
            }
            _ => {
                assert_eq!(first, Some(parse_utc(&row.first)), "{}: first_ts", row.file);
                assert_eq!(last, Some(parse_utc(&row.last)), "{}: last_ts", row.file);
                assert_eq!(src.warning_count(), 0, "{}: {:?}", row.file, src.warnings());
            }
        }
        assert_eq!(src.bytes_consumed(), std::fs::metadata(&path).unwrap().len(), "{}", row.file);
        checked += 1;
    }
    assert_eq!(checked, rows.len());
}

#[test]
fn pcapng_named_files_that_are_classic_pcap() {
    let misnamed: Vec<Row> = manifest()
        .into_iter()
        .filter(|r| r.file.ends_with(".pcapng") && !r.link.contains("pcapng"))
        .collect();
    assert_eq!(misnamed.len(), 3);
    for r in misnamed {
        let src = CaptureSource::open(&captures_dir().join(&r.file)).unwrap();
        assert_eq!(src.format(), CaptureFormat::Pcap, "{}", r.file);
    }
}

#[test]
fn pcapng_multi_interface_has_two_interfaces() {
    let mut src = CaptureSource::open(&captures_dir().join("pcapng-multi-interface.pcapng")).unwrap();
    assert_eq!(src.format(), CaptureFormat::PcapNg);
    // Both IDBs precede the first packet, so they are known right after open.
    assert_eq!(src.interfaces().len(), 2);
    assert_eq!(src.interfaces()[0].name, "eth0");
    assert_eq!(src.interfaces()[1].name, r"\Device\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}");
    assert!(src.interfaces().iter().all(|i| i.link_type.0 == 1));
    // capinfos: interface #0 has 2 packets, #1 has 4.
    let mut per_iface = [0; 2];
    while let Some(p) = src.next_packet().unwrap() {
        per_iface[p.iface as usize] += 1;
    }
    assert_eq!(per_iface, [2, 4]);
}

#[test]
fn nanosecond_handshake_times() {
    // tcpdump -tt --nano: .924505488, .052027262, .052115157 (EXPECTED.md).
    let mut src = CaptureSource::open(&captures_dir().join("tcp-handshake-nanosecond.pcap")).unwrap();
    let mut ts = Vec::new();
    while let Some(p) = src.next_packet().unwrap() {
        assert_eq!(p.link_type.0, 113);
        ts.push(p.ts.0);
    }
    assert_eq!(ts, [1_418_145_369_924_505_488, 1_418_145_370_052_027_262, 1_418_145_370_052_115_157]);
}

#[test]
fn real_pcapng_cut_at_every_byte() {
    let bytes = std::fs::read(captures_dir().join("pcapng-multi-interface.pcapng")).unwrap();
    // Block boundaries, walking the (little-endian) block lengths.
    let mut bounds = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        at += u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        bounds.push(at);
    }
    assert_eq!(at, bytes.len());
    let mut prev = 0;
    for cut in 1..=bytes.len() {
        let r = CaptureSource::from_reader(
            std::path::Path::new("cut.pcapng"),
            Box::new(std::io::Cursor::new(bytes[..cut].to_vec())),
        );
        let Ok(mut src) = r else { continue };
        let mut n = 0;
        while src.next_packet().unwrap().is_some() {
            n += 1;
        }
        // More bytes never yield fewer packets; a partial tail is always reported.
        assert!(n >= prev, "cut {cut}");
        prev = n;
        // Exactly the cuts at block boundaries are silent.
        assert_eq!(src.warning_count() == 0, bounds.contains(&cut), "cut {cut}");
    }
    assert_eq!(prev, 6);
}
