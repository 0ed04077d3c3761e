//! `netrec analyze --check-parity`: replay the header blocks of recorded segments through the
//! engine with the recorded rule set and compare with the alerts the live engine recorded.
//!
//! Segments are grouped by recording run (`SegmentMeta::run_id`): one live engine saw one run as
//! one stream, so each run is replayed with a fresh engine, its segments in sequence order, and
//! finished (like the live engine at shutdown) only when the run's last segment was closed
//! cleanly. Alerts are compared by id in their final state (the last record of each id).
//!
//! Parity holds by construction: the live loop (`recorder/src/run.rs`) feeds the engine exactly
//! the packet records it writes, in the same order, and never drives the engine by the wall
//! clock (no `advance_to` at timer ticks: the engine's own ticks are packet time), so a replay of
//! the header blocks is the same input. What breaks it is named: headers the engine saw that were
//! not written (`writer_drops` in the loss records, e.g. disk full). Ring drops were seen by
//! neither and change evidence completeness, not parity; they are still shown for a difference
//! in their window.

use crate::pipeline::InputError;
use crate::segsource::SegmentPackets;
use netrec_format::decode::decode;
use netrec_format::segment::{BlockBody, Recovery, SegmentError, SegmentReader};
use netrec_format::{Alert, EvidenceTally, FlowRecord, LossRecord, SegmentMeta, Ts};
use netrec_rules::ruleset::{ParamKind, RuleSet};
use netrec_rules::{DetectorKind, Engine, EngineSink, Limits};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Segment {
        path: PathBuf,
        #[source]
        source: SegmentError,
    },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{}: no metadata record: not a recording netrec can check", path.display())]
    NoMeta { path: PathBuf },
    #[error("{}: the recording stores no rule-set text (recorded digest {digest:?}); pass --rules", path.display())]
    NoRuleText { path: PathBuf, digest: String },
    #[error("{}: recorded rule-set text does not hash to the recorded digest (expected {expected}, actual {actual})", path.display())]
    RuleTextDigest { path: PathBuf, expected: String, actual: String },
    #[error("{}: recorded rule-set text, line {line}: {reason}", path.display())]
    RuleText { path: PathBuf, line: usize, reason: &'static str },
    #[error("{}: recorded rule-set text does not parse back", path.display())]
    RuleParse {
        path: PathBuf,
        #[source]
        source: netrec_rules::RuleError,
    },
}

/// Everything one run's segments recorded, besides the packets.
#[derive(Clone, Debug, Default)]
pub struct RecordedRun {
    pub run_id: u64,
    /// In sequence order.
    pub segments: Vec<PathBuf>,
    pub meta: SegmentMeta,
    /// Final state of each recorded alert, by id.
    pub alerts: BTreeMap<u64, Alert>,
    /// Loss records in time order.
    pub losses: Vec<LossRecord>,
    pub packets: u64,
    /// The last segment ends with a trailer (the recorder shut down cleanly).
    pub clean_end: bool,
    /// Damage met while reading (offsets included).
    pub warnings: Vec<String>,
}

/// What kind of difference.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DiffKind {
    /// Recorded live, not raised by the replay.
    Missing { recorded: Box<Alert> },
    /// Raised by the replay, not recorded live.
    Extra { replayed: Box<Alert> },
    /// Same id, different content; `fields` names what differs.
    Changed { recorded: Box<Alert>, replayed: Box<Alert>, fields: Vec<&'static str> },
}

/// Loss in the loss intervals overlapping an alert's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowLoss {
    /// Headers the ring could not take (the live engine did not see them either).
    pub ring_drops: u64,
    /// Headers the live engine saw that were not written (disk full): replay cannot see them.
    pub writer_drops: u64,
    /// Writer drops anywhere in the run before the window ended (engine state carries over).
    pub writer_drops_before: u64,
}

