//! Parse generated captures back and check every header a generator is responsible for:
//! IPv4 header checksums, and TCP/UDP/ICMP/ICMPv6 checksums of complete, unfragmented packets.

use crate::frame::{
    ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_VLAN, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, finish, sum,
};
use anyhow::{Context, bail, ensure};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub packets: usize,
    pub ipv4_headers_checked: usize,
    pub l4_checked: usize,
    /// Deliberately invalid IPv4 headers (IHL < 5) that were skipped.
    pub bad_ihl_skipped: usize,
    pub fragments: usize,
    pub arp: usize,
    pub first_ts: u64,
    pub last_ts: u64,
}

pub fn check_pcap(bytes: &[u8]) -> anyhow::Result<Report> {
    let (_, recs) = crate::pcap::parse(bytes).context("not a well-formed nanosecond Ethernet pcap")?;
    let mut rep = Report { packets: recs.len(), ..Report::default() };
    let mut prev = 0;
    for (i, (ts, data, orig)) in recs.iter().enumerate() {
        ensure!(*ts >= prev, "record {i}: time goes backwards");
        prev = *ts;
        check_frame(data, *orig as usize, &mut rep).with_context(|| format!("record {i} (ts {ts})"))?;
    }
    rep.first_ts = recs.first().map_or(0, |r| r.0);
    rep.last_ts = prev;
    Ok(rep)
}

fn be16(b: &[u8], o: usize) -> anyhow::Result<u16> {
    Ok(u16::from_be_bytes(b.get(o..o + 2).context("short frame")?.try_into()?))
}

fn check_frame(f: &[u8], orig: usize, rep: &mut Report) -> anyhow::Result<()> {
    let full = f.len() == orig;
    let mut et = be16(f, 12)?;
    let mut l3 = 14;
    if et == ETH_VLAN {
        et = be16(f, 16)?;
        l3 = 18;
    }
    match et {
        ETH_ARP => {
            ensure!(orig == l3 + 28, "ARP frame length {orig}");
            rep.arp += 1;
        }
        ETH_IPV4 => {
            let Some(&vihl) = f.get(l3) else { bail!("no IPv4 header") };
            ensure!(vihl >> 4 == 4, "IPv4 version {}", vihl >> 4);
            let ihl = (vihl & 0xf) as usize * 4;
            if ihl < 20 {
                rep.bad_ihl_skipped += 1;
                return Ok(());
            }
            let hdr = f.get(l3..l3 + ihl).context("IPv4 header truncated")?;
            ensure!(finish(sum(hdr, 0)) == 0, "bad IPv4 header checksum");
            rep.ipv4_headers_checked += 1;
            let total = be16(hdr, 2)? as usize;
            ensure!(total == orig - l3, "IPv4 total length {total} != {}", orig - l3);
            let frag = be16(hdr, 6)? & 0x3fff;
            if frag != 0 {
                rep.fragments += 1;
                return Ok(());
            }
            if full {
                let seg = &f[l3 + ihl..];
                let pseudo = sum(&hdr[12..20], seg.len() as u64 + hdr[9] as u64);
                check_l4(hdr[9], seg, pseudo, false)?;
                rep.l4_checked += 1;
            }
        }
        ETH_IPV6 => {
            let hdr = f.get(l3..l3 + 40).context("IPv6 header truncated")?;
            ensure!(hdr[0] >> 4 == 6, "IPv6 version");
            let plen = be16(hdr, 4)? as usize;
            ensure!(plen == orig - l3 - 40, "IPv6 payload length {plen}");
            if full {
                let seg = &f[l3 + 40..];
                let pseudo = sum(&hdr[8..40], seg.len() as u64 + hdr[6] as u64);
                check_l4(hdr[6], seg, pseudo, true)?;
                rep.l4_checked += 1;
            }
        }
        other => bail!("unexpected ethertype {other:#06x}"),
    }
    Ok(())
}

fn check_l4(proto: u8, seg: &[u8], pseudo: u64, v6: bool) -> anyhow::Result<()> {
    match proto {
        PROTO_TCP => {
            let off = (seg.get(12).context("TCP header truncated")? >> 4) as usize * 4;
            ensure!(off >= 20 && off <= seg.len(), "TCP data offset {off}");
            ensure!(finish(sum(seg, pseudo)) == 0, "bad TCP checksum");
        }
        PROTO_UDP => {
            ensure!(be16(seg, 4)? as usize == seg.len(), "UDP length");
            ensure!(finish(sum(seg, pseudo)) == 0, "bad UDP checksum");
        }
        PROTO_ICMP if !v6 => ensure!(finish(sum(seg, 0)) == 0, "bad ICMP checksum"),
        PROTO_ICMPV6 if v6 => ensure!(finish(sum(seg, pseudo)) == 0, "bad ICMPv6 checksum"),
        p => bail!("unexpected protocol {p}"),
    }
    Ok(())
}

