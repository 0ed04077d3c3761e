//! Pure renderers: one `Alert` -> the bytes each sink sends (EVE JSON, webhook bodies, RFC 5424,
//! CEF, mail text). No I/O, no clock: every time shown is the alert's packet time, so the same
//! alerts render to the same bytes.
//!
//! `format::Alert` is not changed for delivery (golden files depend on it); everything a SIEM
//! schema wants and the alert does not hold directly is derived here, by documented rules
//! (docs/alerts.md "EVE mapping").

use netrec_format::segment::name::civil_from_unix;
use netrec_format::{Alert, Severity, Ts};
use serde_json::{Value, json};
use sha1::Digest as _;
use std::fmt::Write as _;
use std::net::IpAddr;

/// One alert as handed to the sinks: the first report of an incident, or an update of it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    pub update: bool,
    pub alert: Alert,
}

/// IANA protocol number and EVE name a detector class is about; None for classes that look at
/// any IP traffic (volumetric, header and fragment anomalies, land, blocklist, user detectors).
pub fn class_proto(class: &str) -> Option<(u8, &'static str)> {
    Some(match class {
        "syn_flood" | "port_scan" | "tcp_flag_anomaly" | "brute_force" | "land" => (6, "TCP"),
        "udp_flood" | "amplification" | "dns_tunnel" => (17, "UDP"),
        "icmp_flood" | "host_sweep" => (1, "ICMP"),
        _ => return None,
    })
}

/// Suricata classification (classification.config wording) for a detector class.
pub fn class_category(class: &str) -> &'static str {
    match class {
        "syn_flood" | "udp_flood" | "icmp_flood" | "volumetric" | "amplification" | "land"
        | "fragment_anomaly" => "Attempted Denial of Service",
        "port_scan" | "host_sweep" => "Detection of a Network Scan",
        "brute_force" => "Attempted User Privilege Gain",
        "dns_tunnel" | "blocklist" | "signature" => "Potentially Bad Traffic",
        "tcp_flag_anomaly" | "ip_header_anomaly" => "Detection of a Non-Standard Protocol or Event",
        _ => "Misc activity",
    }
}

/// Suricata severity: 1 high .. 3 low.
pub fn eve_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical | Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low | Severity::Info => 3,
    }
}

/// Stable numeric signature id per rule id. The bundled rules have fixed ids (9000001..);
/// any other rule id maps into 9100000..9999999 by FNV-1a, the same value on every host and
/// run (a collision between two custom ids is possible and documented).
pub fn signature_id(rule_id: &str) -> u32 {
    const BUILTIN: [&str; 14] = [
        "syn-flood",
        "udp-flood",
        "icmp-flood",
        "volumetric",
        "udp-amplification",
        "port-scan",
        "host-sweep",
        "tcp-flag-anomaly",
        "land",
        "ip-header-anomaly",
        "fragment-anomaly",
        "brute-force",
        "dns-tunnel",
        "blocklist",
    ];
    if let Some(i) = BUILTIN.iter().position(|b| *b == rule_id) {
        return 9_000_001 + i as u32;
    }
    9_100_000 + fnv1a32(rule_id.as_bytes()) % 900_000
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The single (src, dst, dst port, proto) an alert is about, when it has exactly one of each.
/// The source port is never known to an alert: it is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
}

/// The tuple shown in EVE's `src_ip`/`dest_ip`/ports: first source, first target, and the port
/// only when the alert tracks exactly one.
pub fn alert_tuple(a: &Alert) -> Option<Tuple> {
    let (proto, _) = class_proto(&a.class)?;
    if a.src.len() != 1 || a.dst.len() != 1 || a.src_count > 1 || a.dst_count > 1 || a.dst_ports.len() != 1 {
        return None;
    }
    if proto == 1 {
        return None;
    }
    Some(Tuple { src: a.src[0], dst: a.dst[0], src_port: 0, dst_port: a.dst_ports[0], proto })
}