impl WindowLoss {
    /// A loss that can legitimately make replay differ from live.
    pub fn explains(&self) -> bool {
        self.ring_drops > 0 || self.writer_drops > 0 || self.writer_drops_before > 0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlertDiff {
    pub id: u64,
    pub kind: DiffKind,
    pub loss: WindowLoss,
}

/// The outcome for one run.
#[derive(Clone, Debug, Default)]
pub struct RunParity {
    pub run_id: u64,
    pub segments: Vec<PathBuf>,
    pub recorded_digest: String,
    /// Digest of the rule set the replay used.
    pub replay_digest: String,
    pub packets: u64,
    pub recorded: usize,
    pub replayed: usize,
    pub clean_end: bool,
    pub diffs: Vec<AlertDiff>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ParityReport {
    pub runs: Vec<RunParity>,
}

impl ParityReport {
    pub fn is_equal(&self) -> bool {
        self.runs.iter().all(|r| r.diffs.is_empty())
    }

    pub fn differences(&self) -> usize {
        self.runs.iter().map(|r| r.diffs.len()).sum()
    }

    /// Human-readable report, deterministic.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for r in &self.runs {
            let _ = writeln!(
                s,
                "run {} ({} segment{}, {} packets, rules sha256 {}): {} alerts recorded, {} replayed: {}",
                r.run_id,
                r.segments.len(),
                if r.segments.len() == 1 { "" } else { "s" },
                r.packets,
                short(&r.replay_digest),
                r.recorded,
                r.replayed,
                if r.diffs.is_empty() {
                    "equal".to_string()
                } else {
                    format!("{} differences", r.diffs.len())
                },
            );
            for w in &r.warnings {
                let _ = writeln!(s, "  warning: {w}");
            }
            for d in &r.diffs {
                let _ = write!(s, "  ");
                match &d.kind {
                    DiffKind::Missing { recorded } => {
                        let _ = write!(s, "missing  {}: recorded live, not replayed", describe(recorded));
                    }
                    DiffKind::Extra { replayed } => {
                        let _ = write!(s, "extra    {}: replayed, not recorded live", describe(replayed));
                    }
                    DiffKind::Changed { recorded, replayed, fields } => {
                        let _ = write!(s, "changed  {}:", describe(recorded));
                        for f in fields {
                            let _ = write!(s, " {f} {} -> {}", field(recorded, f), field(replayed, f));
                            if Some(f) != fields.last() {
                                s.push(';');
                            }
                        }
                    }
                }
                let l = d.loss;
                if l.ring_drops > 0 || l.writer_drops > 0 {
                    let _ = write!(
                        s,
                        "; explained by loss in the window: {} ring drops, {} writer drops",
                        l.ring_drops, l.writer_drops
                    );
                } else if l.writer_drops_before > 0 {
                    let _ = write!(
                        s,
                        "; possibly explained by {} writer drops earlier in the run",
                        l.writer_drops_before
                    );
                } else {
                    s.push_str("; no recorded loss explains it");
                }
                s.push('\n');
            }
        }
        let bad = self.runs.iter().filter(|r| !r.diffs.is_empty()).count();
        let runs = self.runs.len();
        let _ = if self.is_equal() {
            writeln!(s, "parity: equal ({runs} run{})", if runs == 1 { "" } else { "s" })
        } else {
            writeln!(s, "parity: {} differences in {bad} of {runs} runs", self.differences())
        };
        s
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn describe(a: &Alert) -> String {
    format!("id {} {} (rule {}) {}..{}", a.id, a.class, a.rule_id, a.first_ts, a.last_ts)
}

fn ips(v: &[std::net::IpAddr]) -> String {
    let s: Vec<String> = v.iter().map(|ip| ip.to_string()).collect();
    format!("[{}]", s.join(","))
}

fn field(a: &Alert, name: &str) -> String {
    match name {
        "id" => a.id.to_string(),
        "rule_id" => a.rule_id.clone(),
        "class" => a.class.clone(),
        "first_ts" => a.first_ts.to_decimal(),
        "last_ts" => a.last_ts.to_decimal(),
        "src" => ips(&a.src),
        "src_count" => a.src_count.to_string(),
        "dst" => ips(&a.dst),
        "dst_count" => a.dst_count.to_string(),
        "count" => a.count.to_string(),
        _ => String::new(),
    }
}

/// The compared fields besides the id: rule, class, window, sources, targets, count.
fn changed_fields(a: &Alert, b: &Alert) -> Vec<&'static str> {
    let mut f = Vec::new();
    let mut check = |name, same: bool| {
        if !same {
            f.push(name);
        }
    };
    check("rule_id", a.rule_id == b.rule_id);
    check("class", a.class == b.class);
    check("first_ts", a.first_ts == b.first_ts);
    check("last_ts", a.last_ts == b.last_ts);
    check("src", a.src == b.src);
    check("src_count", a.src_count == b.src_count);
    check("dst", a.dst == b.dst);
    check("dst_count", a.dst_count == b.dst_count);
    check("count", a.count == b.count);
    f
}

/// Reads every non-packet record of one segment; returns its sequence number too.
fn scan_segment(path: &Path) -> Result<(u64, RecordedRun), ParityError> {
    let file = File::open(path).map_err(|source| ParityError::Io { path: path.to_path_buf(), source })?;
    let mut reader = SegmentReader::new(BufReader::new(file), Recovery::SkipCorrupt)
        .map_err(|source| ParityError::Segment { path: path.to_path_buf(), source })?;
    let seq = reader.header().seq;
    let mut run = RecordedRun { segments: vec![path.to_path_buf()], ..RecordedRun::default() };
    let mut meta = None;
    loop {
        match reader.next_block() {
            Ok(Some(b)) => match b.body {
                BlockBody::Meta(m) => {
                    if meta.is_none() {
                        meta = m.into_iter().next();
                    }
                }
                BlockBody::Packets(p) => run.packets += p.len() as u64,
                BlockBody::Alerts(v) => {
                    for a in v {
                        run.alerts.insert(a.id, a);
                    }
                }
                BlockBody::Loss(v) => run.losses.extend(v),
                BlockBody::Flows(_) => {}
                BlockBody::Trailer(_) => run.clean_end = true,
            },
            Ok(None) => break,
            Err(e) => {
                run.warnings.push(format!("{}: {e}", path.display()));
                break;
            }
        }
        for w in reader.take_warnings() {
            run.warnings.push(format!("{}: {w}", path.display()));
        }
    }
    for w in reader.take_warnings() {
        run.warnings.push(format!("{}: {w}", path.display()));
    }
    let Some(meta) = meta else {
        return Err(ParityError::NoMeta { path: path.to_path_buf() });
    };
    run.run_id = meta.run_id;
    run.meta = meta;
    Ok((seq, run))
}

/// Reads the segments and groups them into runs: sorted by sequence number, consecutive
/// segments with the same `run_id` form one run.
pub fn read_runs(paths: &[PathBuf]) -> Result<Vec<RecordedRun>, ParityError> {
    let mut segs = Vec::with_capacity(paths.len());
    for p in paths {
        segs.push(scan_segment(p)?);
    }
    segs.sort_by(|a, b| (a.0, &a.1.segments).cmp(&(b.0, &b.1.segments)));
    let mut runs: Vec<RecordedRun> = Vec::new();
    for (_, s) in segs {
        match runs.last_mut() {
            Some(r) if r.run_id == s.run_id => {
                r.segments.extend(s.segments);
                // Alert ids are per run; a later record of an id is its later state.
                r.alerts.extend(s.alerts);
                r.losses.extend(s.losses);
                r.packets += s.packets;
                r.clean_end = s.clean_end;
                r.warnings.extend(s.warnings);
            }
            _ => runs.push(s),
        }
    }
    for r in &mut runs {
        r.losses.sort_by_key(|l| l.ts);
    }
    Ok(runs)
}

/// Rebuilds a rule set from its canonical text (`RuleSet::canonical`) by rewriting it as a rule
/// file; the caller checks the digest of the result, so any mismatch is caught, never used.
pub fn rules_from_canonical(path: &Path, text: &str) -> Result<RuleSet, ParityError> {
    let bad = |line: usize, reason| ParityError::RuleText { path: path.to_path_buf(), line, reason };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "netrec-rules v1")) => {}
        _ => return Err(bad(1, "unknown canonical rule-set version")),
    }
    let mut toml = String::with_capacity(text.len() + text.len() / 4);
    let mut detector: Option<DetectorKind> = None;
    for (i, line) in lines {
        let n = i + 1;
        if line == "[rule]" {
            toml.push_str("[[rule]]\n");
            detector = None;
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| bad(n, "expected key=value"))?;
        match key {
            "id" | "attack_id" | "enabled" => {
                let _ = writeln!(toml, "{key} = {value}");
            }
            "detector" => {
                detector = Some(DetectorKind::from_name(value).ok_or_else(|| bad(n, "unknown detector"))?);
                let _ = writeln!(toml, "detector = \"{value}\"");
            }
            "severity" | "track" => {
                let _ = writeln!(toml, "{key} = \"{value}\"");
            }
            "window_ns" | "suppress_ns" => {
                let ns: u64 = value.parse().map_err(|_| bad(n, "expected nanoseconds"))?;
                let _ = writeln!(toml, "{} = \"{ns}ns\"", key.trim_end_matches("_ns"));
            }
            param => {
                let kind = detector
                    .and_then(|d| d.params().iter().find(|s| s.name == param))
                    .map(|s| s.kind)
                    .ok_or_else(|| bad(n, "unknown parameter for the rule's detector"))?;
                match kind {
                    ParamKind::Nets => {
                        let items: Vec<String> = value
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| format!("\"{}\"", s.replace(['"', '\\'], "")))
                            .collect();
                        let _ = writeln!(toml, "{param} = [{}]", items.join(", "));
                    }
                    // Hex per pattern in the canonical text; `|..|` runs in a rule file.
                    ParamKind::Patterns if value.is_empty() => {}
                    ParamKind::Patterns => {
                        let mut items = Vec::new();
                        for hex in value.split(',') {
                            let bytes = hex::decode(hex).map_err(|_| bad(n, "expected hex patterns"))?;
                            let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                            items.push(format!("\"|{}|\"", pairs.join(" ")));
                        }
                        let _ = writeln!(toml, "{param} = [{}]", items.join(", "));
                    }
                    ParamKind::Float { .. } => {
                        let v = match value {
                            "NaN" => "nan",
                            v => v,
                        };
                        let _ = writeln!(toml, "{param} = {v}");
                    }
                    _ => {
                        let _ = writeln!(toml, "{param} = {value}");
                    }
                }
            }
        }
    }
    RuleSet::parse(&path.display().to_string(), &toml)
        .map_err(|source| ParityError::RuleParse { path: path.to_path_buf(), source })
}

