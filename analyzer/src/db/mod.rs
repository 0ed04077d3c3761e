//! The analyzer's embedded store: one SQLite file holding every analyzed input, its flows,
//! alerts, incidents, hosts, per-minute time series and loss records (`docs/schema.md`).
//!
//! Opening is careful: a file that is not a netrec database, or one written by a newer netrec, is
//! inspected read-only and rejected without a single byte changing. Writing goes through
//! [`InputWriter`], one per input, with batched transactions.

mod hosts;
mod incidents;
mod rawstmt;
mod schema;
mod text;
/// Indexes a bulk load may drop and rebuild (same definitions as in the schema).
pub(crate) mod schema_index {
    pub const FLOWS_DST: &str = "CREATE INDEX IF NOT EXISTS flows_dst ON flow_rows(input_id, dst_ip)";
}
mod timeseries;
mod writer;

pub use incidents::{AlertForGrouping, INCIDENT_GAP_NS, IncidentDraft, group_incidents};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use timeseries::TimeSeries as PacketSeries;
pub use writer::{InputFile, InputInfo, InputStats, InputTotals, InputWriter, chain_sha256};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// Errors of the store. Every variant names what was being done; SQLite causes are `#[source]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("database {path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not an SQLite database")]
    NotSqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path} is not a netrec database (application_id {application_id:#x}, {table_count} tables; \
         expected application_id {expected:#x}); refusing to touch it"
    )]
    Foreign { path: PathBuf, application_id: i32, expected: i32, table_count: i64 },
    #[error(
        "{path} has schema version {found}, newer than the {supported} this netrec supports; \
         use a newer netrec"
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error(
        "{path} has schema version {found}, older than {supported}; open it read-write once \
         (e.g. `netrec analyze --db`) to migrate it"
    )]
    NeedsMigration { path: PathBuf, found: i64, supported: i64 },
    #[error("migrating {path} from schema version {from} to {to} failed")]
    Migrate {
        path: PathBuf,
        from: i64,
        to: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path} was left mid-load by an interrupted analysis (its rollback journal {path}-journal \
         is still there) and needs write access once to be rolled back to its last committed state"
    )]
    HotJournal {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the {what} helper thread died before delivering its result")]
    Worker { what: &'static str },
    #[error("cannot read back the host totals spilled to a temporary file in {dir}")]
    Spill {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database operation failed: {op}")]
    Sql {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

/// Attach an operation name to a SQLite error.
pub(crate) trait SqlContext<T> {
    fn op(self, op: &'static str) -> Result<T, DbError>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn op(self, op: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError::Sql { op, source })
    }
}

/// An open netrec database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

/// What a read-only look at an existing file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// No tables, no application id: a new (or zero-length) file we may initialize.
    Empty,
    Netrec {
        version: i64,
    },
}

/// How long a statement waits for another connection's lock before failing.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a read-only connection (reports) waits for a load's lock.
const READ_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl Db {
    /// Open or create the database at `path`, migrating an older netrec schema forward.
    ///
    /// A foreign SQLite file, a non-SQLite file or a newer schema is rejected and left untouched:
    /// existing files are first probed through a read-only connection.
    pub fn open(path: impl AsRef<Path>) -> Result<Db, DbError> {
        let path = path.as_ref().to_path_buf();
        let existing = path.exists();
        if existing {
            let probe = probe(&path)?;
            if let Probe::Netrec { version } = probe
                && version > SCHEMA_VERSION
            {
                return Err(DbError::TooNew { path, found: version, supported: SCHEMA_VERSION });
            }
        }
        let conn = Connection::open(&path).map_err(|source| DbError::Open { path: path.clone(), source })?;
        // Page size: only a new file takes it (it must precede WAL). 16 KiB pages cut the pages,
        // WAL frames and checkpoint writes of a bulk load about 4x (db_writer bench: ~10% less
        // CPU than 4 KiB); rows are ~100-250 bytes, so point reads lose little.
        // WAL: readers (reports) never block the writer; NORMAL sync is durable at checkpoints and
        // loses at most the last transactions on power failure, never corrupts.
        // A load runs in rollback mode when it has the file alone (`writer::start_load`) and
        // restores WAL when it ends; if a reader kept WAL from being restored, it is set here, or
        // left for later while a reader still holds the file (rollback mode is as safe).
        conn.execute_batch("PRAGMA page_size = 16384; PRAGMA cache_size = -32768;")
            .and_then(|()| conn.busy_timeout(BUSY_TIMEOUT))
            .map_err(|source| DbError::Open { path: path.clone(), source })?;
        writer::try_journal_mode(&conn, "WAL")?;
        conn.execute_batch(writer::NORMAL_PRAGMAS)
            .map_err(|source| DbError::Open { path: path.clone(), source })?;
        let mut db = Db { conn, path };
        db.migrate()?;
        db.ensure_indexes()?;
        Ok(db)
    }

    /// Open an existing database for reading only (reports). Never creates, never migrates.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Db, DbError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(DbError::Missing { path });
        }
        match probe(&path)? {
            Probe::Netrec { version } if version == SCHEMA_VERSION => {}
            Probe::Netrec { version } if version > SCHEMA_VERSION => {
                return Err(DbError::TooNew { path, found: version, supported: SCHEMA_VERSION });
            }
            Probe::Netrec { version } => {
                return Err(DbError::NeedsMigration { path, found: version, supported: SCHEMA_VERSION });
            }
            Probe::Empty => {
                return Err(DbError::Foreign {
                    path,
                    application_id: 0,
                    expected: APPLICATION_ID,
                    table_count: 0,
                });
            }
        }
        let conn = open_ro(&path)?;
        Ok(Db { conn, path })
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for read queries (reports).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Schema version stored in the file.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).op("read user_version")
    }

    /// Recreate an index a bulk load deferred (an interrupted load may have left it dropped).
    fn ensure_indexes(&mut self) -> Result<(), DbError> {
        let present: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'flows_dst')", [], |r| {
                r.get(0)
            })
            .op("look up flow index")?;
        if !present {
            self.conn.execute_batch(schema_index::FLOWS_DST).op("recreate flow index")?;
        }
        Ok(())
    }

    /// Run the forward migrations inside one write transaction. The version is re-read under the
    /// write lock so two processes opening the same new file do not both migrate it.
    fn migrate(&mut self) -> Result<(), DbError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| DbError::Open { path: path.clone(), source })?;
        // Re-check under the lock: the file may have changed since the read-only probe.
        let (app_id, version, tables) =
            read_identity(&tx).map_err(|source| DbError::Open { path: path.clone(), source })?;
        if app_id != APPLICATION_ID && (app_id != 0 || tables != 0 || version != 0) {
            return Err(DbError::Foreign {
                path,
                application_id: app_id,
                expected: APPLICATION_ID,
                table_count: tables,
            });
        }
        if version > SCHEMA_VERSION {
            return Err(DbError::TooNew { path, found: version, supported: SCHEMA_VERSION });
        }
        if version == SCHEMA_VERSION {
            return Ok(()); // dropping `tx` rolls back the empty transaction
        }
        let from = usize::try_from(version).unwrap_or(0);
        for (step, sql) in pending_migrations(from) {
            tx.execute_batch(sql).map_err(|source| DbError::Migrate {
                path: path.clone(),
                from: step as i64,
                to: step as i64 + 1,
                source,
            })?;
        }
        let err = |source| DbError::Migrate { path: path.clone(), from: version, to: SCHEMA_VERSION, source };
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}

