//! The SQL behind the reports. Every query reads only complete inputs and has a total order
//! (ties broken by ids or names), so the same database always gives the same report.

use super::fmt::{self, ts_text, utc, utc_of_decimal};
use super::*;
use crate::db::{Db, DbError, SqlContext, u};
use rusqlite::{Connection, Row, params_from_iter};

/// Restricts a query on a per-input table to inputs whose analysis finished.
const DONE: &str = "input_id IN (SELECT id FROM inputs WHERE complete = 1)";

/// Most addresses put into one evidence query (SQLite's parameter limit is far higher).
const MAX_EVIDENCE_ADDRS: usize = 500;

pub(super) fn load(c: &Connection, kind: ReportKind) -> Result<Report, DbError> {
    Ok(Report {
        format: REPORT_FORMAT,
        kind,
        inputs: inputs(c)?,
        incidents: if kind.has_incidents() { Some(incidents(c)?) } else { None },
        traffic: if kind.has_traffic() { Some(traffic(c)?) } else { None },
        performance: if kind.has_performance() { Some(performance(c)?) } else { None },
    })
}

fn g(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(u(r.get::<_, Option<i64>>(i)?.unwrap_or(0)))
}

fn collect<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    op: &'static str,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, DbError> {
    let mut st = c.prepare_cached(sql).op(op)?;
    let rows = st.query_map(params, f).op(op)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().op(op)
}

fn inputs(c: &Connection) -> Result<Vec<InputSummary>, DbError> {
    collect(
        c,
        "SELECT id, path, sha256, format, size_bytes, packets, bytes, first_ts, last_ts, decode_anomalies,
         warnings FROM inputs WHERE complete = 1 ORDER BY id",
        [],
        "load inputs",
        |r| {
            Ok(InputSummary {
                id: r.get(0)?,
                path: r.get(1)?,
                sha256: r.get(2)?,
                format: r.get(3)?,
                size_bytes: g(r, 4)?,
                packets: g(r, 5)?,
                bytes: g(r, 6)?,
                first_ts: r.get(7)?,
                last_ts: r.get(8)?,
                decode_anomalies: g(r, 9)?,
                warnings: g(r, 10)?,
            })
        },
    )
}

const FLOW_COLS: &str = "id, input_id, proto, src_ip, src_port, dst_ip, dst_port, packets, bytes, first_ts,
    last_ts, tcp_state, rtt_ms, retransmissions";

fn flow_brief(r: &Row<'_>) -> rusqlite::Result<FlowBrief> {
    Ok(FlowBrief {
        flow_id: r.get(0)?,
        input_id: r.get(1)?,
        proto: r.get(2)?,
        src_ip: r.get(3)?,
        src_port: r.get(4)?,
        dst_ip: r.get(5)?,
        dst_port: r.get(6)?,
        packets: g(r, 7)?,
        bytes: g(r, 8)?,
        first_ts: r.get(9)?,
        last_ts: r.get(10)?,
        tcp_state: r.get(11)?,
        rtt_ms: r.get(12)?,
        retransmissions: g(r, 13)?,
    })
}

