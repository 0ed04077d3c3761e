//! Grouping alerts into incidents: same class, same target set, and close in time.
//!
//! Pure: the writer hands in the final alerts of one input and stores the result.

use netrec_format::model::Severity;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Alerts of one class against the same targets that start within this gap (5 minutes) after
/// the current incident's last activity belong to the same incident.
pub const INCIDENT_GAP_NS: u64 = 5 * 60 * 1_000_000_000;

/// The fields of an alert that grouping needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertForGrouping {
    pub alert_id: u64,
    pub class: String,
    pub severity: Severity,
    pub first_ts: u64,
    pub last_ts: u64,
    pub src: Vec<IpAddr>,
    pub dst: Vec<IpAddr>,
    pub count: u64,
}

/// An incident before it gets its database id.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentDraft {
    pub class: String,
    pub severity: Severity,
    pub first_ts: u64,
    pub last_ts: u64,
    /// Union of the alerts' sources, sorted, deduplicated.
    pub sources: Vec<IpAddr>,
    /// Union of the alerts' targets, sorted, deduplicated.
    pub targets: Vec<IpAddr>,
    /// Alert ids, ascending.
    pub alert_ids: Vec<u64>,
    /// Sum of the alerts' event counts.
    pub event_count: u64,
    /// Highest events-per-second of any member alert (count over its duration, at least 1 s).
    pub peak_rate: f64,
}

/// Group alerts into incidents. The target of an alert is its (sorted) `dst` list; alerts of
/// one class and one target, sorted by start time, join the open incident while they start no
/// later than `gap_ns` after its last activity. Output is sorted by (first_ts, class, targets),
/// independent of the input order.
pub fn group_incidents(alerts: &[AlertForGrouping], gap_ns: u64) -> Vec<IncidentDraft> {
    let mut groups: BTreeMap<(&str, Vec<IpAddr>), Vec<&AlertForGrouping>> = BTreeMap::new();
    for a in alerts {
        let mut target = a.dst.clone();
        target.sort_unstable();
        target.dedup();
        groups.entry((a.class.as_str(), target)).or_default().push(a);
    }
    let mut out = Vec::new();
    for ((class, _), mut members) in groups {
        members.sort_by_key(|a| (a.first_ts, a.alert_id));
        let mut cur: Option<IncidentDraft> = None;
        for a in members {
            match cur.as_mut() {
                Some(inc) if a.first_ts <= inc.last_ts.saturating_add(gap_ns) => absorb(inc, a),
                _ => {
                    out.extend(cur.take());
                    let mut inc = IncidentDraft {
                        class: class.to_owned(),
                        severity: a.severity,
                        first_ts: a.first_ts,
                        last_ts: a.last_ts.max(a.first_ts),
                        sources: Vec::new(),
                        targets: Vec::new(),
                        alert_ids: Vec::new(),
                        event_count: 0,
                        peak_rate: 0.0,
                    };
                    absorb(&mut inc, a);
                    cur = Some(inc);
                }
            }
        }
        out.extend(cur);
    }
    for inc in &mut out {
        inc.sources.sort_unstable();
        inc.sources.dedup();
        inc.targets.sort_unstable();
        inc.targets.dedup();
        inc.alert_ids.sort_unstable();
    }
    out.sort_by(|a, b| (a.first_ts, &a.class, &a.targets).cmp(&(b.first_ts, &b.class, &b.targets)));
    out
}

