//! Writing one input: flows, alerts, losses and packet counts in batched transactions, then the
//! derived tables (timeseries, incidents, hosts) and the input's totals at `finish`.
//!
//! Crash safety: an input row is inserted with `complete = 0` and only marked complete by
//! `finish`. Reports ignore incomplete inputs, and beginning the same input (same SHA-256) again
//! deletes the half-written rows first, so an interrupted analysis is simply redone.

use super::hosts::{ClosedHosts, FlowEnds, HostAgg, HostAggregator, HostRows};
use super::incidents::{AlertForGrouping, INCIDENT_GAP_NS, group_incidents};
use super::rawstmt::{Binder, RawStmt};
use super::schema::INPUT_TABLES;
use super::text::push_ip;
use super::timeseries::TimeSeries;
use super::{Db, DbError, SqlContext, i};
use netrec_format::model::{Alert, Evidence, FlowRecord, LossRecord, TcpState, Ts, Tunnel, proto_name};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

/// Rows written per transaction before committing and starting the next one.
pub const BATCH_ROWS: usize = 10_000;

/// Rows per multi-row INSERT of flows and hosts: one statement execution (step, reset, halt)
/// per this many rows instead of per row. Tails shorter than this use the one-row statement.
/// 128 (4,864 parameters of a flow INSERT, under SQLite's 32,766): 2% fewer instructions than 32
/// for a 200k-flow SYN flood's analysis (cachegrind); 1 row per INSERT is 12% more.
const ROWS_PER_INSERT: usize = 128;

/// Identity of one input: a file, or a chain of segment files replayed as one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputInfo {
    /// The file, or the chain's directory.
    pub path: PathBuf,
    /// Lowercase hex SHA-256: the identity used for idempotent re-analysis. A file's own hash;
    /// for a chain, [`chain_sha256`] of its files.
    pub sha256: String,
    /// `"pcap"`, `"pcapng"`, `"segment"`, ...
    pub format: String,
    /// Total size of the file(s).
    pub size_bytes: u64,
    /// The files of a chain, in replay order; empty for a single file (`path`, `sha256`).
    pub files: Vec<InputFile>,
}

/// One file of an input (`input_files` row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
}

/// Identity of a chain of files: the SHA-256 of a manifest line per file
/// (`"<sha256 lowercase hex> <size>\n"`) after the line `"netrec-chain-v1\n"`. Content only: a
/// renamed or moved recording keeps its identity; one file more or less makes another input.
pub fn chain_sha256(files: &[InputFile]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"netrec-chain-v1\n");
    for f in files {
        h.update(format!("{} {}\n", f.sha256.to_ascii_lowercase(), f.size_bytes).as_bytes());
    }
    hex::encode(h.finalize())
}

/// Totals of one input, known when it has been read completely.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputStats {
    pub packets: u64,
    /// Wire bytes.
    pub bytes: u64,
    /// None for an input without packets.
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    pub decode_anomalies: u64,
    pub warnings: u64,
}

/// What `finish` stored for the input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputTotals {
    pub input_id: i64,
    pub flows: u64,
    pub alerts: u64,
    pub losses: u64,
    pub incidents: u64,
    pub hosts: u64,
    /// Earlier inputs this one replaced (deleted in the same commit): complete inputs whose files
    /// are all files of this recording, i.e. the same recording analyzed before it grew.
    pub replaced: Vec<i64>,
}

/// Connection settings for the load of one input, set before its first transaction (pragmas
/// are no-ops inside one). `synchronous = OFF`: see `begin_input`. `foreign_keys = OFF`: every
/// row of a load references the `inputs` row the same load inserted, so the per-row check of
/// `input_id` (a cursor opened on `inputs` and a seek, for each flow and host row) cannot fail;
/// an input's rows are removed children first (`INPUT_TABLES`), not by cascade.
const LOAD_PRAGMAS: &str = "PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF";
/// The connection's settings outside loads: set by `Db::open`, restored however a load ends.
/// NORMAL sync is durable at checkpoints under WAL; foreign keys set explicitly, not left to
/// the bundled SQLite's build default.
pub(crate) const NORMAL_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON";

/// Set the load's pragmas and, when no other connection has the database open, a rollback
/// journal for the load. Under WAL every page of a load is written twice (to the log, then by
/// the checkpoint into the file); a rollback journal keeps only the pages that existed before
/// the transaction, and a load mostly appends new ones: a 1M-flow SYN flood's analysis spent
/// 1.3 s of system time under WAL, 0.9 s without (3.5 -> 3.1 s wall). Leaving WAL needs every
/// other connection closed (each holds a shared lock while open); when one is open (a report
/// reading meanwhile) SQLite refuses at once and the load simply stays in WAL.
fn start_load(conn: &Connection) -> Result<(), DbError> {
    conn.execute_batch(LOAD_PRAGMAS).op("set the load's pragmas")?;
    try_journal_mode(conn, "DELETE")?;
    // In rollback mode a commit waits for readers that started before it to finish: wait for a
    // long report rather than abandon the load.
    conn.busy_timeout(LOAD_BUSY_TIMEOUT).op("set the busy timeout")
}

/// How long a load's statement waits for other connections (readers, in rollback mode).
const LOAD_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Restore the connection's settings after a load, however it ended: its pragmas, and WAL
/// (for readers alongside the next writer). WAL may be refused while another connection that
/// opened the database during the load still has it open; the database then stays in rollback
/// mode, which is as safe, until the next load ends or the next `Db::open`.
fn end_load(conn: &Connection) -> Result<(), DbError> {
    // Best effort: an input the load committed stays committed whatever happens here, and the
    // next load or `Db::open` tries WAL again.
    let _ = try_journal_mode(conn, "WAL");
    conn.execute_batch(NORMAL_PRAGMAS).op("restore the connection's pragmas")?;
    conn.busy_timeout(super::BUSY_TIMEOUT).op("set the busy timeout")
}

