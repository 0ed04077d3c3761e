//! Bad inputs and bad databases: one clear line naming the culprit, exit 2, the other inputs still
//! analyzed, and a database file that is not netrec's left byte for byte untouched.

mod common;

use common::*;
use std::path::Path;

#[test]
fn a_bad_input_is_reported_and_the_others_are_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.sqlite");
    let bad = tmp.path().join("notes.pcap");
    std::fs::write(&bad, "this is not a capture\nnor a segment\n").unwrap();
    let missing = tmp.path().join("missing.pcap");
    let (land, icmp) = (fixture("pcap/land.pcap"), fixture("pcap/host_sweep_icmp.pcap"));
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&land), s(&bad), s(&missing), s(&icmp)]);
    assert_no_panic(&o, "bad input");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let lines = err_lines(&o);
    assert_eq!(lines.len(), 2, "one line per bad input: {lines:?}");
    assert!(lines[0].contains(s(&bad)), "{lines:?}");
    assert!(lines[1].contains(s(&missing)), "{lines:?}");
    // The good inputs, before and after the bad ones, are complete in the database.
    let conn = db_ro(&db);
    let mut st = conn.prepare("SELECT path FROM inputs WHERE complete = 1 ORDER BY id").unwrap();
    let paths: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(paths, [s(&land), s(&icmp)]);
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM inputs"), 2, "no row for the bad input");

    // Without --quiet the summary counts the failures.
    let db2 = tmp.path().join("db2.sqlite");
    let o = netrec(&["analyze", "--db", s(&db2), s(&bad), s(&land)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("1 inputs analyzed, 0 already present, 1 failed"), "{}", stderr(&o));
}

/// Files in `dir` (to see stray -wal/-shm/-journal files).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_refused(dir: &Path, db: &Path, what: &str, needle: &str) {
    let bytes = std::fs::read(db).unwrap();
    let files = listing(dir);
    let land = fixture("pcap/land.pcap");
    for args in [
        vec!["analyze", "--quiet", "--db", s(db), s(&land)],
        vec!["analyze", "--db", s(db), s(&land)],
        vec!["report", "--db", s(db), "all", "--format", "json"],
    ] {
        let o = netrec(&args);
        assert_no_panic(&o, what);
        assert_eq!(code(&o), 2, "{what}: {args:?}\n{}", stderr(&o));
        let lines = err_lines(&o);
        assert_eq!(lines.len(), 1, "{what}: {args:?}: one line expected: {lines:?}");
        assert!(lines[0].contains(s(db)), "{what}: error does not name the database: {}", lines[0]);
        assert!(lines[0].contains(needle), "{what}: expected {needle:?} in {}", lines[0]);
        assert!(stdout(&o).is_empty(), "{what}: {args:?} printed {}", stdout(&o));
        assert_eq!(std::fs::read(db).unwrap(), bytes, "{what}: {args:?} changed the file");
        assert_eq!(listing(dir), files, "{what}: {args:?} left files behind");
    }
}

#[test]
fn a_text_file_as_database_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("notes.sqlite");
    std::fs::write(&db, "dear diary,\nthis is not a database.\n".repeat(100)).unwrap();
    assert_refused(tmp.path(), &db, "text file", "not an SQLite database");
}

#[test]
fn a_foreign_sqlite_database_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO customers (name) VALUES ('alice'), ('bob');",
        )
        .unwrap();
    }
    assert_refused(tmp.path(), &db, "foreign sqlite", "not a netrec database");
    // Another application's id, even without tables.
    let db2 = tmp.path().join("app.sqlite");
    {
        let c = rusqlite::Connection::open(&db2).unwrap();
        c.execute_batch("PRAGMA application_id = 1234; PRAGMA user_version = 7;").unwrap();
    }
    assert_refused(tmp.path(), &db2, "foreign application_id", "not a netrec database");
}
