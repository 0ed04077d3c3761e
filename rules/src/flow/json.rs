//! The flow JSON object of the CLI's jsonl output (schema in `docs/flows.md`).

use netrec_format::{FlowRecord, TcpState, Ts, proto_name};
use serde_json::{Value, json};

/// One flow as the jsonl schema of issue #3 (initiator first; timestamps and the
/// duration as decimal-seconds strings with 9 digits, so no precision is lost).
pub fn flow_json(rec: &FlowRecord) -> Value {
    let k = &rec.key;
    let (f, r) = (&rec.fwd, &rec.rev);
    json!({
        "proto": proto_name(k.proto),
        "src_ip": k.src_ip.to_string(),
        "src_port": k.src_port,
        "dst_ip": k.dst_ip.to_string(),
        "dst_port": k.dst_port,
        "packets": f.packets + r.packets,
        "bytes": f.bytes + r.bytes,
        "fwd_packets": f.packets,
        "fwd_bytes": f.bytes,
        "fwd_payload_bytes": f.payload_bytes,
        "rev_packets": r.packets,
        "rev_bytes": r.bytes,
        "rev_payload_bytes": r.payload_bytes,
        "first_ts": rec.first_ts.to_decimal(),
        "last_ts": rec.last_ts.to_decimal(),
        "duration": Ts(rec.last_ts.saturating_sub(rec.first_ts)).to_decimal(),
        "tcp_state": (rec.tcp_state != TcpState::None).then(|| rec.tcp_state.as_str()),
        "rtt_ms": rec.rtt_ns().map(|ns| ns as f64 / 1e6),
        "retransmissions": f.retransmissions + r.retransmissions,
        "vlan": (k.vlan != 0).then_some(k.vlan),
        "tunnel": rec.tunnel.map(|t| json!({
            "kind": t.kind.as_str(),
            "id": t.id,
            "outer_src": t.outer_src.to_string(),
            "outer_dst": t.outer_dst.to_string(),
        })),
        "end": end_str(rec.end),
    })
}

fn end_str(e: netrec_format::FlowEnd) -> &'static str {
    use netrec_format::FlowEnd::*;
    match e {
        Open => "open",
        IdleTimeout => "idle_timeout",
        ActiveTimeout => "active_timeout",
        TcpClose => "tcp_close",
        Evicted => "evicted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_format::{DirStats, FlowEnd, FlowKey, Tunnel, TunnelKind};

    #[test]
    fn schema_fields_and_values() {
        let rec = FlowRecord {
            key: FlowKey {
                proto: 6,
                src_ip: "131.155.215.69".parse().unwrap(),
                src_port: 46656,
                dst_ip: "137.116.81.94".parse().unwrap(),
                dst_port: 80,
                vlan: 0,
                tunnel_id: 0,
            },
            first_ts: Ts(1_418_145_369_924_505_488),
            last_ts: Ts(1_418_145_370_052_115_157),
            fwd: DirStats {
                packets: 2,
                bytes: 140,
                payload_bytes: 0,
                retransmissions: 1,
                ..DirStats::default()
            },
            rev: DirStats {
                packets: 1,
                bytes: 74,
                payload_bytes: 5,
                retransmissions: 2,
                ..DirStats::default()
            },
            tcp_state: TcpState::Established,
            rtt_server_ns: Some(127_521_774),
            rtt_client_ns: Some(87_895),
            end: FlowEnd::Open,
            tunnel: None,
            anomalies: 0,
        };
        let v = flow_json(&rec);
        assert_eq!(v["proto"], "tcp");
        assert_eq!(v["src_ip"], "131.155.215.69");
        assert_eq!(v["src_port"], 46656);
        assert_eq!(v["dst_port"], 80);
        assert_eq!(v["packets"], 3);
        assert_eq!(v["bytes"], 214);
        assert_eq!(v["fwd_packets"], 2);
        assert_eq!(v["rev_bytes"], 74);
        assert_eq!(v["rev_payload_bytes"], 5);
        assert_eq!(v["first_ts"], "1418145369.924505488");
        assert_eq!(v["last_ts"], "1418145370.052115157");
        assert_eq!(v["duration"], "0.127609669");
        assert_eq!(v["tcp_state"], "established");
        assert_eq!(v["rtt_ms"], 127.609669);
        assert_eq!(v["retransmissions"], 3);
        assert_eq!(v["vlan"], Value::Null);
        assert_eq!(v["tunnel"], Value::Null);
        assert_eq!(v["end"], "open");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let want = [
            "bytes",
            "dst_ip",
            "dst_port",
            "duration",
            "end",
            "first_ts",
            "fwd_bytes",
            "fwd_packets",
            "fwd_payload_bytes",
            "last_ts",
            "packets",
            "proto",
            "retransmissions",
            "rev_bytes",
            "rev_packets",
            "rev_payload_bytes",
            "rtt_ms",
            "src_ip",
            "src_port",
            "tcp_state",
            "tunnel",
            "vlan",
        ];
        assert_eq!(keys, want);

        let udp = FlowRecord {
            key: FlowKey { proto: 17, vlan: 100, tunnel_id: 1111, ..rec.key },
            tcp_state: TcpState::None,
            rtt_server_ns: None,
            end: FlowEnd::IdleTimeout,
            tunnel: Some(Tunnel {
                kind: TunnelKind::Vxlan,
                id: 1111,
                outer_src: "10.0.0.1".parse().unwrap(),
                outer_dst: "10.0.0.2".parse().unwrap(),
            }),
            ..rec
        };
        let v = flow_json(&udp);
        assert_eq!(v["proto"], "udp");
        assert_eq!(v["tcp_state"], Value::Null);
        assert_eq!(v["rtt_ms"], Value::Null);
        assert_eq!(v["vlan"], 100);
        assert_eq!(v["tunnel"]["kind"], "vxlan");
        assert_eq!(v["tunnel"]["id"], 1111);
        assert_eq!(v["end"], "idle_timeout");
    }
}
