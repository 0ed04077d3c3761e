//! Test-only frame builder shared by the decoder tests and bench (`#[path]`-included).
//! Builds headers with correct length fields; checksums are zero (the decoder ignores
//! them). Tests patch individual bytes afterwards to make headers lie.
#![allow(dead_code)]

use netrec_format::LinkType;

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Ethernet II header + payload.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    eth_tags(&[], ethertype, payload)
}

/// Ethernet with 802.1Q tags, outermost first.
pub fn eth_vlans(vids: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let tags: Vec<(u16, u16)> = vids.iter().map(|&v| (0x8100, v)).collect();
    eth_tags(&tags, ethertype, payload)
}

/// Ethernet with (TPID, TCI) tags, outermost first.
pub fn eth_tags(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = cat(&[&MAC_B, &MAC_A]);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (IHL 5, TTL 64, id 0x1234) + payload; total length = 20 + payload.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// IPv6 header (hop limit 64) + payload (which includes any extension headers).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(64);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// A generic IPv6 extension header (hop-by-hop, routing, destination options) of
/// `8 * (words + 1)` bytes.
pub fn ext6(next: u8, words: u8) -> Vec<u8> {
    let mut e = vec![0u8; 8 * (usize::from(words) + 1)];
    e[0] = next;
    e[1] = words;
    e
}

/// IPv6 fragment header (`offset` in bytes, a multiple of 8).
pub fn frag6(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let fo = (offset & 0xfff8) | u16::from(more);
    let mut e = vec![next, 0];
    e.extend_from_slice(&fo.to_be_bytes());
    e.extend_from_slice(&id.to_be_bytes());
    e
}

/// 2001:db8::<last>
pub fn v6(last: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}

/// TCP header with options (zero-padded to 4 bytes) + payload. Window 65535.
pub fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(0);
    }
    let hl = 20 + o.len();
    let mut h = Vec::with_capacity(hl + payload.len());
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&ack.to_be_bytes());
    h.push(((hl / 4) as u8) << 4);
    h.push(flags);
    h.extend_from_slice(&65535u16.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(&o);
    h.extend_from_slice(payload);
    h
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

pub fn icmp(ty: u8, code: u8, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![ty, code, 0, 0];
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// GRE version 0 with optional checksum, key and sequence number.
pub fn gre(csum: bool, key: Option<u32>, seq: Option<u32>, ptype: u16, payload: &[u8]) -> Vec<u8> {
    let mut flags = 0u16;
    if csum {
        flags |= 0x8000;
    }
    if key.is_some() {
        flags |= 0x2000;
    }
    if seq.is_some() {
        flags |= 0x1000;
    }
    let mut h = Vec::new();
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&ptype.to_be_bytes());
    if csum {
        h.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(k) = key {
        h.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = seq {
        h.extend_from_slice(&s.to_be_bytes());
    }
    h.extend_from_slice(payload);
    h
}

/// ERSPAN type II header (version 1) + frame.
pub fn erspan2(session: u16, vlan: u16, frame: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&((1u16 << 12) | (vlan & 0x0fff)).to_be_bytes());
    h.extend_from_slice(&(session & 0x03ff).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 7]);
    h.extend_from_slice(frame);
    h
}

/// ERSPAN type III header (version 2, frame type 0) with optional platform subheader.
pub fn erspan3(session: u16, subheader: bool, frame: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&(2u16 << 12).to_be_bytes());
    h.extend_from_slice(&(session & 0x03ff).to_be_bytes());
    h.extend_from_slice(&0x1122_3344u32.to_be_bytes()); // timestamp
    h.extend_from_slice(&[0, 0, 0, u8::from(subheader)]);
    if subheader {
        h.extend_from_slice(&[0xee; 8]);
    }
    h.extend_from_slice(frame);
    h
}

pub fn vxlan(vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut h = vec![0x08, 0, 0, 0];
    h.extend_from_slice(&(vni << 8).to_be_bytes());
    h.extend_from_slice(frame);
    h
}

/// VXLAN-GPE header (I and P flags) with next protocol `next` and VNI `vni`, then `payload`.
pub fn vxlan_gpe(vni: u32, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x0c, 0, 0, next];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// NSH (RFC 8300): version 0, TTL 63, MD type `md` (1: the fixed 16 context bytes; 2: `tlv_words`
/// 4-byte words holding one TLV of class 0, type 1, when not 0), service path 0x000123 index
/// 255, next protocol `next`.
pub fn nsh(md: u8, tlv_words: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let ctx = if md == 1 { 4 } else { tlv_words };
    let len = 2 + ctx;
    let mut h = vec![0x0f, 0xc0 | (len & 0x3f), md & 0x0f, next, 0, 0x01, 0x23, 0xff];
    if md == 1 {
        h.extend(std::iter::repeat_n(0x5a, 16));
    } else if tlv_words > 0 {
        h.extend_from_slice(&[0, 0, 1, (tlv_words - 1) * 4]);
        h.extend(std::iter::repeat_n(0x5a, 4 * usize::from(tlv_words - 1)));
    }
    h.extend_from_slice(payload);
    h
}