/// Switch the journal mode if no other connection is in the way, without waiting for one: a
/// switch between WAL and rollback modes needs the file alone, and SQLite would otherwise wait
/// the busy timeout for a reader that may stay for minutes.
pub(crate) fn try_journal_mode(conn: &Connection, mode: &str) -> Result<(), DbError> {
    conn.busy_timeout(std::time::Duration::ZERO).op("set the busy timeout")?;
    let switched = conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()));
    conn.busy_timeout(super::BUSY_TIMEOUT).op("set the busy timeout")?;
    match switched {
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(()),
        r => r.op("set the journal mode"),
    }
}

impl Db {
    /// Start writing an input. `Ok(None)` when an input with the same SHA-256 was already
    /// analyzed completely (re-analysis is a no-op); a half-written earlier attempt is discarded.
    pub fn begin_input(&mut self, info: InputInfo) -> Result<Option<InputWriter<'_>>, DbError> {
        let conn = &self.conn;
        let sha = info.sha256.to_ascii_lowercase();
        // The database is derived data and an input is only marked complete by its last commit:
        // losing the tail of a load to a power cut leaves it incomplete (redone next run), so the
        // load skips fsync. Restored by `finish` and on drop.
        let result = (|| {
            start_load(conn)?;
            conn.execute_batch("BEGIN IMMEDIATE").op("begin input transaction")?;
            let existing: Option<(i64, i64)> = conn
                .query_row("SELECT id, complete FROM inputs WHERE sha256 = ?1", [&sha], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .op("look up input by sha256")?;
            match existing {
                Some((_, 1)) => return Ok(None),
                Some((id, _)) => delete_input(conn, id)?,
                None => {}
            }
            let replaced = if info.files.len() > 1 { covered_inputs(conn, &info.files)? } else { Vec::new() };
            // Ids are max + 1 (no AUTOINCREMENT): the same inputs in the same order get the same
            // ids, even after an interrupted attempt was discarded.
            conn.execute(
                "INSERT INTO inputs (id, path, sha256, format, size_bytes, complete)
                 VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM inputs), ?1, ?2, ?3, ?4, 0)",
                params![info.path.to_string_lossy(), sha, info.format, i(info.size_bytes)],
            )
            .op("insert input")?;
            let input_id = conn.last_insert_rowid();
            let one =
                [InputFile { path: info.path.clone(), sha256: sha.clone(), size_bytes: info.size_bytes }];
            let files = if info.files.is_empty() { &one[..] } else { &info.files[..] };
            for (seq, f) in files.iter().enumerate() {
                conn.execute(
                    "INSERT INTO input_files (input_id, seq, path, sha256, size_bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        input_id,
                        i(seq as u64),
                        f.path.to_string_lossy(),
                        f.sha256.to_ascii_lowercase(),
                        i(f.size_bytes)
                    ],
                )
                .op("insert input file")?;
            }
            // Into an empty flows table, building the index once after the load is cheaper than
            // maintaining it row by row. `finish` (or the next `Db::open`) recreates it.
            let empty: bool = conn
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM flow_rows)", [], |r| r.get(0))
                .op("count flows")?;
            if empty {
                conn.execute_batch("DROP INDEX IF EXISTS flows_dst").op("defer flow index")?;
            }
            let flow_stmt =
                RawStmt::prepare(conn, &insert_sql(INSERT_FLOW_HEAD, FLOW_COLS, 1)).op("prepare flow insert")?;
            let flow_multi = RawStmt::prepare(conn, &insert_sql(INSERT_FLOW_HEAD, FLOW_COLS, ROWS_PER_INSERT))
                .op("prepare flow insert")?;
            Ok(Some((input_id, replaced, flow_stmt, flow_multi)))
        })()
        .and_then(|begun| {
            if begun.is_none() {
                conn.execute_batch("COMMIT").op("commit input lookup")?;
            }
            Ok(begun)
        });
        // Every way out but a writer restores the connection (a writer does when it ends).
        match result {
            Ok(Some((input_id, replaced, flow_stmt, flow_multi))) => Ok(Some(InputWriter {
                conn,
                flow_stmt,
                flow_multi,
                queued: Vec::with_capacity(ROWS_PER_INSERT),
                text: RowTexts::default(),
                input_id,
                in_tx: true,
                pending: 0,
                series: TimeSeries::default(),
                alerts: BTreeMap::new(),
                hosts: Some(HostAggregator::start()),
                totals: InputTotals { input_id, replaced, ..InputTotals::default() },
                finished: false,
            })),
            Ok(None) => {
                end_load(conn)?;
                Ok(None)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                let _ = end_load(conn);
                Err(e)
            }
        }
    }
}

