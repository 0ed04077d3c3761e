//! Rule files: TOML `[[rule]]` tables -> a validated [`RuleSet`].
//!
//! The TOML is walked by hand over the span-carrying `toml::de::DeTable` so every error
//! points at the exact key or value (`file:line:col: message`). See `docs/rules.md`.

use crate::netlist::IpNet;
use netrec_format::Severity;
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The detectors the engine implements. Names are stable (rule files use them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DetectorKind {
    SynFlood,
    UdpFlood,
    IcmpFlood,
    Volumetric,
    Amplification,
    PortScan,
    HostSweep,
    TcpFlagAnomaly,
    Land,
    IpHeaderAnomaly,
    FragmentAnomaly,
    BruteForce,
    DnsTunnel,
    Blocklist,
    Signature,
}

/// What a detector keys its state on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Track {
    BySrc,
    ByDst,
    ByPair,
    ByFlow,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::BySrc => "by_src",
            Track::ByDst => "by_dst",
            Track::ByPair => "by_pair",
            Track::ByFlow => "by_flow",
        }
    }
    fn parse(s: &str) -> Option<Track> {
        Some(match s {
            "by_src" => Track::BySrc,
            "by_dst" => Track::ByDst,
            "by_pair" => Track::ByPair,
            "by_flow" => Track::ByFlow,
            _ => return None,
        })
    }
}

/// Type and range of one detector parameter.
#[derive(Clone, Copy, Debug)]
pub enum ParamKind {
    /// Integer in `min..=max`.
    Int {
        min: u64,
        max: u64,
    },
    /// Number (integer or float) in `min..=max`.
    Float {
        min: f64,
        max: f64,
    },
    /// Array of port numbers.
    Ports,
    /// Array of IP/CIDR strings.
    Nets,
    /// File name whose lines are IP/CIDR entries (loaded by the caller's resolver).
    NetsFile,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    Bool,
    /// Free text (one line).
    Text,
    /// Byte patterns: a string or an array of strings, each in Suricata's content syntax (text
    /// with `|hex bytes|` runs).
    Patterns,
}

/// A resolved parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(u64),
    Float(f64),
    Ports(Vec<u16>),
    Nets(Vec<IpNet>),
    Text(String),
    Bool(bool),
    Patterns(Vec<Vec<u8>>),
}

