//! Reports over a netrec database: plain data loaded by SQL queries ([`Report::load`]), rendered
//! as terminal tables, Markdown, one self-contained HTML file, or JSON (`docs/reports.md`).

mod blocks;
mod fmt;
mod html;
mod load;
mod markdown;
mod svg;
mod table;

pub use load::summary_text;

use crate::db::{Db, DbError};
use serde::Serialize;

/// Version tag of the JSON document (`"format"` key); bumped when a key changes meaning or goes.
pub const REPORT_FORMAT: &str = "netrec-report/1";
/// Rows in every "top" list.
pub const TOP_N: usize = 10;
/// Evidence flows shown per incident.
pub const EVIDENCE_N: usize = 10;
/// Servers in the RTT table.
pub const SERVERS_N: usize = 20;

/// Which sections to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Incidents,
    Traffic,
    Performance,
    All,
}

impl ReportKind {
    fn has_incidents(self) -> bool {
        matches!(self, ReportKind::Incidents | ReportKind::All)
    }
    fn has_traffic(self) -> bool {
        matches!(self, ReportKind::Traffic | ReportKind::All)
    }
    fn has_performance(self) -> bool {
        matches!(self, ReportKind::Performance | ReportKind::All)
    }
}

/// A loaded report. Sections not asked for are `None` (and absent from the JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub kind: ReportKind,
    pub inputs: Vec<InputSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incidents: Option<Vec<Incident>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
}

/// One completely analyzed input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputSummary {
    pub id: i64,
    pub path: String,
    pub sha256: String,
    pub format: String,
    pub size_bytes: u64,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub decode_anomalies: u64,
    pub warnings: u64,
}

/// An incident: alerts of one class against one target set, close in time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub input_id: i64,
    pub class: String,
    pub severity: String,
    pub first_ts: String,
    pub last_ts: String,
    /// `first_ts` as `YYYY-MM-DD HH:MM:SS UTC`.
    pub first_utc: String,
    pub last_utc: String,
    pub duration_s: f64,
    pub attackers: Vec<String>,
    pub targets: Vec<String>,
    pub alert_count: u64,
    pub event_count: u64,
    /// Highest events per second of any member alert.
    pub peak_rate: f64,
    /// Distinct rule ids and ATT&CK technique ids of the member alerts, sorted.
    pub rules: Vec<String>,
    pub attack_ids: Vec<String>,
    pub alerts: Vec<AlertBrief>,
    /// Flows from an attacker to a target overlapping the incident window, top by packets.
    pub evidence: Vec<FlowBrief>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertBrief {
    pub alert_id: u64,
    pub rule_id: String,
    pub severity: String,
    pub attack_id: String,
    pub first_ts: String,
    pub last_ts: String,
    pub count: u64,
    pub dst_ports: String,
    pub message: String,
    /// Evidence completeness (schema v2): header records seen vs packets the kernel counted
    /// over the alert window's loss intervals; absent without kernel counts (pcap input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_seen: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_counted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_complete: Option<bool>,
}

impl AlertBrief {
    /// `"1200/1250 headers, INCOMPLETE"`, or None without kernel counts.
    pub fn evidence_text(&self) -> Option<String> {
        let (seen, counted) = (self.evidence_seen?, self.evidence_counted?);
        let state = match self.evidence_complete {
            Some(true) => "complete",
            _ => "INCOMPLETE",
        };
        Some(format!("{seen}/{counted} headers, {state}"))
    }
}

/// A flow as reports show it (field names as in the `flows` table).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowBrief {
    pub flow_id: i64,
    pub input_id: i64,
    pub proto: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: String,
    pub last_ts: String,
    /// None for non-TCP flows.
    pub tcp_state: Option<String>,
    pub rtt_ms: Option<f64>,
    pub retransmissions: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Traffic {
    pub totals: Totals,
    pub protocols: Vec<ProtoShare>,
    pub top_sources: Vec<HostVolume>,
    pub top_destinations: Vec<HostVolume>,
    pub top_pairs: Vec<PairVolume>,
    pub top_ports: Vec<PortVolume>,
    pub series: Vec<MinutePoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Totals {
    pub inputs: u64,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub duration_s: f64,
    pub decode_anomalies: u64,
    pub warnings: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtoShare {
    pub proto: String,
    pub packets: u64,
    pub bytes: u64,
    /// Fraction (0..=1) of all counted packets.
    pub packet_share: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostVolume {
    pub ip: String,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairVolume {
    pub src_ip: String,
    pub dst_ip: String,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortVolume {
    pub proto: String,
    pub port: u16,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MinutePoint {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    pub utc: String,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Performance {
    pub servers: Vec<ServerRtt>,
    pub tcp: TcpQuality,
    pub capture_loss: CaptureLoss,
    pub slowest_handshakes: Vec<FlowBrief>,
    pub most_retransmissions: Vec<FlowBrief>,
}

/// Handshake RTT percentiles (nearest rank) of one server (`ip:port`, `[v6]:port`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerRtt {
    pub server: String,
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpQuality {
    pub flows: u64,
    pub packets: u64,
    pub retransmissions: u64,
    /// retransmissions / packets (0 when no packets).
    pub retransmission_rate: f64,
    pub flows_with_retransmissions: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaptureLoss {
    pub records: u64,
    pub kernel_packets: u64,
    pub ring_drops: u64,
    pub writer_drops: u64,
    pub map_full: u64,
    pub busy: u64,
    /// (ring_drops + writer_drops) / kernel_packets (0 when nothing was counted).
    pub drop_rate: f64,
}

impl Report {
    /// Load the requested sections from the complete inputs of `db`.
    pub fn load(db: &Db, kind: ReportKind) -> Result<Report, DbError> {
        load::load(db.conn(), kind)
    }

    /// Terminal tables.
    pub fn to_table(&self) -> String {
        table::render(&blocks::build(self))
    }

    /// Markdown (pipe tables, no HTML).
    pub fn to_markdown(&self) -> String {
        markdown::render(&blocks::build(self))
    }

    /// One self-contained HTML document (inline CSS and SVG, no scripts, no external fetches).
    pub fn to_html(&self) -> String {
        html::render(self, &blocks::build(self))
    }

    /// Pretty JSON, keys in declaration order, ending with a newline.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail; NaN never occurs since
        // every ratio guards its denominator, and serde_json writes non-finite floats as null.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