/// Complete inputs made only of files of the recording `files` (by SHA-256 and size), with fewer
/// files: the same recording analyzed before it grew (rotation added files), or one of its files
/// analyzed alone. The new input replaces them when it completes, so a recording analyzed again
/// is not stored twice; an input with a file outside `files` (e.g. one retention has deleted
/// since) is kept, as replacing it would lose that file's rows.
fn covered_inputs(conn: &Connection, files: &[InputFile]) -> Result<Vec<i64>, DbError> {
    let ours: std::collections::HashSet<(String, u64)> =
        files.iter().map(|f| (f.sha256.to_ascii_lowercase(), f.size_bytes)).collect();
    let mut stmt = conn
        .prepare(
            "SELECT f.input_id, f.sha256, f.size_bytes FROM input_files f JOIN inputs i ON i.id = f.input_id
             WHERE i.complete = 1 ORDER BY f.input_id, f.seq",
        )
        .op("prepare input file lookup")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
        .op("look up input files")?;
    // (input, files, all of them ours)
    let mut per_input: Vec<(i64, usize, bool)> = Vec::new();
    for row in rows {
        let (id, sha, size) = row.op("read input file")?;
        let mine = ours.contains(&(sha.to_ascii_lowercase(), u64::try_from(size).unwrap_or(u64::MAX)));
        match per_input.last_mut() {
            Some(last) if last.0 == id => {
                last.1 += 1;
                last.2 &= mine;
            }
            _ => per_input.push((id, 1, mine)),
        }
    }
    Ok(per_input.into_iter().filter(|&(_, n, all)| all && n < files.len()).map(|(id, _, _)| id).collect())
}

fn delete_input(conn: &Connection, id: i64) -> Result<(), DbError> {
    for table in INPUT_TABLES {
        conn.execute(&format!("DELETE FROM {table} WHERE input_id = ?1"), [id])
            .op("delete rows of an incomplete input")?;
    }
    conn.execute("DELETE FROM inputs WHERE id = ?1", [id]).op("delete incomplete input")?;
    Ok(())
}

/// Writes the rows of one input. Dropping it without [`InputWriter::finish`] rolls back the open
/// batch and leaves the input incomplete (invisible to reports, redone on the next run).
#[derive(Debug)]
pub struct InputWriter<'db> {
    conn: &'db Connection,
    /// Held rather than looked up in the statement cache: flows are the bulk of the rows.
    flow_stmt: RawStmt<'db>,
    /// `ROWS_PER_INSERT` flows per execution.
    flow_multi: RawStmt<'db>,
    /// Flows added but not yet inserted (fewer than `ROWS_PER_INSERT`), in emission order.
    queued: Vec<FlowRecord>,
    text: RowTexts,
    input_id: i64,
    in_tx: bool,
    pending: usize,
    series: TimeSeries,
    /// Final state of each alert (later updates replace earlier ones), for incident grouping.
    alerts: BTreeMap<u64, AlertForGrouping>,
    /// Per-address totals for the `hosts` table, summed as flows are added (an SQL GROUP BY over
    /// the flows, sorting two rows per flow, cost more than inserting the flows).
    /// `None` once `finish` took it.
    hosts: Option<HostAggregator>,
    totals: InputTotals,
    finished: bool,
}

/// The texts of the rows of one INSERT, formatted before binding: bound without copies, they
/// must all live until the statement runs. One buffer, reused group after group.
#[derive(Debug, Default)]
struct RowTexts {
    buf: String,
    ends: Vec<usize>,
}

impl RowTexts {
    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Append one text, written by `f`.
    #[inline]
    fn push(&mut self, f: impl FnOnce(&mut String)) {
        f(&mut self.buf);
        self.ends.push(self.buf.len());
    }

    /// The texts in the order pushed.
    fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let t = &self.buf[start..end];
            start = end;
            t
        })
    }
}

/// Texts of one flow row, in the order `bind_flow` takes them.
const FLOW_TEXTS: usize = 3;

fn push_flow_texts(t: &mut RowTexts, f: &FlowRecord) {
    let k = &f.key;
    t.push(|b| push_ip(b, &k.src_ip));
    t.push(|b| push_ip(b, &k.dst_ip));
    // Empty (bound as NULL) without a tunnel.
    t.push(|b| {
        if let Some(tn) = f.tunnel {
            b.push_str(&tunnel_json(tn))
        }
    });
}

/// `head` followed by `rows` groups of `cols` anonymous parameters (numbered 1.. in order).
fn insert_sql(head: &str, cols: usize, rows: usize) -> String {
    let mut s = String::with_capacity(head.len() + rows * (cols * 2 + 3));
    s.push_str(head);
    for r in 0..rows {
        s.push_str(if r == 0 { " (" } else { ", (" });
        for c in 0..cols {
            s.push_str(if c == 0 { "?" } else { ",?" });
        }
        s.push(')');
    }
    s
}

/// The stored columns of a flow (`flow_rows`); the `flows` view derives the others.
const FLOW_COLS: usize = 29;
const INSERT_FLOW_HEAD: &str = r#"INSERT INTO flow_rows (input_id, src_ip, src_port, dst_ip, dst_port,
    fwd_packets, fwd_bytes, fwd_payload_bytes, rev_packets, rev_bytes, rev_payload_bytes, tcp_state, vlan,
    tunnel, "end", proto_num, first_ts_ns, last_ts_ns, rtt_ns, rtt_server_ns, rtt_client_ns, fwd_tcp_flags,
    rev_tcp_flags, fwd_retransmissions, rev_retransmissions, out_of_order, zero_window, tunnel_id, anomalies)
    VALUES"#;

