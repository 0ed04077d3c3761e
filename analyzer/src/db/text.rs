//! The text forms of addresses and times stored in the database, written without `core::fmt`
//! (a million flows format five texts each; `write!` was a tenth of the writer's time), plus a
//! sort key that orders address texts as SQLite's BINARY collation does.
//!
//! Every function produces exactly the `Display` text of the value (tested against it).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// Append the decimal digits of `v` (divisions by the constant 10 compile to multiplications).
#[inline]
pub(crate) fn push_u64(buf: &mut String, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut at = tmp.len();
    loop {
        at -= 1;
        tmp[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits: pushing chars avoids re-validating the bytes as UTF-8.
    buf.extend(tmp.iter().skip(at).map(|&d| char::from(d)));
}

/// Append `seconds.nanoseconds` (nine digits) of a nanosecond time: the `Display` of `Ts`.
#[inline]
pub(crate) fn push_ts(buf: &mut String, ns: u64) {
    push_u64(buf, ns / 1_000_000_000);
    let mut frac = ns % 1_000_000_000;
    let mut tmp = *b".000000000";
    for d in tmp[1..].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    buf.extend(tmp.iter().map(|&d| char::from(d)));
}

/// Append the dotted quad of an IPv4 address.
#[inline]
fn push_v4(buf: &mut String, ip: Ipv4Addr) {
    for (n, octet) in ip.octets().into_iter().enumerate() {
        if n > 0 {
            buf.push('.');
        }
        push_u64(buf, u64::from(octet));
    }
}

/// Append the `Display` text of an address (IPv6 through `core::fmt`: its compression rules are
/// not worth duplicating, and IPv6 is the rarer case).
#[inline]
pub(crate) fn push_ip(buf: &mut String, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_v4(buf, *v4),
        IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
}

/// The first 16 bytes of `text`, zero-padded, as a big-endian integer. Comparing keys, then the
/// whole texts when keys tie, is byte-wise (`memcmp`, BINARY collation) order: a text that ends
/// inside the 16 bytes is padded with 0, below every byte it could be compared with, as a
/// shorter prefix must be. Every IPv4 text (at most 15 bytes) is decided by the key alone.
#[inline]
pub(crate) fn sort_key(text: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = text.len().min(16);
    b[..n].copy_from_slice(&text[..n]);
    u128::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_format::model::Ts;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    fn ip_text(ip: IpAddr) -> String {
        let mut s = String::new();
        push_ip(&mut s, &ip);
        s
    }

    #[test]
    fn edge_values() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        assert_eq!(s, format!("0 {}", u64::MAX));
        for ns in [0, 1, 999_999_999, 1_000_000_000, u64::MAX] {
            let mut s = String::from("x");
            push_ts(&mut s, ns);
            assert_eq!(s, format!("x{}", Ts(ns)));
        }
        assert_eq!(ip_text("0.0.0.0".parse().unwrap()), "0.0.0.0");
        assert_eq!(ip_text("255.255.255.255".parse().unwrap()), "255.255.255.255");
        assert_eq!(ip_text("10.0.200.9".parse().unwrap()), "10.0.200.9");
        assert_eq!(ip_text("::ffff:1.2.3.4".parse().unwrap()), "::ffff:1.2.3.4");
    }

    #[test]
    fn sort_key_breaks_ties_only_beyond_16_bytes() {
        let a = b"2001:db8:aaaa:bbbb::1";
        let b = b"2001:db8:aaaa:bbbb::2";
        assert_eq!(sort_key(a), sort_key(b));
        assert!(sort_key(b"10.0.0.1") < sort_key(b"10.0.0.10"));
        assert!(sort_key(b"10.0.0.10") < sort_key(b"10.0.0.9"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn texts_equal_display(v4 in any::<u32>(), v6 in any::<u128>(), ns in any::<u64>(), n in any::<u64>()) {
            prop_assert_eq!(ip_text(IpAddr::V4(Ipv4Addr::from(v4))), Ipv4Addr::from(v4).to_string());
            prop_assert_eq!(ip_text(IpAddr::V6(Ipv6Addr::from(v6))), Ipv6Addr::from(v6).to_string());
            let mut s = String::new();
            push_ts(&mut s, ns);
            prop_assert_eq!(s, Ts(ns).to_string());
            let mut s = String::new();
            push_u64(&mut s, n);
            prop_assert_eq!(s, n.to_string());
        }

        #[test]
        fn key_then_text_is_text_order(
            a in prop_oneof![any::<u32>().prop_map(|v| IpAddr::V4(v.into())), any::<u128>().prop_map(|v| IpAddr::V6(v.into()))],
            b in prop_oneof![any::<u32>().prop_map(|v| IpAddr::V4(v.into())), any::<u128>().prop_map(|v| IpAddr::V6(v.into()))],
        ) {
            let (ta, tb) = (a.to_string(), b.to_string());
            let by_key = sort_key(ta.as_bytes()).cmp(&sort_key(tb.as_bytes())).then_with(|| ta.cmp(&tb));
            prop_assert_eq!(by_key, ta.as_bytes().cmp(tb.as_bytes()));
        }
    }
}