fn split(s: &str) -> Vec<String> {
    s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

fn incidents(c: &Connection) -> Result<Vec<Incident>, DbError> {
    let sql = format!(
        "SELECT id, input_id, class, severity, first_ts, first_ts_ns, last_ts, last_ts_ns, sources, targets,
         alert_count, event_count, peak_rate FROM incidents WHERE {DONE}
         ORDER BY severity_num DESC, first_ts_ns, id"
    );
    let mut out = collect(c, &sql, [], "load incidents", |r| {
        let first_ts: String = r.get(4)?;
        let last_ts: String = r.get(6)?;
        let (f, l): (i64, i64) = (r.get(5)?, r.get(7)?);
        Ok(Incident {
            id: r.get(0)?,
            input_id: r.get(1)?,
            class: r.get(2)?,
            severity: r.get(3)?,
            first_utc: utc_of_decimal(&first_ts),
            last_utc: utc_of_decimal(&last_ts),
            first_ts,
            last_ts,
            duration_s: l.saturating_sub(f).max(0) as f64 / 1e9,
            attackers: split(&r.get::<_, String>(8)?),
            targets: split(&r.get::<_, String>(9)?),
            alert_count: g(r, 10)?,
            event_count: g(r, 11)?,
            peak_rate: r.get(12)?,
            rules: Vec::new(),
            attack_ids: Vec::new(),
            alerts: Vec::new(),
            evidence: Vec::new(),
        })
    })?;
    for inc in &mut out {
        inc.alerts = collect(
            c,
            "SELECT a.alert_id, a.rule_id, a.severity, a.attack_id, a.first_ts, a.last_ts, a.count,
             a.dst_ports, a.message, a.evidence_seen, a.evidence_counted, a.evidence_complete
             FROM incident_alerts m
             JOIN alerts a ON a.input_id = m.input_id AND a.alert_id = m.alert_id
             WHERE m.incident_id = ?1 ORDER BY a.first_ts_ns, a.alert_id",
            [inc.id],
            "load incident alerts",
            |r| {
                Ok(AlertBrief {
                    alert_id: g(r, 0)?,
                    rule_id: r.get(1)?,
                    severity: r.get(2)?,
                    attack_id: r.get(3)?,
                    first_ts: r.get(4)?,
                    last_ts: r.get(5)?,
                    count: g(r, 6)?,
                    dst_ports: r.get(7)?,
                    message: r.get(8)?,
                    evidence_seen: r.get::<_, Option<i64>>(9)?.map(u),
                    evidence_counted: r.get::<_, Option<i64>>(10)?.map(u),
                    evidence_complete: r.get(11)?,
                })
            },
        )?;
        let mut rules: Vec<String> = inc.alerts.iter().map(|a| a.rule_id.clone()).collect();
        rules.sort();
        rules.dedup();
        let mut attack: Vec<String> =
            inc.alerts.iter().map(|a| a.attack_id.clone()).filter(|a| !a.is_empty()).collect();
        attack.sort();
        attack.dedup();
        inc.rules = rules;
        inc.attack_ids = attack;
        inc.evidence = evidence(c, inc)?;
    }
    Ok(out)
}

/// Flows from an attacker to a target that overlap the incident window, most packets first.
/// Without known attackers, flows towards the targets.
fn evidence(c: &Connection, inc: &Incident) -> Result<Vec<FlowBrief>, DbError> {
    if inc.targets.is_empty() {
        return Ok(Vec::new());
    }
    let targets = &inc.targets[..inc.targets.len().min(MAX_EVIDENCE_ADDRS)];
    let attackers = &inc.attackers[..inc.attackers.len().min(MAX_EVIDENCE_ADDRS)];
    let marks = |n: usize| vec!["?"; n].join(",");
    let src_filter = if attackers.is_empty() {
        String::new()
    } else {
        format!("AND src_ip IN ({})", marks(attackers.len()))
    };
    let sql = format!(
        "SELECT {FLOW_COLS} FROM flows WHERE input_id = ? AND first_ts_ns <= ? AND last_ts_ns >= ?
         AND dst_ip IN ({}) {src_filter} ORDER BY packets DESC, id LIMIT {EVIDENCE_N}",
        marks(targets.len())
    );
    let (first, last) = (window_ns(&inc.first_ts), window_ns(&inc.last_ts));
    let mut params: Vec<rusqlite::types::Value> = vec![inc.input_id.into(), last.into(), first.into()];
    params.extend(targets.iter().map(|t| t.clone().into()));
    params.extend(attackers.iter().map(|a| a.clone().into()));
    let mut st = c.prepare(&sql).op("prepare evidence query")?;
    let rows = st.query_map(params_from_iter(params), flow_brief).op("load evidence flows")?;
    rows.collect::<rusqlite::Result<Vec<_>>>().op("load evidence flows")
}

/// Decimal timestamp text back to integer ns (the stored text is always `secs.nnnnnnnnn`).
fn window_ns(ts: &str) -> i64 {
    let (s, n) = ts.split_once('.').unwrap_or((ts, "0"));
    let s: i64 = s.parse().unwrap_or(0);
    let n: i64 = n.parse().unwrap_or(0);
    s.saturating_mul(1_000_000_000).saturating_add(n)
}

fn traffic(c: &Connection) -> Result<Traffic, DbError> {
    let totals = c
        .query_row(
            "SELECT count(*), sum(packets), sum(bytes), min(first_ts_ns), max(last_ts_ns),
             sum(decode_anomalies), sum(warnings) FROM inputs WHERE complete = 1",
            [],
            |r| {
                let first: Option<i64> = r.get(3)?;
                let last: Option<i64> = r.get(4)?;
                Ok(Totals {
                    inputs: g(r, 0)?,
                    packets: g(r, 1)?,
                    bytes: g(r, 2)?,
                    flows: 0,
                    first_ts: first.map(ts_text),
                    last_ts: last.map(ts_text),
                    duration_s: match (first, last) {
                        (Some(f), Some(l)) => l.saturating_sub(f).max(0) as f64 / 1e9,
                        _ => 0.0,
                    },
                    decode_anomalies: g(r, 5)?,
                    warnings: g(r, 6)?,
                })
            },
        )
        .op("load totals")?;
    let flows: i64 = c
        .query_row(&format!("SELECT count(*) FROM flows WHERE {DONE}"), [], |r| r.get(0))
        .op("count flows")?;
    let totals = Totals { flows: u(flows), ..totals };

    let mut protocols = collect(
        c,
        &format!(
            "SELECT min(proto), sum(packets), sum(bytes) FROM timeseries WHERE {DONE}
             GROUP BY proto_num ORDER BY sum(packets) DESC, proto_num"
        ),
        [],
        "load protocol mix",
        |r| Ok(ProtoShare { proto: r.get(0)?, packets: g(r, 1)?, bytes: g(r, 2)?, packet_share: 0.0 }),
    )?;
    let all: u64 = protocols.iter().map(|p| p.packets).sum();
    for p in &mut protocols {
        p.packet_share = if all == 0 { 0.0 } else { p.packets as f64 / all as f64 };
    }

    let host =
        |r: &Row<'_>| Ok(HostVolume { ip: r.get(0)?, packets: g(r, 1)?, bytes: g(r, 2)?, flows: g(r, 3)? });
    let top_sources = collect(
        c,
        &format!(
            "SELECT ip, sum(packets_sent), sum(bytes_sent), sum(flows_initiated) FROM hosts WHERE {DONE}
             GROUP BY ip HAVING sum(packets_sent) > 0 ORDER BY sum(bytes_sent) DESC, ip LIMIT {TOP_N}"
        ),
        [],
        "load top sources",
        host,
    )?;
    let top_destinations = collect(
        c,
        &format!(
            "SELECT ip, sum(packets_recv), sum(bytes_recv), sum(flows_received) FROM hosts WHERE {DONE}
             GROUP BY ip HAVING sum(packets_recv) > 0 ORDER BY sum(bytes_recv) DESC, ip LIMIT {TOP_N}"
        ),
        [],
        "load top destinations",
        host,
    )?;
    let top_pairs = collect(
        c,
        &format!(
            "SELECT src_ip, dst_ip, count(*), sum(packets), sum(bytes) FROM flows WHERE {DONE}
             GROUP BY src_ip, dst_ip ORDER BY sum(bytes) DESC, src_ip, dst_ip LIMIT {TOP_N}"
        ),
        [],
        "load top pairs",
        |r| {
            Ok(PairVolume {
                src_ip: r.get(0)?,
                dst_ip: r.get(1)?,
                flows: g(r, 2)?,
                packets: g(r, 3)?,
                bytes: g(r, 4)?,
            })
        },
    )?;
    let top_ports = collect(
        c,
        &format!(
            "SELECT min(proto), dst_port, count(*), sum(packets), sum(bytes) FROM flows
             WHERE {DONE} AND proto_num IN (6, 17, 132)
             GROUP BY proto_num, dst_port ORDER BY count(*) DESC, sum(bytes) DESC, proto_num, dst_port
             LIMIT {TOP_N}"
        ),
        [],
        "load top ports",
        |r| {
            Ok(PortVolume {
                proto: r.get(0)?,
                port: r.get(1)?,
                flows: g(r, 2)?,
                packets: g(r, 3)?,
                bytes: g(r, 4)?,
            })
        },
    )?;
    let series = collect(
        c,
        &format!(
            "SELECT minute, sum(packets), sum(bytes) FROM timeseries WHERE {DONE}
             GROUP BY minute ORDER BY minute"
        ),
        [],
        "load time series",
        |r| {
            let minute: i64 = r.get(0)?;
            Ok(MinutePoint { minute, utc: utc(minute), packets: g(r, 1)?, bytes: g(r, 2)? })
        },
    )?;
    Ok(Traffic { totals, protocols, top_sources, top_destinations, top_pairs, top_ports, series })
}

/// Nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn performance(c: &Connection) -> Result<Performance, DbError> {
    let samples = collect(
        c,
        &format!(
            "SELECT dst_ip, dst_port, rtt_ns FROM flows WHERE {DONE} AND proto_num = 6
             AND rtt_ns IS NOT NULL ORDER BY dst_ip, dst_port, rtt_ns"
        ),
        [],
        "load handshake rtts",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?, r.get::<_, i64>(2)?)),
    )?;
    let mut servers = Vec::new();
    let mut start = 0;
    while start < samples.len() {
        let (ip, port, _) = &samples[start];
        let end = start + samples[start..].iter().take_while(|(i, p, _)| i == ip && p == port).count();
        let rtts: Vec<i64> = samples[start..end].iter().map(|s| s.2).collect();
        let ms = |ns: i64| ns as f64 / 1e6;
        servers.push(ServerRtt {
            server: if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") },
            samples: rtts.len() as u64,
            p50_ms: ms(percentile(&rtts, 50.0)),
            p90_ms: ms(percentile(&rtts, 90.0)),
            p99_ms: ms(percentile(&rtts, 99.0)),
            max_ms: ms(rtts.last().copied().unwrap_or(0)),
        });
        start = end;
    }
    // Busiest servers first; the stable sort keeps address order among equals.
    servers.sort_by_key(|s| std::cmp::Reverse(s.samples));
    servers.truncate(SERVERS_N);

    let tcp = c
        .query_row(
            &format!(
                "SELECT count(*), sum(packets), sum(retransmissions), sum(retransmissions > 0)
                 FROM flows WHERE {DONE} AND proto_num = 6"
            ),
            [],
            |r| {
                let (packets, retx) = (g(r, 1)?, g(r, 2)?);
                Ok(TcpQuality {
                    flows: g(r, 0)?,
                    packets,
                    retransmissions: retx,
                    retransmission_rate: if packets == 0 { 0.0 } else { retx as f64 / packets as f64 },
                    flows_with_retransmissions: g(r, 3)?,
                })
            },
        )
        .op("load tcp quality")?;
    let capture_loss = c
        .query_row(
            &format!(
                "SELECT count(*), sum(kernel_packets), sum(ring_drops), sum(writer_drops), sum(map_full),
                 sum(busy) FROM losses WHERE {DONE}"
            ),
            [],
            |r| {
                let (kp, ring, writer) = (g(r, 1)?, g(r, 2)?, g(r, 3)?);
                Ok(CaptureLoss {
                    records: g(r, 0)?,
                    kernel_packets: kp,
                    ring_drops: ring,
                    writer_drops: writer,
                    map_full: g(r, 4)?,
                    busy: g(r, 5)?,
                    drop_rate: if kp == 0 { 0.0 } else { ring.saturating_add(writer) as f64 / kp as f64 },
                })
            },
        )
        .op("load capture loss")?;
    let slowest_handshakes = collect(
        c,
        &format!(
            "SELECT {FLOW_COLS} FROM flows WHERE {DONE} AND rtt_ns IS NOT NULL
             ORDER BY rtt_ns DESC, id LIMIT {TOP_N}"
        ),
        [],
        "load slowest handshakes",
        flow_brief,
    )?;
    let most_retransmissions = collect(
        c,
        &format!(
            "SELECT {FLOW_COLS} FROM flows WHERE {DONE} AND retransmissions > 0
             ORDER BY retransmissions DESC, id LIMIT {TOP_N}"
        ),
        [],
        "load most retransmitting flows",
        flow_brief,
    )?;
    Ok(Performance { servers, tcp, capture_loss, slowest_handshakes, most_retransmissions })
}

