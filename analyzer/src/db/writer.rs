//! Writing one input: flows, alerts, losses and packet counts in batched transactions, then the
//! derived tables (timeseries, incidents, hosts) and the input's totals at `finish`.
//!
//! Crash safety: an input row is inserted with `complete = 0` and only marked complete by
//! `finish`. Reports ignore incomplete inputs, and beginning the same input (same SHA-256) again
//! deletes the half-written rows first, so an interrupted analysis is simply redone.

use super::incidents::{AlertForGrouping, INCIDENT_GAP_NS, group_incidents};
use super::schema::INPUT_TABLES;
use super::timeseries::TimeSeries;
use super::{Db, DbError, SqlContext, i};
use netrec_format::model::{Alert, Evidence, FlowRecord, LossRecord, TcpState, Ts, Tunnel, proto_name};
use rusqlite::{Connection, OptionalExtension, Statement, params};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

/// Rows written per transaction before committing and starting the next one.
pub const BATCH_ROWS: usize = 10_000;

/// Identity of one input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputInfo {
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the file's bytes: the identity used for idempotent re-analysis.
    pub sha256: String,
    /// `"pcap"`, `"pcapng"`, `"segment"`, ...
    pub format: String,
    pub size_bytes: u64,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputTotals {
    pub input_id: i64,
    pub flows: u64,
    pub alerts: u64,
    pub losses: u64,
    pub incidents: u64,
    pub hosts: u64,
}

impl Db {
    /// Start writing an input. `Ok(None)` when an input with the same SHA-256 was already
    /// analyzed completely (re-analysis is a no-op); a half-written earlier attempt is discarded.
    pub fn begin_input(&mut self, info: InputInfo) -> Result<Option<InputWriter<'_>>, DbError> {
        let conn = &self.conn;
        let sha = info.sha256.to_ascii_lowercase();
        conn.execute_batch("BEGIN IMMEDIATE").op("begin input transaction")?;
        let result = (|| {
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
            // Ids are max + 1 (no AUTOINCREMENT): the same inputs in the same order get the same
            // ids, even after an interrupted attempt was discarded.
            conn.execute(
                "INSERT INTO inputs (id, path, sha256, format, size_bytes, complete)
                 VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM inputs), ?1, ?2, ?3, ?4, 0)",
                params![info.path.to_string_lossy(), sha, info.format, i(info.size_bytes)],
            )
            .op("insert input")?;
            Ok(Some(conn.last_insert_rowid()))
        })();
        match result {
            Ok(Some(input_id)) => Ok(Some(InputWriter {
                conn,
                flow_stmt: conn.prepare(INSERT_FLOW).op("prepare flow insert")?,
                text: TextBufs::default(),
                input_id,
                in_tx: true,
                pending: 0,
                series: TimeSeries::default(),
                alerts: BTreeMap::new(),
                totals: InputTotals { input_id, ..InputTotals::default() },
                finished: false,
            })),
            Ok(None) => {
                conn.execute_batch("COMMIT").op("commit input lookup")?;
                Ok(None)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
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
    flow_stmt: Statement<'db>,
    text: TextBufs,
    input_id: i64,
    in_tx: bool,
    pending: usize,
    series: TimeSeries,
    /// Final state of each alert (later updates replace earlier ones), for incident grouping.
    alerts: BTreeMap<u64, AlertForGrouping>,
    totals: InputTotals,
    finished: bool,
}

/// Reused text buffers for the per-flow columns (no allocation per row).
#[derive(Debug, Default)]
struct TextBufs {
    src: String,
    dst: String,
    first: String,
    last: String,
    duration: String,
}

fn set_ip(buf: &mut String, ip: &IpAddr) {
    buf.clear();
    let _ = write!(buf, "{ip}");
}

fn set_ts(buf: &mut String, ts: Ts) {
    buf.clear();
    let _ = write!(buf, "{ts}");
}

const INSERT_FLOW: &str = r#"INSERT INTO flows (input_id, proto, src_ip, src_port, dst_ip, dst_port,
    packets, bytes, fwd_packets, fwd_bytes, fwd_payload_bytes, rev_packets, rev_bytes, rev_payload_bytes,
    first_ts, last_ts, duration, tcp_state, rtt_ms, retransmissions, vlan, tunnel, "end",
    proto_num, first_ts_ns, last_ts_ns, duration_ns, rtt_ns, rtt_server_ns, rtt_client_ns,
    fwd_tcp_flags, rev_tcp_flags, fwd_retransmissions, rev_retransmissions, out_of_order, zero_window,
    tunnel_id, anomalies)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
    ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38)"#;

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

