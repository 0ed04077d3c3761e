//! Issue #2 ("Chain") at the CLI level: `netrec segments ls | cat | verify` on segments written
//! offline with `netrec_format::store::SegmentFile`, and `netrec analyze` on a segment directory
//! agreeing with the analysis of the pcap its packets came from.

mod common;

use common::*;
use netrec_format::segment::{SegmentHeaderInfo, WriterConfig};
use netrec_format::store::SegmentFile;
use netrec_format::{InterfaceInfo, LinkType, LossRecord, PacketRecord, SegmentMeta};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every packet of a capture, owned.
fn read_packets(path: &Path) -> Vec<PacketRecord> {
    let out = capture_records(path, usize::MAX);
    assert!(!out.is_empty(), "{} has no packets", path.display());
    out
}

/// What one written segment holds.
#[derive(Debug)]
struct Written {
    path: PathBuf,
    packets: usize,
    loss: usize,
}

/// Writes `packets` as a hash chain of `parts` closed segments in `dir` (sequence 0..parts, each
/// header's prev_sha256 = SHA-256 of the previous file). Each segment gets one meta record, its
/// share of the packets (time order kept) and one loss record, with small blocks so a file has
/// several blocks.
fn write_chain(dir: &Path, packets: &[PacketRecord], parts: usize) -> Vec<Written> {
    let link = packets.first().map_or(LinkType(1), |p| p.link_type);
    let meta = SegmentMeta {
        host: "test-host".into(),
        interfaces: vec![InterfaceInfo { index: 0, name: "eth0".into(), link_type: link }],
        snaplen: 65535,
        clock_base_ns: 0,
        netrec_version: "test".into(),
        ruleset_digest: String::new(),
        ..SegmentMeta::default()
    };
    let cfg = WriterConfig { max_block_bytes: 4096, max_block_age_ns: 0, zstd_level: 3, header_delta: true };
    let per = packets.len().div_ceil(parts);
    let mut prev = [0u8; 32];
    let mut out = Vec::new();
    for (seq, chunk) in packets.chunks(per).enumerate() {
        let first = chunk.first().expect("non-empty chunk").ts;
        let info = SegmentHeaderInfo { seq: seq as u64, prev_sha256: prev, created_ns: first.0 };
        let mut f = SegmentFile::create(dir, info, cfg).expect("create segment");
        f.write_meta(&meta).expect("meta");
        for p in chunk {
            f.push_packet(&p.as_ref()).expect("packet");
        }
        let last = chunk.last().expect("non-empty chunk").ts;
        let loss = LossRecord { ts: last, kernel_packets: chunk.len() as u64, ..Default::default() };
        f.push_loss(&loss).expect("loss");
        let (path, summary) = f.close().expect("close");
        prev = summary.sha256;
        out.push(Written { path, packets: chunk.len(), loss: 1 });
    }
    assert_eq!(out.len(), parts, "packets do not split into {parts} segments");
    out
}

/// A small chain (a few KB per file) for the byte-flip test: 3 segments from land.pcap.
fn small_chain(dir: &Path) -> Vec<Written> {
    write_chain(dir, &read_packets(&fixture("pcap/land.pcap")), 3)
}

#[test]
fn verify_accepts_an_intact_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    let o = netrec(&["segments", "verify", s(dir.path())]);
    assert_eq!(code(&o), 0, "verify of an intact chain failed:\n{}", stderr(&o));
    let total: usize = chain.iter().map(|w| w.packets).sum();
    let out = stdout(&o);
    assert!(out.contains("3 segment(s) intact"), "{out}");
    assert!(out.contains(&format!("({total} packets")), "{out}");
    // Files given one by one form the same chain.
    let files: Vec<&str> = chain.iter().map(|w| s(&w.path)).collect();
    let mut args = vec!["segments", "verify"];
    args.extend(&files);
    assert_eq!(code(&netrec(&args)), 0);
}

