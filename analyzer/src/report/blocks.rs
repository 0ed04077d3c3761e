//! A report as a flat list of presentation blocks, shared by the table, Markdown and HTML
//! renderers so all three show the same facts in the same order.

use super::fmt::{self, bytes, list, ms, num, pct, utc_of_decimal};
use super::*;

/// Longest per-minute listing in text form; longer series are summed into wider buckets.
const MAX_SERIES_ROWS: usize = 30;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    /// Level 1 = report title, 2 = section, 3 = incident.
    Heading(u8, String),
    Text(String),
    /// Two-column facts.
    Facts(Vec<(&'static str, String)>),
    Table(Grid),
    /// Chart placeholder: only HTML draws it.
    Chart(ChartKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChartKind {
    Series,
    ProtocolMix,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Grid {
    pub caption: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

fn grid(caption: &str, headers: &[&'static str], rows: Vec<Vec<String>>) -> Block {
    Block::Table(Grid { caption: caption.to_owned(), headers: headers.to_vec(), rows })
}

pub(crate) fn build(r: &Report) -> Vec<Block> {
    let mut b = vec![Block::Heading(1, "netrec report".into())];
    inputs(&mut b, r);
    if let Some(incs) = &r.incidents {
        incidents(&mut b, incs);
    }
    if let Some(t) = &r.traffic {
        traffic(&mut b, t);
    }
    if let Some(p) = &r.performance {
        performance(&mut b, p);
    }
    b
}

fn inputs(b: &mut Vec<Block>, r: &Report) {
    b.push(Block::Heading(2, "Inputs".into()));
    if r.inputs.is_empty() {
        b.push(Block::Text("No analyzed inputs.".into()));
        return;
    }
    let rows = r
        .inputs
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.path.clone(),
                i.format.clone(),
                i.packets.to_string(),
                bytes(i.bytes),
                i.first_ts.as_deref().map_or_else(|| "-".into(), utc_of_decimal),
                i.last_ts.as_deref().map_or_else(|| "-".into(), utc_of_decimal),
                i.decode_anomalies.to_string(),
                i.warnings.to_string(),
                i.sha256.chars().take(16).collect(),
            ]
        })
        .collect();
    b.push(grid(
        "Inputs",
        &[
            "id",
            "path",
            "format",
            "packets",
            "bytes",
            "first",
            "last",
            "anomalies",
            "warnings",
            "sha256 (prefix)",
        ],
        rows,
    ));
}

fn incidents(b: &mut Vec<Block>, incs: &[Incident]) {
    b.push(Block::Heading(2, format!("Incidents ({})", incs.len())));
    if incs.is_empty() {
        b.push(Block::Text("No incidents.".into()));
        return;
    }
    let rows = incs
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.severity.clone(),
                i.class.clone(),
                i.first_utc.clone(),
                num(i.duration_s, 0),
                list(&i.attackers, 3),
                list(&i.targets, 3),
                i.alert_count.to_string(),
                i.event_count.to_string(),
            ]
        })
        .collect();
    b.push(grid(
        "Incidents",
        &["id", "severity", "type", "start", "duration s", "attackers", "targets", "alerts", "events"],
        rows,
    ));
    for i in incs {
        b.push(Block::Heading(3, format!("Incident {}: {} ({})", i.id, i.class, i.severity)));
        let mut facts = vec![
            ("type", i.class.clone()),
            ("severity", i.severity.clone()),
            ("window", format!("{} .. {} ({} s)", i.first_utc, i.last_utc, num(i.duration_s, 3))),
            ("window (unix)", format!("{} .. {}", i.first_ts, i.last_ts)),
            ("attackers", list(&i.attackers, 20)),
            ("targets", list(&i.targets, 20)),
            ("alerts", i.alert_count.to_string()),
            ("events", i.event_count.to_string()),
            ("peak rate", format!("{}/s", num(i.peak_rate, 2))),
            ("rules", list(&i.rules, 10)),
            ("ATT&CK", list(&i.attack_ids, 10)),
            ("input", i.input_id.to_string()),
        ];
        if let Some(ev) = incident_evidence(&i.alerts) {
            facts.push(("evidence", ev));
        }
        b.push(Block::Facts(facts));
        // The evidence column exists only where kernel counts do (recorded segments).
        let with_evidence = i.alerts.iter().any(|a| a.evidence_seen.is_some());
        let rows = i
            .alerts
            .iter()
            .map(|a| {
                let mut row = vec![
                    a.alert_id.to_string(),
                    a.rule_id.clone(),
                    a.severity.clone(),
                    a.count.to_string(),
                    if a.dst_ports.is_empty() { "-".into() } else { a.dst_ports.clone() },
                ];
                if with_evidence {
                    row.push(a.evidence_text().unwrap_or_else(|| "-".into()));
                }
                row.push(a.message.clone());
                row
            })
            .collect();
        let head: &[&str] = if with_evidence {
            &["alert", "rule", "severity", "count", "ports", "evidence", "message"]
        } else {
            &["alert", "rule", "severity", "count", "ports", "message"]
        };
        b.push(grid("Alerts", head, rows));
        if i.evidence.is_empty() {
            b.push(Block::Text("No evidence flows stored for this incident.".into()));
        } else {
            b.push(flow_grid("Evidence flows", &i.evidence));
        }
    }
}