/// Community ID v1 (corelight/community-id-spec), seed 0, for TCP/UDP tuples.
pub fn community_id(t: &Tuple, seed: u16) -> Option<String> {
    let (a, b) = match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        _ => return None,
    };
    // Order the endpoints so both directions of a flow hash alike.
    let swap = (a.as_slice(), t.src_port) > (b.as_slice(), t.dst_port);
    let (ip1, ip2, p1, p2) =
        if swap { (&b, &a, t.dst_port, t.src_port) } else { (&a, &b, t.src_port, t.dst_port) };
    let mut h = sha1::Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(ip1);
    h.update(ip2);
    h.update([t.proto, 0]);
    h.update(p1.to_be_bytes());
    h.update(p2.to_be_bytes());
    let digest = h.finalize();
    Some(format!("1:{}", base64(&digest)))
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Suricata's `flow_id`: a positive integer below 2^51 (exact in every JSON reader). Alerts with
/// one tuple get the tuple's hash (the same flow_id for every alert about it); aggregate alerts
/// get the incident's hash (rule id + first time), so an incident's updates share it.
pub fn flow_id(a: &Alert) -> u64 {
    let mut h = sha1::Sha1::new();
    match alert_tuple(a) {
        Some(t) => {
            h.update(b"tuple");
            h.update(t.src.to_string());
            h.update(t.dst.to_string());
            h.update([t.proto]);
            h.update(t.dst_port.to_be_bytes());
        }
        None => {
            h.update(b"incident");
            h.update(a.rule_id.as_bytes());
            h.update(a.first_ts.0.to_be_bytes());
        }
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) & ((1 << 51) - 1)).max(1)
}

/// Suricata's timestamp form: `2017-04-07T22:24:37.251547+0000` (microseconds, UTC).
pub fn suricata_ts(ts: Ts) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(ts.0 / 1_000_000_000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}+0000", ts.0 % 1_000_000_000 / 1000)
}

/// RFC 3339 / RFC 5424 form: `2017-04-07T22:24:37.251547Z`.
pub fn rfc3339(ts: Ts) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(ts.0 / 1_000_000_000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z", ts.0 % 1_000_000_000 / 1000)
}

/// The time an event is about: the incident start for a new alert, its latest packet for an update.
pub fn event_ts(e: &AlertEvent) -> Ts {
    if e.update { e.alert.last_ts } else { e.alert.first_ts }
}

/// The signature text: constant per rule, like a Suricata rule's `msg`.
pub fn signature(a: &Alert) -> String {
    format!("NETREC {} {} ({})", a.class, a.rule_id, a.attack_id)
}

/// One EVE alert record (Suricata's EVE alert schema; extra netrec details under `netrec`).
pub fn eve_json(e: &AlertEvent) -> Value {
    let a = &e.alert;
    let tuple = alert_tuple(a);
    let mut v = json!({
        "timestamp": suricata_ts(event_ts(e)),
        "flow_id": flow_id(a),
        "event_type": "alert",
    });
    let m = v.as_object_mut().expect("object literal");
    if let Some(ip) = a.src.first() {
        m.insert("src_ip".into(), ip.to_string().into());
    }
    if let Some(t) = &tuple {
        m.insert("src_port".into(), t.src_port.into());
    }
    if let Some(ip) = a.dst.first() {
        m.insert("dest_ip".into(), ip.to_string().into());
    }
    if let Some(t) = &tuple {
        m.insert("dest_port".into(), t.dst_port.into());
    } else if a.dst_ports.len() == 1 {
        m.insert("dest_port".into(), a.dst_ports[0].into());
    }
    m.insert("proto".into(), class_proto(&a.class).map_or("IP", |(_, n)| n).into());
    if let Some(cid) = tuple.as_ref().and_then(|t| community_id(t, 0)) {
        m.insert("community_id".into(), cid.into());
    }
    m.insert(
        "alert".into(),
        json!({
            "action": "allowed",
            "gid": 1,
            "signature_id": signature_id(&a.rule_id),
            "rev": 1,
            "signature": signature(a),
            "category": class_category(&a.class),
            "severity": eve_severity(a.severity),
            "metadata": {
                "mitre_technique_id": [a.attack_id],
                "netrec_rule_id": [a.rule_id],
            },
        }),
    );
    let mut n = netrec_rules::alert_json(a);
    n["event"] = Value::from(if e.update { "update" } else { "alert" });
    m.insert("netrec".into(), n);
    v
}

/// The netrec JSONL alert schema plus `event` (the generic webhook body).
pub fn generic_json(e: &AlertEvent) -> Value {
    let mut v = netrec_rules::alert_json(&e.alert);
    v["event"] = Value::from(if e.update { "update" } else { "alert" });
    v
}

/// A short human line: `[HIGH] syn-flood: <message>`.
pub fn headline(e: &AlertEvent) -> String {
    let a = &e.alert;
    let kind = if e.update { " (update)" } else { "" };
    format!("[{}] {}{}: {}", a.severity.as_str().to_ascii_uppercase(), a.rule_id, kind, a.message)
}