/// Changing any byte of any closed segment is detected and reported against that file.
#[test]
fn verify_detects_every_sampled_byte_change() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    let mut checked = 0;
    for w in &chain {
        let original = std::fs::read(&w.path).unwrap();
        let name = w.path.file_name().unwrap().to_str().unwrap().to_owned();
        for pos in (0..original.len()).step_by(7) {
            let mut bytes = original.clone();
            bytes[pos] ^= 0x5a;
            std::fs::write(&w.path, &bytes).unwrap();
            let o = netrec(&["segments", "verify", s(dir.path())]);
            assert_no_panic(&o, &format!("{name} byte {pos}"));
            assert_eq!(code(&o), 1, "{name}: change at byte {pos} of {} not detected", original.len());
            // The first problem reported is in the changed file itself.
            let first = err_lines(&o).into_iter().next().unwrap_or_default();
            assert!(
                first.starts_with(&format!("netrec: {}:", w.path.display())),
                "{name}: change at byte {pos}: first problem does not name the file: {}",
                stderr(&o)
            );
            checked += 1;
        }
        std::fs::write(&w.path, &original).unwrap();
    }
    assert!(checked > 100, "only {checked} positions checked: the chain is too small to mean much");
    assert_eq!(code(&netrec(&["segments", "verify", s(dir.path())])), 0, "restored chain must verify");
}

#[test]
fn verify_reports_a_deleted_middle_segment_as_a_chain_break() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    std::fs::remove_file(&chain[1].path).unwrap();
    let o = netrec(&["segments", "verify", s(dir.path())]);
    assert_no_panic(&o, "deleted middle");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let lines = err_lines(&o);
    assert_eq!(lines.len(), 1, "one problem expected: {lines:?}");
    let l = &lines[0];
    assert!(l.starts_with(&format!("netrec: {}:", chain[2].path.display())), "{l}");
    assert!(l.contains("hash chain break"), "{l}");
    assert!(l.contains(&chain[0].path.display().to_string()), "break must name the previous file: {l}");
    assert!(l.contains("expected sequence 1, found 2"), "{l}");
}