const INSERT_HOSTS: &str = "INSERT INTO hosts (input_id, ip, packets_sent, packets_recv, bytes_sent,
    bytes_recv, flows_initiated, flows_received, first_ts, first_ts_ns, last_ts, last_ts_ns)
    SELECT ?1, ip, sum(ps), sum(pr), sum(bs), sum(br), sum(fi), sum(fr),
        printf('%d.%09d', min(f) / 1000000000, min(f) % 1000000000), min(f),
        printf('%d.%09d', max(l) / 1000000000, max(l) % 1000000000), max(l)
    FROM (
        SELECT src_ip AS ip, fwd_packets AS ps, rev_packets AS pr, fwd_bytes AS bs, rev_bytes AS br,
            1 AS fi, 0 AS fr, first_ts_ns AS f, last_ts_ns AS l FROM flows WHERE input_id = ?1
        UNION ALL
        SELECT dst_ip, rev_packets, fwd_packets, rev_bytes, fwd_bytes, 0, 1, first_ts_ns, last_ts_ns
            FROM flows WHERE input_id = ?1
    ) GROUP BY ip ORDER BY ip";

impl InputWriter<'_> {
    /// The `inputs.id` of this input.
    pub fn input_id(&self) -> i64 {
        self.input_id
    }

    /// Store one flow record (emission order is the row order).
    pub fn add_flow(&mut self, f: &FlowRecord) -> Result<(), DbError> {
        self.ensure_tx()?;
        let k = &f.key;
        let duration_ns = f.last_ts.saturating_sub(f.first_ts);
        let rtt = f.rtt_ns();
        let t = &mut self.text;
        set_ip(&mut t.src, &k.src_ip);
        set_ip(&mut t.dst, &k.dst_ip);
        set_ts(&mut t.first, f.first_ts);
        set_ts(&mut t.last, f.last_ts);
        set_ts(&mut t.duration, Ts(duration_ns));
        self.flow_stmt
            .execute(params![
                self.input_id,
                proto_name(k.proto),
                t.src,
                k.src_port,
                t.dst,
                k.dst_port,
                i(f.fwd.packets.saturating_add(f.rev.packets)),
                i(f.fwd.bytes.saturating_add(f.rev.bytes)),
                i(f.fwd.packets),
                i(f.fwd.bytes),
                i(f.fwd.payload_bytes),
                i(f.rev.packets),
                i(f.rev.bytes),
                i(f.rev.payload_bytes),
                t.first,
                t.last,
                t.duration,
                (f.tcp_state != TcpState::None).then(|| f.tcp_state.as_str()),
                rtt.map(|ns| ns as f64 / 1e6),
                i(f.fwd.retransmissions.saturating_add(f.rev.retransmissions)),
                (k.vlan != 0).then_some(k.vlan),
                f.tunnel.map(tunnel_json),
                flow_end_str(f.end),
                k.proto,
                i(f.first_ts.nanos()),
                i(f.last_ts.nanos()),
                i(duration_ns),
                rtt.map(i),
                f.rtt_server_ns.map(i),
                f.rtt_client_ns.map(i),
                f.fwd.tcp_flags,
                f.rev.tcp_flags,
                i(f.fwd.retransmissions),
                i(f.rev.retransmissions),
                i(f.fwd.out_of_order.saturating_add(f.rev.out_of_order)),
                i(f.fwd.zero_window.saturating_add(f.rev.zero_window)),
                k.tunnel_id,
                i(f.anomalies),
            ])
            .op("insert flow")?;
        self.totals.flows += 1;
        self.row_written()
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
        self.totals.hosts = self.conn.execute(INSERT_HOSTS, [id]).op("compute hosts")? as u64;
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
        Ok(self.totals)
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
    }
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
mod tests {
    use super::*;

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

    #[test]
    fn joins() {
        let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(join_ips(&ips), "10.0.0.1,2001:db8::1");
        assert_eq!(join_ips(&[]), "");
        assert_eq!(join_ports(&[22, 80]), "22,80");
    }
}