/// Geneve with `opt_words` 4-byte words of (opaque) options.
pub fn geneve(vni: u32, ptype: u16, opt_words: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![opt_words & 0x3f, 0];
    h.extend_from_slice(&ptype.to_be_bytes());
    h.extend_from_slice(&(vni << 8).to_be_bytes());
    h.extend(std::iter::repeat_n(0xab, 4 * usize::from(opt_words)));
    h.extend_from_slice(payload);
    h
}

/// An MPLS label stack (outermost first, TTL 64); the bottom-of-stack bit on the last entry.
pub fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        h.extend_from_slice(&((l << 12) | (bos << 8) | 64).to_be_bytes());
    }
    h.extend_from_slice(payload);
    h
}

/// GTP-U version 1 (PT set): message type, TEID; with `seq` the optional 4-byte fields (S set);
/// `ext` extension headers as (type, content) with content padded to 4n-2 bytes by the caller.
pub fn gtpu(msg: u8, teid: u32, seq: Option<u16>, ext: &[(u8, Vec<u8>)], payload: &[u8]) -> Vec<u8> {
    let mut flags = 0x30;
    let mut opt = Vec::new();
    if seq.is_some() || !ext.is_empty() {
        flags |= if seq.is_some() { 0x02 } else { 0 } | if ext.is_empty() { 0 } else { 0x04 };
        opt.extend_from_slice(&seq.unwrap_or(0).to_be_bytes());
        opt.push(0);
        opt.push(ext.first().map_or(0, |e| e.0));
        for (i, (_, content)) in ext.iter().enumerate() {
            assert_eq!((content.len() + 2) % 4, 0, "extension content must be 4n-2 bytes");
            opt.push(((content.len() + 2) / 4) as u8);
            opt.extend_from_slice(content);
            opt.push(ext.get(i + 1).map_or(0, |e| e.0));
        }
    }
    let mut h = vec![flags, msg];
    h.extend_from_slice(&((opt.len() + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&teid.to_be_bytes());
    h.extend_from_slice(&opt);
    h.extend_from_slice(payload);
    h
}

/// 802.2 LLC + SNAP header (OUI 0) carrying `ethertype`.
pub fn llc_snap(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&[0xaa, 0xaa, 0x03, 0, 0, 0], &ethertype.to_be_bytes(), payload])
}

/// IEEE 802.3 frame: the type field is the payload length.
pub fn eth8023(payload: &[u8]) -> Vec<u8> {
    cat(&[&MAC_B, &MAC_A, &(payload.len() as u16).to_be_bytes(), payload])
}

/// IEEE 802.11 data frame (type 2): frame-control `flags` (ToDS 0x01, FromDS 0x02,
/// protected 0x40, order 0x80), QoS control first byte when `qos` (subtype 8), the 4-byte HT
/// control when `ht`, then `body`.
pub fn wifi_data(flags: u8, qos: Option<u8>, ht: bool, body: &[u8]) -> Vec<u8> {
    let subtype: u8 = if qos.is_some() { 8 } else { 0 };
    let mut f = vec![(2 << 2) | (subtype << 4), flags, 0, 0];
    f.extend_from_slice(&[MAC_A, MAC_B, MAC_A].concat());
    f.extend_from_slice(&[0x10, 0]);
    if flags & 3 == 3 {
        f.extend_from_slice(&MAC_B);
    }
    if let Some(q) = qos {
        f.extend_from_slice(&[q, 0]);
        if ht {
            f.extend_from_slice(&[0; 4]);
        }
    }
    f.extend_from_slice(body);
    f
}

/// Radiotap header: TSFT (8 bytes, 8-aligned) when `tsft`, the Flags byte when `flags` is given,
/// an extra (empty) presence word when `ext`; then `frame`.
pub fn radiotap(tsft: bool, flags: Option<u8>, ext: bool, frame: &[u8]) -> Vec<u8> {
    let mut present = u32::from(tsft) | (u32::from(flags.is_some()) << 1);
    if ext {
        present |= 0x8000_0000;
    }
    let mut h = vec![0, 0, 0, 0];
    h.extend_from_slice(&present.to_le_bytes());
    if ext {
        h.extend_from_slice(&0u32.to_le_bytes());
    }
    if tsft {
        h.resize(h.len().next_multiple_of(8), 0);
        h.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    }
    if let Some(fl) = flags {
        h.push(fl);
    }
    let len = h.len() as u16;
    h[2..4].copy_from_slice(&len.to_le_bytes());
    h.extend_from_slice(frame);
    h
}