#[test]
fn ls_lists_three_segments_with_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    let o = netrec(&["segments", "ls", s(dir.path())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 4, "header + 3 rows expected:\n{out}");
    // Names carry the first packet's time (land.pcap starts 2026-01-01T00:00:01Z, fixtures/README.md).
    assert_eq!(rows[1][0], "seg-0000000000-20260101T000001Z.nrseg");
    let header = &rows[0];
    let col =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} column"));
    let (file, seq, packets, loss, closed) =
        (col("file"), col("seq"), col("packets"), col("loss"), col("closed"));
    for (i, (r, w)) in rows[1..].iter().zip(&chain).enumerate() {
        assert_eq!(r[file], w.path.file_name().unwrap().to_str().unwrap());
        assert_eq!(r[seq], i.to_string());
        assert_eq!(r[packets], w.packets.to_string());
        assert_eq!(r[loss], w.loss.to_string());
        assert_eq!(r[closed], "yes");
    }
    // One file: its own row, as in the directory's listing.
    let o = netrec(&["segments", "ls", s(&chain[1].path)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let one = stdout(&o);
    assert_eq!(one.lines().count(), 2, "{one}");
    let words =
        |t: &str, n| t.lines().nth(n).map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    assert_eq!(words(&one, 1), words(&out, 2), "the file's row");
}

#[test]
fn cat_json_emits_typed_records_with_the_right_counts() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    let packets = read_packets(&fixture("pcap/land.pcap"));
    let mut offset = 0;
    for w in &chain {
        let o = netrec(&["segments", "cat", s(&w.path), "--json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let recs = jsonl(&o);
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for r in &recs {
            let t = r["type"].as_str().unwrap_or_else(|| panic!("record without a type: {r}"));
            *by_type.entry(t.to_owned()).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> =
            [("meta".to_owned(), 1), ("packet".to_owned(), w.packets), ("loss".to_owned(), w.loss)].into();
        assert_eq!(by_type, expected, "{}", w.path.display());
        // Packets come back in order with their wire length and bytes.
        let got: Vec<&serde_json::Value> = recs.iter().filter(|r| r["type"] == "packet").collect();
        for (j, r) in got.iter().enumerate() {
            let p = &packets[offset + j];
            assert_eq!(r["wire_len"], p.wire_len, "{}", w.path.display());
            assert_eq!(r["data"].as_str().unwrap(), hex::encode(&p.data));
        }
        offset += w.packets;
    }
    // Several files in one call: the records of all of them.
    let o = netrec(&["segments", "cat", s(&chain[0].path), s(&chain[2].path), "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(jsonl(&o).len(), chain[0].packets + chain[2].packets + 4);
}

/// Sets the major version field (bytes 8..10) without touching anything else.
fn with_newer_major(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    b
}

#[test]
fn bad_inputs_name_the_path_and_exit_1_or_2() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    let text = junk.join("notes.txt");
    std::fs::write(&text, "not a segment\n").unwrap();
    // A text file wearing a segment name.
    let fake = junk.join("seg-0000000000-20260101T000001Z.nrseg");
    std::fs::write(&fake, "not a segment either\n").unwrap();
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let newer_file = newer.join(chain[0].path.file_name().unwrap());
    std::fs::write(&newer_file, with_newer_major(&std::fs::read(&chain[0].path).unwrap())).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("no-such-thing");

    // verify: 1 when a file fails verification (not a segment, unsupported version: it cannot
    // be vouched for), 2 when an input cannot be read at all.
    let cases: Vec<(Vec<&str>, &Path, &str, i32)> = vec![
        (vec!["segments", "cat", s(&text)], &text, "", 2),
        (vec!["segments", "cat", s(&newer_file)], &newer_file, "major", 2),
        (vec!["segments", "cat", s(&missing)], &missing, "", 2),
        (vec!["segments", "cat", s(&empty)], &empty, "", 2),
        (vec!["segments", "verify", s(&text)], &text, "", 1),
        (vec!["segments", "verify", s(&fake)], &fake, "", 1),
        (vec!["segments", "verify", s(&newer)], &newer_file, "major", 1),
        (vec!["segments", "verify", s(&newer_file)], &newer_file, "major", 1),
        (vec!["segments", "verify", s(&empty)], &empty, "no segment files", 2),
        (vec!["segments", "verify", s(&missing)], &missing, "", 2),
        (vec!["segments", "ls", s(&empty)], &empty, "no segment files", 2),
        (vec!["segments", "ls", s(&missing)], &missing, "", 2),
        (vec!["segments", "ls", s(&junk)], &fake, "", 2),
        (vec!["segments", "ls", s(&newer)], &newer_file, "major", 2),
        (vec!["segments", "ls", s(&text)], &text, "not a recording directory nor a segment file name", 2),
    ];
    for (args, path, needle, exit) in cases {
        let what = args.join(" ");
        let o = netrec(&args);
        assert_no_panic(&o, &what);
        assert_eq!(code(&o), exit, "{what}: exit code\n{}", stderr(&o));
        let lines = err_lines(&o);
        assert_eq!(lines.len(), 1, "{what}: one line expected, got {lines:?}");
        assert!(
            lines[0].contains(&path.display().to_string()),
            "{what}: line does not name {}: {}",
            path.display(),
            lines[0]
        );
        assert!(lines[0].to_lowercase().contains(needle), "{what}: expected {needle:?} in {}", lines[0]);
    }
}

/// Alerts as (rule_id, class, first_ts, count, src, dst), sorted.
fn alert_keys(alerts: &[serde_json::Value]) -> Vec<(String, String, String, u64, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_owned(),
                a["class"].as_str().unwrap().to_owned(),
                a["first_ts"].as_str().unwrap().to_owned(),
                a["count"].as_u64().unwrap(),
                a["src"].to_string(),
                a["dst"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Alerts stored in a database, as `alert_keys`.
fn db_alert_keys(db: &Path) -> Vec<(String, String, String, u64, String, String)> {
    let conn = db_ro(db);
    let mut st = conn.prepare("SELECT rule_id, class, first_ts, count, src, dst FROM alerts").unwrap();
    let list = |s: String| {
        let v: Vec<&str> = if s.is_empty() { vec![] } else { s.split(',').collect() };
        serde_json::to_string(&v).unwrap()
    };
    let mut v: Vec<_> = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .map(|r| {
            let (a, b, c, d, e, f): (String, String, String, u64, String, String) = r.unwrap();
            (a, b, c, d, list(e), list(f))
        })
        .collect();
    v.sort();
    v
}

/// `analyze` of a segment directory whose packets (a fixture pcap's, split over `parts` chained
/// segments) raises the same alerts as `analyze` of the pcap (and as `netrec alerts` of it).
fn analyze_of_segments_matches_analyze_of_the_pcap(parts: usize) {
    for name in ["port_scan_syn.pcap", "brute_force_ssh.pcap"] {
        let pcap = fixture(&format!("pcap/{name}"));
        let dir = tempfile::tempdir().unwrap();
        let segdir = dir.path().join("segs");
        std::fs::create_dir(&segdir).unwrap();
        write_chain(&segdir, &read_packets(&pcap), parts);
        assert_eq!(code(&netrec(&["segments", "verify", s(&segdir)])), 0);

        let db_seg = dir.path().join("seg.sqlite");
        let o = netrec(&["analyze", "--quiet", "--db", s(&db_seg), s(&segdir)]);
        assert_eq!(code(&o), 0, "{name}: analyze segments: {}", stderr(&o));
        let db_pcap = dir.path().join("pcap.sqlite");
        let o = netrec(&["analyze", "--quiet", "--db", s(&db_pcap), s(&pcap)]);
        assert_eq!(code(&o), 0, "{name}: analyze pcap: {}", stderr(&o));

        let from_pcap = db_alert_keys(&db_pcap);
        assert!(!from_pcap.is_empty(), "{name} must raise alerts (fixtures/README.md)");
        assert_eq!(alert_keys(&jsonl(&netrec(&["alerts", "--format", "jsonl", s(&pcap)]))), from_pcap);
        assert_eq!(db_alert_keys(&db_seg), from_pcap, "{name}: segments and pcap disagree");
    }
}

#[test]
fn analyze_of_one_segment_matches_analyze_of_the_pcap() {
    analyze_of_segments_matches_analyze_of_the_pcap(1);
}

/// A chain is one recording and one stream: an attack spanning a rotation is one alert (a fresh
/// engine per file split the port scan into 346 + 342 + 336 events instead of one of 1024).
#[test]
fn analyze_of_a_segment_chain_matches_analyze_of_the_pcap() {
    analyze_of_segments_matches_analyze_of_the_pcap(3);
}

/// `netrec alerts` and `netrec flows` treat consecutive segments of one directory as one recording:
/// one engine across the chain, so an attack spanning rotations is one alert, as in the pcap.
#[test]
fn alerts_of_a_segment_chain_match_alerts_of_the_pcap() {
    for name in ["port_scan_syn.pcap", "brute_force_ssh.pcap"] {
        let pcap = fixture(&format!("pcap/{name}"));
        let dir = tempfile::tempdir().unwrap();
        let segdir = dir.path().join("segs");
        std::fs::create_dir(&segdir).unwrap();
        write_chain(&segdir, &read_packets(&pcap), 3);
        let from_pcap = jsonl(&netrec(&["alerts", "--format", "jsonl", s(&pcap)]));
        let from_segs = jsonl(&netrec(&["alerts", "--format", "jsonl", s(&segdir)]));
        assert!(!from_pcap.is_empty(), "{name} must raise alerts");
        assert_eq!(alert_keys(&from_segs), alert_keys(&from_pcap), "{name}: segment chain and pcap disagree");
        let flows_pcap = jsonl(&netrec(&["flows", "--format", "jsonl", s(&pcap)]));
        let flows_segs = jsonl(&netrec(&["flows", "--format", "jsonl", s(&segdir)]));
        assert_eq!(flows_segs, flows_pcap, "{name}: flows of the chain differ from the pcap's");
    }
}

/// A chain whose last third starts an hour after the rest: verify warns with the gap length and
/// both files, exit 0; `--gap 2h` is quiet about it.
#[test]
fn verify_warns_about_gaps_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut packets = read_packets(&fixture("pcap/land.pcap"));
    let per = packets.len().div_ceil(3);
    for p in &mut packets[2 * per..] {
        p.ts.0 += 3_600_000_000_000;
    }
    let chain = write_chain(dir.path(), &packets, 3);
    let o = netrec(&["segments", "verify", s(dir.path())]);
    assert_eq!(code(&o), 0, "a gap is a warning, not damage: {}", stderr(&o));
    let lines = err_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert!(l.starts_with(&format!("netrec: warning: {}:", chain[2].path.display())), "{l}");
    assert!(l.contains(&chain[1].path.display().to_string()), "{l}");
    // The gap: from the last record of file 2 (its loss record, at its last packet) to the first
    // packet of file 3.
    let gap = packets[2 * per].ts.0 - packets[2 * per - 1].ts.0;
    let (secs, ms) = (gap / 1_000_000_000, gap % 1_000_000_000 / 1_000_000);
    let want = format!("{}h{}m{}.{ms:03}s gap", secs / 3600, secs / 60 % 60, secs % 60);
    assert!(l.contains(&want), "expected {want:?} in {l}");
    assert!(stdout(&o).contains("1 gap(s) over 1m0s"), "{}", stdout(&o));
    let o = netrec(&["segments", "verify", "--gap", "2h", s(dir.path())]);
    assert_eq!(code(&o), 0);
    assert!(err_lines(&o).is_empty(), "{}", stderr(&o));
}

/// Two damaged files: both are reported, each with its file and offset, in chain order; the
/// break after a damaged file is not reported again.
#[test]
fn verify_reports_every_damaged_file_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    for w in [&chain[0], &chain[2]] {
        let mut b = std::fs::read(&w.path).unwrap();
        let at = b.len() / 2;
        b[at] ^= 0x01;
        std::fs::write(&w.path, &b).unwrap();
    }
    let o = netrec(&["segments", "verify", s(dir.path())]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let lines = err_lines(&o);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (l, w) in lines.iter().zip([&chain[0], &chain[2]]) {
        assert!(l.starts_with(&format!("netrec: {}:", w.path.display())), "{l}");
        assert!(l.contains("offset "), "{l}");
    }
}

/// A chain break names the header field's offset (24: sequence, 32: previous SHA-256).
#[test]
fn verify_names_the_offset_of_a_chain_break() {
    let dir = tempfile::tempdir().unwrap();
    let chain = small_chain(dir.path());
    std::fs::remove_file(&chain[1].path).unwrap();
    let o = netrec(&["segments", "verify", s(dir.path())]);
    assert_eq!(code(&o), 1);
    assert!(
        err_lines(&o)[0]
            .starts_with(&format!("netrec: {}: offset 24: hash chain break", chain[2].path.display()))
    );
}

/// `import`, a crash (the last segment left as a torn `.partial`), `import` again: the restart
/// recovers the partial, continues the chain from it, and verify reports the recovered file and
/// the new run's first segment, exit 0.
#[test]
fn verify_covers_the_chain_across_a_crash_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let segdir = dir.path().join("segs");
    let alerts = dir.path().join("alerts.jsonl");
    let pcap = fixture("pcap/port_scan_syn.pcap");
    let run = |p: &Path| {
        netrec(&["import", s(p), "-o", s(&segdir), "--rotate-size", "16K", "--alerts", s(&alerts)])
    };
    assert_eq!(code(&run(&pcap)), 0);
    let list = netrec_format::store::list_segments(&segdir).unwrap();
    let last = list.last().unwrap().path.clone();
    let bytes = std::fs::read(&last).unwrap();
    let partial = PathBuf::from(format!("{}.partial", last.display()));
    std::fs::write(&partial, &bytes[..bytes.len() * 2 / 3]).unwrap();
    std::fs::remove_file(&last).unwrap();
    // While the .partial is there: the closed ones verify, the open one is mentioned.
    let o = netrec(&["segments", "verify", s(&segdir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{}: open segment (.partial) not verified", partial.display())));

    let o = run(&fixture("pcap/land.pcap"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let st = stderr(&o);
    assert!(st.contains(&format!("netrec: recovered {} -> {}:", partial.display(), last.display())), "{st}");
    let o = netrec(&["segments", "verify", s(&segdir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let next = netrec_format::store::list_segments(&segdir).unwrap()[list.len()].path.clone();
    let note = format!(
        "netrec: {}: closed by recovery, not by its writer (a crash or a write failure; the .partial had {} bytes)",
        last.display(),
        bytes.len() * 2 / 3
    );
    assert!(stderr(&o).contains(&note), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{} starts the next run's chain link", next.display())),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(&format!("ok: {} segment(s) intact", list.len() + 1)), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 closed by recovery"), "{}", stdout(&o));
    // Tamper test on the recovered file (its trailer is recovery's, layout 2): every sampled
    // single-byte change is reported against it.
    let original = std::fs::read(&last).unwrap();
    let step = (original.len() / 120).max(1);
    for pos in (0..original.len()).step_by(step) {
        let mut b = original.clone();
        b[pos] ^= 0x20;
        std::fs::write(&last, &b).unwrap();
        let o = netrec(&["segments", "verify", s(&segdir)]);
        assert_eq!(code(&o), 1, "change at byte {pos} of the recovered file not detected");
        let first = err_lines(&o).into_iter().next().unwrap_or_default();
        assert!(first.starts_with(&format!("netrec: {}:", last.display())), "byte {pos}: {first}");
    }
    std::fs::write(&last, &original).unwrap();
}

fn file_sha256(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A chain is one `inputs` row (path = its directory, identity = SHA-256 of the manifest of its
/// files' hashes and sizes, docs/schema.md) with one `input_files` row per file; its loss records
/// come from every file; analyzing it again is a no-op, and another set of files is another input.
#[test]
fn a_chain_is_one_input_listing_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let segdir = dir.path().join("segs");
    std::fs::create_dir(&segdir).unwrap();
    let packets = read_packets(&fixture("pcap/port_scan_syn.pcap"));
    let chain = write_chain(&segdir, &packets, 3);
    let db = dir.path().join("a.sqlite");
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&segdir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let conn = db_ro(&db);
    let (path, format, size, sha, n): (String, String, i64, String, i64) = conn
        .query_row("SELECT path, format, size_bytes, sha256, packets FROM inputs", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(path, s(&segdir));
    assert_eq!(format, "segment");
    assert_eq!(n as usize, packets.len());
    let sizes: Vec<u64> = chain.iter().map(|w| std::fs::metadata(&w.path).unwrap().len()).collect();
    assert_eq!(size as u64, sizes.iter().sum::<u64>());
    let mut manifest = String::from("netrec-chain-v1\n");
    for (w, size) in chain.iter().zip(&sizes) {
        manifest.push_str(&format!("{} {size}\n", file_sha256(&w.path)));
    }
    use sha2::Digest as _;
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(manifest.as_bytes())));
    let mut stmt =
        conn.prepare("SELECT input_id, seq, path, sha256, size_bytes FROM input_files ORDER BY seq").unwrap();
    let files: Vec<(i64, i64, String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let want: Vec<(i64, i64, String, String, i64)> = chain
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(k, (w, size))| (1, k as i64, s(&w.path).to_string(), file_sha256(&w.path), *size as i64))
        .collect();
    assert_eq!(files, want);
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM losses"), chain.iter().map(|w| w.loss as i64).sum::<i64>());
    drop(stmt);
    drop(conn);

    // Again: skipped, nothing added.
    let before = table_counts(&db);
    let o = netrec(&["analyze", "--db", s(&db), s(&segdir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("already in"), "{}", stderr(&o));
    assert_eq!(table_counts(&db), before);

    // The first two files only (a recording analyzed before its last rotation): another input.
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&chain[0].path), s(&chain[1].path)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM inputs"), 2);
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM input_files WHERE input_id = 2"), 2);
    assert_eq!(
        sql_i64(&db, "SELECT packets FROM inputs WHERE id = 2") as usize,
        chain[0].packets + chain[1].packets
    );
}

/// A file of a chain whose header is damaged (the first or a middle one) is read past with a
/// warning naming it, or, when it no longer starts like a segment, skipped with a warning; the
/// rest of the recording is analyzed either way (nothing recorded elsewhere is lost).
#[test]
fn a_chain_with_a_damaged_file_header_keeps_the_other_files() {
    for bad in [0usize, 1] {
        // One damaged magic byte: a damaged header, read past (SPEC §7.4), nothing lost. Two: not
        // a segment any more, the file is skipped and the rest of the chain still replayed.
        for damaged in [&[1usize][..], &[1, 2]] {
            let dir = tempfile::tempdir().unwrap();
            let chain = write_chain(dir.path(), &read_packets(&fixture("pcap/port_scan_syn.pcap")), 3);
            let mut b = std::fs::read(&chain[bad].path).unwrap();
            for &i in damaged {
                b[i] ^= 0xff;
            }
            std::fs::write(&chain[bad].path, &b).unwrap();
            let db = dir.path().join("a.sqlite");
            let o = netrec(&["analyze", "--db", s(&db), s(dir.path())]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            let e = stderr(&o);
            let name = chain[bad].path.display().to_string();
            let read_past = damaged.len() == 1;
            let says = if read_past { "offset 0: file header is damaged (" } else { "skipped" };
            assert!(
                e.lines()
                    .any(|l| l.starts_with("netrec: warning: ") && l.contains(&name) && l.contains(says)),
                "{e}"
            );
            let kept: usize = chain
                .iter()
                .enumerate()
                .filter(|(k, _)| read_past || *k != bad)
                .map(|(_, w)| w.packets)
                .sum();
            assert_eq!(sql_i64(&db, "SELECT packets FROM inputs") as usize, kept);
            assert_eq!(sql_i64(&db, "SELECT warnings FROM inputs"), 1);
            assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM losses"), if read_past { 3 } else { 2 });
            assert_eq!(
                sql_i64(&db, "SELECT COUNT(*) FROM input_files"),
                3,
                "the damaged file is still part of the input"
            );
        }
    }
}