/// Bind the 29 columns of one flow row; `texts` yields its `FLOW_TEXTS` texts.
fn bind_flow<'v>(
    b: &mut Binder<'_, 'v>,
    input_id: i64,
    f: &FlowRecord,
    texts: &mut impl Iterator<Item = &'v str>,
) {
    let k = &f.key;
    let mut text = || texts.next().unwrap_or_default();
    let [src, dst, tunnel]: [&str; FLOW_TEXTS] = std::array::from_fn(|_| text());
    b.int(input_id);
    b.text(src);
    b.int(i64::from(k.src_port));
    b.text(dst);
    b.int(i64::from(k.dst_port));
    b.int(i(f.fwd.packets));
    b.int(i(f.fwd.bytes));
    b.int(i(f.fwd.payload_bytes));
    b.int(i(f.rev.packets));
    b.int(i(f.rev.bytes));
    b.int(i(f.rev.payload_bytes));
    b.opt_text((f.tcp_state != TcpState::None).then(|| f.tcp_state.as_str()));
    b.opt_int((k.vlan != 0).then_some(i64::from(k.vlan)));
    b.opt_text(f.tunnel.is_some().then_some(tunnel));
    b.text(flow_end_str(f.end));
    b.int(i64::from(k.proto));
    b.int(i(f.first_ts.nanos()));
    b.int(i(f.last_ts.nanos()));
    b.opt_int(f.rtt_ns().map(i));
    b.opt_int(f.rtt_server_ns.map(i));
    b.opt_int(f.rtt_client_ns.map(i));
    b.int(i64::from(f.fwd.tcp_flags));
    b.int(i64::from(f.rev.tcp_flags));
    b.int(i(f.fwd.retransmissions));
    b.int(i(f.rev.retransmissions));
    b.int(i(f.fwd.out_of_order.saturating_add(f.rev.out_of_order)));
    b.int(i(f.fwd.zero_window.saturating_add(f.rev.zero_window)));
    b.int(i64::from(k.tunnel_id));
    b.int(i(f.anomalies));
}

const UPSERT_ALERT: &str = "INSERT INTO alerts (input_id, alert_id, rule_id, class, severity, severity_num,
    attack_id, first_ts, first_ts_ns, last_ts, last_ts_ns, src, src_count, dst, dst_count, dst_ports,
    count, stats, message)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
    ON CONFLICT (input_id, alert_id) DO UPDATE SET rule_id = excluded.rule_id, class = excluded.class,
    severity = excluded.severity, severity_num = excluded.severity_num, attack_id = excluded.attack_id,
    first_ts = excluded.first_ts, first_ts_ns = excluded.first_ts_ns, last_ts = excluded.last_ts,
    last_ts_ns = excluded.last_ts_ns, src = excluded.src, src_count = excluded.src_count,
    dst = excluded.dst, dst_count = excluded.dst_count, dst_ports = excluded.dst_ports,
    count = excluded.count, stats = excluded.stats, message = excluded.message";

const INSERT_LOSS: &str = "INSERT INTO losses (input_id, ts, ts_ns, iface, kernel_packets, kernel_bytes,
    ring_drops, map_full, busy, writer_drops) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The stored columns of a host (`host_rows`); the `hosts` view adds the time texts.
const HOST_COLS: usize = 10;
const INSERT_HOST_HEAD: &str = "INSERT INTO host_rows (input_id, ip, packets_sent, packets_recv, bytes_sent,
    bytes_recv, flows_initiated, flows_received, first_ts_ns, last_ts_ns) VALUES";