/// Headers of one packet, enough for the semantic checks of the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkt {
    pub ts: u64,
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub proto: u8,
    pub ttl: u8,
    /// IPv4 flags+offset word (0 for IPv6).
    pub frag: u16,
    pub ihl: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// Transport payload length from the IP length fields (independent of the snaplen).
    pub payload_len: usize,
    /// Offset of the transport payload in the captured bytes.
    pub payload_off: usize,
}

/// Decode IP packets (ARP and IHL<5 packets are skipped). Transport fields are zero for
/// non-first fragments.
pub fn packets(bytes: &[u8]) -> anyhow::Result<Vec<(Pkt, &[u8])>> {
    use std::net::IpAddr;
    let (_, recs) = crate::pcap::parse(bytes).context("bad pcap")?;
    let mut out = Vec::new();
    for (ts, f, _) in recs {
        let mut et = be16(f, 12)?;
        let mut l3 = 14;
        if et == ETH_VLAN {
            et = be16(f, 16)?;
            l3 = 18;
        }
        let (src, dst, proto, ttl, frag, ihl, l4, l4_len) = match et {
            ETH_IPV4 => {
                let h = f.get(l3..l3 + 20).context("short IPv4")?;
                let ihl = (h[0] & 0xf) * 4;
                if ihl < 20 {
                    continue;
                }
                let a: [u8; 4] = h[12..16].try_into()?;
                let b: [u8; 4] = h[16..20].try_into()?;
                let total = be16(h, 2)? as usize;
                (
                    IpAddr::from(a),
                    IpAddr::from(b),
                    h[9],
                    h[8],
                    be16(h, 6)?,
                    ihl,
                    l3 + ihl as usize,
                    total - ihl as usize,
                )
            }
            ETH_IPV6 => {
                let h = f.get(l3..l3 + 40).context("short IPv6")?;
                let a: [u8; 16] = h[8..24].try_into()?;
                let b: [u8; 16] = h[24..40].try_into()?;
                (IpAddr::from(a), IpAddr::from(b), h[6], h[7], 0, 40, l3 + 40, be16(h, 4)? as usize)
            }
            _ => continue,
        };
        let mut p = Pkt {
            ts,
            src,
            dst,
            proto,
            ttl,
            frag,
            ihl,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            payload_len: 0,
            payload_off: l4,
        };
        if frag & 0x1fff == 0 && f.len() >= l4 + 8 {
            p.sport = be16(f, l4)?;
            p.dport = be16(f, l4 + 2)?;
            match proto {
                PROTO_TCP if f.len() >= l4 + 20 => {
                    p.seq = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into()?);
                    p.ack = u32::from_be_bytes(f[l4 + 8..l4 + 12].try_into()?);
                    let off = (f[l4 + 12] >> 4) as usize * 4;
                    p.tcp_flags = f[l4 + 13];
                    p.payload_len = l4_len.saturating_sub(off);
                    p.payload_off = l4 + off;
                }
                PROTO_UDP => {
                    p.payload_len = l4_len.saturating_sub(8);
                    p.payload_off = l4 + 8;
                }
                _ => {
                    p.sport = 0;
                    p.dport = 0;
                }
            }
        }
        out.push((p, f));
    }
    Ok(out)
}

/// Every ACK a side sends must acknowledge exactly the end of a segment the peer already sent
/// (once the peer has sent anything). Returns the number of ACKs checked.
pub fn check_tcp_numbers(bytes: &[u8]) -> anyhow::Result<usize> {
    use std::collections::{BTreeMap, BTreeSet};
    type Key = (std::net::IpAddr, u16, std::net::IpAddr, u16);
    let mut ends: BTreeMap<Key, BTreeSet<u32>> = BTreeMap::new();
    let mut checked = 0;
    for (p, _) in packets(bytes)? {
        if p.proto != PROTO_TCP || p.frag & 0x1fff != 0 || p.frag & 0x2000 != 0 {
            continue;
        }
        let me: Key = (p.src, p.sport, p.dst, p.dport);
        let peer: Key = (p.dst, p.dport, p.src, p.sport);
        if p.tcp_flags & 0x10 != 0
            && let Some(set) = ends.get(&peer)
        {
            ensure!(
                set.contains(&p.ack),
                "ts {}: {}:{} -> {}:{} acks {} which the peer never reached",
                p.ts,
                p.src,
                p.sport,
                p.dst,
                p.dport,
                p.ack
            );
            checked += 1;
        }
        let adv = p.payload_len as u32 + (p.tcp_flags & 0x02 != 0) as u32 + (p.tcp_flags & 0x01 != 0) as u32;
        ends.entry(me).or_default().insert(p.seq.wrapping_add(adv));
    }
    Ok(checked)
}