/// Evidence of an incident: its alerts' headers seen vs counted; complete only if every alert's is.
fn incident_evidence(alerts: &[AlertBrief]) -> Option<String> {
    let with: Vec<&AlertBrief> = alerts.iter().filter(|a| a.evidence_seen.is_some()).collect();
    if with.is_empty() {
        return None;
    }
    let incomplete = with.iter().filter(|a| a.evidence_complete != Some(true)).count();
    Some(if incomplete == 0 {
        format!("complete for all {} alerts (every packet the kernel counted was recorded)", with.len())
    } else {
        format!(
            "INCOMPLETE for {incomplete} of {} alerts (packets counted by the kernel were not recorded)",
            with.len()
        )
    })
}

fn flow_grid(caption: &str, flows: &[FlowBrief]) -> Block {
    let rows = flows
        .iter()
        .map(|f| {
            vec![
                f.flow_id.to_string(),
                f.proto.clone(),
                endpoint(&f.src_ip, f.src_port),
                endpoint(&f.dst_ip, f.dst_port),
                f.packets.to_string(),
                bytes(f.bytes),
                utc_of_decimal(&f.first_ts),
                f.tcp_state.clone().unwrap_or_else(|| "-".into()),
                ms(f.rtt_ms),
                f.retransmissions.to_string(),
            ]
        })
        .collect();
    grid(
        caption,
        &[
            "flow",
            "proto",
            "source",
            "destination",
            "packets",
            "bytes",
            "start",
            "tcp state",
            "rtt ms",
            "retrans",
        ],
        rows,
    )
}

fn endpoint(ip: &str, port: u16) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

fn traffic(b: &mut Vec<Block>, t: &Traffic) {
    b.push(Block::Heading(2, "Traffic".into()));
    let tt = &t.totals;
    b.push(Block::Facts(vec![
        ("inputs", tt.inputs.to_string()),
        ("packets", tt.packets.to_string()),
        ("bytes", format!("{} ({})", tt.bytes, bytes(tt.bytes))),
        ("flows", tt.flows.to_string()),
        ("first packet", tt.first_ts.as_deref().map_or_else(|| "-".into(), utc_of_decimal)),
        ("last packet", tt.last_ts.as_deref().map_or_else(|| "-".into(), utc_of_decimal)),
        ("duration", format!("{} s", num(tt.duration_s, 3))),
        ("decode anomalies", tt.decode_anomalies.to_string()),
        ("warnings", tt.warnings.to_string()),
    ]));
    b.push(Block::Chart(ChartKind::ProtocolMix));
    let rows = t
        .protocols
        .iter()
        .map(|p| vec![p.proto.clone(), p.packets.to_string(), bytes(p.bytes), pct(p.packet_share)])
        .collect();
    b.push(grid("Protocol mix", &["protocol", "packets", "bytes", "share of packets"], rows));
    let hosts = |h: &[HostVolume]| {
        h.iter()
            .map(|h| vec![h.ip.clone(), h.packets.to_string(), bytes(h.bytes), h.flows.to_string()])
            .collect()
    };
    b.push(grid(
        "Top sources (by bytes sent)",
        &["address", "packets sent", "bytes sent", "flows initiated"],
        hosts(&t.top_sources),
    ));
    b.push(grid(
        "Top destinations (by bytes received)",
        &["address", "packets received", "bytes received", "flows received"],
        hosts(&t.top_destinations),
    ));
    let rows = t
        .top_pairs
        .iter()
        .map(|p| {
            vec![
                p.src_ip.clone(),
                p.dst_ip.clone(),
                p.flows.to_string(),
                p.packets.to_string(),
                bytes(p.bytes),
            ]
        })
        .collect();
    b.push(grid("Top pairs (by bytes)", &["initiator", "responder", "flows", "packets", "bytes"], rows));
    let rows = t
        .top_ports
        .iter()
        .map(|p| {
            vec![
                p.proto.clone(),
                p.port.to_string(),
                p.flows.to_string(),
                p.packets.to_string(),
                bytes(p.bytes),
            ]
        })
        .collect();
    b.push(grid(
        "Top destination ports (by flows)",
        &["protocol", "port", "flows", "packets", "bytes"],
        rows,
    ));
    b.push(Block::Chart(ChartKind::Series));
    let (width, rows) = bucket_series(&t.series);
    let caption =
        if width == 1 { "Packets per minute".to_owned() } else { format!("Packets per {width} minutes") };
    b.push(grid(&caption, &["from", "packets", "bytes"], rows));
}