/// One parameter a detector accepts, with its default.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: DefaultValue,
    pub help: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    Int(u64),
    Float(f64),
    Ports(&'static [u16]),
    Text(&'static str),
    Bool(bool),
    /// No entries (lists, patterns).
    Empty,
}

const fn int(name: &'static str, min: u64, max: u64, d: u64, help: &'static str) -> ParamSpec {
    ParamSpec { name, kind: ParamKind::Int { min, max }, default: DefaultValue::Int(d), help }
}
const fn float(name: &'static str, min: f64, max: f64, d: f64, help: &'static str) -> ParamSpec {
    ParamSpec { name, kind: ParamKind::Float { min, max }, default: DefaultValue::Float(d), help }
}
const fn ports(name: &'static str, d: &'static [u16], help: &'static str) -> ParamSpec {
    ParamSpec { name, kind: ParamKind::Ports, default: DefaultValue::Ports(d), help }
}

/// UDP source ports of well-known reflection/amplification services.
pub const REFLECTOR_PORTS: &[u16] = &[
    17, 19, 53, 69, 111, 123, 137, 161, 389, 500, 520, 1900, 3283, 3702, 4500, 5353, 5683, 10001, 11211,
    47808,
];
/// Services whose logins are brute-forced.
pub const AUTH_PORTS: &[u16] =
    &[21, 22, 23, 25, 110, 143, 445, 465, 587, 993, 995, 1433, 3306, 3389, 5432, 5900, 6379];

const M: u64 = 1_000_000;
const BIG: u64 = 1 << 40;

static SYN_FLOOD: &[ParamSpec] = &[
    int("min_syns", 1, BIG, 1000, "SYNs (without ACK) to the target in the window"),
    int("min_sources", 1, 1 << 20, 20, "distinct sources that make it a distributed flood"),
    int("min_same_port", 1, BIG, 500, "SYNs to one port that make a single-source flood"),
    float("min_half_open_ratio", 0.0, 1.0, 0.8, "fraction of SYNs that did not complete a handshake"),
];
static UDP_FLOOD: &[ParamSpec] = &[
    int("min_packets", 1, BIG, 50_000, "UDP packets to the target in the window"),
    int("min_sources", 1, 1 << 20, 50, "distinct sources (alternative to min_unsolicited_ratio)"),
    float("min_unsolicited_ratio", 0.0, 1.0, 0.9, "fraction of packets the target never answered"),
];
static ICMP_FLOOD: &[ParamSpec] = &[
    int("min_packets", 1, BIG, 5_000, "ICMP packets (excluding neighbour discovery) to the target"),
    int("min_sources", 1, 1 << 20, 1, "distinct sources (alternative to min_unsolicited_ratio)"),
    float("min_unsolicited_ratio", 0.0, 1.0, 0.0, "fraction of packets the target never answered"),
];
static VOLUMETRIC: &[ParamSpec] = &[
    int("min_packets", 1, BIG, 200_000, "packets to the target in the window"),
    int("min_bytes", 1, BIG, 1_250_000_000, "wire bytes to the target in the window (1 Gbit/s over 10 s)"),
    int("min_sources", 1, 1 << 20, 100, "distinct sources (alternative to min_unsolicited_ratio)"),
    float("min_unsolicited_ratio", 0.0, 1.0, 0.5, "fraction of packets outside established/answered flows"),
];
static AMPLIFICATION: &[ParamSpec] = &[
    int("min_packets", 1, BIG, 500, "unsolicited packets from reflector ports to the target"),
    int("min_sources", 1, 1 << 20, 50, "distinct reflectors"),
    ports("ports", REFLECTOR_PORTS, "UDP source ports of reflection services"),
];
static PORT_SCAN: &[ParamSpec] = &[
    int("min_ports", 2, 65_536, 25, "distinct destination ports probed in the window"),
    float("max_established_ratio", 0.0, 1.0, 0.5, "completed handshakes per probed port, at most"),
];
static HOST_SWEEP: &[ParamSpec] = &[
    int("min_targets", 2, 1 << 24, 30, "distinct hosts probed in the window"),
    float("max_answered_ratio", 0.0, 1.0, 0.5, "targets that answered ARP/UDP or completed TCP, at most"),
];
static ONE_SHOT: &[ParamSpec] = &[int("min_packets", 1, BIG, 1, "matching packets in the window")];
static FRAGMENT: &[ParamSpec] = &[
    int("min_anomalies", 1, BIG, 1, "tiny, malformed or overlapping fragments in the window"),
    int("min_fragments", 1, BIG, 10_000, "fragments from one source in the window (fragment flood)"),
];
static BRUTE_FORCE: &[ParamSpec] = &[
    int("min_connections", 2, BIG, 20, "connections from one source to one service in the window"),
    ports("ports", AUTH_PORTS, "TCP service ports with logins"),
];
static DNS_TUNNEL: &[ParamSpec] = &[
    int("min_unique_names", 2, 1 << 20, 50, "distinct query names under one registered domain"),
    float("min_mean_name_len", 1.0, 255.0, 40.0, "mean query name length (chars)"),
    float("min_mean_entropy", 0.0, 8.0, 3.8, "mean Shannon entropy (bits/char) of the subdomain part"),
];
static BLOCKLIST: &[ParamSpec] = &[
    ParamSpec { name: "ips", kind: ParamKind::Nets, default: DefaultValue::Empty, help: "IPs/CIDRs" },
    ParamSpec {
        name: "ips_file",
        kind: ParamKind::NetsFile,
        default: DefaultValue::Empty,
        help: "file with one IP/CIDR per line (# comments)",
    },
    ports("ports", &[], "destination ports"),
    int("min_packets", 1, BIG, 1, "matching packets in the window"),
];

static SIGNATURE: &[ParamSpec] = &[
    ParamSpec {
        name: "proto",
        kind: ParamKind::Choice(&["any", "tcp", "udp", "icmp"]),
        default: DefaultValue::Text("any"),
        help: "transport protocol (icmp: ICMP and ICMPv6)",
    },
    ParamSpec {
        name: "src_ips",
        kind: ParamKind::Nets,
        default: DefaultValue::Empty,
        help: "packet source IPs/CIDRs",
    },
    ParamSpec {
        name: "dst_ips",
        kind: ParamKind::Nets,
        default: DefaultValue::Empty,
        help: "packet destination IPs/CIDRs",
    },
    ports("src_ports", &[], "packet source ports"),
    ports("dst_ports", &[], "packet destination ports"),
    ParamSpec {
        name: "content",
        kind: ParamKind::Patterns,
        default: DefaultValue::Empty,
        help: "byte patterns the payload must all contain (text with |hex| runs)",
    },
    ParamSpec {
        name: "nocase",
        kind: ParamKind::Bool,
        default: DefaultValue::Bool(false),
        help: "ASCII case-insensitive content",
    },
    int("offset", 0, 65_535, 0, "payload bytes skipped before searching"),
    int("depth", 0, 65_535, 0, "payload bytes searched from offset (0: to the end)"),
    ParamSpec {
        name: "message",
        kind: ParamKind::Text,
        default: DefaultValue::Text(""),
        help: "what the alert says matched",
    },
    int("min_packets", 1, BIG, 1, "matching packets in the window"),
];

impl DetectorKind {
    pub const ALL: [DetectorKind; 15] = [
        DetectorKind::SynFlood,
        DetectorKind::UdpFlood,
        DetectorKind::IcmpFlood,
        DetectorKind::Volumetric,
        DetectorKind::Amplification,
        DetectorKind::PortScan,
        DetectorKind::HostSweep,
        DetectorKind::TcpFlagAnomaly,
        DetectorKind::Land,
        DetectorKind::IpHeaderAnomaly,
        DetectorKind::FragmentAnomaly,
        DetectorKind::BruteForce,
        DetectorKind::DnsTunnel,
        DetectorKind::Blocklist,
        DetectorKind::Signature,
    ];
    /// The name used in rule files, which is also the alert `class`.
    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::SynFlood => "syn_flood",
            DetectorKind::UdpFlood => "udp_flood",
            DetectorKind::IcmpFlood => "icmp_flood",
            DetectorKind::Volumetric => "volumetric",
            DetectorKind::Amplification => "amplification",
            DetectorKind::PortScan => "port_scan",
            DetectorKind::HostSweep => "host_sweep",
            DetectorKind::TcpFlagAnomaly => "tcp_flag_anomaly",
            DetectorKind::Land => "land",
            DetectorKind::IpHeaderAnomaly => "ip_header_anomaly",
            DetectorKind::FragmentAnomaly => "fragment_anomaly",
            DetectorKind::BruteForce => "brute_force",
            DetectorKind::DnsTunnel => "dns_tunnel",
            DetectorKind::Blocklist => "blocklist",
            DetectorKind::Signature => "signature",
        }
    }
    pub fn from_name(s: &str) -> Option<DetectorKind> {
        DetectorKind::ALL.into_iter().find(|d| d.name() == s)
    }
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            DetectorKind::SynFlood => SYN_FLOOD,
            DetectorKind::UdpFlood => UDP_FLOOD,
            DetectorKind::IcmpFlood => ICMP_FLOOD,
            DetectorKind::Volumetric => VOLUMETRIC,
            DetectorKind::Amplification => AMPLIFICATION,
            DetectorKind::PortScan => PORT_SCAN,
            DetectorKind::HostSweep => HOST_SWEEP,
            DetectorKind::TcpFlagAnomaly | DetectorKind::Land | DetectorKind::IpHeaderAnomaly => ONE_SHOT,
            DetectorKind::FragmentAnomaly => FRAGMENT,
            DetectorKind::BruteForce => BRUTE_FORCE,
            DetectorKind::DnsTunnel => DNS_TUNNEL,
            DetectorKind::Blocklist => BLOCKLIST,
            DetectorKind::Signature => SIGNATURE,
        }
    }
    /// Supported `track` values; the first is the default.
    pub fn tracks(self) -> &'static [Track] {
        use Track::*;
        match self {
            DetectorKind::SynFlood
            | DetectorKind::UdpFlood
            | DetectorKind::IcmpFlood
            | DetectorKind::Volumetric
            | DetectorKind::Amplification
            | DetectorKind::Land => &[ByDst],
            DetectorKind::PortScan => &[ByPair, BySrc],
            DetectorKind::HostSweep | DetectorKind::DnsTunnel => &[BySrc],
            DetectorKind::TcpFlagAnomaly | DetectorKind::IpHeaderAnomaly | DetectorKind::FragmentAnomaly => {
                &[BySrc, ByDst, ByPair]
            }
            DetectorKind::BruteForce => &[ByPair, BySrc],
            DetectorKind::Blocklist => &[ByPair, BySrc, ByDst, ByFlow],
            DetectorKind::Signature => &[ByFlow, BySrc, ByDst, ByPair],
        }
    }
    /// (window, suppress) defaults in ns.
    pub fn default_times(self) -> (u64, u64) {
        const S: u64 = 1_000_000_000;
        match self {
            DetectorKind::PortScan | DetectorKind::HostSweep | DetectorKind::DnsTunnel => (60 * S, 120 * S),
            DetectorKind::BruteForce => (120 * S, 300 * S),
            _ => (10 * S, 60 * S),
        }
    }
    pub fn default_severity(self) -> Severity {
        match self {
            DetectorKind::SynFlood
            | DetectorKind::UdpFlood
            | DetectorKind::Volumetric
            | DetectorKind::Amplification
            | DetectorKind::DnsTunnel
            | DetectorKind::BruteForce => Severity::High,
            DetectorKind::IcmpFlood
            | DetectorKind::Land
            | DetectorKind::Blocklist
            | DetectorKind::Signature => Severity::Medium,
            DetectorKind::PortScan | DetectorKind::HostSweep | DetectorKind::FragmentAnomaly => {
                Severity::Medium
            }
            DetectorKind::TcpFlagAnomaly | DetectorKind::IpHeaderAnomaly => Severity::Low,
        }
    }
    pub fn default_attack_id(self) -> &'static str {
        match self {
            DetectorKind::SynFlood
            | DetectorKind::UdpFlood
            | DetectorKind::IcmpFlood
            | DetectorKind::Volumetric
            | DetectorKind::Land => "T1498.001",
            DetectorKind::Amplification => "T1498.002",
            DetectorKind::FragmentAnomaly => "T1498",
            DetectorKind::PortScan => "T1046",
            DetectorKind::HostSweep => "T1018",
            DetectorKind::TcpFlagAnomaly | DetectorKind::IpHeaderAnomaly => "T1595",
            DetectorKind::BruteForce => "T1110",
            DetectorKind::DnsTunnel => "T1071.004",
            // Generic: a signature's technique is its author's to say (`attack_id`).
            DetectorKind::Blocklist | DetectorKind::Signature => "T1071",
        }
    }
}

