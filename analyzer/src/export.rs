//! `netrec export`: recorded segments -> pcapng (`docs/export.md`).
//!
//! Two passes over the inputs. [`Export::prepare`] reads the metadata and the recorded alerts
//! (alerts are written after the packets they cover, often in a later block or segment, so
//! they must be known before the first packet is written); [`Export::write`] then streams the
//! packet blocks, merging several chains by time, and writes one EPB per selected packet with
//! an `opt_comment` for every alert whose evidence it belongs to.
//!
//! Inputs are grouped into *chains*: the segment files of one directory, in sequence order
//! (a directory argument and files given from that directory form the same chain). A chain
//! is read file after file; several chains are merged by packet time, ties going to the
//! chain named first (stable).

use crate::capwrite::{CapWriteError, PcapNgWriter};
use netrec_format::decode::decode;
use netrec_format::segment::header::BLOCK_HEADER_LEN;
use netrec_format::segment::name::days_from_civil;
use netrec_format::segment::{
    BlockBody, BlockType, PacketBlock, ReadWarning, Recovery, SegmentError, SegmentName, SegmentReader,
    WarningKind,
};
use netrec_format::store::list_segments;
use netrec_format::{Alert, LinkType, PacketRef, SegmentMeta, Ts, ipproto};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// Errors and warnings

/// Why an export could not run (bad inputs or options, or the output failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: no segment files (seg-*.nrseg) in this directory", path.display())]
    NoSegments { path: PathBuf },
    #[error("--from {from} is after --to {to}")]
    EmptyRange { from: Ts, to: Ts },
    #[error("alert {id} is not among the recorded alerts of the inputs{}", in_range_note(*.in_range))]
    AlertNotFound { id: u64, in_range: bool },
    #[error(
        "alert id {id} is ambiguous: {} different recorded alerts carry it ({}); pass only the segments \
         of one recording, or narrow with --from/--to to the one you mean",
        candidates.len(), list_candidates(candidates)
    )]
    AlertAmbiguous { id: u64, candidates: Vec<AlertCandidate> },
    #[error("cannot write the pcapng output")]
    Write(#[source] CapWriteError),
}

fn in_range_note(in_range: bool) -> &'static str {
    if in_range { " (within --from/--to)" } else { "" }
}

fn list_candidates(c: &[AlertCandidate]) -> String {
    c.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// One of several recorded alerts with the same id (see [`ExportError::AlertAmbiguous`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCandidate {
    /// `SegmentMeta::run_id` of the recording (0 if unknown).
    pub run_id: u64,
    pub rule_id: String,
    pub first_ts: Ts,
    pub last_ts: Ts,
    /// The first file it was found in.
    pub path: PathBuf,
}

impl fmt::Display for AlertCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} {} {}..{} in {}",
            self.run_id,
            self.rule_id,
            self.first_ts,
            self.last_ts,
            self.path.display()
        )
    }
}

/// A non-fatal problem met while exporting; the export goes on without the damaged part.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportWarning {
    /// A recovering read skipped damage or stopped at a torn tail (offset inside `warning`).
    Read {
        path: PathBuf,
        warning: ReadWarning,
    },
    /// The file could not be opened as a segment, or reading it stopped on an error.
    Segment {
        path: PathBuf,
        error: SegmentError,
    },
    Io {
        path: PathBuf,
        error: io::Error,
    },
}

impl ExportWarning {
    /// Damage (or an unreadable input) as opposed to a note: changes the exit status.
    pub fn is_damage(&self) -> bool {
        !matches!(self, ExportWarning::Read { warning, .. }
            if matches!(warning.kind, WarningKind::UnknownOptionalBlock { .. }))
    }
    pub fn path(&self) -> &Path {
        match self {
            ExportWarning::Read { path, .. }
            | ExportWarning::Segment { path, .. }
            | ExportWarning::Io { path, .. } => path,
        }
    }
}

impl fmt::Display for ExportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportWarning::Read { path, warning } => write!(f, "{}: {warning}", path.display()),
            ExportWarning::Segment { path, error } => {
                match error.offset() {
                    // Most messages name their offset already; say it for the others.
                    Some(o) if !error.to_string().contains("offset") => {
                        write!(f, "{}: offset {o}: {error}", path.display())?
                    }
                    _ => write!(f, "{}: {error}", path.display())?,
                }
                let mut cause = std::error::Error::source(error);
                while let Some(c) = cause {
                    write!(f, ": {c}")?;
                    cause = c.source();
                }
                Ok(())
            }
            ExportWarning::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Time arguments

/// A `--from`/`--to` value that is not a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    #[error(
        "invalid time {input:?}: {what} (expected RFC 3339 like 2026-11-29T14:00:00Z or \
         2026-11-29T14:00:00.5+01:00, or unix seconds like 1795960800.25)"
    )]
    Syntax { input: String, what: &'static str },
    #[error("time {input:?} is outside the range netrec stores (1970-01-01 to 2554-07-21 UTC)")]
    OutOfRange { input: String },
}

