//! Issues #2/#3/#4 "Bad input": every bad input gives one clear stderr line naming the file (and the byte
//! offset where it matters), never a panic; exit code 2 only when nothing usable was read.
//! Also: `rules check` diagnostics, `--fail-on-alert`, and a closed stdout pipe.

mod common;

use common::*;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A classic microsecond pcap with the given link type and records.
fn pcap(link_type: u32, records: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&link_type.to_le_bytes());
    for (i, r) in records.iter().enumerate() {
        v.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(r.len() as u32).to_le_bytes());
        v.extend_from_slice(&(r.len() as u32).to_le_bytes());
        v.extend_from_slice(r);
    }
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

/// The stderr lines that are not the run summary or a warning.
fn error_lines(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| !l.contains(" packets, ") && !l.starts_with("netrec: warning:"))
        .map(str::to_string)
        .collect()
}

fn no_panic(o: &Output) {
    assert!(!stderr(o).contains("panicked"), "panic: {}", stderr(o));
}

/// One error line naming `name`, containing `what`; the exit code as given.
fn assert_one_error(o: &Output, name: &str, what: &str, code: i32) {
    no_panic(o);
    let lines = error_lines(o);
    assert_eq!(lines.len(), 1, "expected one error line, got {lines:?}");
    assert!(lines[0].contains(name) && lines[0].contains(what), "{:?} lacks {name:?} / {what:?}", lines[0]);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
}

#[test]
fn unusable_inputs_exit_2_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = write(dir.path(), "notes.pcap", b"hello, this is not a capture\n");
    let zero = write(dir.path(), "zero.pcap", b"");
    let lt147 = write(dir.path(), "lt147.pcap", &pcap(147, &[b"abcdefgh"]));
    let missing = dir.path().join("missing.pcap");
    let empty_dir = dir.path().join("nothing-here");
    std::fs::create_dir(&empty_dir).expect("mkdir");
    for cmd in ["flows", "alerts"] {
        assert_one_error(&netrec(&[cmd, s(&text)]), "notes.pcap", "not a pcap or pcapng", 2);
        assert_one_error(&netrec(&[cmd, s(&zero)]), "zero.pcap", "empty", 2);
        assert_one_error(&netrec(&[cmd, s(&lt147)]), "lt147.pcap", "link type 147", 2);
        assert_one_error(&netrec(&[cmd, s(&missing)]), "missing.pcap", "No such file", 2);
        assert_one_error(&netrec(&[cmd, s(&empty_dir)]), "nothing-here", "no capture", 2);
    }
}

#[test]
fn a_file_cut_mid_record_keeps_its_good_records_and_names_the_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = std::fs::read(fixture("pcap/land.pcap")).expect("land.pcap");
    // Global header (24) + first record header (16): cut 30 bytes into the first record's data would
    // leave nothing; cut in the middle of the file instead so some records survive.
    let cut = write(dir.path(), "cut.pcap", &whole[..whole.len() / 2]);
    let o = netrec(&["flows", "--format", "jsonl", s(&cut)]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!jsonl(&o).is_empty(), "the good records make flows");
    let err = stderr(&o);
    let warn: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warn.len(), 1, "{warn:?}");
    assert!(
        warn[0].contains("cut.pcap") && warn[0].contains("byte ") && warn[0].contains("cut"),
        "{}",
        warn[0]
    );
    // The offset named is a record boundary inside the file.
    let off: usize = warn[0]
        .split("byte ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {}", warn[0]));
    assert!(off >= 24 && off < whole.len() / 2, "offset {off}");
}