/// Where a rule was defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleOrigin {
    pub file: String,
    pub line: u32,
}

/// One validated rule with every parameter resolved (defaults filled in).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub detector: DetectorKind,
    pub severity: Severity,
    pub attack_id: String,
    pub track: Track,
    pub window_ns: u64,
    pub suppress_ns: u64,
    pub enabled: bool,
    /// In the detector's parameter order.
    pub params: Vec<(&'static str, Param)>,
    pub origin: RuleOrigin,
}

impl Rule {
    fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    }
    /// Integer parameter (0 when the detector has no such parameter: a programming error
    /// caught by tests, never by input).
    pub fn int(&self, name: &str) -> u64 {
        match self.param(name) {
            Some(Param::Int(v)) => *v,
            _ => 0,
        }
    }
    pub fn float(&self, name: &str) -> f64 {
        match self.param(name) {
            Some(Param::Float(v)) => *v,
            Some(Param::Int(v)) => *v as f64,
            _ => 0.0,
        }
    }
    pub fn ports(&self, name: &str) -> &[u16] {
        match self.param(name) {
            Some(Param::Ports(v)) => v,
            _ => &[],
        }
    }
    pub fn nets(&self, name: &str) -> &[IpNet] {
        match self.param(name) {
            Some(Param::Nets(v)) => v,
            _ => &[],
        }
    }
    pub fn text(&self, name: &str) -> &str {
        match self.param(name) {
            Some(Param::Text(v)) => v,
            _ => "",
        }
    }
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.param(name), Some(Param::Bool(true)))
    }
    pub fn patterns(&self, name: &str) -> &[Vec<u8>] {
        match self.param(name) {
            Some(Param::Patterns(v)) => v,
            _ => &[],
        }
    }

    fn canonical(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "[rule]\nid={:?}\ndetector={}\nseverity={}\nattack_id={:?}\ntrack={}\nwindow_ns={}\nsuppress_ns={}\nenabled={}\n",
            self.id,
            self.detector.name(),
            self.severity.as_str(),
            self.attack_id,
            self.track.as_str(),
            self.window_ns,
            self.suppress_ns,
            self.enabled
        );
        for (name, p) in &self.params {
            let _ = match p {
                Param::Int(v) => writeln!(out, "{name}={v}"),
                // `{:?}` prints the shortest round-trip form: stable across platforms.
                Param::Float(v) => writeln!(out, "{name}={v:?}"),
                Param::Ports(v) => writeln!(out, "{name}={v:?}"),
                Param::Nets(v) => {
                    let s: Vec<String> = v.iter().map(|n| n.to_string()).collect();
                    writeln!(out, "{name}={}", s.join(","))
                }
                // A JSON string is also a TOML basic string (control characters are refused at
                // parse time), so the recorded text can be read back as a rule file.
                Param::Text(v) => writeln!(out, "{name}={}", serde_json::to_string(v).unwrap_or_default()),
                Param::Bool(v) => writeln!(out, "{name}={v}"),
                Param::Patterns(v) => {
                    let s: Vec<String> = v.iter().map(hex::encode).collect();
                    writeln!(out, "{name}={}", s.join(","))
                }
            };
        }
    }
}