fn ip_list(ips: &[IpAddr], total: u64) -> String {
    let mut s = String::new();
    for (i, ip) in ips.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{ip}");
    }
    if total > ips.len() as u64 {
        let _ = write!(s, " (+{} more)", total - ips.len() as u64);
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Detail lines shared by Slack, WeChat and mail bodies.
fn details(a: &Alert) -> Vec<(&'static str, String)> {
    vec![
        ("Rule", format!("{} ({}, {})", a.rule_id, a.class, a.attack_id)),
        ("Severity", a.severity.as_str().to_string()),
        ("Time", format!("{} .. {}", rfc3339(a.first_ts), rfc3339(a.last_ts))),
        ("Sources", ip_list(&a.src, a.src_count)),
        ("Targets", ip_list(&a.dst, a.dst_count)),
        (
            "Ports",
            if a.dst_ports.is_empty() {
                "-".to_string()
            } else {
                a.dst_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            },
        ),
        ("Events", a.count.to_string()),
    ]
}

/// Slack incoming-webhook body: `text` (fallback/notification) and Block Kit `blocks`.
pub fn slack_json(e: &AlertEvent) -> Value {
    let fields: Vec<Value> = details(&e.alert)
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&v))}))
        .collect();
    // Slack allows at most 10 fields per section block.
    let (first, rest) = fields.split_at(fields.len().min(10));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&headline(e), 150)}}),
        json!({"type": "section", "fields": first}),
    ];
    if !rest.is_empty() {
        blocks.push(json!({"type": "section", "fields": rest}));
    }
    json!({ "text": headline(e), "blocks": blocks })
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// WeChat Work group-robot markdown message.
pub fn wechat_json(e: &AlertEvent) -> Value {
    let a = &e.alert;
    let color = match a.severity {
        Severity::Critical | Severity::High => "warning",
        Severity::Medium => "comment",
        Severity::Low | Severity::Info => "info",
    };
    let mut content = format!("## <font color=\"{color}\">{}</font>\n", headline(e));
    for (k, v) in details(a) {
        let _ = writeln!(content, "> **{k}**: {v}");
    }
    // The robot API rejects markdown content over 4096 bytes.
    json!({ "msgtype": "markdown", "markdown": { "content": truncate(&content, 4096) } })
}

/// Cut at a char boundary to at most `max` bytes.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Mail digest: (subject, plain text body) for a batch of events.
pub fn mail_digest(events: &[std::sync::Arc<AlertEvent>], subject_prefix: &str) -> (String, String) {
    let subject = match events {
        [one] => format!("{subject_prefix} {}", headline(one)),
        _ => format!("{subject_prefix} {} alerts", events.len()),
    };
    let mut body = String::new();
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push('\n');
        }
        let _ = writeln!(body, "{}", headline(e));
        for (k, v) in details(&e.alert) {
            let _ = writeln!(body, "  {k:<9} {v}");
        }
    }
    (truncate(&subject, 200).replace(['\r', '\n'], " "), body)
}

/// Syslog severity (RFC 5424 §6.2.1) for an alert severity.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// RFC 5424 SD-PARAM value escaping (§6.3.3): `"`, `\` and `]`.
fn sd_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// A header field: printable US-ASCII without spaces, at most `max` chars, or `-`.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() { "-".to_string() } else { f }
}

/// The structured-data ID: `netrec@32473` (32473 is the enterprise number RFC 5612 reserves
/// for documentation; netrec has no private one).
pub const SD_ID: &str = "netrec@32473";

/// Fields shared by RFC 5424 headers.
#[derive(Clone, Debug)]
pub struct SyslogHeader {
    /// Facility number (16 = local0).
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
}

