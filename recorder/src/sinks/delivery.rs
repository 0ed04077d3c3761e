//! Per-sink delivery: a bounded queue in front of one worker thread per sink.
//!
//! Why threads and not tasks on the recorder's runtime: the recorder runs a current-thread tokio
//! runtime, and a blocking SMTP/HTTP/socket call (or a backoff sleep) there would stall the
//! capture loop. A worker thread per sink isolates every sink from the loop and from the other
//! sinks; the loop only ever does a non-blocking `try_send` (queue full => counted drop).
//!
//! Every event handed to a sink ends in exactly one counter: delivered, suppressed (duplicate),
//! or dropped with a reason (queue full, rate limited, failed after retries, shutdown).

use super::render::{AlertEvent, event_ts};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// A delivery failure of one attempt. `target` is always the redacted endpoint description.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    #[error("{target}: {source}")]
    Io {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: HTTP status {status}")]
    HttpStatus { target: String, status: u16 },
    #[error("{target}: {source}")]
    Http {
        target: String,
        #[source]
        source: ureq::Error,
    },
    #[error("{target}: {source}")]
    Smtp {
        target: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("{target}: building the message: {source}")]
    Message {
        target: String,
        #[source]
        source: lettre::error::Error,
    },
    #[error("{target}: the receiver answered {answer:?}")]
    Rejected { target: String, answer: String },
}

/// How one sink sends a batch of events (a batch of one except for mail digests).
pub trait Transport: Send + 'static {
    fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError>;
}

/// Queueing, retry, rate limit and de-duplication settings of one sink.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Events waiting for the worker; beyond this, new events are dropped (`queue_full`).
    pub queue: usize,
    /// Extra attempts after the first failure.
    pub retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Events per minute (token bucket, burst = the same number); 0 = unlimited.
    pub rate_per_minute: u32,
    /// Same rule + sources + targets within this much packet time => suppressed; zero = off.
    pub dedup_window: Duration,
    /// Also deliver "update" events (an incident that grew); default: only the first alert.
    pub updates: bool,
    /// Collect events for this long and deliver them as one batch (mail digests); None = one by one.
    pub batch_interval: Option<Duration>,
    /// Largest batch.
    pub batch_max: usize,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            queue: 1024,
            retries: 5,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            rate_per_minute: 0,
            dedup_window: Duration::from_secs(300),
            updates: false,
            batch_interval: None,
            batch_max: 100,
        }
    }
}

/// Live counters of one sink (shared with the metrics registry).
#[derive(Debug, Default)]
pub struct SinkStats {
    pub name: String,
    pub kind: &'static str,
    /// Events accepted into the queue.
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    /// Failed attempts (each retry counts).
    pub failures: AtomicU64,
    pub suppressed: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_rate_limited: AtomicU64,
    pub dropped_failed: AtomicU64,
    pub dropped_shutdown: AtomicU64,
    /// Events in the queue or in the worker's hands.
    pub queued: AtomicU64,
}

/// Final per-sink figures, printed by `record` and `analyze --deliver`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkReport {
    pub name: String,
    pub kind: &'static str,
    pub delivered: u64,
    pub failures: u64,
    pub suppressed: u64,
    pub dropped_queue_full: u64,
    pub dropped_rate_limited: u64,
    pub dropped_failed: u64,
    pub dropped_shutdown: u64,
}

impl SinkReport {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_rate_limited + self.dropped_failed + self.dropped_shutdown
    }
}

impl std::fmt::Display for SinkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sink {} ({}): {} delivered, {} duplicates suppressed, {} dropped (queue full {}, rate limited {}, failed {}, shutdown {}), {} failed attempts",
            self.name,
            self.kind,
            self.delivered,
            self.suppressed,
            self.dropped(),
            self.dropped_queue_full,
            self.dropped_rate_limited,
            self.dropped_failed,
            self.dropped_shutdown,
            self.failures
        )
    }
}