/// The rule set a run recorded, checked against its digest.
pub fn recorded_rules(run: &RecordedRun) -> Result<RuleSet, ParityError> {
    let path = run.segments.first().cloned().unwrap_or_default();
    let meta = &run.meta;
    if meta.ruleset_text.is_empty() {
        return Err(ParityError::NoRuleText { path, digest: meta.ruleset_digest.clone() });
    }
    let text_digest = hex::encode(sha2::Sha256::digest(meta.ruleset_text.as_bytes()));
    if text_digest != meta.ruleset_digest {
        return Err(ParityError::RuleTextDigest {
            path,
            expected: meta.ruleset_digest.clone(),
            actual: text_digest,
        });
    }
    let rules = rules_from_canonical(&path, &meta.ruleset_text)?;
    let digest = rules.digest();
    if digest != meta.ruleset_digest {
        return Err(ParityError::RuleTextDigest {
            path,
            expected: meta.ruleset_digest.clone(),
            actual: digest,
        });
    }
    Ok(rules)
}

/// Collects the final state of each replayed alert.
#[derive(Default)]
struct FinalAlerts(BTreeMap<u64, Alert>);

impl EngineSink for FinalAlerts {
    fn alert(&mut self, alert: Alert) {
        self.0.insert(alert.id, alert);
    }
    fn alert_update(&mut self, alert: Alert) {
        self.0.insert(alert.id, alert);
    }
    fn flow(&mut self, _flow: FlowRecord) {}
}