fn absorb(inc: &mut IncidentDraft, a: &AlertForGrouping) {
    inc.severity = inc.severity.max(a.severity);
    inc.first_ts = inc.first_ts.min(a.first_ts);
    inc.last_ts = inc.last_ts.max(a.last_ts).max(a.first_ts);
    inc.sources.extend_from_slice(&a.src);
    inc.targets.extend_from_slice(&a.dst);
    inc.alert_ids.push(a.alert_id);
    inc.event_count = inc.event_count.saturating_add(a.count);
    let secs = (a.last_ts.saturating_sub(a.first_ts) as f64 / 1e9).max(1.0);
    let rate = a.count as f64 / secs;
    if rate > inc.peak_rate {
        inc.peak_rate = rate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn alert(id: u64, class: &str, dst: &str, start_s: u64, end_s: u64) -> AlertForGrouping {
        AlertForGrouping {
            alert_id: id,
            class: class.into(),
            severity: Severity::Medium,
            first_ts: start_s * S,
            last_ts: end_s * S,
            src: vec![ip(&format!("192.0.2.{id}"))],
            dst: vec![ip(dst)],
            count: 10 * id,
        }
    }

    #[test]
    fn same_class_and_target_within_gap_is_one_incident() {
        let a = [alert(1, "portscan", "10.0.0.1", 100, 160), alert(2, "portscan", "10.0.0.1", 400, 410)];
        // 400 - 160 = 240 s < 300 s gap.
        let inc = group_incidents(&a, INCIDENT_GAP_NS);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].alert_ids, vec![1, 2]);
        assert_eq!(inc[0].first_ts, 100 * S);
        assert_eq!(inc[0].last_ts, 410 * S);
        assert_eq!(inc[0].sources, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
        assert_eq!(inc[0].targets, vec![ip("10.0.0.1")]);
        assert_eq!(inc[0].event_count, 30);
        // Alert 2: 20 events over 10 s = 2/s; alert 1: 10 over 60 s.
        assert!((inc[0].peak_rate - 2.0).abs() < 1e-9);
    }

    #[test]
    fn same_class_and_target_apart_is_two_incidents() {
        let a = [alert(1, "portscan", "10.0.0.1", 100, 160), alert(2, "portscan", "10.0.0.1", 461, 470)];
        // 461 - 160 = 301 s > 300 s gap.
        let inc = group_incidents(&a, INCIDENT_GAP_NS);
        assert_eq!(inc.len(), 2);
        assert_eq!(inc[0].alert_ids, vec![1]);
        assert_eq!(inc[1].alert_ids, vec![2]);
    }

    #[test]
    fn gap_boundary_is_inclusive() {
        let a = [alert(1, "x", "10.0.0.1", 0, 10), alert(2, "x", "10.0.0.1", 310, 320)];
        assert_eq!(group_incidents(&a, INCIDENT_GAP_NS).len(), 1);
    }

    #[test]
    fn different_class_or_target_never_merge() {
        let a = [
            alert(1, "portscan", "10.0.0.1", 100, 110),
            alert(2, "synflood", "10.0.0.1", 100, 110),
            alert(3, "portscan", "10.0.0.2", 100, 110),
        ];
        let inc = group_incidents(&a, INCIDENT_GAP_NS);
        assert_eq!(inc.len(), 3);
        // Sorted by first_ts, then class, then targets.
        assert_eq!(inc.iter().map(|i| i.alert_ids[0]).collect::<Vec<_>>(), vec![1, 3, 2]);
    }

    #[test]
    fn severity_is_the_maximum_and_order_independent() {
        let mut a = vec![alert(1, "x", "10.0.0.1", 0, 10), alert(2, "x", "10.0.0.1", 20, 30)];
        a[1].severity = Severity::Critical;
        let fwd = group_incidents(&a, INCIDENT_GAP_NS);
        a.reverse();
        assert_eq!(group_incidents(&a, INCIDENT_GAP_NS), fwd);
        assert_eq!(fwd[0].severity, Severity::Critical);
    }

    #[test]
    fn chain_of_close_alerts_extends_the_window() {
        // Each alert starts within the gap of the previous one's end: one incident spanning 700 s.
        let a = [
            alert(1, "x", "10.0.0.1", 0, 100),
            alert(2, "x", "10.0.0.1", 350, 400),
            alert(3, "x", "10.0.0.1", 650, 700),
        ];
        let inc = group_incidents(&a, INCIDENT_GAP_NS);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].last_ts, 700 * S);
    }

    #[test]
    fn empty_input_gives_no_incidents() {
        assert!(group_incidents(&[], INCIDENT_GAP_NS).is_empty());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    fn arb_alerts() -> impl Strategy<Value = Vec<AlertForGrouping>> {
        proptest::collection::vec((0u8..3, 0u8..3, 0u64..3600, 0u64..120, 0u64..1000), 0..40).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(n, (class, dst, start, len, count))| AlertForGrouping {
                    alert_id: n as u64,
                    class: format!("c{class}"),
                    severity: Severity::Low,
                    first_ts: start * S,
                    last_ts: (start + len) * S,
                    src: vec![IpAddr::from([192, 0, 2, n as u8])],
                    dst: vec![IpAddr::from([10, 0, 0, dst])],
                    count,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Every alert lands in exactly one incident whose class and target it shares, events add
        /// up, and two incidents of one class and target are separated by more than the gap.
        #[test]
        fn partition_invariants(alerts in arb_alerts()) {
            let incs = group_incidents(&alerts, INCIDENT_GAP_NS);
            let mut seen: Vec<u64> = incs.iter().flat_map(|i| i.alert_ids.iter().copied()).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..alerts.len() as u64).collect::<Vec<_>>());
            for inc in &incs {
                let members: Vec<&AlertForGrouping> =
                    alerts.iter().filter(|a| inc.alert_ids.contains(&a.alert_id)).collect();
                prop_assert!(members.iter().all(|a| a.class == inc.class && a.dst == inc.targets));
                prop_assert_eq!(inc.event_count, members.iter().map(|a| a.count).sum::<u64>());
                prop_assert_eq!(inc.first_ts, members.iter().map(|a| a.first_ts).min().unwrap());
            }
            for (n, a) in incs.iter().enumerate() {
                for b in &incs[n + 1..] {
                    if a.class == b.class && a.targets == b.targets {
                        let (early, late) = if a.first_ts <= b.first_ts { (a, b) } else { (b, a) };
                        prop_assert!(late.first_ts > early.last_ts + INCIDENT_GAP_NS);
                    }
                }
            }
        }
    }
}