impl InputWriter<'_> {
    /// The `inputs.id` of this input.
    pub fn input_id(&self) -> i64 {
        self.input_id
    }

    /// Store one flow record (emission order is the row order).
    pub fn add_flow(&mut self, f: &FlowRecord) -> Result<(), DbError> {
        self.ensure_tx()?;
        self.queued.push(f.clone());
        if self.queued.len() == ROWS_PER_INSERT {
            self.text.clear();
            for q in &self.queued {
                push_flow_texts(&mut self.text, q);
            }
            let mut texts = self.text.iter();
            let mut b = self.flow_multi.bind();
            for q in &self.queued {
                bind_flow(&mut b, self.input_id, q, &mut texts);
            }
            b.execute().op("insert flows")?;
            self.queued.clear();
        }
        if let Some(hosts) = &mut self.hosts {
            hosts.add(FlowEnds {
                src: f.key.src_ip,
                dst: f.key.dst_ip,
                fwd_packets: i(f.fwd.packets),
                rev_packets: i(f.rev.packets),
                fwd_bytes: i(f.fwd.bytes),
                rev_bytes: i(f.rev.bytes),
                first: i(f.first_ts.nanos()),
                last: i(f.last_ts.nanos()),
            });
        }
        self.totals.flows += 1;
        self.row_written()
    }

    /// Insert the queued flows one row at a time (before a commit: fewer than a full group).
    fn flush_flows(&mut self) -> Result<(), DbError> {
        for q in self.queued.drain(..) {
            self.text.clear();
            push_flow_texts(&mut self.text, &q);
            let mut texts = self.text.iter();
            let mut b = self.flow_stmt.bind();
            bind_flow(&mut b, self.input_id, &q, &mut texts);
            b.execute().op("insert flow")?;
        }
        Ok(())
    }

    /// Store an alert, or update it when this input already has an alert with the same id (the
    /// engine re-emits an alert with its final totals when the incident ends).
    pub fn add_alert(&mut self, a: &Alert) -> Result<(), DbError> {
        self.ensure_tx()?;
        self.conn
            .prepare_cached(UPSERT_ALERT)
            .op("prepare alert upsert")?
            .execute(params![
                self.input_id,
                i(a.id),
                a.rule_id,
                a.class,
                a.severity.as_str(),
                a.severity as u8,
                a.attack_id,
                a.first_ts.to_decimal(),
                i(a.first_ts.nanos()),
                a.last_ts.to_decimal(),
                i(a.last_ts.nanos()),
                join_ips(&a.src),
                i(a.src_count),
                join_ips(&a.dst),
                i(a.dst_count),
                join_ports(&a.dst_ports),
                i(a.count),
                stats_json(&a.stats),
                a.message,
            ])
            .op("upsert alert")?;
        let prev = self.alerts.insert(
            a.id,
            AlertForGrouping {
                alert_id: a.id,
                class: a.class.clone(),
                severity: a.severity,
                first_ts: a.first_ts.nanos(),
                last_ts: a.last_ts.nanos(),
                src: a.src.clone(),
                dst: a.dst.clone(),
                count: a.count,
            },
        );
        if prev.is_none() {
            self.totals.alerts += 1;
        }
        self.row_written()
    }

    /// Id and window of every alert stored so far (final state), by id.
    pub fn alert_windows(&self) -> Vec<(u64, Ts, Ts)> {
        self.alerts.values().map(|a| (a.alert_id, Ts(a.first_ts), Ts(a.last_ts))).collect()
    }

    /// Store the evidence completeness of an alert already added (schema v2 columns).
    pub fn set_evidence(&mut self, alert_id: u64, ev: &Evidence) -> Result<(), DbError> {
        self.ensure_tx()?;
        self.conn
            .prepare_cached(
                "UPDATE alerts SET evidence_seen = ?3, evidence_counted = ?4, evidence_complete = ?5
                 WHERE input_id = ?1 AND alert_id = ?2",
            )
            .op("prepare evidence update")?
            .execute(params![self.input_id, i(alert_id), i(ev.seen), i(ev.counted), ev.complete])
            .op("update alert evidence")?;
        self.row_written()
    }

    /// Count one packet in the per-minute series. No SQL: written at `finish`.
    /// `proto` is the IP protocol, [`netrec_format::model::PROTO_ARP`], or 0 for anything else.
    #[inline]
    pub fn add_packet(&mut self, ts: Ts, proto: u16, wire_len: u32) {
        self.series.add(ts.nanos(), proto, wire_len);
    }

    /// Add packet counts gathered apart from this writer (e.g. while the input's SHA-256, its
    /// identity, was still being computed). Same result as `add_packet` for each packet.
    pub fn add_series(&mut self, series: super::PacketSeries) {
        self.series.merge(series);
    }

    /// Store a loss/statistics record.
    pub fn add_loss(&mut self, l: &LossRecord) -> Result<(), DbError> {
        self.ensure_tx()?;
        self.conn
            .prepare_cached(INSERT_LOSS)
            .op("prepare loss insert")?
            .execute(params![
                self.input_id,
                l.ts.to_decimal(),
                i(l.ts.nanos()),
                l.iface,
                i(l.kernel_packets),
                i(l.kernel_bytes),
                i(l.ring_drops),
                i(l.map_full),
                i(l.busy),
                i(l.writer_drops),
            ])
            .op("insert loss")?;
        self.totals.losses += 1;
        self.row_written()
    }

    /// Write the time series, incidents and hosts, record the totals, mark the input complete
    /// and commit.
    pub fn finish(mut self, stats: InputStats) -> Result<InputTotals, DbError> {
        self.ensure_tx()?;
        self.flush_flows()?;
        // The host rows sort on their thread while the tables below are written.
        let hosts = self.hosts.take().map(HostAggregator::close);
        let id = self.input_id;
        {
            let mut ins = self
                .conn
                .prepare_cached(
                    "INSERT INTO timeseries (input_id, minute, proto, proto_num, packets, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .op("prepare timeseries insert")?;
            for ((minute, proto), (packets, bytes)) in std::mem::take(&mut self.series).into_rows() {
                let name = if proto == 0 { "other".into() } else { proto_name(proto) };
                ins.execute(params![id, i(minute), name, proto, i(packets), i(bytes)])
                    .op("insert timeseries")?;
            }
        }
        self.write_incidents()?;
        self.conn.execute_batch(super::schema_index::FLOWS_DST).op("create flow index")?;
        self.totals.hosts = self.write_hosts(hosts)?;
        // In the commit that completes this input: the recording is never absent, nor twice.
        for &old in &self.totals.replaced {
            delete_input(self.conn, old)?;
        }
        self.conn
            .execute(
                "UPDATE inputs SET complete = 1, packets = ?2, bytes = ?3, first_ts = ?4, first_ts_ns = ?5,
                 last_ts = ?6, last_ts_ns = ?7, decode_anomalies = ?8, warnings = ?9 WHERE id = ?1",
                params![
                    id,
                    i(stats.packets),
                    i(stats.bytes),
                    stats.first_ts.map(Ts::to_decimal),
                    stats.first_ts.map(|t| i(t.nanos())),
                    stats.last_ts.map(Ts::to_decimal),
                    stats.last_ts.map(|t| i(t.nanos())),
                    i(stats.decode_anomalies),
                    i(stats.warnings),
                ],
            )
            .op("record input totals")?;
        self.conn.execute_batch("COMMIT").op("commit input")?;
        self.in_tx = false;
        self.finished = true;
        end_load(self.conn)?;
        Ok(std::mem::take(&mut self.totals))
    }

    /// One row per address seen in a flow, in address-text order (the table's rowid order, and
    /// appends to its primary-key index).
    fn write_hosts(&mut self, hosts: Option<ClosedHosts>) -> Result<u64, DbError> {
        let hosts = hosts.ok_or(DbError::Worker { what: "host totals" })?.wait()?;
        let mut multi =
            RawStmt::prepare(self.conn, &insert_sql(INSERT_HOST_HEAD, HOST_COLS, ROWS_PER_INSERT))
                .op("prepare host insert")?;
        let mut one = RawStmt::prepare(self.conn, &insert_sql(INSERT_HOST_HEAD, HOST_COLS, 1))
            .op("prepare host insert")?;
        let hosts = match hosts {
            HostRows::Sorted(h) => h,
            HostRows::Merged(mut m) => {
                // Streamed from the merge of the spilled runs, in groups as below.
                let spill = |source| DbError::Spill { dir: super::hosts::spill_dir(), source };
                let mut rows: Vec<(String, HostAgg)> = Vec::with_capacity(ROWS_PER_INSERT);
                let mut n = 0u64;
                while let Some(row) = m.next_row().map_err(spill)? {
                    rows.push(row);
                    if rows.len() == ROWS_PER_INSERT {
                        let mut b = multi.bind();
                        for (ip, agg) in &rows {
                            bind_host(&mut b, self.input_id, ip, agg);
                        }
                        b.execute().op("insert hosts")?;
                        n += rows.len() as u64;
                        rows.clear();
                    }
                }
                for (ip, agg) in &rows {
                    let mut b = one.bind();
                    bind_host(&mut b, self.input_id, ip, agg);
                    b.execute().op("insert host")?;
                }
                return Ok(n + rows.len() as u64);
            }
        };
        let (groups, rest) = hosts.rows.as_chunks::<ROWS_PER_INSERT>();
        for group in groups {
            let mut b = multi.bind();
            for r in group {
                bind_host(&mut b, self.input_id, hosts.ip(r), &r.agg);
            }
            b.execute().op("insert hosts")?;
        }
        for r in rest {
            let mut b = one.bind();
            bind_host(&mut b, self.input_id, hosts.ip(r), &r.agg);
            b.execute().op("insert host")?;
        }
        Ok(hosts.rows.len() as u64)
    }

    fn write_incidents(&mut self) -> Result<(), DbError> {
        let alerts: Vec<AlertForGrouping> = std::mem::take(&mut self.alerts).into_values().collect();
        let incidents = group_incidents(&alerts, INCIDENT_GAP_NS);
        let mut ins = self
            .conn
            .prepare_cached(
                "INSERT INTO incidents (input_id, class, severity, severity_num, first_ts, first_ts_ns,
                 last_ts, last_ts_ns, sources, targets, alert_count, event_count, peak_rate)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .op("prepare incident insert")?;
        let mut map = self
            .conn
            .prepare_cached(
                "INSERT INTO incident_alerts (incident_id, input_id, alert_id) VALUES (?1, ?2, ?3)",
            )
            .op("prepare incident_alerts insert")?;
        for inc in &incidents {
            ins.execute(params![
                self.input_id,
                inc.class,
                inc.severity.as_str(),
                inc.severity as u8,
                Ts(inc.first_ts).to_decimal(),
                i(inc.first_ts),
                Ts(inc.last_ts).to_decimal(),
                i(inc.last_ts),
                join_ips(&inc.sources),
                join_ips(&inc.targets),
                inc.alert_ids.len() as i64,
                i(inc.event_count),
                inc.peak_rate,
            ])
            .op("insert incident")?;
            let incident_id = self.conn.last_insert_rowid();
            for &a in &inc.alert_ids {
                map.execute(params![incident_id, self.input_id, i(a)]).op("insert incident_alert")?;
            }
        }
        self.totals.incidents = incidents.len() as u64;
        Ok(())
    }

    fn ensure_tx(&mut self) -> Result<(), DbError> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE").op("begin batch")?;
            self.in_tx = true;
        }
        Ok(())
    }

    fn row_written(&mut self) -> Result<(), DbError> {
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush_flows()?;
            self.conn.execute_batch("COMMIT").op("commit batch")?;
            self.in_tx = false;
            self.pending = 0;
        }
        Ok(())
    }
}