/// pf log header (OpenBSD layout): `len` in byte 0 (61 classic, 100 with the NAT fields), the
/// address family `af` in byte 1, zero fields up to `len` padded to 4 bytes; then `packet`.
pub fn pflog(len: u8, af: u8, packet: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; usize::from(len).next_multiple_of(4)];
    h[0] = len;
    h[1] = af;
    h[4..7].copy_from_slice(b"em0");
    cat(&[&h, packet])
}

/// PPI header naming link type `dlt`; with `fcs` an 802.11-Common field whose flags say an FCS
/// ends the frame (the caller appends it); `aligned` sets the 32-bit alignment flag and adds an
/// odd-sized unknown field before it.
pub fn ppi(dlt: u32, fcs: Option<bool>, aligned: bool, frame: &[u8]) -> Vec<u8> {
    let mut fields = Vec::new();
    if aligned {
        fields.extend_from_slice(&[0x99, 0x99, 3, 0, 1, 2, 3, 0]); // 3 bytes + 1 pad
    }
    if let Some(fcs) = fcs {
        fields.extend_from_slice(&2u16.to_le_bytes());
        fields.extend_from_slice(&20u16.to_le_bytes());
        let mut common = [0u8; 20];
        common[8] = u8::from(fcs);
        fields.extend_from_slice(&common);
    }
    let mut h = vec![0, u8::from(aligned)];
    h.extend_from_slice(&(8 + fields.len() as u16).to_le_bytes());
    h.extend_from_slice(&dlt.to_le_bytes());
    cat(&[&h, &fields, frame])
}

/// Apple PKTAP header (108 bytes, little-endian) of record type `next` naming link type `dlt`.
pub fn pktap(next: u32, dlt: u32, frame: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 108];
    h[0..4].copy_from_slice(&108u32.to_le_bytes());
    h[4..8].copy_from_slice(&next.to_le_bytes());
    h[8..12].copy_from_slice(&dlt.to_le_bytes());
    h[12..15].copy_from_slice(b"en0");
    cat(&[&h, frame])
}

/// Prism monitor header (144 bytes, little-endian unless `big`), then `frame`.
pub fn prism(big: bool, frame: &[u8]) -> Vec<u8> {
    let w = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut h = vec![0u8; 144];
    h[0..4].copy_from_slice(&w(0x44));
    h[4..8].copy_from_slice(&w(144));
    h[8..13].copy_from_slice(b"wlan0");
    cat(&[&h, frame])
}

/// AVS monitor header (64 bytes, big-endian), then `frame`.
pub fn avs(frame: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[0..4].copy_from_slice(&0x8021_1001u32.to_be_bytes());
    h[4..8].copy_from_slice(&64u32.to_be_bytes());
    cat(&[&h, frame])
}

/// Teredo payload: the authentication indicator (with a 3-byte client id) when `auth`, the origin
/// indication when `origin`, then `ipv6` (an IPv6 packet).
pub fn teredo(auth: bool, origin: bool, ipv6: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if auth {
        v.extend_from_slice(&[0, 1, 3, 0, b'c', b'i', b'd']);
        v.extend_from_slice(&[0x55; 8]); // nonce
        v.push(0); // confirmation
    }
    if origin {
        v.extend_from_slice(&[0, 0, 0xcf, 0xc7, 0xfe, 0xff, 0xff, 0xfe]);
    }
    v.extend_from_slice(ipv6);
    v
}

/// IEEE 802.1ah I-TAG payload (ethertype 0x88e7 comes before it): flags, 24-bit I-SID, the
/// customer's MAC addresses, then `frame_rest` (the customer frame from its ethertype on).
pub fn pbb(isid: u32, frame_rest: &[u8]) -> Vec<u8> {
    let mut v = (isid & 0x00ff_ffff).to_be_bytes().to_vec();
    v.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b]);
    v.extend_from_slice(frame_rest);
    v
}

/// IPsec AH (RFC 4302) with a 12-byte ICV (HMAC-96), then `payload` of protocol `next`.
pub fn ah(next: u8, spi: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![next, 4, 0, 0];
    v.extend_from_slice(&spi.to_be_bytes());
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(&[0xa5; 12]);
    v.extend_from_slice(payload);
    v
}