/// Parses RFC 3339 (`2026-11-29T14:00:00Z`, fraction and `±HH:MM` offsets allowed; `t`/space
/// as separator) or unix seconds with an optional fraction (`1764424800.123456789`). Fraction
/// digits beyond nanoseconds are truncated.
pub fn parse_time(input: &str) -> Result<Ts, TimeError> {
    let s = input.trim();
    let syntax = |what| TimeError::Syntax { input: input.to_owned(), what };
    let range = || TimeError::OutOfRange { input: input.to_owned() };
    if s.is_empty() {
        return Err(syntax("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        if secs.is_empty() {
            return Err(syntax("no seconds before the fraction"));
        }
        if frac.contains('.') {
            return Err(syntax("more than one '.'"));
        }
        let secs: u64 = secs.parse().map_err(|_| range())?;
        let ns = frac_ns(frac.as_bytes());
        return secs.checked_mul(1_000_000_000).and_then(|n| n.checked_add(ns)).map(Ts).ok_or_else(range);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>, what| -> Result<i64, TimeError> {
        let d = b.get(r).ok_or_else(|| syntax(what))?;
        if d.iter().all(u8::is_ascii_digit) {
            Ok(d.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
        } else {
            Err(syntax(what))
        }
    };
    let lit = |i: usize, set: &[u8], what| {
        if b.get(i).is_some_and(|c| set.contains(c)) { Ok(()) } else { Err(syntax(what)) }
    };
    let year = num(0..4, "year must be 4 digits")?;
    lit(4, b"-", "expected '-' after the year")?;
    let month = num(5..7, "month must be 2 digits")?;
    lit(7, b"-", "expected '-' after the month")?;
    let day = num(8..10, "day must be 2 digits")?;
    lit(10, b"Tt ", "expected 'T' between date and time")?;
    let hour = num(11..13, "hour must be 2 digits")?;
    lit(13, b":", "expected ':' after the hour")?;
    let min = num(14..16, "minute must be 2 digits")?;
    lit(16, b":", "expected ':' after the minute")?;
    let sec = num(17..19, "second must be 2 digits")?;
    let mut i = 19;
    let mut ns = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(syntax("no digits after '.'"));
        }
        ns = frac_ns(&b[start..i]);
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3, "offset hours must be 2 digits")?;
            lit(i + 3, b":", "expected ':' in the offset")?;
            let om = num(i + 4..i + 6, "offset minutes must be 2 digits")?;
            if oh > 23 || om > 59 {
                return Err(syntax("offset out of range"));
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' { -o } else { o }
        }
        _ => return Err(syntax("expected 'Z' or an offset like +01:00 at the end")),
    };
    let dim = days_in_month(year, month);
    if !(1..=12).contains(&month) || day < 1 || day > dim {
        return Err(syntax("no such date"));
    }
    // Second 60 is a leap second: it counts as the first second of the next minute.
    if hour > 23 || min > 59 || sec > 60 {
        return Err(syntax("no such time of day"));
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    let secs = u64::try_from(secs).map_err(|_| range())?;
    secs.checked_mul(1_000_000_000).and_then(|n| n.checked_add(ns)).map(Ts).ok_or_else(range)
}

/// Fraction digits -> nanoseconds (digits past the ninth are dropped).
fn frac_ns(digits: &[u8]) -> u64 {
    let mut ns = 0u64;
    for i in 0..9 {
        ns = ns * 10 + digits.get(i).map_or(0, |d| u64::from(d - b'0'));
    }
    ns
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Flow filter

/// A `--flow` value that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowFilterError {
    #[error("flow filter is empty (expected e.g. 'src=10.0.0.1 dst=10.0.0.2 port=443 proto=tcp')")]
    Empty,
    #[error("flow filter term {term:?} is not key=value (keys: src, dst, port, proto)")]
    NotKeyValue { term: String },
    #[error("flow filter key {key:?} is unknown (keys: src, dst, port, proto)")]
    UnknownKey { key: String },
    #[error("flow filter key {key:?} is given twice")]
    Duplicate { key: &'static str },
    #[error("flow filter {key}={value:?} is not an IP address")]
    BadAddress {
        key: &'static str,
        value: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("flow filter port={value:?} is not a port number (0-65535)")]
    BadPort { value: String },
    #[error("flow filter proto={value:?} is unknown (tcp, udp, icmp, or an IP protocol number 0-255)")]
    BadProto { value: String },
}

/// `src=IP dst=IP port=N proto=tcp|udp|icmp|N`, every key optional, bidirectional: a packet
/// matches if it goes src->dst or dst->src, either of its ports is `port`, and its IP
/// protocol is `proto` (`icmp` also selects ICMPv6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowFilter {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub port: Option<u16>,
    pub proto: Option<u8>,
}

impl FromStr for FlowFilter {
    type Err = FlowFilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut f = FlowFilter::default();
        let mut any = false;
        for term in s.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()) {
            any = true;
            let Some((k, v)) = term.split_once('=') else {
                return Err(FlowFilterError::NotKeyValue { term: term.to_owned() });
            };
            let addr = |key: &'static str| {
                v.parse::<IpAddr>().map_err(|source| FlowFilterError::BadAddress {
                    key,
                    value: v.to_owned(),
                    source,
                })
            };
            match k.to_ascii_lowercase().as_str() {
                "src" => set_once(&mut f.src, "src", addr("src")?)?,
                "dst" => set_once(&mut f.dst, "dst", addr("dst")?)?,
                "port" => {
                    let p = v.parse().map_err(|_| FlowFilterError::BadPort { value: v.to_owned() })?;
                    set_once(&mut f.port, "port", p)?;
                }
                "proto" => {
                    let p = match v.to_ascii_lowercase().as_str() {
                        "tcp" => ipproto::TCP,
                        "udp" => ipproto::UDP,
                        "icmp" => ipproto::ICMP,
                        n => n.parse().map_err(|_| FlowFilterError::BadProto { value: v.to_owned() })?,
                    };
                    set_once(&mut f.proto, "proto", p)?;
                }
                _ => return Err(FlowFilterError::UnknownKey { key: k.to_owned() }),
            }
        }
        if any { Ok(f) } else { Err(FlowFilterError::Empty) }
    }
}

fn set_once<T>(slot: &mut Option<T>, key: &'static str, v: T) -> Result<(), FlowFilterError> {
    if slot.is_some() {
        return Err(FlowFilterError::Duplicate { key });
    }
    *slot = Some(v);
    Ok(())
}