/// Replays one run's headers with `rules`; returns the final alerts.
pub fn replay_run(run: &RecordedRun, rules: &RuleSet) -> Result<BTreeMap<u64, Alert>, ParityError> {
    let mut engine = Engine::new(rules.clone(), Limits::default());
    let mut sink = FinalAlerts::default();
    for path in &run.segments {
        let mut src = SegmentPackets::open(path)?;
        while let Some(pkt) = src.next_packet()? {
            let dec = decode(pkt.link_type, pkt.data, pkt.wire_len);
            engine.process(&pkt, &dec, &mut sink);
        }
    }
    // The live engine is finished at a clean shutdown only; a crashed run never was.
    if run.clean_end {
        engine.finish(&mut sink);
    }
    Ok(sink.0)
}

/// Compares recorded and replayed alerts; each difference carries the loss of its window.
pub fn compare(
    recorded: &BTreeMap<u64, Alert>,
    replayed: &BTreeMap<u64, Alert>,
    losses: &[LossRecord],
) -> Vec<AlertDiff> {
    let mut tally = EvidenceTally::default();
    losses.iter().for_each(|l| tally.loss(l));
    let loss_of = |a: &Alert| {
        let ev = tally.evidence(a.first_ts, a.last_ts).unwrap_or_default();
        // Every writer drop up to the loss record that closes the window's interval.
        let end = a.last_ts.max(a.first_ts);
        let mut before = 0;
        for l in losses {
            before += l.writer_drops;
            if l.ts >= end {
                break;
            }
        }
        WindowLoss { ring_drops: ev.ring_drops, writer_drops: ev.writer_drops, writer_drops_before: before }
    };
    // Pairs: same id and rule first; then, for what is left (ids shift after a missing or extra
    // alert), the same rule, start and targets; the rest is missing or extra.
    let mut pairs: Vec<(&Alert, &Alert)> = Vec::new();
    let mut rec_left: Vec<&Alert> = Vec::new();
    let mut rep_used = std::collections::BTreeSet::new();
    for (id, r) in recorded {
        match replayed.get(id) {
            Some(p) if p.rule_id == r.rule_id => {
                pairs.push((r, p));
                rep_used.insert(*id);
            }
            _ => rec_left.push(r),
        }
    }
    let mut rec_unpaired = Vec::new();
    for r in rec_left {
        let found = replayed.values().find(|p| {
            !rep_used.contains(&p.id) && p.rule_id == r.rule_id && p.first_ts == r.first_ts && p.dst == r.dst
        });
        match found {
            Some(p) => {
                rep_used.insert(p.id);
                pairs.push((r, p));
            }
            None => rec_unpaired.push(r),
        }
    }
    let mut out = Vec::new();
    for (r, p) in pairs {
        let mut fields = changed_fields(r, p);
        if r.id != p.id {
            fields.insert(0, "id");
        }
        if !fields.is_empty() {
            let kind =
                DiffKind::Changed { recorded: Box::new(r.clone()), replayed: Box::new(p.clone()), fields };
            out.push(AlertDiff { id: r.id, loss: loss_of(r), kind });
        }
    }
    for r in rec_unpaired {
        out.push(AlertDiff {
            id: r.id,
            loss: loss_of(r),
            kind: DiffKind::Missing { recorded: Box::new(r.clone()) },
        });
    }
    for p in replayed.values().filter(|p| !rep_used.contains(&p.id)) {
        out.push(AlertDiff {
            id: p.id,
            loss: loss_of(p),
            kind: DiffKind::Extra { replayed: Box::new(p.clone()) },
        });
    }
    // Recorded id order; an extra alert sorts by its replayed id.
    out.sort_by_key(|d| (d.id, matches!(d.kind, DiffKind::Extra { .. })));
    out
}