impl Drop for InputWriter<'_> {
    fn drop(&mut self) {
        if !self.finished && self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if !self.finished {
            let _ = end_load(self.conn);
        }
    }
}

/// The first and last packet times of a host, as `bind_host` takes them.
/// Bind the 10 columns of one `host_rows` row.
fn bind_host<'v>(b: &mut Binder<'_, 'v>, input_id: i64, ip: &'v str, h: &HostAgg) {
    b.int(input_id);
    b.text(ip);
    b.int(h.packets_sent);
    b.int(h.packets_recv);
    b.int(h.bytes_sent);
    b.int(h.bytes_recv);
    b.int(h.flows_initiated);
    b.int(h.flows_received);
    b.int(h.first_ns);
    b.int(h.last_ns);
}

/// The tunnel as the same JSON object `netrec flows --format jsonl` prints (docs/flows.md).
fn tunnel_json(t: Tunnel) -> String {
    serde_json::json!({
        "kind": t.kind.as_str(),
        "id": t.id,
        "outer_src": t.outer_src.to_string(),
        "outer_dst": t.outer_dst.to_string(),
    })
    .to_string()
}

fn flow_end_str(e: netrec_format::model::FlowEnd) -> &'static str {
    use netrec_format::model::FlowEnd;
    match e {
        FlowEnd::Open => "open",
        FlowEnd::IdleTimeout => "idle_timeout",
        FlowEnd::ActiveTimeout => "active_timeout",
        FlowEnd::TcpClose => "tcp_close",
        FlowEnd::Evicted => "evicted",
    }
}

/// Comma-joined addresses (no spaces), the form stored in `src`, `dst`, `sources`, `targets`.
pub(crate) fn join_ips(ips: &[IpAddr]) -> String {
    let mut s = String::with_capacity(ips.len() * 16);
    for (n, ip) in ips.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        let _ = write!(s, "{ip}");
    }
    s
}

fn join_ports(ports: &[u16]) -> String {
    let mut s = String::with_capacity(ports.len() * 6);
    for (n, p) in ports.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        let _ = write!(s, "{p}");
    }
    s
}