/// An ordered set of rules with unique ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// What is wrong at a position of a rule file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleProblem {
    #[error("TOML syntax: {message}")]
    Syntax { message: String },
    #[error("unknown top-level key `{key}` (expected `rule`)")]
    UnknownTopLevel { key: String },
    #[error("`rule` must be an array of tables (`[[rule]]`)")]
    RuleNotArray,
    #[error("missing required field `{field}`")]
    Missing { field: &'static str },
    #[error("unknown detector `{name}` (known: {known})")]
    UnknownDetector { name: String, known: String },
    #[error("unknown field `{field}` for detector `{detector}` (accepted: {accepted})")]
    UnknownField { field: String, detector: &'static str, accepted: String },
    #[error("field `{field}`: expected {expected}, found {found}")]
    WrongType { field: String, expected: &'static str, found: &'static str },
    #[error("field `{field}`: {value} is out of range {min}..={max}")]
    OutOfRange { field: String, value: String, min: String, max: String },
    #[error("duplicate rule id `{id}` (first defined at line {first_line})")]
    DuplicateId { id: String, first_line: u32 },
    #[error("invalid rule id `{id}` (use 1-64 of [A-Za-z0-9_.-])")]
    BadId { id: String },
    #[error("field `{field}`: invalid duration `{value}` (use e.g. \"500ms\", \"10s\", \"1m\", \"1h\")")]
    BadDuration { field: String, value: String },
    #[error("unknown severity `{value}` (info, low, medium, high, critical)")]
    BadSeverity { value: String },
    #[error("detector `{detector}` does not support track `{value}` (supported: {supported})")]
    BadTrack { detector: &'static str, value: String, supported: String },
    #[error("field `{field}`: invalid IP or CIDR `{value}`")]
    BadNet { field: String, value: String },
    #[error("{list}:{line}: invalid IP or CIDR `{value}`")]
    BadNetInFile { list: String, line: u32, value: String },
    #[error("cannot load list file `{list}`: {reason}")]
    ListFile { list: String, reason: String },
    #[error("blocklist rule needs at least one of `ips`, `ips_file`, `ports`")]
    EmptyBlocklist,
    #[error("signature rule needs at least one of `content`, `src_ips`, `dst_ips`, `src_ports`, `dst_ports`")]
    EmptySignature,
    #[error("field `{field}`: `{value}` is not one of {options}")]
    BadChoice { field: String, value: String, options: String },
    #[error("field `{field}`: {reason} in `{value}`")]
    BadContent { field: String, value: String, reason: &'static str },
}

/// A rule-file error; Displays as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    #[error("{file}:{line}:{col}: {problem}")]
    At {
        file: String,
        line: u32,
        col: u32,
        #[source]
        problem: Box<RuleProblem>,
    },
}

impl RuleError {
    pub fn problem(&self) -> &RuleProblem {
        match self {
            RuleError::At { problem, .. } => problem,
        }
    }
}

/// Byte offset -> 1-based (line, column in chars).
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.bytes().filter(|&b| b == b'\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before.get(line_start..).map(|s| s.chars().count()).unwrap_or(0) as u32 + 1;
    (line, col)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: &Range<usize>, problem: RuleProblem) -> RuleError {
        let (line, col) = line_col(self.text, span.start);
        RuleError::At { file: self.file.to_string(), line, col, problem: Box::new(problem) }
    }
    fn line(&self, span: &Range<usize>) -> u32 {
        line_col(self.text, span.start).0
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn as_int(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok(),
        _ => None,
    }
}

/// "500ms", "10s", "1m", "1h", "250us" -> ns.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => M,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

const COMMON_FIELDS: &[&str] =
    &["id", "detector", "severity", "attack_id", "track", "window", "suppress", "enabled", "description"];

/// Sorted by position in the source, so the first error reported is the first in the file.
fn entries<'a, 'i>(
    t: &'a DeTable<'i>,
) -> Vec<(&'a Spanned<std::borrow::Cow<'i, str>>, &'a Spanned<DeValue<'i>>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

impl RuleSet {
    /// The bundled default pack (`rules/packs/default.toml`).
    pub fn default_pack() -> RuleSet {
        // The pack is tested to parse; an empty set is the (unreachable) fallback so this never panics.
        RuleSet::parse("default.toml", include_str!("../packs/default.toml")).unwrap_or_default()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
    pub fn len(&self) -> usize {
        self.rules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Parse one rule file that references no list files.
    pub fn parse(file_name: &str, text: &str) -> Result<RuleSet, RuleError> {
        RuleSet::parse_with(file_name, text, &mut |name: &str| {
            Err(format!("list files are not available here (`{name}`)"))
        })
    }

    /// Parse one rule file; `resolve` returns the text of a referenced list file.
    pub fn parse_with(
        file_name: &str,
        text: &str,
        resolve: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<RuleSet, RuleError> {
        let cx = Ctx { file: file_name, text };
        let doc = DeTable::parse(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(&span, RuleProblem::Syntax { message: e.message().trim().to_string() })
        })?;
        let mut rules: Vec<Rule> = Vec::new();
        let mut id_lines: Vec<(String, u32)> = Vec::new();
        for (k, v) in entries(doc.get_ref()) {
            if k.get_ref().as_ref() != "rule" {
                return Err(cx.err(&k.span(), RuleProblem::UnknownTopLevel { key: k.get_ref().to_string() }));
            }
            let DeValue::Array(arr) = v.get_ref() else {
                return Err(cx.err(&v.span(), RuleProblem::RuleNotArray));
            };
            for item in arr.iter() {
                let DeValue::Table(t) = item.get_ref() else {
                    return Err(cx.err(&item.span(), RuleProblem::RuleNotArray));
                };
                let rule = parse_rule(&cx, item.span(), t, resolve)?;
                if let Some((_, first)) = id_lines.iter().find(|(id, _)| *id == rule.id) {
                    let span = t
                        .iter()
                        .find(|(k, _)| k.get_ref().as_ref() == "id")
                        .map(|(_, v)| v.span())
                        .unwrap_or(item.span());
                    return Err(cx.err(&span, RuleProblem::DuplicateId { id: rule.id, first_line: *first }));
                }
                id_lines.push((rule.id.clone(), rule.origin.line));
                rules.push(rule);
            }
        }
        Ok(RuleSet { rules })
    }

    /// Layer `other` over `self`: a rule of `other` with an existing id replaces it in
    /// place (that is how users override thresholds or disable a rule); new ids are appended.
    pub fn merge(mut self, other: RuleSet) -> RuleSet {
        for r in other.rules {
            match self.rules.iter_mut().find(|x| x.id == r.id) {
                Some(slot) => *slot = r,
                None => self.rules.push(r),
            }
        }
        self
    }

    /// Canonical text: every rule in order with every resolved parameter. Origins
    /// (file names, lines) are not part of it: the same effective rules give the same digest.
    pub fn canonical(&self) -> String {
        let mut s = String::from("netrec-rules v1\n");
        for r in &self.rules {
            r.canonical(&mut s);
        }
        s
    }

    /// SHA-256 (hex) of [`RuleSet::canonical`], stored in segment metadata.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }
}

fn parse_rule(
    cx: &Ctx<'_>,
    span: Range<usize>,
    t: &DeTable<'_>,
    resolve: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Rule, RuleError> {
    let get = |name: &str| t.iter().find(|(k, _)| k.get_ref().as_ref() == name).map(|(_, v)| v);
    let string = |name: &'static str| -> Result<Option<(String, Range<usize>)>, RuleError> {
        match get(name) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some((s.to_string(), v.span()))),
                other => Err(cx.err(
                    &v.span(),
                    RuleProblem::WrongType {
                        field: name.into(),
                        expected: "a string",
                        found: type_name(other),
                    },
                )),
            },
        }
    };
    let (det_name, det_span) =
        string("detector")?.ok_or_else(|| cx.err(&span, RuleProblem::Missing { field: "detector" }))?;
    let detector = DetectorKind::from_name(&det_name).ok_or_else(|| {
        let known: Vec<&str> = DetectorKind::ALL.iter().map(|d| d.name()).collect();
        cx.err(&det_span, RuleProblem::UnknownDetector { name: det_name.clone(), known: known.join(", ") })
    })?;
    let specs = detector.params();
    // Unknown fields first, in file order.
    for (k, _) in entries(t) {
        let name = k.get_ref().as_ref();
        if !COMMON_FIELDS.contains(&name) && !specs.iter().any(|s| s.name == name) {
            let mut accepted: Vec<&str> = COMMON_FIELDS.to_vec();
            accepted.extend(specs.iter().map(|s| s.name));
            return Err(cx.err(
                &k.span(),
                RuleProblem::UnknownField {
                    field: name.to_string(),
                    detector: detector.name(),
                    accepted: accepted.join(", "),
                },
            ));
        }
    }
    let (id, id_span) = string("id")?.ok_or_else(|| cx.err(&span, RuleProblem::Missing { field: "id" }))?;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !id_ok {
        return Err(cx.err(&id_span, RuleProblem::BadId { id }));
    }
    let severity = match string("severity")? {
        None => detector.default_severity(),
        Some((s, sp)) => match s.as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return Err(cx.err(&sp, RuleProblem::BadSeverity { value: s })),
        },
    };
    let attack_id = string("attack_id")?.map(|x| x.0).unwrap_or_else(|| detector.default_attack_id().into());
    let track = match string("track")? {
        None => detector.tracks()[0],
        Some((s, sp)) => match Track::parse(&s).filter(|t| detector.tracks().contains(t)) {
            Some(t) => t,
            None => {
                let sup: Vec<&str> = detector.tracks().iter().map(|t| t.as_str()).collect();
                return Err(cx.err(
                    &sp,
                    RuleProblem::BadTrack { detector: detector.name(), value: s, supported: sup.join(", ") },
                ));
            }
        },
    };
    let (dw, ds) = detector.default_times();
    let dur = |name: &'static str, d: u64| -> Result<u64, RuleError> {
        match string(name)? {
            None => Ok(d),
            Some((s, sp)) => match parse_duration(&s) {
                Some(ns) if (M..=86_400 * 1_000_000_000).contains(&ns) => Ok(ns),
                Some(_) => Err(cx.err(
                    &sp,
                    RuleProblem::OutOfRange {
                        field: name.into(),
                        value: s,
                        min: "1ms".into(),
                        max: "24h".into(),
                    },
                )),
                None => Err(cx.err(&sp, RuleProblem::BadDuration { field: name.into(), value: s })),
            },
        }
    };
    let window_ns = dur("window", dw)?;
    let suppress_ns = dur("suppress", ds)?;
    let enabled = match get("enabled") {
        None => true,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(b) => *b,
            other => {
                return Err(cx.err(
                    &v.span(),
                    RuleProblem::WrongType {
                        field: "enabled".into(),
                        expected: "a boolean",
                        found: type_name(other),
                    },
                ));
            }
        },
    };
    string("description")?;
    let mut params = Vec::with_capacity(specs.len());
    let mut file_nets: Vec<IpNet> = Vec::new();
    for spec in specs {
        let v = get(spec.name);
        let p = match (spec.kind, v) {
            (ParamKind::NetsFile, None) => continue,
            (ParamKind::NetsFile, Some(v)) => {
                let DeValue::String(name) = v.get_ref() else {
                    return Err(cx.err(
                        &v.span(),
                        RuleProblem::WrongType {
                            field: spec.name.into(),
                            expected: "a string",
                            found: type_name(v.get_ref()),
                        },
                    ));
                };
                let body = resolve(name).map_err(|reason| {
                    cx.err(&v.span(), RuleProblem::ListFile { list: name.to_string(), reason })
                })?;
                for (i, line) in body.lines().enumerate() {
                    let entry = line.split('#').next().unwrap_or("").trim();
                    if entry.is_empty() {
                        continue;
                    }
                    let net = IpNet::parse(entry).ok_or_else(|| {
                        cx.err(
                            &v.span(),
                            RuleProblem::BadNetInFile {
                                list: name.to_string(),
                                line: i as u32 + 1,
                                value: entry.to_string(),
                            },
                        )
                    })?;
                    file_nets.push(net);
                }
                continue;
            }
            (_, Some(v)) => parse_param(cx, spec, v)?,
            (_, None) => match spec.default {
                DefaultValue::Int(d) => Param::Int(d),
                DefaultValue::Float(d) => Param::Float(d),
                DefaultValue::Ports(p) => Param::Ports(p.to_vec()),
                DefaultValue::Text(t) => Param::Text(t.to_string()),
                DefaultValue::Bool(b) => Param::Bool(b),
                DefaultValue::Empty => match spec.kind {
                    ParamKind::Nets => Param::Nets(Vec::new()),
                    ParamKind::Patterns => Param::Patterns(Vec::new()),
                    _ => Param::Ports(Vec::new()),
                },
            },
        };
        params.push((spec.name, p));
    }
    if !file_nets.is_empty() || specs.iter().any(|s| matches!(s.kind, ParamKind::Nets)) {
        // Inline and file entries form one list (sorted, deduplicated: canonical).
        if let Some((_, Param::Nets(v))) = params.iter_mut().find(|(n, _)| *n == "ips") {
            v.extend(file_nets);
            v.sort();
            v.dedup();
        }
    }
    let rule = Rule {
        id,
        detector,
        severity,
        attack_id,
        track,
        window_ns,
        suppress_ns,
        enabled,
        params,
        origin: RuleOrigin { file: cx.file.to_string(), line: cx.line(&span) },
    };
    if detector == DetectorKind::Blocklist && rule.nets("ips").is_empty() && rule.ports("ports").is_empty() {
        return Err(cx.err(&span, RuleProblem::EmptyBlocklist));
    }
    // A signature that constrains nothing would match every packet.
    if detector == DetectorKind::Signature
        && rule.patterns("content").is_empty()
        && ["src_ips", "dst_ips"].iter().all(|n| rule.nets(n).is_empty())
        && ["src_ports", "dst_ports"].iter().all(|n| rule.ports(n).is_empty())
    {
        return Err(cx.err(&span, RuleProblem::EmptySignature));
    }
    Ok(rule)
}