/// A sink ready to start: its name, policy and transport. `secrets` are redacted from any
/// error text the worker prints.
pub struct SinkSpec {
    pub name: String,
    pub kind: &'static str,
    pub policy: Policy,
    pub transport: Box<dyn Transport>,
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSpec").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

struct Worker {
    tx: SyncSender<Arc<AlertEvent>>,
    stats: Arc<SinkStats>,
    updates: bool,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// The running sinks. `send` never blocks; `finish` closes the queues and waits (bounded).
pub struct SinkSet {
    workers: Vec<Worker>,
    abort: Arc<AtomicBool>,
}

impl std::fmt::Debug for SinkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.workers.iter().map(|w| &w.stats.name)).finish()
    }
}

impl SinkSet {
    /// Start one worker thread per sink.
    pub fn start(specs: Vec<SinkSpec>) -> std::io::Result<SinkSet> {
        let abort = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(specs.len());
        for spec in specs {
            let (tx, rx) = std::sync::mpsc::sync_channel(spec.policy.queue.max(1));
            let stats =
                Arc::new(SinkStats { name: spec.name.clone(), kind: spec.kind, ..SinkStats::default() });
            let done = Arc::new(AtomicBool::new(false));
            let updates = spec.policy.updates;
            let mut state = WorkerState {
                stats: stats.clone(),
                abort: abort.clone(),
                policy: spec.policy,
                transport: spec.transport,
                secrets: spec.secrets,
                dedup: HashMap::new(),
                tokens: 0.0,
                refilled: Instant::now(),
                logged_failure: false,
            };
            state.tokens = f64::from(state.policy.rate_per_minute);
            let done2 = done.clone();
            let thread =
                std::thread::Builder::new().name(format!("netrec-sink-{}", spec.name)).spawn(move || {
                    state.run(rx);
                    done2.store(true, Relaxed);
                })?;
            workers.push(Worker { tx, stats, updates, done, thread });
        }
        Ok(SinkSet { workers, abort })
    }