/// The series as at most `MAX_SERIES_ROWS` rows of consecutive-minute buckets.
fn bucket_series(series: &[MinutePoint]) -> (i64, Vec<Vec<String>>) {
    let (Some(first), Some(last)) = (series.first(), series.last()) else { return (1, Vec::new()) };
    let span = (last.minute - first.minute) / 60 + 1;
    let width = ((span + MAX_SERIES_ROWS as i64 - 1) / MAX_SERIES_ROWS as i64).max(1);
    let mut rows: Vec<(i64, u64, u64)> = Vec::new();
    for p in series {
        let start = first.minute + (p.minute - first.minute) / (60 * width) * 60 * width;
        match rows.last_mut() {
            Some(r) if r.0 == start => {
                r.1 += p.packets;
                r.2 += p.bytes;
            }
            _ => rows.push((start, p.packets, p.bytes)),
        }
    }
    (width, rows.into_iter().map(|(m, p, by)| vec![fmt::utc(m), p.to_string(), bytes(by)]).collect())
}

fn performance(b: &mut Vec<Block>, p: &Performance) {
    b.push(Block::Heading(2, "Performance".into()));
    let rows = p
        .servers
        .iter()
        .map(|s| {
            vec![
                s.server.clone(),
                s.samples.to_string(),
                num(s.p50_ms, 3),
                num(s.p90_ms, 3),
                num(s.p99_ms, 3),
                num(s.max_ms, 3),
            ]
        })
        .collect();
    b.push(grid(
        "Handshake RTT per server (ms)",
        &["server", "handshakes", "p50", "p90", "p99", "max"],
        rows,
    ));
    b.push(Block::Facts(vec![
        ("TCP flows", p.tcp.flows.to_string()),
        ("TCP packets", p.tcp.packets.to_string()),
        ("retransmissions", format!("{} ({})", p.tcp.retransmissions, pct(p.tcp.retransmission_rate))),
        ("flows with retransmissions", p.tcp.flows_with_retransmissions.to_string()),
        ("loss records", p.capture_loss.records.to_string()),
        ("kernel packets", p.capture_loss.kernel_packets.to_string()),
        ("ring drops", p.capture_loss.ring_drops.to_string()),
        ("writer drops", p.capture_loss.writer_drops.to_string()),
        ("flow map full / busy", format!("{} / {}", p.capture_loss.map_full, p.capture_loss.busy)),
        ("capture drop rate", pct(p.capture_loss.drop_rate)),
    ]));
    b.push(flow_grid("Slowest handshakes", &p.slowest_handshakes));
    b.push(flow_grid("Most retransmissions", &p.most_retransmissions));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(minute: i64, packets: u64) -> MinutePoint {
        MinutePoint { minute, utc: String::new(), packets, bytes: packets * 100 }
    }

    #[test]
    fn short_series_is_per_minute() {
        let (w, rows) = bucket_series(&[pt(60, 1), pt(180, 2)]);
        assert_eq!(w, 1);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][1], "2");
    }

    #[test]
    fn long_series_is_bucketed_without_losing_packets() {
        let series: Vec<MinutePoint> = (0..100).map(|m| pt(m * 60, 1)).collect();
        let (w, rows) = bucket_series(&series);
        assert_eq!(w, 4); // 100 minutes / 30 rows -> 4-minute buckets, 25 rows
        assert_eq!(rows.len(), 25);
        let total: u64 = rows.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
        assert_eq!(total, 100);
    }
}
