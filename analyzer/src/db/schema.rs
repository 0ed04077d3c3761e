//! The SQLite schema: versions, the migration chain and the netrec `application_id`.
//!
//! `MIGRATIONS[i]` upgrades a database from version `i` to version `i + 1`; version 0 is an empty
//! file. A new database runs the whole chain, so fresh and migrated databases cannot drift apart.
//! Every column is documented in `docs/schema.md`; change both together.

/// `PRAGMA application_id` of every netrec database: "NREC" in ASCII.
pub const APPLICATION_ID: i32 = 0x4E52_4543;

/// Schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Forward migrations, one per version step.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3];

const V1: &str = r#"
CREATE TABLE inputs (
    id               INTEGER PRIMARY KEY,
    path             TEXT    NOT NULL,
    sha256           TEXT    NOT NULL UNIQUE,
    format           TEXT    NOT NULL,
    size_bytes       INTEGER NOT NULL,
    complete         INTEGER NOT NULL DEFAULT 0,
    packets          INTEGER,
    bytes            INTEGER,
    first_ts         TEXT,
    first_ts_ns      INTEGER,
    last_ts          TEXT,
    last_ts_ns       INTEGER,
    decode_anomalies INTEGER,
    warnings         INTEGER
) STRICT;

CREATE TABLE flows (
    id                  INTEGER PRIMARY KEY,
    input_id            INTEGER NOT NULL REFERENCES inputs(id),
    proto               TEXT    NOT NULL,
    src_ip              TEXT    NOT NULL,
    src_port            INTEGER NOT NULL,
    dst_ip              TEXT    NOT NULL,
    dst_port            INTEGER NOT NULL,
    packets             INTEGER NOT NULL,
    bytes               INTEGER NOT NULL,
    fwd_packets         INTEGER NOT NULL,
    fwd_bytes           INTEGER NOT NULL,
    fwd_payload_bytes   INTEGER NOT NULL,
    rev_packets         INTEGER NOT NULL,
    rev_bytes           INTEGER NOT NULL,
    rev_payload_bytes   INTEGER NOT NULL,
    first_ts            TEXT    NOT NULL,
    last_ts             TEXT    NOT NULL,
    duration            TEXT    NOT NULL,
    tcp_state           TEXT,
    rtt_ms              REAL,
    retransmissions     INTEGER NOT NULL,
    vlan                INTEGER,
    tunnel              TEXT,
    "end"               TEXT    NOT NULL,
    proto_num           INTEGER NOT NULL,
    first_ts_ns         INTEGER NOT NULL,
    last_ts_ns          INTEGER NOT NULL,
    duration_ns         INTEGER NOT NULL,
    rtt_ns              INTEGER,
    rtt_server_ns       INTEGER,
    rtt_client_ns       INTEGER,
    fwd_tcp_flags       INTEGER NOT NULL,
    rev_tcp_flags       INTEGER NOT NULL,
    fwd_retransmissions INTEGER NOT NULL,
    rev_retransmissions INTEGER NOT NULL,
    out_of_order        INTEGER NOT NULL,
    zero_window         INTEGER NOT NULL,
    tunnel_id           INTEGER NOT NULL,
    anomalies           INTEGER NOT NULL
) STRICT;
-- One index only: text indexes dominate insert cost (release, 200k flows: ~160k flows/s with no
-- index, ~87k with this one, ~50k with a second on src_ip). Evidence queries select by target
-- and filter attackers from the rows found.
CREATE INDEX flows_dst ON flows(input_id, dst_ip);

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY,
    input_id     INTEGER NOT NULL REFERENCES inputs(id),
    alert_id     INTEGER NOT NULL,
    rule_id      TEXT    NOT NULL,
    class        TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    severity_num INTEGER NOT NULL,
    attack_id    TEXT    NOT NULL,
    first_ts     TEXT    NOT NULL,
    first_ts_ns  INTEGER NOT NULL,
    last_ts      TEXT    NOT NULL,
    last_ts_ns   INTEGER NOT NULL,
    src          TEXT    NOT NULL,
    src_count    INTEGER NOT NULL,
    dst          TEXT    NOT NULL,
    dst_count    INTEGER NOT NULL,
    dst_ports    TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    stats        TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    UNIQUE (input_id, alert_id)
) STRICT;

CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY,
    input_id     INTEGER NOT NULL REFERENCES inputs(id),
    class        TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    severity_num INTEGER NOT NULL,
    first_ts     TEXT    NOT NULL,
    first_ts_ns  INTEGER NOT NULL,
    last_ts      TEXT    NOT NULL,
    last_ts_ns   INTEGER NOT NULL,
    sources      TEXT    NOT NULL,
    targets      TEXT    NOT NULL,
    alert_count  INTEGER NOT NULL,
    event_count  INTEGER NOT NULL,
    peak_rate    REAL    NOT NULL
) STRICT;

CREATE TABLE incident_alerts (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    input_id    INTEGER NOT NULL REFERENCES inputs(id),
    alert_id    INTEGER NOT NULL,
    PRIMARY KEY (incident_id, alert_id)
) STRICT;

CREATE TABLE hosts (
    input_id        INTEGER NOT NULL REFERENCES inputs(id),
    ip              TEXT    NOT NULL,
    packets_sent    INTEGER NOT NULL,
    packets_recv    INTEGER NOT NULL,
    bytes_sent      INTEGER NOT NULL,
    bytes_recv      INTEGER NOT NULL,
    flows_initiated INTEGER NOT NULL,
    flows_received  INTEGER NOT NULL,
    first_ts        TEXT    NOT NULL,
    first_ts_ns     INTEGER NOT NULL,
    last_ts         TEXT    NOT NULL,
    last_ts_ns      INTEGER NOT NULL,
    PRIMARY KEY (input_id, ip)
) STRICT;

CREATE TABLE timeseries (
    input_id  INTEGER NOT NULL REFERENCES inputs(id),
    minute    INTEGER NOT NULL,
    proto     TEXT    NOT NULL,
    proto_num INTEGER NOT NULL,
    packets   INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (input_id, minute, proto_num)
) STRICT;

CREATE TABLE losses (
    id             INTEGER PRIMARY KEY,
    input_id       INTEGER NOT NULL REFERENCES inputs(id),
    ts             TEXT    NOT NULL,
    ts_ns          INTEGER NOT NULL,
    iface          INTEGER NOT NULL,
    kernel_packets INTEGER NOT NULL,
    kernel_bytes   INTEGER NOT NULL,
    ring_drops     INTEGER NOT NULL,
    map_full       INTEGER NOT NULL,
    busy           INTEGER NOT NULL,
    writer_drops   INTEGER NOT NULL
) STRICT;
"#;

/// Version 2: evidence completeness of each alert (issue #6): header records seen versus packets
/// the kernel counted over the loss intervals overlapping the alert window. NULL without kernel
/// counts (pcap and pcapng inputs, segments without loss records).
const V2: &str = r#"
ALTER TABLE alerts ADD COLUMN evidence_seen INTEGER;
ALTER TABLE alerts ADD COLUMN evidence_counted INTEGER;
ALTER TABLE alerts ADD COLUMN evidence_complete INTEGER;
"#;

/// Version 3: the files of each input. A segment chain (the rotated files of one recording) is
/// one input replayed as one stream; each of its files, with its own SHA-256, is a row here.
/// Existing inputs are single files: one row each, copied from `inputs`.
const V3: &str = r#"
CREATE TABLE input_files (
    input_id   INTEGER NOT NULL REFERENCES inputs(id),
    seq        INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size_bytes INTEGER NOT NULL,
    PRIMARY KEY (input_id, seq)
) STRICT;
INSERT INTO input_files (input_id, seq, path, sha256, size_bytes)
    SELECT id, 0, path, sha256, size_bytes FROM inputs;
"#;

/// Tables holding per-input rows, in the order a half-written input is deleted (children first).
pub(crate) const INPUT_TABLES: &[&str] =
    &["incident_alerts", "incidents", "hosts", "timeseries", "losses", "alerts", "flows", "input_files"];