    /// An empty set (no sinks configured).
    pub fn none() -> SinkSet {
        SinkSet { workers: Vec::new(), abort: Arc::new(AtomicBool::new(false)) }
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Counters of every sink, for the metrics registry.
    pub fn stats(&self) -> Vec<Arc<SinkStats>> {
        self.workers.iter().map(|w| w.stats.clone()).collect()
    }

    /// Queue an event for every sink that wants it. Never blocks: a full queue is a counted drop.
    pub fn send(&self, event: AlertEvent) {
        if self.workers.is_empty() {
            return;
        }
        let shared = Arc::new(event);
        let event = &*shared;
        for w in &self.workers {
            if event.update && !w.updates {
                continue;
            }
            w.stats.accepted.fetch_add(1, Relaxed);
            w.stats.queued.fetch_add(1, Relaxed);
            match w.tx.try_send(shared.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    w.stats.queued.fetch_sub(1, Relaxed);
                    w.stats.dropped_queue_full.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// `finish` for a set shared with the recording loop: when other handles are still alive
    /// (they should not be once `run` returned), wait for the queues to drain and report.
    pub fn finish_shared(this: Arc<SinkSet>, timeout: Duration) -> Vec<SinkReport> {
        match Arc::try_unwrap(this) {
            Ok(set) => set.finish(timeout),
            Err(shared) => {
                let deadline = Instant::now() + timeout;
                let busy = || shared.workers.iter().any(|w| w.stats.queued.load(Relaxed) > 0);
                while busy() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                shared.workers.iter().map(|w| report(&w.stats)).collect()
            }
        }
    }

    /// Close the queues, let the workers deliver what is queued for at most `timeout`, then
    /// stop them; whatever is still undelivered is counted as dropped (`shutdown`).
    pub fn finish(self, timeout: Duration) -> Vec<SinkReport> {
        let deadline = Instant::now() + timeout;
        let mut parts = Vec::with_capacity(self.workers.len());
        for w in self.workers {
            drop(w.tx);
            parts.push((w.stats, w.done, w.thread));
        }
        let all_done = |parts: &[(Arc<SinkStats>, Arc<AtomicBool>, std::thread::JoinHandle<()>)]| {
            parts.iter().all(|(_, d, _)| d.load(Relaxed))
        };
        while !all_done(&parts) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !all_done(&parts) {
            // Stop retrying and waiting for digests; give workers a moment to count what they hold.
            self.abort.store(true, Relaxed);
            for (_, _, t) in &parts {
                t.thread().unpark();
            }
            let grace = Instant::now() + Duration::from_millis(500);
            while !all_done(&parts) && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        parts
            .into_iter()
            .map(|(s, d, t)| {
                if d.load(Relaxed) {
                    let _ = t.join();
                }
                // A worker stuck in a network call is left behind; its events count as shutdown drops.
                report(&s)
            })
            .collect()
    }
}

/// Figures of a sink now; events not yet accounted for are counted as shutdown drops.
fn report(s: &SinkStats) -> SinkReport {
    let mut r = SinkReport {
        name: s.name.clone(),
        kind: s.kind,
        delivered: s.delivered.load(Relaxed),
        failures: s.failures.load(Relaxed),
        suppressed: s.suppressed.load(Relaxed),
        dropped_queue_full: s.dropped_queue_full.load(Relaxed),
        dropped_rate_limited: s.dropped_rate_limited.load(Relaxed),
        dropped_failed: s.dropped_failed.load(Relaxed),
        dropped_shutdown: s.dropped_shutdown.load(Relaxed),
    };
    let settled = r.delivered + r.suppressed + r.dropped();
    r.dropped_shutdown += s.accepted.load(Relaxed).saturating_sub(settled);
    r
}

type DedupKey = (String, Vec<IpAddr>, Vec<IpAddr>);

struct WorkerState {
    stats: Arc<SinkStats>,
    abort: Arc<AtomicBool>,
    policy: Policy,
    transport: Box<dyn Transport>,
    secrets: Vec<String>,
    /// Key -> packet time (ns) it was last delivered.
    dedup: HashMap<DedupKey, u64>,
    tokens: f64,
    refilled: Instant,
    logged_failure: bool,
}

impl WorkerState {
    fn run(&mut self, rx: Receiver<Arc<AlertEvent>>) {
        let mut batch: Vec<Arc<AlertEvent>> = Vec::new();
        let mut batch_due: Option<Instant> = None;
        loop {
            if self.abort.load(Relaxed) {
                self.drop_shutdown(batch.len() as u64);
                batch.clear();
                // Count what is still queued, without delivering it.
                while rx.try_recv().is_ok() {
                    self.drop_shutdown(1);
                }
                return;
            }
            let wait = batch_due.map_or(Duration::from_millis(200), |d| {
                d.saturating_duration_since(Instant::now()).min(Duration::from_millis(200))
            });
            match rx.recv_timeout(wait) {
                Ok(ev) => {
                    if self.admit(&ev) {
                        batch.push(ev);
                        match self.policy.batch_interval {
                            None => self.flush(&mut batch),
                            Some(iv) => {
                                batch_due.get_or_insert_with(|| Instant::now() + iv);
                                if batch.len() >= self.policy.batch_max.max(1) {
                                    self.flush(&mut batch);
                                    batch_due = None;
                                }
                            }
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if batch_due.is_some_and(|d| Instant::now() >= d) {
                        self.flush(&mut batch);
                        batch_due = None;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush(&mut batch);
                    return;
                }
            }
        }
    }

    fn drop_shutdown(&self, n: u64) {
        self.stats.dropped_shutdown.fetch_add(n, Relaxed);
        self.stats.queued.fetch_sub(n.min(self.stats.queued.load(Relaxed)), Relaxed);
    }

    /// De-duplication and rate limit; false when the event was counted and is not delivered.
    fn admit(&mut self, ev: &AlertEvent) -> bool {
        let window = u64::try_from(self.policy.dedup_window.as_nanos()).unwrap_or(u64::MAX);
        if window > 0 && !ev.update {
            let a = &ev.alert;
            let now = event_ts(ev).0;
            if self.dedup.len() > 4096 {
                self.dedup.retain(|_, t| now.saturating_sub(*t) < window);
            }
            let key = (a.rule_id.clone(), a.src.clone(), a.dst.clone());
            match self.dedup.get(&key) {
                Some(t) if now.saturating_sub(*t) < window => {
                    self.stats.suppressed.fetch_add(1, Relaxed);
                    self.stats.queued.fetch_sub(1, Relaxed);
                    return false;
                }
                _ => {
                    self.dedup.insert(key, now);
                }
            }
        }
        let rate = self.policy.rate_per_minute;
        if rate > 0 {
            let now = Instant::now();
            let per_sec = f64::from(rate) / 60.0;
            self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * per_sec)
                .min(f64::from(rate));
            self.refilled = now;
            if self.tokens < 1.0 {
                self.stats.dropped_rate_limited.fetch_add(1, Relaxed);
                self.stats.queued.fetch_sub(1, Relaxed);
                return false;
            }
            self.tokens -= 1.0;
        }
        true
    }

    /// Deliver `batch` with retries and capped exponential backoff; empties it either way.
    fn flush(&mut self, batch: &mut Vec<Arc<AlertEvent>>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let mut backoff = self.policy.backoff_initial;
        let mut attempt = 0u32;
        loop {
            match self.transport.deliver(batch) {
                Ok(()) => {
                    self.stats.delivered.fetch_add(n, Relaxed);
                    break;
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Relaxed);
                    let give_up = attempt >= self.policy.retries || self.abort.load(Relaxed);
                    if !self.logged_failure || give_up {
                        self.logged_failure = true;
                        let what = if give_up { "giving up" } else { "will retry" };
                        eprintln!(
                            "netrec: sink {}: delivery failed (attempt {}), {what}: {}",
                            self.stats.name,
                            attempt + 1,
                            redact(&error_chain(&e), &self.secrets)
                        );
                    }
                    if give_up {
                        let counter = if self.abort.load(Relaxed) {
                            &self.stats.dropped_shutdown
                        } else {
                            &self.stats.dropped_failed
                        };
                        counter.fetch_add(n, Relaxed);
                        break;
                    }
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(self.policy.backoff_max);
                    attempt += 1;
                }
            }
        }
        self.stats.queued.fetch_sub(n.min(self.stats.queued.load(Relaxed)), Relaxed);
        batch.clear();
    }

    /// Sleep, woken early by `finish` setting the abort flag.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.abort.load(Relaxed) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Replace every secret (URL tokens, header values, passwords) in `text` with `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret containing another is replaced whole.
    let mut s: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    s.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in s {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Shared<T> = Arc<Mutex<T>>;
    use netrec_format::{Alert, Severity, Ts};

    fn ev(rule: &str, src: &str, t: u64) -> AlertEvent {
        AlertEvent {
            update: false,
            alert: Alert {
                id: t,
                rule_id: rule.into(),
                class: "port_scan".into(),
                severity: Severity::Medium,
                attack_id: "T1046".into(),
                first_ts: Ts(t),
                last_ts: Ts(t),
                src: vec![src.parse().unwrap()],
                src_count: 1,
                dst: vec!["10.0.0.9".parse().unwrap()],
                dst_count: 1,
                dst_ports: vec![],
                count: 1,
                stats: vec![],
                message: String::new(),
            },
        }
    }

    /// Records what it is given; fails the first `fail` attempts; optionally blocks.
    struct Probe {
        got: Shared<Vec<usize>>,
        fail: u32,
        delay: Duration,
    }

    impl Transport for Probe {
        fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError> {
            std::thread::sleep(self.delay);
            if self.fail > 0 {
                self.fail -= 1;
                return Err(DeliveryError::Rejected { target: "probe".into(), answer: "no".into() });
            }
            self.got.lock().unwrap().push(events.len());
            Ok(())
        }
    }

    fn spec(policy: Policy, fail: u32, delay: Duration) -> (SinkSpec, Shared<Vec<usize>>) {
        let got = Shared::default();
        let t = Probe { got: got.clone(), fail, delay };
        (SinkSpec { name: "p".into(), kind: "probe", policy, transport: Box::new(t), secrets: vec![] }, got)
    }

    fn quick() -> Policy {
        Policy {
            backoff_initial: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            ..Policy::default()
        }
    }

    #[test]
    fn dedup_within_window_in_packet_time() {
        let (s, got) = spec(Policy { dedup_window: Duration::from_secs(10), ..quick() }, 0, Duration::ZERO);
        let set = SinkSet::start(vec![s]).unwrap();
        set.send(ev("a", "10.0.0.1", 1_000_000_000));
        set.send(ev("a", "10.0.0.1", 5_000_000_000)); // duplicate
        set.send(ev("a", "10.0.0.2", 5_000_000_000)); // other source
        set.send(ev("a", "10.0.0.1", 12_000_000_000)); // window passed
        let mut up = ev("a", "10.0.0.1", 13_000_000_000);
        up.update = true; // updates not wanted by default: not counted at all
        set.send(up);
        let r = set.finish(Duration::from_secs(5));
        assert_eq!(got.lock().unwrap().len(), 3);
        assert_eq!((r[0].delivered, r[0].suppressed, r[0].dropped()), (3, 1, 0));
    }

    #[test]
    fn retries_then_delivers_and_counts_failures() {
        let (s, got) = spec(Policy { retries: 3, ..quick() }, 2, Duration::ZERO);
        let set = SinkSet::start(vec![s]).unwrap();
        set.send(ev("a", "10.0.0.1", 1));
        let r = set.finish(Duration::from_secs(5));
        assert_eq!(*got.lock().unwrap(), vec![1]);
        assert_eq!((r[0].delivered, r[0].failures, r[0].dropped()), (1, 2, 0));
    }

    #[test]
    fn gives_up_after_retries() {
        let (s, _got) = spec(Policy { retries: 2, ..quick() }, 100, Duration::ZERO);
        let set = SinkSet::start(vec![s]).unwrap();
        set.send(ev("a", "10.0.0.1", 1));
        let r = set.finish(Duration::from_secs(5));
        assert_eq!((r[0].delivered, r[0].failures, r[0].dropped_failed), (0, 3, 1));
    }

    #[test]
    fn full_queue_drops_without_blocking() {
        let (s, _got) =
            spec(Policy { queue: 2, dedup_window: Duration::ZERO, ..quick() }, 0, Duration::from_millis(300));
        let set = SinkSet::start(vec![s]).unwrap();
        let t = Instant::now();
        for i in 0..50 {
            set.send(ev("a", "10.0.0.1", i));
        }
        assert!(t.elapsed() < Duration::from_millis(100), "send blocked: {:?}", t.elapsed());
        let r = set.finish(Duration::from_millis(100));
        assert!(r[0].dropped_queue_full >= 45, "{r:?}");
        assert_eq!(r[0].delivered + r[0].dropped(), 50, "{r:?}");
    }

    #[test]
    fn rate_limit_drops_excess() {
        let (s, _got) =
            spec(Policy { rate_per_minute: 3, dedup_window: Duration::ZERO, ..quick() }, 0, Duration::ZERO);
        let set = SinkSet::start(vec![s]).unwrap();
        for i in 0..10 {
            set.send(ev("a", "10.0.0.1", i));
        }
        let r = set.finish(Duration::from_secs(5));
        assert_eq!((r[0].delivered, r[0].dropped_rate_limited), (3, 7));
    }

    #[test]
    fn batches_for_digests() {
        let (s, got) = spec(
            Policy {
                batch_interval: Some(Duration::from_secs(60)),
                batch_max: 4,
                dedup_window: Duration::ZERO,
                ..quick()
            },
            0,
            Duration::ZERO,
        );
        let set = SinkSet::start(vec![s]).unwrap();
        for i in 0..6 {
            set.send(ev("a", "10.0.0.1", i));
        }
        let r = set.finish(Duration::from_secs(5));
        // One full batch of 4, and the rest flushed when the queue closed.
        assert_eq!(*got.lock().unwrap(), vec![4, 2]);
        assert_eq!(r[0].delivered, 6);
    }

    #[test]
    fn redacts_secrets() {
        let s = redact("POST https://h/services/T0/B1/XYZSECRET failed", &["XYZSECRET".into(), "ab".into()]);
        assert_eq!(s, "POST https://h/services/T0/B1/*** failed");
    }
}