/// The migration steps still to run from `version`, with their source version.
fn pending_migrations(version: usize) -> impl Iterator<Item = (usize, &'static str)> {
    schema::MIGRATIONS.iter().copied().enumerate().skip(version)
}

fn open_ro(path: &Path) -> Result<Connection, DbError> {
    // A reader waits out a load's exclusive lock in rollback mode (`writer::start_load`): held
    // for a commit, and from the first spill of the page cache to the commit, which for the
    // last transaction of a large input (index build, host rows) lasts seconds.
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .and_then(|c| c.busy_timeout(READ_BUSY_TIMEOUT).map(|()| c))
        .map_err(|source| DbError::Open { path: path.to_path_buf(), source })
}

/// (application_id, user_version, number of schema objects).
fn read_identity(conn: &Connection) -> rusqlite::Result<(i32, i64, i64)> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok((app, version, tables))
}

/// Look at an existing file through a read-only connection and classify it.
fn probe(path: &Path) -> Result<Probe, DbError> {
    let conn = open_ro(path)?;
    let identity = match read_identity(&conn) {
        Err(e) if is_hot_journal(&e) && has_netrec_header(path) => {
            drop(conn);
            roll_back_hot_journal(path)?;
            read_identity(&open_ro(path)?)
        }
        r => r,
    };
    let (app, version, tables) = identity.map_err(|source| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => DbError::NotSqlite { path: path.to_path_buf(), source },
        _ => DbError::Open { path: path.to_path_buf(), source },
    })?;
    if app == APPLICATION_ID {
        return Ok(Probe::Netrec { version });
    }
    if app == 0 && tables == 0 && version == 0 {
        return Ok(Probe::Empty);
    }
    Err(DbError::Foreign {
        path: path.to_path_buf(),
        application_id: app,
        expected: APPLICATION_ID,
        table_count: tables,
    })
}

