//! Every real capture of ../shared/captures (MANIFEST.tsv) analyzes into one shared database
//! without a failure, and each input's flows are exactly `netrec flows --format jsonl` of it.

mod common;

use common::*;
use std::path::PathBuf;

#[test]
fn every_shared_capture_analyzes_into_one_db() {
    let caps = manifest_captures();
    assert!(caps.len() >= 30, "MANIFEST.tsv lists only {} captures", caps.len());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("captures.sqlite");
    let mut args = vec!["analyze", "--quiet", "--db", s(&db)];
    args.extend(caps.iter().map(|p| s(p)));
    let o = netrec(&args);
    assert_no_panic(&o, "analyze captures");
    // No capture in the manifest is a documented bad input: all must succeed.
    assert_eq!(code(&o), 0, "analyze of the shared captures failed:\n{}", stderr(&o));

    let conn = db_ro(&db);
    let mut st = conn.prepare("SELECT id, path, complete FROM inputs ORDER BY id").unwrap();
    let inputs: Vec<(i64, PathBuf, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, PathBuf::from(r.get::<_, String>(1)?), r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let paths: Vec<&PathBuf> = inputs.iter().map(|(_, p, _)| p).collect();
    assert_eq!(paths, caps.iter().collect::<Vec<_>>(), "one input per capture, in argument order");
    for (id, path, complete) in &inputs {
        assert_eq!(*complete, 1, "{} incomplete", path.display());
        let o = netrec(&["flows", "--format", "jsonl", s(path)]);
        assert_eq!(code(&o), 0, "flows {}: {}", path.display(), stderr(&o));
        let lines = jsonl(&o).len() as i64;
        let rows = sql_i64(&db, &format!("SELECT count(*) FROM flows WHERE input_id = {id}"));
        assert_eq!(rows, lines, "{}: flows rows vs `netrec flows` lines", path.display());
    }
    // MANIFEST packet counts are tshark's: inputs.packets must agree.
    let manifest = std::fs::read_to_string(captures_dir().join("MANIFEST.tsv")).unwrap();
    let header: Vec<&str> = manifest.lines().next().unwrap().split('\t').collect();
    let col = header.iter().position(|h| *h == "packet_count").expect("packet_count column");
    for (line, (id, path, _)) in manifest.lines().skip(1).filter(|l| !l.is_empty()).zip(&inputs) {
        let want: i64 = line.split('\t').nth(col).unwrap().parse().unwrap();
        let got = sql_i64(&db, &format!("SELECT packets FROM inputs WHERE id = {id}"));
        assert_eq!(got, want, "{}: packets", path.display());
    }
}