/// One RFC 5424 message (no transport framing). `msg` is the MSG part (text or CEF).
pub fn rfc5424(h: &SyslogHeader, e: &AlertEvent, msg: &str, with_sd: bool) -> String {
    let a = &e.alert;
    let pri = u16::from(h.facility.min(23)) * 8 + u16::from(syslog_severity(a.severity));
    let msgid = if e.update { "update" } else { "alert" };
    let sd = if with_sd {
        let mut sd = format!("[{SD_ID}");
        let mut param = |k: &str, v: &str| {
            let _ = write!(sd, " {k}=\"{}\"", sd_escape(v));
        };
        param("rule_id", &a.rule_id);
        param("class", &a.class);
        param("severity", a.severity.as_str());
        param("attack_id", &a.attack_id);
        param("signature_id", &signature_id(&a.rule_id).to_string());
        param("alert_id", &a.id.to_string());
        param("first_ts", &a.first_ts.to_decimal());
        param("last_ts", &a.last_ts.to_decimal());
        if let Some(ip) = a.src.first() {
            param("src", &ip.to_string());
        }
        param("src_count", &a.src_count.to_string());
        if let Some(ip) = a.dst.first() {
            param("dst", &ip.to_string());
        }
        param("dst_count", &a.dst_count.to_string());
        if let Some(p) = a.dst_ports.first() {
            param("dst_port", &p.to_string());
        }
        param("count", &a.count.to_string());
        sd.push(']');
        sd
    } else {
        "-".to_string()
    };
    format!(
        "<{pri}>1 {} {} {} {} {msgid} {sd} {msg}",
        rfc3339(event_ts(e)),
        header_field(&h.hostname, 255),
        header_field(&h.app_name, 48),
        header_field(&h.procid, 128),
    )
}

/// CEF header field escaping: `\` and `|`.
fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// CEF extension value escaping: `\`, `=`, and line breaks.
fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\r', "\\r").replace('\n', "\\n")
}

/// CEF severity 0..10.
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 10,
        Severity::High => 8,
        Severity::Medium => 5,
        Severity::Low => 3,
        Severity::Info => 1,
    }
}