/// `stats` as a JSON object in the engine's fixed order; non-finite numbers become `null`.
fn stats_json(stats: &[(String, f64)]) -> String {
    let mut s = String::from("{");
    for (n, (k, v)) in stats.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::Value::String(k.clone()).to_string());
        s.push(':');
        match serde_json::Number::from_f64(*v) {
            Some(num) => s.push_str(&num.to_string()),
            None => s.push_str("null"),
        }
    }
    s.push('}');
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-file input named by its SHA-256 (tests of the load's life cycle).
    pub(crate) fn info(sha: &str) -> InputInfo {
        InputInfo {
            path: "x".into(),
            sha256: sha.into(),
            format: "pcap".into(),
            size_bytes: 1,
            files: Vec::new(),
        }
    }

    #[test]
    fn stats_json_keeps_order_and_nulls_non_finite() {
        let s = stats_json(&[("rate".into(), 2.5), ("a\"b".into(), f64::NAN), ("n".into(), 3.0)]);
        assert_eq!(s, r#"{"rate":2.5,"a\"b":null,"n":3.0}"#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["rate"], 2.5);
    }

    #[test]
    fn tunnel_is_the_jsonl_object() {
        use netrec_format::model::TunnelKind;
        let t = Tunnel {
            kind: TunnelKind::Vxlan,
            id: 42,
            outer_src: "192.0.2.1".parse().unwrap(),
            outer_dst: "192.0.2.2".parse().unwrap(),
        };
        // serde_json's map is sorted, like flow_json's output.
        assert_eq!(
            tunnel_json(t),
            r#"{"id":42,"kind":"vxlan","outer_dst":"192.0.2.2","outer_src":"192.0.2.1"}"#
        );
    }

    /// The SQL the `hosts` table was computed with before it was aggregated in Rust.
    const HOSTS_BY_SQL: &str = "SELECT ?1, ip, sum(ps), sum(pr), sum(bs), sum(br), sum(fi), sum(fr),
            printf('%d.%09d', min(f) / 1000000000, min(f) % 1000000000), min(f),
            printf('%d.%09d', max(l) / 1000000000, max(l) % 1000000000), max(l)
        FROM (
            SELECT src_ip AS ip, fwd_packets AS ps, rev_packets AS pr, fwd_bytes AS bs, rev_bytes AS br,
                1 AS fi, 0 AS fr, first_ts_ns AS f, last_ts_ns AS l FROM flows WHERE input_id = ?1
            UNION ALL
            SELECT dst_ip, rev_packets, fwd_packets, rev_bytes, fwd_bytes, 0, 1, first_ts_ns, last_ts_ns
                FROM flows WHERE input_id = ?1
        ) GROUP BY ip ORDER BY ip";

    /// A load runs without per-row foreign-key checks and without fsync; the connection gets
    /// both back however the load ends: completed, abandoned (dropped), or skipped (present).
    #[test]
    fn load_settings_are_restored_however_a_load_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path().join("p.sqlite")).unwrap();
        // foreign_keys ON, synchronous NORMAL (1).
        assert_eq!(pragmas_of(&db.conn), (1, 1));
        let w = db.begin_input(info("aa")).unwrap().unwrap();
        assert_eq!(pragmas_of(w.conn), (0, 0), "during the load");
        w.finish(InputStats::default()).unwrap();
        assert_eq!(pragmas_of(&db.conn), (1, 1), "after a completed load");
        let w = db.begin_input(info("bb")).unwrap().unwrap();
        drop(w);
        assert_eq!(pragmas_of(&db.conn), (1, 1), "after an abandoned load");
        assert!(db.begin_input(info("aa")).unwrap().is_none(), "present");
        assert_eq!(pragmas_of(&db.conn), (1, 1), "after a skipped load");
        // The enforcement is back: a row naming no input is refused.
        let e = db.conn.execute("INSERT INTO input_files VALUES (999, 0, 'p', 's', 1)", []);
        assert!(e.is_err(), "foreign key not enforced");
    }

    fn journal_of(conn: &rusqlite::Connection) -> String {
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap()
    }

    /// A load alone writes through a rollback journal and puts WAL back however it ends; with
    /// another connection open it keeps WAL (leaving it is refused at once, not waited for), and
    /// a database a reader kept in rollback mode gets WAL back from the next load or open.
    #[test]
    fn a_load_alone_uses_a_rollback_journal_and_restores_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut db = Db::open(&path).unwrap();
        assert_eq!(journal_of(&db.conn), "wal");
        let w = db.begin_input(info("aa")).unwrap().unwrap();
        assert_eq!(journal_of(w.conn), "delete", "during a load alone");
        w.finish(InputStats::default()).unwrap();
        assert_eq!(journal_of(&db.conn), "wal", "after a completed load");
        let w = db.begin_input(info("bb")).unwrap().unwrap();
        drop(w);
        assert_eq!(journal_of(&db.conn), "wal", "after an abandoned load");
        assert!(db.begin_input(info("aa")).unwrap().is_none(), "present");
        assert_eq!(journal_of(&db.conn), "wal", "after a skipped load");

        // A reader has the file open: the load stays in WAL, and the reader reads meanwhile.
        let reader = rusqlite::Connection::open(&path).unwrap();
        let count = |c: &rusqlite::Connection| -> i64 {
            c.query_row("SELECT count(*) FROM inputs WHERE complete = 1", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(count(&reader), 1);
        let started = std::time::Instant::now();
        let w = db.begin_input(info("cc")).unwrap().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "waited for the reader");
        assert_eq!(journal_of(w.conn), "wal", "during a load beside a reader");
        assert_eq!(count(&reader), 1);
        w.finish(InputStats::default()).unwrap();
        assert_eq!(count(&reader), 2);
        drop(reader);

        // A database left in rollback mode (WAL refused while a reader was mid-read) opens
        // without waiting for that reader, and the next load puts WAL back.
        drop(db);
        rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA journal_mode = DELETE").unwrap();
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM inputs;").unwrap();
        let started = std::time::Instant::now();
        let mut db = Db::open(&path).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "waited for the reader");
        assert_eq!(journal_of(&db.conn), "delete", "kept by the reader");
        reader.execute_batch("COMMIT").unwrap();
        let w = db.begin_input(info("dd")).unwrap().unwrap();
        w.finish(InputStats::default()).unwrap();
        assert_eq!(journal_of(&db.conn), "wal", "restored by the next load");
        assert_eq!(count(&reader), 3);
    }

    fn pragmas_of(conn: &rusqlite::Connection) -> (i64, i64) {
        let q = |p: &str| conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0)).unwrap();
        (q("foreign_keys"), q("synchronous"))
    }

    #[test]
    fn hosts_equal_the_sql_aggregate_row_for_row() {
        use netrec_format::model::{DirStats, FlowEnd, FlowKey};
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path().join("h.sqlite")).unwrap();
        let info = InputInfo {
            path: "x".into(),
            sha256: "ab".into(),
            format: "pcap".into(),
            size_bytes: 1,
            files: Vec::new(),
        };
        let mut w = db.begin_input(info).unwrap().unwrap();
        // Addresses whose text order differs from numeric order, v4 and v6, one flow to itself.
        let mut ips: Vec<IpAddr> =
            ["10.0.0.9", "10.0.0.10", "9.1.1.1", "2001:db8::a", "2001:db8::1:0", "192.0.2.1"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        // More than one multi-row INSERT of hosts, and IPv6 texts equal in their first 16 bytes.
        ips.extend(
            (0..50u32).map(|n| IpAddr::from([10, (n % 3) as u8, (n * 37 % 256) as u8, (n * 11) as u8])),
        );
        ips.extend((0..30u16).map(|n| IpAddr::from([0x2001, 0xdb8, 0xaaaa, 0xbbbb, 0, 0, n % 7, n * 977])));
        let m = ips.len() as u64;
        let mut expected_src = Vec::new();
        for n in 0..600u64 {
            let (a, b) = (ips[(n % m) as usize], ips[((n * 7 + 1) % (m - 1)) as usize]);
            expected_src.push(rusqlite::types::Value::Text(a.to_string()));
            let f = FlowRecord {
                key: FlowKey {
                    proto: 17,
                    src_ip: a,
                    src_port: 1,
                    dst_ip: b,
                    dst_port: 2,
                    vlan: 0,
                    tunnel_id: 0,
                },
                first_ts: Ts(1_700_000_000_000_000_000 + n * 123_456_789),
                last_ts: Ts(1_700_000_000_000_000_000 + n * 223_456_789),
                fwd: DirStats { packets: n + 1, bytes: 100 * n + 7, ..DirStats::default() },
                rev: DirStats { packets: n % 3, bytes: 11 * n, ..DirStats::default() },
                tcp_state: TcpState::None,
                rtt_server_ns: None,
                rtt_client_ns: None,
                end: FlowEnd::IdleTimeout,
                tunnel: None,
                anomalies: 0,
            };
            w.add_flow(&f).unwrap();
        }
        let id = w.input_id();
        let totals = w.finish(InputStats::default()).unwrap();
        let rows = |sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
            let mut st = db.conn().prepare(sql).unwrap();
            let n = st.column_count();
            let params: &[&dyn rusqlite::ToSql] = if sql.contains("?1") { &[&id] } else { &[] };
            st.query_map(params, |r| (0..n).map(|i| r.get(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // Stored in address-text order: the table's rowid order is the view's `ip` order.
        let stored = rows("SELECT * FROM hosts ORDER BY ip");
        let by_rowid: Vec<_> =
            rows("SELECT ip FROM host_rows ORDER BY rowid").into_iter().flatten().collect();
        let by_ip: Vec<_> = stored.iter().map(|r| r[1].clone()).collect();
        assert_eq!(by_rowid, by_ip);
        assert_eq!(stored.len(), ips.len());
        assert_eq!(totals.hosts, ips.len() as u64);
        assert_eq!(stored, rows(HOSTS_BY_SQL));
        // Flows: every row, in emission order (full groups and the one-row tail).
        let src: Vec<_> = rows("SELECT src_ip FROM flows ORDER BY id").into_iter().flatten().collect();
        assert_eq!(src, expected_src);
        let text = rows("SELECT first_ts, first_ts_ns, duration, duration_ns FROM flows ORDER BY id");
        for r in &text {
            use rusqlite::types::Value::{Integer, Text};
            let [Text(first), Integer(first_ns), Text(dur), Integer(dur_ns)] = r.as_slice() else {
                panic!("{r:?}")
            };
            assert_eq!(*first, Ts(*first_ns as u64).to_string());
            assert_eq!(*dur, Ts(*dur_ns as u64).to_string());
        }
        // The index a load into an empty table defers is back.
        assert_eq!(rows("SELECT name FROM sqlite_master WHERE name = 'flows_dst'").len(), 1);
    }

    #[test]
    fn joins() {
        let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(join_ips(&ips), "10.0.0.1,2001:db8::1");
        assert_eq!(join_ips(&[]), "");
        assert_eq!(join_ports(&[22, 80]), "22,80");
    }
}