/// What the filters look at in one decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoints {
    a: IpAddr,
    b: IpAddr,
    /// IP protocol; None for ARP.
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
}

/// Innermost IP addresses (ARP: sender and target), protocol and ports.
fn endpoints(p: &PacketRef<'_>) -> Option<Endpoints> {
    let d = decode(p.link_type, p.data, p.wire_len);
    if let Some(n) = d.net {
        return Some(Endpoints { a: n.src, b: n.dst, proto: Some(n.proto), ports: d.ports() });
    }
    d.arp.map(|a| Endpoints {
        a: IpAddr::V4(a.sender_ip),
        b: IpAddr::V4(a.target_ip),
        proto: None,
        ports: None,
    })
}

impl FlowFilter {
    fn matches(&self, e: Option<&Endpoints>) -> bool {
        let Some(e) = e else { return false };
        if let Some(want) = self.proto {
            let ok = match e.proto {
                Some(p) => p == want || (want == ipproto::ICMP && p == ipproto::ICMPV6),
                None => false,
            };
            if !ok {
                return false;
            }
        }
        if let Some(port) = self.port
            && !e.ports.is_some_and(|(s, d)| s == port || d == port)
        {
            return false;
        }
        let is = |want: Option<IpAddr>, got: IpAddr| want.is_none_or(|w| w == got);
        (is(self.src, e.a) && is(self.dst, e.b)) || (is(self.src, e.b) && is(self.dst, e.a))
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts

/// One side (sources or targets) of an alert, as an address set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Side {
    /// The alert did not list every address of this side (none, or capped): any matches.
    any: bool,
    addrs: Vec<IpAddr>,
}

impl Side {
    fn new(addrs: &[IpAddr], count: u64) -> Side {
        let mut v = addrs.to_vec();
        v.sort_unstable();
        v.dedup();
        Side { any: v.is_empty() || count > v.len() as u64, addrs: v }
    }
    fn has(&self, a: IpAddr) -> bool {
        self.any || self.addrs.binary_search(&a).is_ok()
    }
}

/// A recorded alert as the exporter uses it: window, address sides, comment text.
#[derive(Debug, Clone)]
struct AlertMark {
    run_id: u64,
    id: u64,
    rule_id: String,
    first: Ts,
    last: Ts,
    src: Side,
    dst: Side,
    comment: String,
    path: PathBuf,
}

/// pcapng options hold at most 65535 bytes.
const MAX_COMMENT: usize = u16::MAX as usize;

impl AlertMark {
    fn new(run_id: u64, a: &Alert, path: &Path) -> AlertMark {
        let mut comment = format!("netrec alert {} {}: {}", a.id, a.rule_id, a.message);
        if comment.len() > MAX_COMMENT {
            let mut end = MAX_COMMENT;
            while !comment.is_char_boundary(end) {
                end -= 1;
            }
            comment.truncate(end);
        }
        AlertMark {
            run_id,
            id: a.id,
            rule_id: a.rule_id.clone(),
            first: a.first_ts,
            last: a.last_ts,
            src: Side::new(&a.src, a.src_count),
            dst: Side::new(&a.dst, a.dst_count),
            comment,
            path: path.to_owned(),
        }
    }

