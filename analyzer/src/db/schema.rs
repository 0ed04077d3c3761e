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
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

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

/// Version 4: `flows` and `hosts` become views over `flow_rows` and `host_rows`, which store only
/// what the views cannot derive. The derived columns (protocol name, decimal-text times, duration,
/// both-direction sums, saturating at i64::MAX as the writer's did, RTT in ms) were 40% of a flow row's bytes and a quarter of the cost of
/// inserting it; the views give them back with the same names, order and values, so queries and
/// reports read `flows` and `hosts` as before. Rows keep their ids (and order).
const V4: &str = r#"
CREATE TABLE flow_rows (
    id                  INTEGER PRIMARY KEY,
    input_id            INTEGER NOT NULL REFERENCES inputs(id),
    src_ip              TEXT    NOT NULL,
    src_port            INTEGER NOT NULL,
    dst_ip              TEXT    NOT NULL,
    dst_port            INTEGER NOT NULL,
    fwd_packets         INTEGER NOT NULL,
    fwd_bytes           INTEGER NOT NULL,
    fwd_payload_bytes   INTEGER NOT NULL,
    rev_packets         INTEGER NOT NULL,
    rev_bytes           INTEGER NOT NULL,
    rev_payload_bytes   INTEGER NOT NULL,
    tcp_state           TEXT,
    vlan                INTEGER,
    tunnel              TEXT,
    "end"               TEXT    NOT NULL,
    proto_num           INTEGER NOT NULL,
    first_ts_ns         INTEGER NOT NULL,
    last_ts_ns          INTEGER NOT NULL,
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
INSERT INTO flow_rows (id, input_id, src_ip, src_port, dst_ip, dst_port, fwd_packets, fwd_bytes,
    fwd_payload_bytes, rev_packets, rev_bytes, rev_payload_bytes, tcp_state, vlan, tunnel, "end", proto_num,
    first_ts_ns, last_ts_ns, rtt_ns, rtt_server_ns, rtt_client_ns, fwd_tcp_flags, rev_tcp_flags,
    fwd_retransmissions, rev_retransmissions, out_of_order, zero_window, tunnel_id, anomalies)
SELECT id, input_id, src_ip, src_port, dst_ip, dst_port, fwd_packets, fwd_bytes,
    fwd_payload_bytes, rev_packets, rev_bytes, rev_payload_bytes, tcp_state, vlan, tunnel, "end", proto_num,
    first_ts_ns, last_ts_ns, rtt_ns, rtt_server_ns, rtt_client_ns, fwd_tcp_flags, rev_tcp_flags,
    fwd_retransmissions, rev_retransmissions, out_of_order, zero_window, tunnel_id, anomalies
FROM flows ORDER BY id;
DROP TABLE flows;
CREATE INDEX flows_dst ON flow_rows(input_id, dst_ip);
CREATE VIEW flows AS SELECT
    id,
    input_id,
    CASE proto_num WHEN 1 THEN 'icmp' WHEN 2 THEN 'igmp' WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp'
        WHEN 47 THEN 'gre' WHEN 50 THEN 'esp' WHEN 51 THEN 'ah' WHEN 58 THEN 'icmpv6' WHEN 132 THEN 'sctp'
        WHEN 2054 THEN 'arp' ELSE 'ip-' || proto_num END AS proto,
    src_ip,
    src_port,
    dst_ip,
    dst_port,
    CASE WHEN fwd_packets > 9223372036854775807 - rev_packets THEN 9223372036854775807
        ELSE fwd_packets + rev_packets END AS packets,
    CASE WHEN fwd_bytes > 9223372036854775807 - rev_bytes THEN 9223372036854775807
        ELSE fwd_bytes + rev_bytes END AS bytes,
    fwd_packets,
    fwd_bytes,
    fwd_payload_bytes,
    rev_packets,
    rev_bytes,
    rev_payload_bytes,
    printf('%d.%09d', first_ts_ns / 1000000000, first_ts_ns % 1000000000) AS first_ts,
    printf('%d.%09d', last_ts_ns / 1000000000, last_ts_ns % 1000000000) AS last_ts,
    printf('%d.%09d', max(last_ts_ns - first_ts_ns, 0) / 1000000000, max(last_ts_ns - first_ts_ns, 0) % 1000000000)
        AS duration,
    tcp_state,
    rtt_ns / 1e6 AS rtt_ms,
    CASE WHEN fwd_retransmissions > 9223372036854775807 - rev_retransmissions THEN 9223372036854775807
        ELSE fwd_retransmissions + rev_retransmissions END AS retransmissions,
    vlan,
    tunnel,
    "end",
    proto_num,
    first_ts_ns,
    last_ts_ns,
    max(last_ts_ns - first_ts_ns, 0) AS duration_ns,
    rtt_ns,
    rtt_server_ns,
    rtt_client_ns,
    fwd_tcp_flags,
    rev_tcp_flags,
    fwd_retransmissions,
    rev_retransmissions,
    out_of_order,
    zero_window,
    tunnel_id,
    anomalies
FROM flow_rows;

CREATE TABLE host_rows (
    input_id        INTEGER NOT NULL REFERENCES inputs(id),
    ip              TEXT    NOT NULL,
    packets_sent    INTEGER NOT NULL,
    packets_recv    INTEGER NOT NULL,
    bytes_sent      INTEGER NOT NULL,
    bytes_recv      INTEGER NOT NULL,
    flows_initiated INTEGER NOT NULL,
    flows_received  INTEGER NOT NULL,
    first_ts_ns     INTEGER NOT NULL,
    last_ts_ns      INTEGER NOT NULL,
    PRIMARY KEY (input_id, ip)
) STRICT;
INSERT INTO host_rows (input_id, ip, packets_sent, packets_recv, bytes_sent, bytes_recv, flows_initiated,
    flows_received, first_ts_ns, last_ts_ns)
SELECT input_id, ip, packets_sent, packets_recv, bytes_sent, bytes_recv, flows_initiated, flows_received,
    first_ts_ns, last_ts_ns
FROM hosts ORDER BY rowid;
DROP TABLE hosts;
CREATE VIEW hosts AS SELECT
    input_id,
    ip,
    packets_sent,
    packets_recv,
    bytes_sent,
    bytes_recv,
    flows_initiated,
    flows_received,
    printf('%d.%09d', first_ts_ns / 1000000000, first_ts_ns % 1000000000) AS first_ts,
    first_ts_ns,
    printf('%d.%09d', last_ts_ns / 1000000000, last_ts_ns % 1000000000) AS last_ts,
    last_ts_ns
FROM host_rows;
"#;

/// Tables holding per-input rows, in the order a half-written input is deleted (children first).
pub(crate) const INPUT_TABLES: &[&str] = &[
    "incident_alerts",
    "incidents",
    "host_rows",
    "timeseries",
    "losses",
    "alerts",
    "flow_rows",
    "input_files",
];