/// PPTP enhanced GRE (version 1, protocol 0x880b) for call `call`: sequence number when `seq`,
/// acknowledgment number when `ack`; then `ppp` (its length is the payload length field).
pub fn pptp(call: u16, seq: Option<u32>, ack: Option<u32>, ppp: &[u8]) -> Vec<u8> {
    let flags0 = 0x20 | if seq.is_some() { 0x10 } else { 0 };
    let flags1 = 0x01 | if ack.is_some() { 0x80 } else { 0 };
    let mut v = vec![flags0, flags1, 0x88, 0x0b];
    v.extend_from_slice(&(ppp.len() as u16).to_be_bytes());
    v.extend_from_slice(&call.to_be_bytes());
    for n in [seq, ack].into_iter().flatten() {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v.extend_from_slice(ppp);
    v
}

/// L2TPv2 data message: optional length field, Ns/Nr, offset padding; then `ppp` (a PPP frame).
pub fn l2tp(length: bool, seq: bool, offset: Option<u16>, tunnel: u16, session: u16, ppp: &[u8]) -> Vec<u8> {
    let flags =
        if length { 0x40 } else { 0 } | if seq { 0x08 } else { 0 } | if offset.is_some() { 0x02 } else { 0 };
    let mut h = vec![flags, 0x02];
    let mut rest = Vec::new();
    rest.extend_from_slice(&tunnel.to_be_bytes());
    rest.extend_from_slice(&session.to_be_bytes());
    if seq {
        rest.extend_from_slice(&[0, 1, 0, 2]);
    }
    if let Some(o) = offset {
        rest.extend_from_slice(&o.to_be_bytes());
        rest.extend(std::iter::repeat_n(0xee, usize::from(o)));
    }
    if length {
        h.extend_from_slice(&((4 + rest.len() + ppp.len()) as u16).to_be_bytes());
    }
    h.extend_from_slice(&rest);
    h.extend_from_slice(ppp);
    h
}

/// ARP request/reply for Ethernet/IPv4.
pub fn arp(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0, 1, 0x08, 0x00, 6, 4];
    h.extend_from_slice(&op.to_be_bytes());
    h.extend_from_slice(&MAC_A);
    h.extend_from_slice(&sender);
    h.extend_from_slice(&[0; 6]);
    h.extend_from_slice(&target);
    h
}

/// NFLOG frame with little-endian TLVs: packet header, prefix, then the payload.
pub fn nflog(family: u8, packet: &[u8]) -> Vec<u8> {
    let mut f = vec![family, 0, 0, 20];
    let tlv = |f: &mut Vec<u8>, ty: u16, v: &[u8]| {
        f.extend_from_slice(&((4 + v.len()) as u16).to_le_bytes());
        f.extend_from_slice(&ty.to_le_bytes());
        f.extend_from_slice(v);
        while !f.len().is_multiple_of(4) {
            f.push(0);
        }
    };
    tlv(&mut f, 1, &[0x08, 0x00, 1, 0]);
    tlv(&mut f, 10, b"log-prefix\0");
    tlv(&mut f, 9, packet);
    f
}

/// Linux cooked v1 header for `ethertype`.
pub fn sll(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&[0, 0, 0, 1, 0, 6], &MAC_A, &[0, 0], &ethertype.to_be_bytes(), payload])
}

/// Linux cooked v2 header for `ethertype`.
pub fn sll2(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&ethertype.to_be_bytes(), &[0, 0, 0, 0, 0, 2, 0, 1, 0, 6], &MAC_A, &[0, 0], payload])
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("ascii"), 16).expect("hex"))
        .collect()
}