    /// The packet goes between a source and a target of the alert, in either direction.
    /// A packet without addresses matches only an alert that names no address at all.
    fn covers(&self, e: Option<&Endpoints>) -> bool {
        match e {
            Some(e) => (self.src.has(e.a) && self.dst.has(e.b)) || (self.src.has(e.b) && self.dst.has(e.a)),
            None => self.src.any && self.dst.any,
        }
    }
}

/// Alerts whose window contains the current packet time, maintained by a sweep over alerts
/// sorted by `first` (packets come nearly in time order; a step back rebuilds the set).
#[derive(Debug, Default)]
struct ActiveAlerts {
    next: usize,
    prev_ts: u64,
    active: Vec<usize>,
}

impl ActiveAlerts {
    fn at(&mut self, alerts: &[AlertMark], ts: Ts) -> &[usize] {
        if ts.0 < self.prev_ts {
            self.next = alerts.partition_point(|a| a.first <= ts);
            self.active.clear();
            self.active.extend((0..self.next).filter(|&i| alerts[i].last >= ts));
        } else {
            while let Some(a) = alerts.get(self.next).filter(|a| a.first <= ts) {
                if a.last >= ts {
                    self.active.push(self.next);
                }
                self.next += 1;
            }
            self.active.retain(|&i| alerts[i].last >= ts);
        }
        self.prev_ts = ts.0;
        &self.active
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// Groups the inputs into chains (see the module docs). A directory contributes its segment
/// files (closed and `.partial`) in sequence order; files keep their names' sequence order
/// within their directory.
pub fn plan_chains(inputs: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>, ExportError> {
    let mut groups: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut add = |dir: PathBuf, file: PathBuf| match groups.iter_mut().find(|(d, _)| *d == dir) {
        Some((_, v)) => {
            if !v.contains(&file) {
                v.push(file);
            }
        }
        None => groups.push((dir, vec![file])),
    };
    for arg in inputs {
        if arg.is_dir() {
            let list = list_segments(arg).map_err(|source| ExportError::Io { path: arg.clone(), source })?;
            if list.is_empty() {
                return Err(ExportError::NoSegments { path: arg.clone() });
            }
            let key = canonical(arg);
            for l in list {
                add(key.clone(), l.path);
            }
        } else {
            let parent = arg.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            add(canonical(parent), arg.clone());
        }
    }
    Ok(groups
        .into_iter()
        .map(|(_, mut files)| {
            // Stable: names that are not segment names keep their order, after the others.
            let name = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).and_then(SegmentName::parse);
            files.sort_by_key(|p| {
                let n = name(p);
                (n.is_none(), n)
            });
            files
        })
        .collect())
}

/// Metadata and alerts of one file, cheaply: block headers are read and data payloads
/// skipped with seeks, then only the alert blocks are read, as a small in-memory segment (the
/// file header followed by those blocks). None if the file cannot be read as a segment; the
/// second pass reports why.
fn catalog_file(path: &Path, range: Option<(Ts, Ts)>) -> Option<(Vec<SegmentMeta>, Vec<Alert>)> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let file = File::open(path).ok()?;
    let mut rd = SegmentReader::new_seekable(BufReader::new(file), Recovery::SkipCorrupt).ok()?.skip_data();
    let header_len = u64::from(rd.header().header_len);
    let mut metas = Vec::new();
    while let Ok(Some(b)) = rd.next_block() {
        if let BlockBody::Meta(v) = b.body {
            metas.extend(v);
        }
    }
    let wanted: Vec<(u64, u64)> = rd
        .block_headers()
        .iter()
        .filter(|(_, h)| h.block_type == BlockType::Alerts as u16)
        .filter(|(_, h)| range.is_none_or(|(lo, hi)| h.max_ts >= lo.0 && h.min_ts <= hi.0))
        .map(|(off, h)| (*off, BLOCK_HEADER_LEN as u64 + u64::from(h.stored_len)))
        .collect();
    let mut alerts = Vec::new();
    if wanted.is_empty() {
        return Some((metas, alerts));
    }
    let mut f = File::open(path).ok()?;
    let mut bytes = Vec::new();
    let mut take = |off: u64, len: u64, bytes: &mut Vec<u8>| -> io::Result<()> {
        f.seek(SeekFrom::Start(off))?;
        let n = (&mut f).take(len).read_to_end(bytes)?;
        if (n as u64) < len { Err(io::ErrorKind::UnexpectedEof.into()) } else { Ok(()) }
    };
    take(0, header_len, &mut bytes).ok()?;
    for (off, len) in wanted {
        if take(off, len, &mut bytes).is_err() {
            break;
        }
    }
    // No trailer: the torn-tail warning is expected. A damaged alert block is skipped (the
    // second pass reports the damage).
    let Ok(mut ard) = SegmentReader::new(io::Cursor::new(bytes), Recovery::SkipCorrupt) else {
        return Some((metas, alerts));
    };
    while let Ok(Some(b)) = ard.next_block() {
        if let BlockBody::Alerts(v) = b.body {
            alerts.extend(v);
        }
    }
    Some((metas, alerts))
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn open_reader(path: &Path) -> Result<SegmentReader<BufReader<File>>, ExportWarning> {
    let file = File::open(path).map_err(|error| ExportWarning::Io { path: path.to_owned(), error })?;
    // Seekable: blocks outside the time range are skipped without reading them.
    SegmentReader::new_seekable(BufReader::with_capacity(1 << 20, file), Recovery::SkipCorrupt)
        .map_err(|error| ExportWarning::Segment { path: path.to_owned(), error })
}

// ---------------------------------------------------------------------------------------------
// Interfaces

/// One pcapng interface: a recorded interface of one host, with the link type of its
/// packets and the recording's snaplen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IfKey {
    host: String,
    index: u32,
    name: String,
    link_type: u32,
    snaplen: u32,
}

impl IfKey {
    /// The key of a packet on `iface` under `meta` (None: the file has no readable metadata).
    fn of(meta: Option<&SegmentMeta>, iface: u32, link_type: LinkType) -> IfKey {
        let info = meta.and_then(|m| m.interfaces.iter().find(|i| i.index == iface));
        IfKey {
            host: meta.map(|m| m.host.clone()).unwrap_or_default(),
            index: iface,
            name: info.map_or_else(|| format!("ifindex {iface}"), |i| i.name.clone()),
            link_type: link_type.0,
            snaplen: meta.map_or(0, |m| m.snaplen),
        }
    }
}

/// The pcapng interfaces written so far, in order of appearance.
#[derive(Debug, Default)]
struct Interfaces {
    ids: BTreeMap<IfKey, u32>,
    order: Vec<IfKey>,
}

impl Interfaces {
    /// The id of `k`, registering it when new.
    fn register(&mut self, k: IfKey) -> u32 {
        if let Some(&id) = self.ids.get(&k) {
            return id;
        }
        let id = self.order.len() as u32;
        self.ids.insert(k.clone(), id);
        self.order.push(k);
        id
    }
}

// ---------------------------------------------------------------------------------------------
// The export

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Inclusive packet time bounds.
    pub from: Option<Ts>,
    pub to: Option<Ts>,
    pub flow: Option<FlowFilter>,
    /// Export the evidence of this alert: its window, filtered to its addresses.
    pub alert: Option<u64>,
}

/// What [`Export::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Packets in the packet blocks read (blocks entirely outside the time range are skipped
    /// unread and not counted).
    pub packets_read: u64,
    pub packets_written: u64,
    /// Written packets that carry at least one alert comment.
    pub packets_commented: u64,
    /// Interface Description Blocks written.
    pub interfaces: u32,
    /// Warnings reported (damage and notes).
    pub warnings: u64,
    /// Warnings that are damage ([`ExportWarning::is_damage`]).
    pub damaged: u64,
}

/// A prepared export: inputs grouped, interfaces and alerts known.
#[derive(Debug)]
pub struct Export {
    chains: Vec<Vec<PathBuf>>,
    interfaces: Interfaces,
    alerts: Vec<AlertMark>,
    lo: Ts,
    hi: Ts,
    flow: Option<FlowFilter>,
    /// `--alert`: index into `alerts` whose addresses filter the packets.
    only: Option<usize>,
}