#[test]
fn one_good_and_one_bad_input_gives_output_for_the_good_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = write(dir.path(), "bad.pcap", b"not a capture at all");
    let land = fixture("pcap/land.pcap");
    let o = netrec(&["alerts", "--format", "jsonl", s(&land), s(&text)]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "something usable was read: {}", stderr(&o));
    assert!(jsonl(&o).iter().any(|a| a["class"] == "land"), "{}", stdout(&o));
    let lines = error_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("bad.pcap"), "{lines:?}");
    // A directory of captures works as an input too.
    let o = netrec(&["flows", "--format", "jsonl", s(&fixture("pcap")), s(&text)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn bad_flags_exit_2_with_usage() {
    for args in [
        &["flows", "--bogus", "x.pcap"][..],
        &["flows", "--format", "xml", "x.pcap"],
        &["alerts"],
        &["no-such-command"],
    ] {
        let o = netrec(args);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("error:"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

fn rule_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    write(dir, name, text.as_bytes())
}

#[test]
fn rules_check_reports_file_line_col_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = "[[rule]]\nid = \"a\"\n";
    let cases = [
        ("unknown.toml", format!("{head}detector = \"telepathy\"\n"), 3, "telepathy"),
        ("type.toml", format!("{head}detector = \"port_scan\"\nmin_ports = \"many\"\n"), 4, "min_ports"),
        ("range.toml", format!("{head}detector = \"port_scan\"\nmin_ports = 0\n"), 4, "min_ports"),
        (
            "dup.toml",
            format!("{head}detector = \"land\"\n\n[[rule]]\nid = \"a\"\ndetector = \"land\"\n"),
            6,
            "duplicate",
        ),
    ];
    for (name, text, line, what) in cases {
        let p = rule_file(dir.path(), name, &text);
        let o = netrec(&["rules", "check", s(&p)]);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {err}");
        let prefix = format!("{}:{line}:", p.display());
        assert!(lines[0].starts_with(&prefix), "{name}: {:?} should start with {prefix:?}", lines[0]);
        // file:line:col: message
        let rest = &lines[0][prefix.len()..];
        let (col, msg) = rest.split_once(": ").unwrap_or_else(|| panic!("{name}: no col in {rest:?}"));
        assert!(col.parse::<u32>().is_ok_and(|c| c >= 1), "{name}: col {col:?}");
        assert!(msg.to_lowercase().contains(what), "{name}: {msg:?} lacks {what:?}");
    }
    // Good files: the project's own, and a minimal one.
    let good = rule_file(dir.path(), "good.toml", &format!("{head}detector = \"land\"\n"));
    for p in [good, fixture("rules/blocklist.toml"), repo_root().join("rules/packs/default.toml")] {
        let o = netrec(&["rules", "check", s(&p)]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", p.display(), stderr(&o));
        assert!(stdout(&o).contains("ok"), "{}", stdout(&o));
    }
    // A bad file among good ones still fails the check.
    let bad = dir.path().join("unknown.toml");
    let o = netrec(&["rules", "check", s(&fixture("rules/blocklist.toml")), s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    // The loaded rules are listed, the fixture's override included.
    let o = netrec(&["rules", "list", "--rules", s(&fixture("rules/blocklist.toml"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("blocklist.toml"), "{}", stdout(&o));
    // A bad --rules file stops `alerts` before reading any capture.
    let o = netrec(&["alerts", "--rules", s(&bad), s(&fixture("pcap/land.pcap"))]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown.toml:3:"), "{}", stderr(&o));
}

#[test]
fn fail_on_alert_exits_1_only_with_alerts() {
    let attack = netrec(&["alerts", "--fail-on-alert", s(&fixture("pcap/land.pcap"))]);
    assert_eq!(attack.status.code(), Some(1), "{}", stderr(&attack));
    let benign = netrec(&["alerts", "--fail-on-alert", s(&fixture("pcap/benign_nmap_service_probe.pcap"))]);
    assert_eq!(benign.status.code(), Some(0), "{}", stderr(&benign));
    // Without the flag, alerts are not an error.
    let plain = netrec(&["alerts", s(&fixture("pcap/land.pcap"))]);
    assert_eq!(plain.status.code(), Some(0));
}

#[test]
fn closed_stdout_pipe_is_success() {
    // Like `netrec flows big.pcap | head -1`: read a little, close the pipe, the writer must exit 0.
    // (demo.pcap's flow listing is ~2 MB, far beyond a pipe buffer, so the write really fails.)
    // jsonl (serde_json wraps the io error) and csv (plain io error) take different error paths.
    for format in ["jsonl", "csv"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netrec"))
            .args(["flows", "--format", format, s(&fixture("pcap/demo.pcap"))])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netrec");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).expect("some output");
        drop(stdout);
        let out = child.wait_with_output().expect("wait");
        no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(!stderr(&out).contains("Broken pipe"), "{format}: {}", stderr(&out));
    }
}