/// A mix of valid frames over every link type and tunnel, for mutation tests and the bench.
pub fn corpus() -> Vec<(LinkType, Vec<u8>)> {
    use LinkType as L;
    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    let syn = tcp(40000, 80, 0x02, 1, 0, &[2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2], b"");
    let t4 = ipv4(a, b, 6, &tcp(40000, 80, 0x18, 100, 200, &[], b"GET / HTTP/1.1\r\n\r\n"));
    let u4 = ipv4(a, b, 17, &udp(5353, 53, b"query"));
    let i4 = ipv4(a, b, 1, &icmp(8, 0, 7, 9, b"ping"));
    let t6 = ipv6(v6(1), v6(2), 6, &syn);
    let f6 = ipv6(v6(1), v6(2), 0, &cat(&[&ext6(44, 0), &frag6(17, 0, true, 77), &udp(1, 2, &[0; 16])]));
    let inner = eth(0x0800, &i4);
    vec![
        (L::ETHERNET, eth(0x0800, &t4)),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 6, &syn))),
        (L::ETHERNET, eth_vlans(&[10, 20, 30], 0x0800, &u4)),
        (L::ETHERNET, eth(0x86dd, &t6)),
        (L::ETHERNET, eth(0x86dd, &f6)),
        (L::ETHERNET, eth(0x0806, &arp(1, a, b))),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 47, &gre(true, Some(5), Some(1), 0x6558, &inner)))),
        (
            L::ETHERNET,
            eth(0x0800, &ipv4(a, b, 47, &gre(false, None, Some(1), 0x88be, &erspan2(9, 0, &inner)))),
        ),
        (
            L::ETHERNET,
            eth(0x0800, &ipv4(a, b, 47, &gre(false, None, None, 0x22eb, &erspan3(9, true, &inner)))),
        ),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 17, &udp(1, 4789, &vxlan(42, &inner))))),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 17, &udp(1, 6081, &geneve(42, 0x6558, 2, &inner))))),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 41, &t6))),
        (L::ETHERNET, eth(0x8847, &mpls(&[16, 17], &t4))),
        (L::ETHERNET, eth8023(&llc_snap(0x0800, &u4))),
        (
            L::RAW,
            ipv4(
                a,
                b,
                17,
                &udp(1701, 1701, &l2tp(true, true, Some(2), 5, 6, &cat(&[&[0xff, 0x03, 0, 0x21], &t4]))),
            ),
        ),
        (L::C_HDLC, cat(&[&[0x0f, 0, 0x08, 0], &t4])),
        (L::IEEE802_11, wifi_data(0x01, Some(0), true, &llc_snap(0x0800, &t4))),
        (
            L::IEEE802_11_RADIOTAP,
            radiotap(
                true,
                Some(0x10),
                true,
                &cat(&[&wifi_data(0x02, None, false, &llc_snap(0x86dd, &t6)), &[0xfc; 4]]),
            ),
        ),
        (L::ETHERNET, eth(0x8847, &mpls(&[18], &cat(&[&[0; 4], &inner])))),
        (
            L::ETHERNET,
            eth(
                0x0800,
                &ipv4(a, b, 17, &udp(2152, 2152, &gtpu(0xff, 3, Some(1), &[(0x85, vec![0, 1])], &t6))),
            ),
        ),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 17, &udp(40000, 3544, &teredo(true, true, &t6))))),
        (L::RAW, ipv4(a, b, 47, &pptp(7, Some(1), Some(0), &cat(&[&[0xff, 0x03, 0, 0x21], &u4])))),
        (L::RAW, ipv4(a, b, 51, &ah(6, 9, &syn))),
        (L::ETHERNET, eth(0x0800, &ipv4(a, b, 17, &udp(1, 4790, &vxlan_gpe(7, 2, &t6))))),
        (L::ETHERNET, eth_vlans(&[100], 0x88e7, &pbb(0x1234, &cat(&[&[0x81, 0, 0, 7, 0x08, 0], &t4])))),
        (L::PFLOG, pflog(61, 2, &t4)),
        (L::PFLOG, pflog(100, 24, &t6)),
        (
            L::PPI,
            ppi(
                105,
                Some(true),
                true,
                &cat(&[&wifi_data(0x01, None, false, &llc_snap(0x0800, &u4)), &[0; 4]]),
            ),
        ),
        (L::PPI, ppi(1, None, false, &eth(0x0800, &t4))),
        (L::PKTAP, pktap(1, 1, &eth(0x86dd, &t6))),
        (L::PKTAP, pktap(1, 0, &cat(&[&2u32.to_le_bytes(), &i4]))),
        (L::IEEE802_11_PRISM, prism(false, &wifi_data(0x02, Some(0), false, &llc_snap(0x0800, &t4)))),
        (L::IEEE802_11_AVS, avs(&wifi_data(0x01, None, false, &llc_snap(0x86dd, &t6)))),
        (L::RAW, t4.clone()),
        (L::IPV4, u4.clone()),
        (L::IPV6, t6.clone()),
        (L::NULL, cat(&[&2u32.to_le_bytes(), &t4])),
        (L::LOOP, cat(&[&30u32.to_be_bytes(), &t6])),
        (L::LINUX_SLL, sll(0x0800, &t4)),
        (L::LINUX_SLL2, sll2(0x86dd, &t6)),
        (L::PPP, cat(&[&[0xff, 0x03, 0x00, 0x21], &u4])),
        (L::PPP_HDLC, cat(&[&[0xff, 0x03, 0x57], &t6])),
        (L::NFLOG, nflog(2, &u4)),
    ]
}
