//! The alert JSON schema (see `docs/rules.md`).

use netrec_format::Alert;
use serde_json::{Map, Value, json};

/// One alert as a JSON object with the documented field names and order of keys as
/// serde_json emits them (sorted unless `preserve_order` is on: callers needing stable
/// bytes serialize this value, which is deterministic either way).
pub fn alert_json(a: &Alert) -> Value {
    let mut stats = Map::new();
    for (k, v) in &a.stats {
        let n = serde_json::Number::from_f64(*v).map(Value::Number).unwrap_or(Value::Null);
        stats.insert(k.clone(), n);
    }
    json!({
        "id": a.id,
        "rule_id": a.rule_id,
        "class": a.class,
        "severity": a.severity.as_str(),
        "attack_id": a.attack_id,
        "first_ts": a.first_ts.to_decimal(),
        "last_ts": a.last_ts.to_decimal(),
        "src": a.src.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
        "src_count": a.src_count,
        "dst": a.dst.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
        "dst_count": a.dst_count,
        "dst_ports": a.dst_ports,
        "count": a.count,
        "stats": Value::Object(stats),
        "message": a.message,
    })
}
