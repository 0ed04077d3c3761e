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

/// Append the JSON text of [`flow_json`]'s object for `rec` to `out`, byte for byte what
/// `serde_json::to_string(&flow_json(rec))` gives (keys in its sorted order; proptested), written
/// directly: `netrec flows --format jsonl` prints a line per flow, a million for a flood capture,
/// and serde's `Display`-based string fields were a third of its time.
pub fn write_flow_json(out: &mut String, rec: &FlowRecord) {
    use netrec_format::text::{push_ip, push_ts, push_u64};
    let k = &rec.key;
    let (f, r) = (&rec.fwd, &rec.rev);
    let num = |out: &mut String, name: &str, v: u64| {
        out.push_str(name);
        push_u64(out, v);
    };
    num(out, "{\"bytes\":", f.bytes + r.bytes);
    out.push_str(",\"dst_ip\":\"");
    push_ip(out, &k.dst_ip);
    num(out, "\",\"dst_port\":", u64::from(k.dst_port));
    out.push_str(",\"duration\":\"");
    push_ts(out, rec.last_ts.saturating_sub(rec.first_ts));
    out.push_str("\",\"end\":");
    push_name(out, end_str(rec.end));
    out.push_str(",\"first_ts\":\"");
    push_ts(out, rec.first_ts.nanos());
    num(out, "\",\"fwd_bytes\":", f.bytes);
    num(out, ",\"fwd_packets\":", f.packets);
    num(out, ",\"fwd_payload_bytes\":", f.payload_bytes);
    out.push_str(",\"last_ts\":\"");
    push_ts(out, rec.last_ts.nanos());
    num(out, "\",\"packets\":", f.packets + r.packets);
    out.push_str(",\"proto\":");
    push_name(out, &proto_name(k.proto));
    num(out, ",\"retransmissions\":", f.retransmissions + r.retransmissions);
    num(out, ",\"rev_bytes\":", r.bytes);
    num(out, ",\"rev_packets\":", r.packets);
    num(out, ",\"rev_payload_bytes\":", r.payload_bytes);
    out.push_str(",\"rtt_ms\":");
    match rec.rtt_ns() {
        // serde_json's own float text (shortest round-trip form); rare enough to allocate.
        Some(ns) => {
            out.push_str(&serde_json::to_string(&(ns as f64 / 1e6)).unwrap_or_else(|_| "null".into()))
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"src_ip\":\"");
    push_ip(out, &k.src_ip);
    num(out, "\",\"src_port\":", u64::from(k.src_port));
    out.push_str(",\"tcp_state\":");
    if rec.tcp_state == TcpState::None {
        out.push_str("null");
    } else {
        push_name(out, rec.tcp_state.as_str());
    }
    out.push_str(",\"tunnel\":");
    match &rec.tunnel {
        Some(t) => {
            num(out, "{\"id\":", u64::from(t.id));
            out.push_str(",\"kind\":");
            push_name(out, t.kind.as_str());
            out.push_str(",\"outer_dst\":\"");
            push_ip(out, &t.outer_dst);
            out.push_str("\",\"outer_src\":\"");
            push_ip(out, &t.outer_src);
            out.push_str("\"}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"vlan\":");
    if k.vlan == 0 {
        out.push_str("null");
    } else {
        push_u64(out, u64::from(k.vlan));
    }
    out.push('}');
}

/// A JSON string literal of one of netrec's own names (protocols, states, ends, tunnel kinds):
/// lowercase ASCII that needs no escape (`written_flow_json_is_byte_identical` compares every
/// name with serde_json's text), so not scanned for characters to escape.
#[inline]
fn push_name(out: &mut String, name: &str) {
    debug_assert!(!name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'), "{name:?}");
    out.push('"');
    out.push_str(name);
    out.push('"');
}

/// The `end` text of a flow record.
pub fn end_str(e: netrec_format::FlowEnd) -> &'static str {
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
    use proptest::prelude::*;

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

    fn ip_strategy() -> impl Strategy<Value = std::net::IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(std::net::IpAddr::from),
            any::<[u8; 16]>().prop_map(std::net::IpAddr::from),
        ]
    }

    fn dir_strategy() -> impl Strategy<Value = DirStats> {
        // Counts below 2^40 so that the fwd + rev sums cannot overflow.
        let n = 0u64..(1 << 40);
        (n.clone(), n.clone(), n.clone(), any::<u8>(), n.clone(), n.clone(), n).prop_map(
            |(packets, bytes, payload_bytes, tcp_flags, retransmissions, out_of_order, zero_window)| {
                DirStats {
                    packets,
                    bytes,
                    payload_bytes,
                    tcp_flags,
                    retransmissions,
                    out_of_order,
                    zero_window,
                }
            },
        )
    }

    fn record_strategy() -> impl Strategy<Value = FlowRecord> {
        let key =
            (
                any::<u16>(),
                ip_strategy(),
                any::<u16>(),
                ip_strategy(),
                any::<u16>(),
                any::<u16>(),
                any::<u32>(),
            )
                .prop_map(|(proto, src_ip, src_port, dst_ip, dst_port, vlan, tunnel_id)| {
                    FlowKey { proto, src_ip, src_port, dst_ip, dst_port, vlan, tunnel_id }
                });
        let tunnel = proptest::option::of((0u8..5, any::<u32>(), ip_strategy(), ip_strategy()).prop_map(
            |(k, id, outer_src, outer_dst)| {
                let kind = [
                    TunnelKind::Gre,
                    TunnelKind::Erspan,
                    TunnelKind::Vxlan,
                    TunnelKind::Geneve,
                    TunnelKind::IpInIp,
                ][k as usize];
                Tunnel { kind, id, outer_src, outer_dst }
            },
        ));
        let end = (0u8..5).prop_map(|e| {
            [FlowEnd::Open, FlowEnd::IdleTimeout, FlowEnd::ActiveTimeout, FlowEnd::TcpClose, FlowEnd::Evicted]
                [e as usize]
        });
        // Below 2^62: `rtt_ns` adds the two halves.
        let rtt = || proptest::option::of(prop_oneof![0u64..10, 0u64..1_000_000_000_000, 0u64..(1 << 62)]);
        (
            key,
            (any::<u64>(), any::<u64>()),
            dir_strategy(),
            dir_strategy(),
            (0u8..8).prop_map(|s| TcpState::from_u8(s).unwrap()),
            (rtt(), rtt()),
            end,
            tunnel,
            any::<u64>(),
        )
            .prop_map(
                |(
                    key,
                    (a, b),
                    fwd,
                    rev,
                    tcp_state,
                    (rtt_server_ns, rtt_client_ns),
                    end,
                    tunnel,
                    anomalies,
                )| {
                    FlowRecord {
                        key,
                        first_ts: Ts(a.min(b)),
                        last_ts: Ts(a.max(b)),
                        fwd,
                        rev,
                        tcp_state,
                        rtt_server_ns,
                        rtt_client_ns,
                        end,
                        tunnel,
                        anomalies,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The direct writer is a drop-in replacement: byte-identical to the `Value` form.
        #[test]
        fn written_flow_json_is_byte_identical(rec in record_strategy()) {
            let want = serde_json::to_string(&flow_json(&rec)).unwrap();
            let mut got = String::from("x");
            write_flow_json(&mut got, &rec);
            prop_assert_eq!(&got[1..], want.as_str());
        }
    }
}
