//! The split engine (front + detector groups + merger, `netrec_rules::split`) gives exactly the
//! sequential engine's output, for every fixture capture and several group counts, including
//! with tiny key limits so evictions emit alert updates in the middle of the stream.

use netrec_format::{Alert, Direction, FlowRecord, LinkType, PacketRef};
use netrec_rules::split::{Front, Merger, split};
use netrec_rules::{Engine, EngineSink, Limits, RuleSet};

mod common;

use common::{Frame, read_pcap};

/// Every sink call, in order.
#[derive(Debug, Default, PartialEq)]
struct Log {
    alerts: Vec<(bool, Alert)>,
    flows: Vec<FlowRecord>,
}

impl EngineSink for Log {
    fn alert(&mut self, a: Alert) {
        self.alerts.push((true, a));
    }
    fn alert_update(&mut self, a: Alert) {
        self.alerts.push((false, a));
    }
    fn flow(&mut self, f: FlowRecord) {
        self.flows.push(f);
    }
}

fn packets(link: LinkType, frames: &[Frame]) -> Vec<(PacketRef<'_>, netrec_format::decode::Decoded)> {
    frames
        .iter()
        .map(|f| {
            let pkt = PacketRef {
                ts: f.ts,
                iface: 0,
                direction: Direction::Unknown,
                link_type: link,
                wire_len: f.wire_len,
                data: &f.data,
            };
            (pkt, netrec_format::decode::decode(link, &f.data, f.wire_len))
        })
        .collect()
}

fn sequential(
    rules: &RuleSet,
    limits: &Limits,
    pkts: &[(PacketRef<'_>, netrec_format::decode::Decoded)],
) -> Log {
    let mut e = Engine::new(rules.clone(), limits.clone());
    let mut log = Log::default();
    for (p, d) in pkts {
        e.process(p, d, &mut log);
    }
    e.finish(&mut log);
    log
}

/// The split engine driven batch by batch, as the analyzer's threads drive it.
fn split_run(
    rules: &RuleSet,
    limits: &Limits,
    n: usize,
    batch: usize,
    pkts: &[(PacketRef<'_>, netrec_format::decode::Decoded)],
) -> Log {
    let mut front = Front::new(limits);
    let mut groups = split(rules, limits, n);
    assert_eq!(groups.len(), n.max(1));
    let mut merger = Merger::default();
    let mut log = Log::default();
    for chunk in pkts.chunks(batch.max(1)) {
        let mut flows = Vec::new();
        let steps: Vec<_> = chunk.iter().map(|(p, d)| front.process(p, d, &mut |f| flows.push(f))).collect();
        log.flows.extend(flows);
        // Groups in reverse order: the merge must not depend on who finishes first.
        for g in groups.iter_mut().rev() {
            for ((p, d), s) in chunk.iter().zip(&steps) {
                g.step(p, d, s);
            }
        }
        merger.merge(groups.iter_mut().map(|g| g.take()).collect(), &mut log);
    }
    for g in &mut groups {
        g.finish();
    }
    merger.merge(groups.iter_mut().map(|g| g.take()).collect(), &mut log);
    front.finish(&mut |f| log.flows.push(f));
    log
}

fn fixtures() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/pcap")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "fixtures missing in {}", dir.display());
    v
}

#[test]
fn split_engine_equals_sequential_on_every_fixture() {
    let rules = RuleSet::default_pack();
    let mut total_alerts = 0;
    for path in fixtures() {
        let (link, frames) = read_pcap(&path);
        let pkts = packets(link, &frames);
        for limits in [Limits::default(), Limits { max_keys: 3, ..Limits::default() }] {
            let want = sequential(&rules, &limits, &pkts);
            total_alerts += want.alerts.len();
            for (n, batch) in [(1, 1024), (2, 1024), (2, 7), (3, 64), (16, 100)] {
                let got = split_run(&rules, &limits, n, batch, &pkts);
                assert!(
                    got == want,
                    "{} (max_keys {}, {n} groups, batch {batch}): split output differs",
                    path.display(),
                    limits.max_keys
                );
            }
        }
    }
    // The comparison is only meaningful if the fixtures raise alerts (and evictions updates).
    assert!(total_alerts > 40, "only {total_alerts} alert events over the fixtures");
}

#[test]
fn groups_partition_the_enabled_rules() {
    let rules = RuleSet::default_pack();
    let enabled = rules.rules().iter().filter(|r| r.enabled).count();
    for n in 1..=enabled + 2 {
        let groups = split(&rules, &Limits::default(), n);
        let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), enabled, "{n} groups: {sizes:?}");
        if n <= enabled {
            assert!(sizes.iter().all(|&s| s > 0), "{n} groups: an empty group: {sizes:?}");
        }
    }
}

/// Detector cost by hand, on one thread, without the reader or the flow table (the steps are
/// computed first): `NETREC_SPLIT_BENCH=mix.pcap cargo test --release -p netrec-rules --test
/// split -- --ignored --nocapture`. Prints the thread CPU seconds of each of 5 runs; asserts
/// that every run gives the same output.
#[test]
#[ignore]
fn detector_cost_by_hand() {
    let Some(path) = std::env::var_os("NETREC_SPLIT_BENCH") else { return };
    let (link, frames) = read_pcap(std::path::Path::new(&path));
    let pkts = packets(link, &frames);
    let rules = RuleSet::default_pack();
    let limits = Limits::default();
    let mut front = Front::new(&limits);
    let steps: Vec<_> = pkts.iter().map(|(p, d)| front.process(p, d, &mut |_| {})).collect();
    // utime + stime of this thread, in seconds (clock ticks of 10 ms).
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (tick(11) + tick(12)) as f64 / 100.0
    };
    let mut outs = Vec::new();
    for _ in 0..5 {
        let mut g = split(&rules, &limits, 1).remove(0);
        let t0 = cpu();
        for ((p, d), s) in pkts.iter().zip(&steps) {
            g.step(p, d, s);
        }
        g.finish();
        println!("detectors: {:.2} s CPU for {} packets", cpu() - t0, pkts.len());
        outs.push(g.take().len());
    }
    assert!(outs.windows(2).all(|w| w[0] == w[1]), "{outs:?}");
}