impl Export {
    /// First pass: groups the inputs, reads metadata and recorded alerts, resolves `--alert`.
    /// Read problems are not reported here (the second pass meets and reports them).
    pub fn prepare(inputs: &[PathBuf], opts: &ExportOptions) -> Result<Export, ExportError> {
        let (from, to) = (opts.from.unwrap_or(Ts(0)), opts.to.unwrap_or(Ts(u64::MAX)));
        if from > to {
            return Err(ExportError::EmptyRange { from, to });
        }
        let chains = plan_chains(inputs)?;
        let mut interfaces = Interfaces::default();
        // An alert and its updates share (run, id, rule, first_ts); the latest version wins.
        let mut found: BTreeMap<(u64, u64, String, Ts), AlertMark> = BTreeMap::new();
        // With --alert the alert may lie anywhere; otherwise blocks outside the range cannot
        // hold an alert whose window meets it.
        let range = if opts.alert.is_none() { Some((from, to)) } else { None };
        for path in chains.iter().flatten() {
            let Some((metas, recorded)) = catalog_file(path, range) else { continue };
            for m in &metas {
                for i in &m.interfaces {
                    interfaces.register(IfKey::of(Some(m), i.index, i.link_type));
                }
            }
            // Alert ids restart with each recording run; the file's metadata names the run.
            let run = metas.last().map_or(0, |m| m.run_id);
            for a in &recorded {
                let key = (run, a.id, a.rule_id.clone(), a.first_ts);
                match found.get_mut(&key) {
                    Some(m) if a.last_ts < m.last => {}
                    Some(m) => {
                        let path = std::mem::take(&mut m.path);
                        *m = AlertMark::new(run, a, &path);
                    }
                    None => {
                        found.insert(key, AlertMark::new(run, a, path));
                    }
                }
            }
        }
        let mut alerts: Vec<AlertMark> = found.into_values().collect();
        alerts.sort_by(|a, b| {
            (a.first, a.run_id, a.id, &a.rule_id).cmp(&(b.first, b.run_id, b.id, &b.rule_id))
        });
        let (mut lo, mut hi, mut only) = (from, to, None);
        if let Some(id) = opts.alert {
            let ranged = opts.from.is_some() || opts.to.is_some();
            let cands: Vec<usize> = (0..alerts.len())
                .filter(|&i| alerts[i].id == id && alerts[i].last >= from && alerts[i].first <= to)
                .collect();
            match cands[..] {
                [] => return Err(ExportError::AlertNotFound { id, in_range: ranged }),
                [i] => {
                    lo = lo.max(alerts[i].first);
                    hi = hi.min(alerts[i].last);
                    only = Some(i);
                }
                _ => {
                    let candidates = cands
                        .iter()
                        .map(|&i| AlertCandidate {
                            run_id: alerts[i].run_id,
                            rule_id: alerts[i].rule_id.clone(),
                            first_ts: alerts[i].first,
                            last_ts: alerts[i].last,
                            path: alerts[i].path.clone(),
                        })
                        .collect();
                    return Err(ExportError::AlertAmbiguous { id, candidates });
                }
            }
        }
        Ok(Export { chains, interfaces, alerts, lo, hi, flow: opts.flow, only })
    }

    /// Distinct recorded alerts found (updates merged).
    pub fn alert_count(&self) -> usize {
        self.alerts.len()
    }

    /// The inclusive time range exported (the `--alert` window within `--from`/`--to`).
    pub fn range(&self) -> (Ts, Ts) {
        (self.lo, self.hi)
    }

    /// The input chains, in merge priority order.
    pub fn chains(&self) -> &[Vec<PathBuf>] {
        &self.chains
    }

    /// Second pass: writes the pcapng to `out`. Every warning goes to `warn` as it is met.
    pub fn write<W: Write>(
        mut self,
        out: W,
        warn: &mut dyn FnMut(&ExportWarning),
    ) -> Result<ExportSummary, ExportError> {
        let (mut warnings, mut damaged, mut read) = (0u64, 0u64, 0u64);
        let mut report = |w: ExportWarning| {
            warnings += 1;
            damaged += u64::from(w.is_damage());
            warn(&w);
        };
        let mut sum = ExportSummary::default();
        let mut w = PcapNgWriter::new(out).map_err(ExportError::Write)?;
        for k in &self.interfaces.order {
            add_idb(&mut w, k)?;
        }
        let mut streams: Vec<Stream> = self.chains.iter().map(|c| Stream::new(c, self.lo, self.hi)).collect();
        let mut heads: Vec<Option<Ts>> = streams.iter_mut().map(|s| s.head(&mut report, &mut read)).collect();
        let mut active = ActiveAlerts::default();
        let mut comments: Vec<&str> = Vec::new();
        let alerts = &self.alerts;
        let only = self.only.map(|i| &alerts[i]);
        // Smallest head time, ties to the first chain: a stable merge.
        while let Some(si) = (0..heads.len()).filter(|&i| heads[i].is_some()).min_by_key(|&i| (heads[i], i)) {
            let s = &mut streams[si];
            if let Some(p) = s.block.get(s.idx)
                && p.ts >= self.lo
                && p.ts <= self.hi
            {
                let act = active.at(alerts, p.ts);
                let need = self.flow.is_some() || only.is_some() || !act.is_empty();
                let e = if need { endpoints(&p) } else { None };
                let keep = self.flow.is_none_or(|f| f.matches(e.as_ref()))
                    && only.is_none_or(|a| a.covers(e.as_ref()));
                if keep {
                    comments.clear();
                    let covering = act.iter().map(|&i| &alerts[i]).filter(|a| a.covers(e.as_ref()));
                    comments.extend(covering.map(|a| a.comment.as_str()));
                    let id = idb_id(&mut s.keys, s.meta.as_ref(), &mut self.interfaces, &mut w, &p)?;
                    w.write_packet_comments(id, &p, &comments).map_err(ExportError::Write)?;
                    sum.packets_written += 1;
                    sum.packets_commented += u64::from(!comments.is_empty());
                }
            }
            s.idx += 1;
            heads[si] = s.head(&mut report, &mut read);
        }
        w.into_inner().map_err(ExportError::Write)?;
        sum.interfaces = self.interfaces.order.len() as u32;
        sum.packets_read = read;
        sum.warnings = warnings;
        sum.damaged = damaged;
        Ok(sum)
    }
}