/// A few lines for the end of `netrec analyze`: incidents first, then traffic.
pub fn summary_text(db: &Db) -> Result<String, DbError> {
    use std::fmt::Write as _;
    let r = load(db.conn(), ReportKind::All)?;
    let mut s = String::new();
    let incidents = r.incidents.as_deref().unwrap_or_default();
    let _ = writeln!(s, "Incidents: {}", incidents.len());
    for inc in incidents.iter().take(TOP_N) {
        let _ = writeln!(
            s,
            "  [{}] {} {} -> {}  {} ({} s), {} alert(s), {} events",
            inc.severity,
            inc.class,
            fmt::list(&inc.attackers, 3),
            fmt::list(&inc.targets, 3),
            inc.first_utc,
            fmt::num(inc.duration_s, 0),
            inc.alert_count,
            inc.event_count
        );
    }
    if incidents.len() > TOP_N {
        let _ = writeln!(s, "  ... {} more (netrec report incidents)", incidents.len() - TOP_N);
    }
    if let Some(t) = &r.traffic {
        let tt = &t.totals;
        let _ = writeln!(
            s,
            "Traffic: {} packets, {}, {} flows from {} input(s)",
            tt.packets,
            fmt::bytes(tt.bytes),
            tt.flows,
            tt.inputs
        );
        if let (Some(f), Some(l)) = (&tt.first_ts, &tt.last_ts) {
            let _ = writeln!(s, "  Time: {} .. {}", utc_of_decimal(f), utc_of_decimal(l));
        }
        if !t.protocols.is_empty() {
            let mix: Vec<String> = t
                .protocols
                .iter()
                .take(5)
                .map(|p| format!("{} {}", p.proto, fmt::pct(p.packet_share)))
                .collect();
            let _ = writeln!(s, "  Protocols: {}", mix.join(", "));
        }
        if let Some(h) = t.top_sources.first() {
            let _ = writeln!(s, "  Top source: {} ({} sent)", h.ip, fmt::bytes(h.bytes));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn window_ns_parses_stored_text() {
        assert_eq!(window_ns("1.500000000"), 1_500_000_000);
        assert_eq!(window_ns("12"), 12_000_000_000);
    }
}