/// Checks parity of every run in `paths` (segment files). `rules_override` replaces the recorded
/// rule set (its digest differing from the recorded one is reported as a warning).
pub fn check_parity(
    paths: &[PathBuf],
    rules_override: Option<&RuleSet>,
) -> Result<ParityReport, ParityError> {
    let runs = read_runs(paths)?;
    let mut report = ParityReport::default();
    for run in runs {
        let mut warnings = run.warnings.clone();
        let rules = match rules_override {
            Some(r) => {
                let d = r.digest();
                if d != run.meta.ruleset_digest {
                    warnings.push(format!(
                        "--rules (sha256 {}) differ from the recorded rule set (sha256 {}): differences may come from the rules",
                        short(&d),
                        short(&run.meta.ruleset_digest)
                    ));
                }
                r.clone()
            }
            None => recorded_rules(&run)?,
        };
        if !run.clean_end {
            warnings.push(
                "the run's last segment has no trailer (unclean stop): open incidents are not finished"
                    .into(),
            );
        }
        let replayed = replay_run(&run, &rules)?;
        let diffs = compare(&run.alerts, &replayed, &run.losses);
        report.runs.push(RunParity {
            run_id: run.run_id,
            segments: run.segments.clone(),
            recorded_digest: run.meta.ruleset_digest.clone(),
            replay_digest: rules.digest(),
            packets: run.packets,
            recorded: run.alerts.len(),
            replayed: replayed.len(),
            clean_end: run.clean_end,
            diffs,
            warnings,
        });
    }
    Ok(report)
}

/// Evidence of each alert of one segment input, from its loss records and header times (a
/// second read of the file; only the loss records and packet times are used). `None` for an
/// alert when the file has no loss records (no kernel counts).
pub fn segment_evidence(
    path: &Path,
    windows: &[(u64, Ts, Ts)],
) -> Result<BTreeMap<u64, netrec_format::Evidence>, ParityError> {
    Ok(segment_losses_and_evidence(std::slice::from_ref(&path.to_path_buf()), windows)?.1)
}

/// Stores a segment input's loss records and the evidence of its alerts (already added to
/// `writer`) in the database.
pub fn add_segment_evidence(
    files: &[PathBuf],
    writer: &mut crate::db::InputWriter<'_>,
) -> Result<(), ParityError> {
    let windows = writer.alert_windows();
    let (losses, evidence) = segment_losses_and_evidence(files, &windows)?;
    for l in &losses {
        writer.add_loss(l)?;
    }
    for (id, ev) in &evidence {
        writer.set_evidence(*id, ev)?;
    }
    Ok(())
}