/// A read-only connection refuses a file with a hot journal (SQLITE_READONLY_ROLLBACK): a load
/// killed while writing through a rollback journal (`writer::start_load`) leaves one.
fn is_hot_journal(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// Whether the file's SQLite header carries netrec's `application_id` (offset 68, big-endian),
/// read raw: with a hot journal SQLite reads nothing before rolling it back, and a foreign file
/// must not be touched.
fn has_netrec_header(path: &Path) -> bool {
    use std::io::Read as _;
    let mut h = [0u8; 72];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut h)).is_ok()
        && h.starts_with(b"SQLite format 3\0")
        && h[68..72] == APPLICATION_ID.to_be_bytes()
}

/// Roll back the hot journal of an interrupted load: a read-write connection does it on its
/// first read, restoring the last committed state (every complete input, and the interrupted
/// one as it was at its last batch commit, still incomplete, redone by the next analysis).
fn roll_back_hot_journal(path: &Path) -> Result<(), DbError> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .and_then(|c| {
            c.busy_timeout(BUSY_TIMEOUT)?;
            c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        })
        .map_err(|source| DbError::HotJournal { path: path.to_path_buf(), source })
}

/// SQLite stores signed 64-bit integers; counters and times beyond that saturate (year 2262).
#[inline]
pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Read back a stored non-negative integer.
#[inline]
pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_chain_matches_version() {
        assert_eq!(SCHEMA_VERSION as usize, schema::MIGRATIONS.len());
        assert_eq!(pending_migrations(0).count(), schema::MIGRATIONS.len());
        assert_eq!(pending_migrations(schema::MIGRATIONS.len()).count(), 0);
    }

    #[test]
    fn a_version_1_database_migrates_keeping_its_alerts_and_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(schema::MIGRATIONS[0]).unwrap();
            c.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"))
                .unwrap();
            c.execute_batch(
                "INSERT INTO inputs (id, path, sha256, format, size_bytes, complete) VALUES (1, 'a', 'ff', 'pcap', 1, 1);
                 INSERT INTO alerts (input_id, alert_id, rule_id, class, severity, severity_num, attack_id,
                   first_ts, first_ts_ns, last_ts, last_ts_ns, src, src_count, dst, dst_count, dst_ports, count,
                   stats, message) VALUES (1, 1, 'r', 'c', 'high', 3, 'T', '0.0', 0, '0.0', 0, '', 0, '', 0, '', 5, '{}', 'm');",
            )
            .unwrap();
        }
        let ro = Db::open_read_only(&path).unwrap_err();
        assert!(matches!(ro, DbError::NeedsMigration { found: 1, supported: SCHEMA_VERSION, .. }), "{ro}");
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        // Version 3: every existing input is one file of its own.
        let file: (i64, i64, String, String, i64) = db
            .conn()
            .query_row("SELECT input_id, seq, path, sha256, size_bytes FROM input_files", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert_eq!(file, (1, 0, "a".into(), "ff".into(), 1));
        let row: (i64, Option<i64>, Option<i64>, Option<bool>) = db
            .conn()
            .query_row(
                "SELECT count, evidence_seen, evidence_counted, evidence_complete FROM alerts WHERE alert_id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (5, None, None, None));
    }

    /// Version 4 turns `flows` and `hosts` into views over the stored columns: a version-3
    /// database reads the same, row for row and value for value (types included), before and
    /// after the migration. The version-3 rows are written as the version-3 writer derived them
    /// (`proto_name`, decimal times, saturating sums), over every protocol number and the edges
    /// of the time texts.
    #[test]
    fn version_4_views_read_exactly_the_version_3_tables() {
        use netrec_format::model::{Ts, proto_name};
        use rusqlite::types::Value;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.sqlite");
        let dump = |c: &Connection, sql: &str| -> Vec<Vec<Value>> {
            let mut st = c.prepare(sql).unwrap();
            let n = st.column_count();
            st.query_map([], |r| (0..n).map(|i| r.get(i)).collect()).unwrap().map(Result::unwrap).collect()
        };
        let names = |c: &Connection, t: &str| -> Vec<String> {
            let st = c.prepare(&format!("SELECT * FROM {t}")).unwrap();
            st.column_names().map(String::from).collect()
        };
        // Up to i64::MAX ns, the readers' clamp (`source::pcapng`).
        let times: [u64; 7] =
            [0, 1, 999_999_999, 1_000_000_000, 1_418_145_369_924_505_488, i64::MAX as u64, 59];
        let (before_flows, before_hosts, flow_cols, host_cols) = {
            let c = Connection::open(&path).unwrap();
            for m in &schema::MIGRATIONS[..3] {
                c.execute_batch(m).unwrap();
            }
            c.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 3;
                 INSERT INTO inputs (id, path, sha256, format, size_bytes, complete) VALUES (1, 'a', 'ff', 'pcap', 1, 1);"
            ))
            .unwrap();
            let protos = (0u16..=255).chain([0x0806]);
            for (n, proto) in protos.enumerate() {
                let n = n as u64;
                let first = times[n as usize % times.len()];
                // Some flows end before they start (out-of-order capture times): duration 0.
                let last = times[(n as usize * 3 + 1) % times.len()];
                let dur = last.saturating_sub(first);
                let rtt = (!n.is_multiple_of(3)).then_some(n * 1_234_567);
                // Some counters at the top of the range: the view's sums saturate like v3's.
                let big = if n % 50 == 49 { i64::MAX as u64 - n } else { 0 };
                let (fp, rp, fr, rr) = (n + big, n * 7 + 1 + big / 2, n % 4 + big, n % 5 + big);
                let (fb, rb) = (fp.saturating_mul(60), rp.saturating_mul(1500));
                c.execute(
                    r#"INSERT INTO flows (input_id, proto, src_ip, src_port, dst_ip, dst_port, packets, bytes,
                       fwd_packets, fwd_bytes, fwd_payload_bytes, rev_packets, rev_bytes, rev_payload_bytes,
                       first_ts, last_ts, duration, tcp_state, rtt_ms, retransmissions, vlan, tunnel, "end",
                       proto_num, first_ts_ns, last_ts_ns, duration_ns, rtt_ns, rtt_server_ns, rtt_client_ns,
                       fwd_tcp_flags, rev_tcp_flags, fwd_retransmissions, rev_retransmissions, out_of_order,
                       zero_window, tunnel_id, anomalies)
                       VALUES (1, ?1, '10.0.0.1', ?2, '10.0.0.2', 80, ?3, ?4, ?5, ?6, 0, ?7, ?8, 0, ?9, ?10, ?11,
                       ?12, ?13, ?14, NULL, NULL, 'open', ?15, ?16, ?17, ?18, ?19, NULL, ?19, 2, 18, ?20, ?21, 0,
                       0, 0, 0)"#,
                    rusqlite::params![
                        proto_name(proto),
                        i(n),
                        i(fp.saturating_add(rp)),
                        i(fb.saturating_add(rb)),
                        i(fp),
                        i(fb),
                        i(rp),
                        i(rb),
                        Ts(first).to_decimal(),
                        Ts(last).to_decimal(),
                        Ts(dur).to_decimal(),
                        (proto == 6).then_some("established"),
                        rtt.map(|ns| ns as f64 / 1e6),
                        i(fr.saturating_add(rr)),
                        proto,
                        i(first),
                        i(last),
                        i(dur),
                        rtt.map(i),
                        i(fr),
                        i(rr),
                    ],
                )
                .unwrap();
            }
            for (n, t) in times.iter().enumerate() {
                let last = t.saturating_add(n as u64).min(i64::MAX as u64);
                c.execute(
                    "INSERT INTO hosts VALUES (1, ?1, 1, 2, 3, 4, 5, 6, ?2, ?3, ?4, ?5)",
                    rusqlite::params![
                        format!("10.0.0.{n}"),
                        Ts(*t).to_decimal(),
                        i(*t),
                        Ts(last).to_decimal(),
                        i(last)
                    ],
                )
                .unwrap();
            }
            (
                dump(&c, "SELECT * FROM flows ORDER BY id"),
                dump(&c, "SELECT * FROM hosts ORDER BY input_id, ip"),
                names(&c, "flows"),
                names(&c, "hosts"),
            )
        };
        assert_eq!(before_flows.len(), 257);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(names(db.conn(), "flows"), flow_cols);
        assert_eq!(names(db.conn(), "hosts"), host_cols);
        assert_eq!(dump(db.conn(), "SELECT * FROM flows ORDER BY id"), before_flows);
        assert_eq!(dump(db.conn(), "SELECT * FROM hosts ORDER BY input_id, ip"), before_hosts);
        // The evidence query's index moved with the rows.
        let plan =
            dump(db.conn(), "EXPLAIN QUERY PLAN SELECT id FROM flows WHERE input_id = 1 AND dst_ip = 'x'");
        assert!(format!("{plan:?}").contains("flows_dst"), "{plan:?}");
    }

    /// A load killed mid-transaction in rollback mode leaves the file and a hot journal (here:
    /// both copied while a load's transaction is open, which is what a `kill -9` leaves).
    /// Reports and the next analysis open it: it is rolled back to its last commit. A foreign
    /// file in the same state is refused untouched.
    #[test]
    fn a_hot_journal_of_an_interrupted_load_is_rolled_back_on_open() {
        use writer::tests::info;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.sqlite");
        let mut db = Db::open(&path).unwrap();
        db.begin_input(info("aa")).unwrap().unwrap().finish(InputStats::default()).unwrap();
        let w = db.begin_input(info("bb")).unwrap().unwrap();
        let crashed = dir.path().join("crashed.sqlite");
        let journal = |p: &Path| PathBuf::from(format!("{}-journal", p.display()));
        assert!(journal(&path).exists(), "the load writes through a rollback journal");
        std::fs::copy(&path, &crashed).unwrap();
        std::fs::copy(journal(&path), journal(&crashed)).unwrap();
        drop(w);
        drop(db);

        let count = |db: &Db| -> (i64, i64) {
            db.conn()
                .query_row("SELECT count(*), sum(complete) FROM inputs", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
        };
        // A plain read-only connection refuses the file: what the recovery is for.
        let raw = open_ro(&crashed).unwrap();
        assert!(read_identity(&raw).is_err_and(|e| is_hot_journal(&e)));
        drop(raw);
        let ro = Db::open_read_only(&crashed).unwrap();
        assert_eq!(count(&ro), (1, 1), "the last commit: one complete input");
        assert!(!journal(&crashed).exists());
        drop(ro);
        let db = Db::open(&crashed).unwrap();
        assert_eq!(count(&db), (1, 1));
        drop(db);

        // Foreign: same state, another application_id: refused, not rolled back.
        let foreign = dir.path().join("foreign.sqlite");
        let c = Connection::open(&foreign).unwrap();
        c.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; CREATE TABLE t (a); INSERT INTO t VALUES (1);")
            .unwrap();
        c.execute_batch("BEGIN; UPDATE t SET a = 2;").unwrap();
        let copy = dir.path().join("foreign-copy.sqlite");
        std::fs::copy(&foreign, &copy).unwrap();
        std::fs::copy(journal(&foreign), journal(&copy)).unwrap();
        drop(c);
        let before = std::fs::read(&copy).unwrap();
        assert!(read_identity(&open_ro(&copy).unwrap()).is_err_and(|e| is_hot_journal(&e)));
        let r = Db::open(&copy);
        assert!(matches!(r, Err(DbError::Open { .. })), "{:?}", r.map(|_| ()));
        assert!(matches!(Db::open_read_only(&copy), Err(DbError::Open { .. })));
        assert_eq!(std::fs::read(&copy).unwrap(), before);
        assert!(journal(&copy).exists());
    }

    #[test]
    fn saturating_conversions() {
        assert_eq!(i(u64::MAX), i64::MAX);
        assert_eq!(i(7), 7);
        assert_eq!(u(-1), 0);
        assert_eq!(u(9), 9);
    }
}