fn add_idb<W: Write>(w: &mut PcapNgWriter<W>, k: &IfKey) -> Result<(), ExportError> {
    w.add_interface_described(LinkType(k.link_type), k.snaplen, &k.name, &k.host)
        .map(drop)
        .map_err(ExportError::Write)
}

/// The pcapng interface id of `p` under the stream's current metadata. `cache` maps
/// (iface, link type) to the id, so the key (with its strings) is built once per interface
/// and file, not per packet. An interface not seen in the first pass gets its IDB now
/// (pcapng allows an IDB anywhere before its first packet).
fn idb_id<W: Write>(
    cache: &mut Vec<(u32, u32, u32)>,
    meta: Option<&SegmentMeta>,
    ifs: &mut Interfaces,
    w: &mut PcapNgWriter<W>,
    p: &PacketRef<'_>,
) -> Result<u32, ExportError> {
    if let Some(&(_, _, id)) = cache.iter().find(|(i, l, _)| *i == p.iface && *l == p.link_type.0) {
        return Ok(id);
    }
    let key = IfKey::of(meta, p.iface, p.link_type);
    let id = match ifs.ids.get(&key) {
        Some(&id) => id,
        None => {
            add_idb(w, &key)?;
            ifs.register(key)
        }
    };
    cache.push((p.iface, p.link_type.0, id));
    Ok(id)
}

/// One chain being read: its files in order, the open file's current packet block.
struct Stream<'a> {
    files: &'a [PathBuf],
    next_file: usize,
    lo: Ts,
    hi: Ts,
    reader: Option<(PathBuf, SegmentReader<BufReader<File>>)>,
    meta: Option<SegmentMeta>,
    block: PacketBlock,
    idx: usize,
    /// (iface, link type) -> pcapng interface id under the current metadata (see `idb_id`).
    keys: Vec<(u32, u32, u32)>,
}

impl<'a> Stream<'a> {
    fn new(files: &'a [PathBuf], lo: Ts, hi: Ts) -> Self {
        Stream {
            files,
            next_file: 0,
            lo,
            hi,
            reader: None,
            meta: None,
            block: PacketBlock::default(),
            idx: 0,
            keys: Vec::new(),
        }
    }