/// One ArcSight CEF:0 record.
pub fn cef(e: &AlertEvent, version: &str) -> String {
    let a = &e.alert;
    let mut ext = format!(
        "rt={} start={} end={} cat={} cnt={} act={} cs1Label=ruleId cs1={} cs2Label=attackId cs2={}",
        a.first_ts.0 / 1_000_000,
        a.first_ts.0 / 1_000_000,
        a.last_ts.0 / 1_000_000,
        cef_value(&a.class),
        a.count,
        if e.update { "update" } else { "alert" },
        cef_value(&a.rule_id),
        cef_value(&a.attack_id),
    );
    let ip_key = |ip: &IpAddr, v4: &'static str, v6: &'static str| if ip.is_ipv4() { v4 } else { v6 };
    if let Some(ip) = a.src.first() {
        let _ = write!(ext, " {}={ip}", ip_key(ip, "src", "c6a2"));
    }
    if let Some(ip) = a.dst.first() {
        let _ = write!(ext, " {}={ip}", ip_key(ip, "dst", "c6a3"));
    }
    if let Some(p) = a.dst_ports.first() {
        let _ = write!(ext, " dpt={p}");
    }
    if let Some((_, name)) = class_proto(&a.class) {
        let _ = write!(ext, " proto={name}");
    }
    let _ = write!(ext, " cn1Label=sourceCount cn1={} cn2Label=targetCount cn2={}", a.src_count, a.dst_count);
    let _ = write!(ext, " msg={}", cef_value(&a.message));
    format!(
        "CEF:0|netrec|netrec|{}|{}|{}|{}|{ext}",
        cef_header(version),
        signature_id(&a.rule_id),
        cef_header(&signature(a)),
        cef_severity(a.severity)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn alert() -> Alert {
        Alert {
            id: 3,
            rule_id: "port-scan".into(),
            class: "port_scan".into(),
            severity: Severity::Medium,
            attack_id: "T1046".into(),
            first_ts: Ts(1_418_145_369_924_505_488),
            last_ts: Ts(1_418_145_370_000_000_000),
            src: vec!["128.232.110.120".parse().unwrap()],
            src_count: 1,
            dst: vec!["66.35.250.204".parse().unwrap()],
            dst_count: 1,
            dst_ports: vec![80],
            count: 42,
            stats: vec![("ports".into(), 30.0)],
            message: "scan of 30 ports".into(),
        }
    }

    fn tuple(s: &str, sp: u16, d: &str, dp: u16, proto: u8) -> Tuple {
        Tuple { src: s.parse().unwrap(), dst: d.parse().unwrap(), src_port: sp, dst_port: dp, proto }
    }

    #[test]
    fn community_id_matches_spec_vectors() {
        // Vectors from the Community ID spec's baseline and its reference implementations.
        let t = tuple("128.232.110.120", 34855, "66.35.250.204", 80, 6);
        assert_eq!(community_id(&t, 0).unwrap(), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Either direction gives the same ID.
        let r = tuple("66.35.250.204", 80, "128.232.110.120", 34855, 6);
        assert_eq!(community_id(&r, 0).unwrap(), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let u = tuple("192.168.1.52", 54585, "8.8.8.8", 53, 17);
        assert_eq!(community_id(&u, 0).unwrap(), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
        let s = tuple("192.168.170.8", 7, "192.168.170.56", 7, 132);
        assert_eq!(community_id(&s, 0).unwrap(), "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=");
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(suricata_ts(Ts(1_418_145_369_924_505_488)), "2014-12-09T17:16:09.924505+0000");
        assert_eq!(rfc3339(Ts(0)), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn signature_ids_are_stable_and_in_range() {
        assert_eq!(signature_id("syn-flood"), 9_000_001);
        assert_eq!(signature_id("blocklist"), 9_000_014);
        let c = signature_id("my-rule");
        assert_eq!(c, signature_id("my-rule"));
        assert!((9_100_000..10_000_000).contains(&c));
        assert_ne!(signature_id("my-rule"), signature_id("my-rule2"));
    }

    #[test]
    fn eve_for_single_tuple_and_aggregate() {
        let e = AlertEvent { update: false, alert: alert() };
        let v = eve_json(&e);
        // Expected ID computed with the reference Python implementation (pip `communityid`).
        assert_eq!(v["community_id"], "1:yrNkRN7VyfVz1Wh12tjRHhxERxM=");
        assert_eq!(v["src_port"], 0);
        assert_eq!(v["dest_port"], 80);
        assert_eq!(v["proto"], "TCP");
        assert_eq!(v["alert"]["severity"], 2);
        // Aggregate: no tuple, so no community_id and no ports; proto from the class.
        let mut a = alert();
        a.class = "syn_flood".into();
        a.dst_ports = vec![80, 443];
        a.src_count = 300;
        let v = eve_json(&AlertEvent { update: true, alert: a.clone() });
        assert!(
            v.get("community_id").is_none() && v.get("src_port").is_none() && v.get("dest_port").is_none()
        );
        assert_eq!(v["src_ip"], "128.232.110.120");
        assert_eq!(v["netrec"]["event"], "update");
        assert_eq!(v["timestamp"], suricata_ts(a.last_ts).as_str());
        a.class = "volumetric".into();
        assert_eq!(eve_json(&AlertEvent { update: false, alert: a }).get("proto").unwrap(), "IP");
        // IPv6 tuple, checked against the same reference implementation.
        let t = tuple("2001:db8::1", 0, "2001:db8::2", 53, 17);
        assert_eq!(community_id(&t, 0).unwrap(), "1:q0yRyJC2bLiKAyk4AQnXKUpdgJE=");
    }

    #[test]
    fn flow_id_shared_by_updates_of_one_incident() {
        let mut a = alert();
        a.src = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        a.src_count = 2;
        let mut b = a.clone();
        b.last_ts = Ts(b.last_ts.0 + 5);
        b.count += 10;
        assert_eq!(flow_id(&a), flow_id(&b));
        assert!(flow_id(&a) < 1 << 51 && flow_id(&a) > 0);
        assert!(alert_tuple(&a).is_none());
    }

    #[test]
    fn rfc5424_shape_and_escaping() {
        let mut a = alert();
        a.rule_id = "r\"]\\x".into();
        let h = SyslogHeader {
            facility: 16,
            hostname: "host a".into(),
            app_name: "netrec".into(),
            procid: "42".into(),
        };
        let m = rfc5424(&h, &AlertEvent { update: false, alert: a }, "hello", true);
        assert!(m.starts_with("<132>1 2014-12-09T17:16:09.924505Z hosta netrec 42 alert [netrec@32473 rule_id=\"r\\\"\\]\\\\x\""), "{m}");
        assert!(m.ends_with("] hello"), "{m}");
    }

    #[test]
    fn cef_escaping() {
        let mut a = alert();
        a.message = "a=b|c\\d\n".into();
        let c = cef(&AlertEvent { update: false, alert: a }, "0.1.0");
        assert!(
            c.starts_with(
                "CEF:0|netrec|netrec|0.1.0|9000006|NETREC port_scan port-scan (T1046)|5|rt=1418145369924 "
            ),
            "{c}"
        );
        assert!(c.ends_with(" msg=a\\=b|c\\\\d\\n"), "{c}");
        assert!(c.contains(" src=128.232.110.120 dst=66.35.250.204 dpt=80 proto=TCP "), "{c}");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