/// The loss records of a segment (time order) and the evidence of each window.
#[allow(clippy::type_complexity)]
fn segment_losses_and_evidence(
    files: &[PathBuf],
    windows: &[(u64, Ts, Ts)],
) -> Result<(Vec<LossRecord>, BTreeMap<u64, netrec_format::Evidence>), ParityError> {
    let mut tally = EvidenceTally::default();
    // One file open at a time. A file of a chain whose header cannot be read was skipped by
    // the replay (with a warning): it holds no evidence here either.
    fn readers(files: &[PathBuf]) -> impl Iterator<Item = SegmentReader<BufReader<File>>> + '_ {
        files.iter().filter_map(|path| {
            let file = File::open(path).ok()?;
            SegmentReader::new(BufReader::with_capacity(1 << 20, file), Recovery::SkipCorrupt).ok()
        })
    }
    // Loss records first (their intervals), then every header time.
    let mut losses = Vec::new();
    for mut reader in readers(files) {
        while let Ok(Some(b)) = reader.next_block() {
            if let BlockBody::Loss(v) = b.body {
                losses.extend(v);
            }
        }
    }
    let mut out = BTreeMap::new();
    if losses.is_empty() || windows.is_empty() {
        return Ok((losses, out));
    }
    losses.sort_by_key(|l| l.ts);
    losses.iter().for_each(|l| tally.loss(l));
    for mut reader in readers(files) {
        while let Ok(Some(b)) = reader.next_block() {
            if let BlockBody::Packets(p) = b.body {
                for pkt in p.iter() {
                    tally.packet(pkt.ts);
                }
            }
        }
    }
    for &(id, first, last) in windows {
        if let Some(ev) = tally.evidence(first, last) {
            out.insert(id, ev);
        }
    }
    Ok((losses, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CaptureSource;
    use netrec_format::PacketRecord;
    use netrec_format::segment::{SegmentHeaderInfo, SegmentWriter, WriterConfig};

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)
    }

    fn packets(name: &str) -> Vec<PacketRecord> {
        let mut src = CaptureSource::open(&fixture(&format!("pcap/{name}"))).unwrap();
        let mut v = Vec::new();
        while let Some(p) = src.next_packet().unwrap() {
            v.push(PacketRecord {
                ts: p.ts,
                iface: p.iface,
                direction: p.direction,
                link_type: p.link_type,
                wire_len: p.wire_len,
                data: p.data.to_vec(),
            });
        }
        v
    }

    /// Every alert record in emission order, as the live recorder stores them.
    #[derive(Default)]
    struct AllAlerts(Vec<Alert>);
    impl EngineSink for AllAlerts {
        fn alert(&mut self, a: Alert) {
            self.0.push(a);
        }
        fn alert_update(&mut self, a: Alert) {
            self.0.push(a);
        }
        fn flow(&mut self, _f: FlowRecord) {}
    }

    /// What a live run does: the engine sees every packet; the segment gets the packets for which
    /// `written` says so, the alerts (after `tamper`), and `losses`.
    fn record(
        dir: &Path,
        pkts: &[PacketRecord],
        written: impl Fn(usize) -> bool,
        losses: &[LossRecord],
        tamper: impl Fn(&mut Vec<Alert>),
    ) -> (PathBuf, Vec<Alert>) {
        let rules = RuleSet::default_pack();
        let mut engine = Engine::new(rules.clone(), Limits::default());
        let mut sink = AllAlerts::default();
        for p in pkts {
            let r = p.as_ref();
            engine.process(&r, &decode(r.link_type, r.data, r.wire_len), &mut sink);
        }
        engine.finish(&mut sink);
        let mut alerts = sink.0;
        let live = alerts.clone();
        tamper(&mut alerts);
        let path = dir.join("seg-00000000000000000001.nrseg");
        let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
        let cfg =
            WriterConfig { max_block_bytes: 8192, max_block_age_ns: 0, zstd_level: 1, header_delta: true };
        let mut w = SegmentWriter::new(File::create(&path).unwrap(), info, cfg).unwrap();
        w.write_meta(&SegmentMeta {
            host: "test".into(),
            ruleset_text: rules.canonical(),
            ruleset_digest: rules.digest(),
            run_id: 1,
            ..SegmentMeta::default()
        })
        .unwrap();
        for (i, p) in pkts.iter().enumerate() {
            if written(i) {
                w.push_packet(&p.as_ref()).unwrap();
            }
        }
        for a in &alerts {
            w.push_alert(a).unwrap();
        }
        for l in losses {
            w.push_loss(l).unwrap();
        }
        w.finish().unwrap();
        (path, live)
    }

    fn loss_at(ts: Ts, kernel: u64, ring: u64, writer: u64) -> LossRecord {
        LossRecord {
            ts,
            kernel_packets: kernel,
            ring_drops: ring,
            writer_drops: writer,
            ..LossRecord::default()
        }
    }

    #[test]
    fn recorded_canonical_rules_parse_back_to_the_same_digest() {
        let mut rules = RuleSet::default_pack();
        let text = std::fs::read_to_string(fixture("rules/blocklist.toml")).unwrap();
        let base = fixture("rules");
        let extra = RuleSet::parse_with("blocklist.toml", &text, &mut |n: &str| {
            std::fs::read_to_string(base.join(n)).map_err(|e| e.to_string())
        })
        .unwrap();
        rules = rules.merge(extra);
        // Every kind of signature parameter, with text that needs escaping.
        let sig = RuleSet::parse(
            "sig.toml",
            "[[rule]]\nid = \"sig\"\ndetector = \"signature\"\nproto = \"udp\"\nsrc_ips = [\"192.0.2.0/24\"]\n\
             dst_ports = [53]\ncontent = [\"a|00 7c|\\\"b\", \"é\"]\nnocase = true\noffset = 2\ndepth = 9\n\
             message = \"say \\\"hi\\\" \\\\ é\"\n",
        )
        .unwrap();
        assert_eq!(sig.rules()[0].text("message"), "say \"hi\" \\ é");
        rules = rules.merge(sig);
        let back = rules_from_canonical(Path::new("x"), &rules.canonical()).unwrap();
        assert_eq!(back.digest(), rules.digest());
        assert_eq!(back.canonical(), rules.canonical());
    }

    #[test]
    fn an_untouched_recording_has_parity() {
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets("syn_flood.pcap");
        let last = pkts.last().unwrap().ts;
        let (path, live) =
            record(dir.path(), &pkts, |_| true, &[loss_at(last, pkts.len() as u64, 0, 0)], |_| {});
        assert!(!live.is_empty(), "the fixture raises alerts");
        let report = check_parity(&[path], None).unwrap();
        assert!(report.is_equal(), "{}", report.render());
        let r = &report.runs[0];
        assert_eq!((r.recorded, r.replayed, r.packets), (r.replayed, r.recorded, pkts.len() as u64));
        assert!(report.render().contains(": equal\n"), "{}", report.render());
    }

    #[test]
    fn a_tampered_alert_record_is_a_difference_with_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets("syn_flood.pcap");
        let last = pkts.last().unwrap().ts;
        let (path, live) = record(
            dir.path(),
            &pkts,
            |_| true,
            &[loss_at(last, pkts.len() as u64, 0, 0)],
            |a| {
                // The final record of alert 1 claims one more event.
                let i = a.iter().rposition(|x| x.id == 1).unwrap();
                a[i].count += 1;
            },
        );
        let report = check_parity(&[path], None).unwrap();
        assert!(!report.is_equal());
        let d = &report.runs[0].diffs;
        assert_eq!(d.len(), 1, "{}", report.render());
        let count = live.iter().rev().find(|x| x.id == 1).unwrap().count;
        match &d[0].kind {
            DiffKind::Changed { recorded, replayed, fields } => {
                assert_eq!(fields, &vec!["count"]);
                assert_eq!((recorded.count, replayed.count), (count + 1, count));
            }
            k => panic!("expected a change, got {k:?}"),
        }
        let text = report.render();
        assert!(text.contains(&format!("count {} -> {count}", count + 1)), "{text}");
        assert!(text.contains("no recorded loss explains it"), "{text}");
        assert!(text.contains("parity: 1 differences in 1 of 1 runs"), "{text}");
    }

    #[test]
    fn headers_lost_inside_an_alert_window_are_named_as_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets("syn_flood.pcap");
        // The disk filled for packets 200..1400: the live engine saw them, the segment lacks them,
        // and the ring overflowed in the same interval.
        let lost = 200..1400usize;
        let mid = pkts[1400].ts;
        let last = pkts.last().unwrap().ts;
        let losses =
            [loss_at(mid, 1400 + 50, 50, lost.len() as u64), loss_at(last, (pkts.len() - 1400) as u64, 0, 0)];
        let (path, _) = record(dir.path(), &pkts, |i| !lost.contains(&i), &losses, |_| {});
        let report = check_parity(&[path], None).unwrap();
        assert!(!report.is_equal(), "{}", report.render());
        let d = &report.runs[0].diffs;
        assert!(d.iter().all(|d| d.loss.explains()), "{}", report.render());
        let first = &d[0];
        assert_eq!(first.loss.ring_drops, 50, "{first:?}");
        assert_eq!(first.loss.writer_drops, lost.len() as u64);
        let text = report.render();
        assert!(text.contains("explained by loss in the window: 50 ring drops, 1200 writer drops"), "{text}");
    }

    #[test]
    fn rules_override_with_another_digest_is_a_warning_and_tampered_rule_text_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets("port_scan_syn.pcap");
        let (path, _) = record(dir.path(), &pkts, |_| true, &[], |_| {});
        let other = RuleSet::parse("r.toml", "[[rule]]\nid = \"only\"\ndetector = \"syn_flood\"\n").unwrap();
        let report = check_parity(std::slice::from_ref(&path), Some(&other)).unwrap();
        let r = &report.runs[0];
        assert!(
            r.warnings.iter().any(|w| w.contains("differ from the recorded rule set")),
            "{:?}",
            r.warnings
        );
        // The recorded port-scan alerts are missing under the other rules.
        assert!(r.diffs.iter().any(|d| matches!(d.kind, DiffKind::Missing { .. })), "{}", report.render());

        // Rule text that does not hash to the digest is refused.
        let mut run = read_runs(std::slice::from_ref(&path)).unwrap().remove(0);
        run.meta.ruleset_text = run.meta.ruleset_text.replacen("enabled=true", "enabled=false", 1);
        assert!(matches!(recorded_rules(&run), Err(ParityError::RuleTextDigest { .. })));
        run.meta.ruleset_text.clear();
        assert!(matches!(recorded_rules(&run), Err(ParityError::NoRuleText { .. })));
    }

    #[test]
    fn evidence_of_a_segment_counts_headers_per_loss_interval() {
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets("syn_flood.pcap");
        let mid = pkts[999].ts;
        let last = pkts.last().unwrap().ts;
        let n = pkts.len() as u64;
        let losses = [loss_at(mid, 1000, 0, 0), loss_at(last, n - 1000 + 7, 7, 0)];
        let (path, live) = record(dir.path(), &pkts, |_| true, &losses, |_| {});
        let a = live.iter().rev().find(|x| x.id == 1).unwrap();
        let ev =
            segment_evidence(&path, &[(1, a.first_ts, a.last_ts), (2, pkts[0].ts, pkts[10].ts)]).unwrap();
        // Ground truth from the packet list: the window spans both intervals iff it ends after `mid`.
        let both = a.last_ts > mid;
        assert!(both && a.first_ts <= mid, "the fixture's alert spans both intervals");
        let e1 = ev[&1];
        assert_eq!((e1.seen, e1.counted, e1.ring_drops, e1.complete), (n, n + 7, 7, false));
        let e2 = ev[&2];
        let in_first = pkts.iter().filter(|p| p.ts <= mid).count() as u64;
        assert_eq!((e2.seen, e2.counted, e2.complete), (in_first, 1000, in_first == 1000));
    }

    #[test]
    fn analyzed_segment_alerts_carry_evidence_into_sqlite_and_the_report() {
        use crate::db::{Db, InputInfo, InputStats};
        use crate::report::{Report, ReportKind};
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets("syn_flood.pcap");
        let n = pkts.len() as u64;
        let last = pkts.last().unwrap().ts;
        // One interval covering everything; the kernel counted 3 packets the ring dropped.
        let (path, live) = record(dir.path(), &pkts, |_| true, &[loss_at(last, n + 3, 3, 0)], |_| {});
        let mut db = Db::open(dir.path().join("db.sqlite")).unwrap();
        let info = InputInfo {
            path: path.clone(),
            sha256: "aa".into(),
            format: "segment".into(),
            size_bytes: 1,
            files: Vec::new(),
        };
        let mut w = db.begin_input(info).unwrap().unwrap();
        for a in &live {
            w.add_alert(a).unwrap();
        }
        add_segment_evidence(std::slice::from_ref(&path), &mut w).unwrap();
        w.finish(InputStats::default()).unwrap();
        let rows: Vec<(i64, i64, i64, bool)> = db
            .conn()
            .prepare("SELECT alert_id, evidence_seen, evidence_counted, evidence_complete FROM alerts ORDER BY alert_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!rows.is_empty());
        for (_, seen, counted, complete) in &rows {
            assert_eq!((*seen, *counted, *complete), (n as i64, n as i64 + 3, false));
        }
        let losses: i64 =
            db.conn().query_row("SELECT sum(ring_drops) FROM losses", [], |r| r.get(0)).unwrap();
        assert_eq!(losses, 3);
        let md = Report::load(&db, ReportKind::Incidents).unwrap().to_markdown();
        assert!(md.contains(&format!("{n}/{} headers, INCOMPLETE", n + 3)), "{md}");
        assert!(md.contains("INCOMPLETE for"), "{md}");
    }

    #[test]
    fn a_missing_alert_does_not_turn_every_later_one_into_a_change() {
        let mk = |id, rule: &str, first| Alert {
            id,
            rule_id: rule.into(),
            class: rule.into(),
            severity: netrec_format::Severity::High,
            attack_id: String::new(),
            first_ts: Ts(first),
            last_ts: Ts(first + 5),
            src: vec![],
            src_count: 0,
            dst: vec![],
            dst_count: 0,
            dst_ports: vec![],
            count: 3,
            stats: vec![],
            message: String::new(),
        };
        let recorded: BTreeMap<u64, Alert> =
            [mk(1, "a", 10), mk(2, "b", 20), mk(3, "c", 30)].into_iter().map(|a| (a.id, a)).collect();
        let mut c = mk(2, "c", 30);
        c.count = 4;
        let replayed: BTreeMap<u64, Alert> =
            [mk(1, "b", 20), c, mk(3, "d", 40)].into_iter().map(|a| (a.id, a)).collect();
        let losses = [loss_at(Ts(100), 10, 0, 2)];
        let d = compare(&recorded, &replayed, &losses);
        let kinds: Vec<(u64, &str, Vec<&str>)> = d
            .iter()
            .map(|d| match &d.kind {
                DiffKind::Missing { .. } => (d.id, "missing", vec![]),
                DiffKind::Extra { .. } => (d.id, "extra", vec![]),
                DiffKind::Changed { fields, .. } => (d.id, "changed", fields.clone()),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, "missing", vec![]),
                (2, "changed", vec!["id"]),
                (3, "changed", vec!["id", "count"]),
                (3, "extra", vec![]),
            ]
        );
        assert!(d.iter().all(|d| d.loss.writer_drops == 2 && d.loss.explains()));
    }
}
