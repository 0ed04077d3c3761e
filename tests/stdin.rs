//! Captures streamed through a pipe: `-` is standard input for `flows` and `alerts` (tcpdump's
//! `-r -`); the commands that read an input twice refuse a pipe with an error that says so.

mod common;

use common::{fixture, stderr};
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Run netrec with `bytes` written to its standard input through a pipe.
fn netrec_piped(args: &[&str], bytes: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrec"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run netrec");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written from another thread: the child may fill its stdout before reading all of stdin.
    let writer = std::thread::spawn(move || {
        // A refusing command exits without reading: a broken pipe is expected then.
        let _ = stdin.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("wait for netrec");
    writer.join().expect("writer thread");
    out
}

#[test]
fn flows_and_alerts_read_a_capture_from_standard_input() {
    let pcap = fixture("pcap/port_scan_syn.pcap");
    let bytes = std::fs::read(&pcap).unwrap();
    let path = pcap.to_str().unwrap();
    for args in [["flows", "--format", "jsonl"], ["alerts", "--format", "jsonl"]] {
        let want = common::netrec(&[args[0], args[1], args[2], path]);
        assert!(want.status.success(), "{}", stderr(&want));
        assert!(!want.stdout.is_empty(), "{args:?}: nothing to compare");
        let got = netrec_piped(&[args[0], args[1], args[2], "-"], bytes.clone());
        assert!(got.status.success(), "{args:?}: {}", stderr(&got));
        assert_eq!(got.stdout, want.stdout, "{args:?}");
    }
    // Not only `-`: any pipe, e.g. a process substitution's /dev/fd/N, here /dev/stdin.
    let got = netrec_piped(&["flows", "--format", "jsonl", "/dev/stdin"], bytes);
    let want = common::netrec(&["flows", "--format", "jsonl", path]);
    assert_eq!(got.stdout, want.stdout);
}

#[test]
fn analyze_and_import_refuse_a_pipe_and_say_why() {
    let bytes = std::fs::read(fixture("pcap/port_scan_syn.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.sqlite");
    let out = netrec_piped(&["analyze", "--quiet", "--db", db.to_str().unwrap(), "-"], bytes.clone());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("/dev/stdin: not a regular file: analyze reads an input twice"), "{err}");
    assert!(err.contains("save the stream to a file first"), "{err}");
    // Refused like any bad input: nothing of it in the database.
    let n: i64 = common::db_ro(&db).query_row("SELECT count(*) FROM inputs", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);

    let seg = dir.path().join("segs");
    let out = netrec_piped(&["import", "--out", seg.to_str().unwrap(), "/dev/stdin"], bytes);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/dev/stdin: not a regular file: import reads a capture twice"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_segment_streamed_through_a_pipe_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("segs");
    let imp = common::netrec(&[
        "import",
        "--out",
        seg.to_str().unwrap(),
        fixture("pcap/port_scan_syn.pcap").to_str().unwrap(),
    ]);
    assert!(imp.status.success(), "{}", stderr(&imp));
    let file = std::fs::read_dir(&seg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "nrseg"))
        .expect("a segment file");
    let out = netrec_piped(&["flows", "-"], std::fs::read(&file).unwrap());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/dev/stdin: not a regular file: a segment is read from its file"),
        "{}",
        stderr(&out)
    );
}