fn parse_param(cx: &Ctx<'_>, spec: &ParamSpec, v: &Spanned<DeValue<'_>>) -> Result<Param, RuleError> {
    let field = || spec.name.to_string();
    let wrong = |expected: &'static str, at: &Spanned<DeValue<'_>>| {
        cx.err(
            &at.span(),
            RuleProblem::WrongType { field: field(), expected, found: type_name(at.get_ref()) },
        )
    };
    match spec.kind {
        ParamKind::Int { min, max } => {
            let n = as_int(v.get_ref()).ok_or_else(|| wrong("an integer", v))?;
            if n < min as i128 || n > max as i128 {
                return Err(cx.err(
                    &v.span(),
                    RuleProblem::OutOfRange {
                        field: field(),
                        value: n.to_string(),
                        min: min.to_string(),
                        max: max.to_string(),
                    },
                ));
            }
            Ok(Param::Int(n as u64))
        }
        ParamKind::Float { min, max } => {
            let x = match v.get_ref() {
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                DeValue::Integer(_) => as_int(v.get_ref()).map(|i| i as f64),
                _ => None,
            }
            .ok_or_else(|| wrong("a number", v))?;
            if !(x >= min && x <= max) {
                return Err(cx.err(
                    &v.span(),
                    RuleProblem::OutOfRange {
                        field: field(),
                        value: format!("{x}"),
                        min: format!("{min}"),
                        max: format!("{max}"),
                    },
                ));
            }
            Ok(Param::Float(x))
        }
        ParamKind::Ports => {
            let DeValue::Array(a) = v.get_ref() else { return Err(wrong("an array of ports", v)) };
            let mut out = Vec::with_capacity(a.len());
            for item in a.iter() {
                let n = as_int(item.get_ref()).ok_or_else(|| wrong("a port number", item))?;
                if !(0..=65535).contains(&n) {
                    return Err(cx.err(
                        &item.span(),
                        RuleProblem::OutOfRange {
                            field: field(),
                            value: n.to_string(),
                            min: "0".into(),
                            max: "65535".into(),
                        },
                    ));
                }
                out.push(n as u16);
            }
            out.sort_unstable();
            out.dedup();
            Ok(Param::Ports(out))
        }
        ParamKind::Nets => {
            let DeValue::Array(a) = v.get_ref() else { return Err(wrong("an array of IP/CIDR strings", v)) };
            let mut out = Vec::with_capacity(a.len());
            for item in a.iter() {
                let DeValue::String(s) = item.get_ref() else { return Err(wrong("an IP/CIDR string", item)) };
                let net = IpNet::parse(s).ok_or_else(|| {
                    cx.err(&item.span(), RuleProblem::BadNet { field: field(), value: s.to_string() })
                })?;
                out.push(net);
            }
            Ok(Param::Nets(out))
        }
        ParamKind::NetsFile => Err(wrong("a string", v)),
        ParamKind::Choice(options) => {
            let DeValue::String(s) = v.get_ref() else { return Err(wrong("a string", v)) };
            match options.iter().find(|o| **o == s.as_ref()) {
                Some(o) => Ok(Param::Text((*o).to_string())),
                None => Err(cx.err(
                    &v.span(),
                    RuleProblem::BadChoice {
                        field: field(),
                        value: s.to_string(),
                        options: options.join(", "),
                    },
                )),
            }
        }
        ParamKind::Bool => match v.get_ref() {
            DeValue::Boolean(b) => Ok(Param::Bool(*b)),
            _ => Err(wrong("a boolean", v)),
        },
        ParamKind::Text => match v.get_ref() {
            DeValue::String(s) if !s.chars().any(char::is_control) => Ok(Param::Text(s.to_string())),
            DeValue::String(_) => Err(wrong("a string without control characters", v)),
            _ => Err(wrong("a string", v)),
        },
        ParamKind::Patterns => {
            let items: Vec<&Spanned<DeValue<'_>>> = match v.get_ref() {
                DeValue::String(_) => vec![v],
                DeValue::Array(a) if !a.is_empty() => a.iter().collect(),
                _ => return Err(wrong("a string or a non-empty array of strings", v)),
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let DeValue::String(s) = item.get_ref() else { return Err(wrong("a string", item)) };
                let bytes = parse_content(s).map_err(|reason| {
                    cx.err(
                        &item.span(),
                        RuleProblem::BadContent { field: field(), value: s.to_string(), reason },
                    )
                })?;
                out.push(bytes);
            }
            Ok(Param::Patterns(out))
        }
    }
}

/// Suricata's content syntax: text taken as its UTF-8 bytes, with `|..|` runs of hex byte pairs
/// (spaces allowed between pairs), e.g. `"GET |2f|admin"` or `"|16 03 01|"`. A literal `|` is
/// written `|7c|`.
pub fn parse_content(s: &str) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(s.len());
    let mut parts = s.split('|');
    let mut hex_run = false;
    let mut n = 0;
    for part in parts.by_ref() {
        n += 1;
        if hex_run {
            let digits: Vec<u8> = part.bytes().filter(|b| *b != b' ').collect();
            if digits.is_empty() {
                return Err("empty |hex| run");
            }
            if !digits.len().is_multiple_of(2) {
                return Err("odd number of hex digits");
            }
            for pair in digits.chunks(2) {
                let hex = std::str::from_utf8(pair).map_err(|_| "invalid hex digit")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "invalid hex digit")?);
            }
        } else {
            out.extend_from_slice(part.as_bytes());
        }
        hex_run = !hex_run;
    }
    // Parts alternate text, hex, text...: an even count means a `|` run was not closed.
    if n % 2 == 0 {
        return Err("unclosed |hex| run");
    }
    if out.is_empty() {
        return Err("empty pattern");
    }
    Ok(out)
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