    /// Time of the next packet, reading blocks and files as needed; None when done.
    fn head(&mut self, report: &mut dyn FnMut(ExportWarning), read: &mut u64) -> Option<Ts> {
        loop {
            if let Some(m) = self.block.packets.get(self.idx) {
                return Some(m.ts);
            }
            let Some((path, rd)) = self.reader.as_mut() else {
                let path = self.files.get(self.next_file)?;
                self.next_file += 1;
                self.meta = None;
                self.keys.clear();
                match open_reader(path) {
                    Ok(rd) => self.reader = Some((path.clone(), rd.with_time_range(self.lo, self.hi))),
                    Err(w) => report(w),
                }
                continue;
            };
            let next = rd.next_block();
            for warning in rd.take_warnings() {
                report(ExportWarning::Read { path: path.clone(), warning });
            }
            match next {
                Ok(Some(b)) => match b.body {
                    BlockBody::Packets(p) => {
                        *read += p.len() as u64;
                        self.block = p;
                        self.idx = 0;
                    }
                    BlockBody::Meta(mut v) => {
                        if let Some(m) = v.pop() {
                            self.meta = Some(m);
                            self.keys.clear();
                        }
                    }
                    _ => {}
                },
                Ok(None) => self.reader = None,
                Err(error) => {
                    report(ExportWarning::Segment { path: path.clone(), error });
                    self.reader = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_format::Direction;

    #[test]
    fn unix_seconds_with_fraction() {
        assert_eq!(parse_time("0"), Ok(Ts(0)));
        assert_eq!(parse_time("1764424800"), Ok(Ts(1_764_424_800_000_000_000)));
        assert_eq!(parse_time("1764424800.5"), Ok(Ts(1_764_424_800_500_000_000)));
        assert_eq!(parse_time("1764424800.000000001"), Ok(Ts(1_764_424_800_000_000_001)));
        // Digits past nanoseconds are truncated, not rounded.
        assert_eq!(parse_time("1.9999999999"), Ok(Ts(1_999_999_999)));
        assert_eq!(parse_time(" 12. "), Ok(Ts(12_000_000_000)));
        assert!(matches!(parse_time(".5"), Err(TimeError::Syntax { .. })));
        assert!(matches!(parse_time("1.2.3"), Err(TimeError::Syntax { .. })));
        assert!(matches!(parse_time(""), Err(TimeError::Syntax { .. })));
        assert!(matches!(parse_time("-5"), Err(TimeError::Syntax { .. })));
        assert!(matches!(parse_time("18446744074"), Err(TimeError::OutOfRange { .. })));
    }

    #[test]
    fn rfc3339_forms() {
        // 2026-11-29T14:00:00Z = 1795960800 (date -u -d 2026-11-29T14:00:00Z +%s).
        let t = Ts(1_795_960_800_000_000_000);
        assert_eq!(parse_time("2026-11-29T14:00:00Z"), Ok(t));
        assert_eq!(parse_time("2026-11-29t14:00:00z"), Ok(t));
        assert_eq!(parse_time("2026-11-29 14:00:00Z"), Ok(t));
        assert_eq!(parse_time("2026-11-29T15:30:00+01:30"), Ok(t));
        assert_eq!(parse_time("2026-11-29T09:00:00-05:00"), Ok(t));
        assert_eq!(parse_time("2026-11-29T14:00:00.25Z"), Ok(Ts(t.0 + 250_000_000)));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(Ts(0)));
        // 951782400 = 2000-02-29T00:00:00Z.
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(Ts(951_782_400_000_000_000)));
        // A leap second is the next minute's first second.
        assert_eq!(parse_time("2016-12-31T23:59:60Z"), parse_time("2017-01-01T00:00:00Z"));
        for bad in [
            "2026-11-29T14:00:00",
            "2026-11-29",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T14:00:00.Z",
            "2026-11-29T14:00:00+1:00",
            "2026-11-29T14:00:00+01:00x",
            "26-11-29T14:00:00Z",
            "2026-11-29T14:00Z",
        ] {
            assert!(matches!(parse_time(bad), Err(TimeError::Syntax { .. })), "{bad}");
        }
        assert!(matches!(parse_time("1969-12-31T23:59:59Z"), Err(TimeError::OutOfRange { .. })));
        assert!(matches!(parse_time("1970-01-01T00:30:00+01:00"), Err(TimeError::OutOfRange { .. })));
    }

    #[test]
    fn time_parser_never_panics_on_junk() {
        for s in [
            "\u{e9}",
            "2026-11-29T14:00:00\u{e9}",
            "9999-99-99T99:99:99Z",
            "0000-01-01T00:00:00Z",
            "1.\u{e9}",
        ] {
            let _ = parse_time(s);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn flow_filter_parses_and_rejects() {
        let f: FlowFilter = "src=10.0.0.1 dst=2001:db8::1 port=443 proto=tcp".parse().unwrap();
        assert_eq!(
            f,
            FlowFilter {
                src: Some(ip("10.0.0.1")),
                dst: Some(ip("2001:db8::1")),
                port: Some(443),
                proto: Some(6)
            }
        );
        assert_eq!("proto=UDP,port=53".parse::<FlowFilter>().unwrap().proto, Some(17));
        assert_eq!("proto=47".parse::<FlowFilter>().unwrap().proto, Some(47));
        assert_eq!("".parse::<FlowFilter>(), Err(FlowFilterError::Empty));
        assert!(matches!("src".parse::<FlowFilter>(), Err(FlowFilterError::NotKeyValue { .. })));
        assert!(matches!("host=1.2.3.4".parse::<FlowFilter>(), Err(FlowFilterError::UnknownKey { .. })));
        assert!(matches!("src=1.2.3".parse::<FlowFilter>(), Err(FlowFilterError::BadAddress { .. })));
        assert!(matches!("port=65536".parse::<FlowFilter>(), Err(FlowFilterError::BadPort { .. })));
        assert!(matches!("proto=256".parse::<FlowFilter>(), Err(FlowFilterError::BadProto { .. })));
        assert_eq!("port=1 port=2".parse::<FlowFilter>(), Err(FlowFilterError::Duplicate { key: "port" }));
    }

    fn ep(a: &str, b: &str, proto: Option<u8>, ports: Option<(u16, u16)>) -> Endpoints {
        Endpoints { a: ip(a), b: ip(b), proto, ports }
    }

    #[test]
    fn flow_filter_is_bidirectional() {
        let f: FlowFilter = "src=10.0.0.1 dst=10.0.0.2 port=80 proto=tcp".parse().unwrap();
        assert!(f.matches(Some(&ep("10.0.0.1", "10.0.0.2", Some(6), Some((5000, 80))))));
        assert!(f.matches(Some(&ep("10.0.0.2", "10.0.0.1", Some(6), Some((80, 5000))))));
        assert!(!f.matches(Some(&ep("10.0.0.1", "10.0.0.3", Some(6), Some((5000, 80))))));
        assert!(!f.matches(Some(&ep("10.0.0.1", "10.0.0.2", Some(17), Some((5000, 80))))));
        assert!(!f.matches(Some(&ep("10.0.0.1", "10.0.0.2", Some(6), Some((5000, 81))))));
        assert!(!f.matches(Some(&ep("10.0.0.1", "10.0.0.2", None, None))), "ARP has no protocol");
        assert!(!f.matches(None), "undecodable packet");
        let one: FlowFilter = "src=10.0.0.1".parse().unwrap();
        assert!(one.matches(Some(&ep("10.9.9.9", "10.0.0.1", None, None))), "either end");
        let icmp: FlowFilter = "proto=icmp".parse().unwrap();
        assert!(icmp.matches(Some(&ep("::1", "::2", Some(58), None))), "icmp includes ICMPv6");
        let port: FlowFilter = "port=53".parse().unwrap();
        assert!(!port.matches(Some(&ep("10.0.0.1", "10.0.0.2", Some(1), None))), "no ports, no match");
    }

    fn alert(src: &[&str], src_count: u64, dst: &[&str], dst_count: u64) -> AlertMark {
        let a = Alert {
            id: 7,
            rule_id: "r".into(),
            class: "c".into(),
            severity: netrec_format::Severity::Low,
            attack_id: String::new(),
            first_ts: Ts(10),
            last_ts: Ts(20),
            src: src.iter().map(|s| ip(s)).collect(),
            src_count,
            dst: dst.iter().map(|s| ip(s)).collect(),
            dst_count,
            dst_ports: vec![],
            count: 1,
            stats: vec![],
            message: "hello".into(),
        };
        AlertMark::new(0, &a, Path::new("x"))
    }

    #[test]
    fn alert_covers_packets_between_its_sides_in_both_directions() {
        let a = alert(&["10.0.0.1"], 1, &["10.0.0.2", "10.0.0.3"], 2);
        assert_eq!(a.comment, "netrec alert 7 r: hello");
        assert!(a.covers(Some(&ep("10.0.0.1", "10.0.0.3", Some(6), None))));
        assert!(a.covers(Some(&ep("10.0.0.2", "10.0.0.1", Some(6), None))), "reply direction");
        assert!(!a.covers(Some(&ep("10.0.0.2", "10.0.0.3", Some(6), None))), "two targets");
        assert!(!a.covers(Some(&ep("10.0.0.1", "10.0.0.9", Some(6), None))));
        assert!(!a.covers(None));
        // Capped source list: any source with a listed target.
        let capped = alert(&["10.0.0.1"], 3, &["10.0.0.2"], 1);
        assert!(capped.covers(Some(&ep("192.0.2.1", "10.0.0.2", Some(6), None))));
        assert!(!capped.covers(Some(&ep("192.0.2.1", "10.0.0.3", Some(6), None))));
        // No addresses at all: every packet of the window, undecodable ones too.
        let open = alert(&[], 0, &[], 0);
        assert!(open.covers(Some(&ep("1.1.1.1", "2.2.2.2", None, None))));
        assert!(open.covers(None));
    }

    #[test]
    fn long_comments_are_cut_on_a_char_boundary() {
        let mut a = alert(&[], 0, &[], 0);
        let long = "\u{e9}".repeat(40_000);
        let al = Alert { message: long, ..alert_record() };
        a = AlertMark::new(0, &al, &a.path);
        assert!(a.comment.len() <= MAX_COMMENT && a.comment.len() > MAX_COMMENT - 2);
    }

    fn alert_record() -> Alert {
        Alert {
            id: 1,
            rule_id: "r".into(),
            class: String::new(),
            severity: netrec_format::Severity::Low,
            attack_id: String::new(),
            first_ts: Ts(0),
            last_ts: Ts(0),
            src: vec![],
            src_count: 0,
            dst: vec![],
            dst_count: 0,
            dst_ports: vec![],
            count: 0,
            stats: vec![],
            message: String::new(),
        }
    }

    /// The sweep gives, at every time and in any order of times, exactly the alerts whose
    /// window contains it (compared with a plain scan).
    #[test]
    fn active_alert_sweep_equals_a_scan() {
        let windows = [(5, 9), (6, 6), (6, 30), (10, 12), (11, 11), (40, 50)];
        let mut alerts: Vec<AlertMark> = windows
            .iter()
            .map(|&(f, l)| {
                let mut a = alert(&[], 0, &[], 0);
                a.first = Ts(f);
                a.last = Ts(l);
                a
            })
            .collect();
        alerts.sort_by_key(|a| a.first);
        let times = [0u64, 5, 6, 6, 7, 10, 11, 12, 13, 8, 6, 31, 45, 50, 51, 3, 49];
        let mut sweep = ActiveAlerts::default();
        for t in times {
            let want: Vec<usize> =
                (0..alerts.len()).filter(|&i| alerts[i].first.0 <= t && alerts[i].last.0 >= t).collect();
            assert_eq!(sweep.at(&alerts, Ts(t)), &want[..], "at {t}");
        }
    }

    #[test]
    fn endpoints_of_ip_and_arp_frames() {
        // Ethernet + IPv4 + UDP 10.0.0.1:1234 -> 10.0.0.2:53.
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        f.extend([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend([0x04, 0xd2, 0, 53, 0, 8, 0, 0]);
        let p = PacketRef {
            ts: Ts(1),
            iface: 1,
            direction: Direction::Ingress,
            link_type: LinkType::ETHERNET,
            wire_len: f.len() as u32,
            data: &f,
        };
        assert_eq!(endpoints(&p), Some(ep("10.0.0.1", "10.0.0.2", Some(17), Some((1234, 53)))));
        // ARP request who-has 10.0.0.9 tell 10.0.0.8.
        let mut a = vec![0xff; 6];
        a.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 8]);
        a.extend([0, 0, 0, 0, 0, 0, 10, 0, 0, 9]);
        let p = PacketRef { data: &a, wire_len: a.len() as u32, ..p };
        assert_eq!(endpoints(&p), Some(ep("10.0.0.8", "10.0.0.9", None, None)));
        let p = PacketRef { data: &a[..10], ..p };
        assert_eq!(endpoints(&p), None, "truncated frame");
    }

    #[test]
    fn plan_groups_files_by_directory_in_sequence_order() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let n = |seq| SegmentName::new(seq, Ts(0)).to_string();
        for (dir, seq) in [(&a, 2), (&a, 10), (&b, 1)] {
            std::fs::write(dir.join(n(seq)), b"").unwrap();
        }
        std::fs::write(a.join(SegmentName::new(11, Ts(0)).partial().to_string()), b"").unwrap();
        std::fs::write(a.join("notes.txt"), b"").unwrap();
        // Files named out of order, a directory and a file of the same directory.
        let plan = plan_chains(&[b.join(n(1)), a.join(n(10)), a.clone(), a.join(n(2))]).unwrap();
        let names: Vec<Vec<String>> = plan
            .iter()
            .map(|c| c.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect())
            .collect();
        let partial = SegmentName::new(11, Ts(0)).partial().to_string();
        assert_eq!(names, vec![vec![n(1)], vec![n(2), n(10), partial]]);
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(plan_chains(&[empty]), Err(ExportError::NoSegments { .. })));
    }
}
