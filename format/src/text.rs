//! Text forms of numbers, addresses and times written without `core::fmt`, for output paths that
//! format millions of them (database rows, JSON lines of flows): `write!` was a tenth of the
//! database writer's time and a third of `netrec flows --format jsonl`.
//!
//! Every function produces exactly the `Display` text of the value (tested against it).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// Append ASCII bytes (digits, a dot) made by this module. Pushed as chars or re-validated as
/// UTF-8, a few bytes cost more than computing the digits did.
#[inline]
fn push_ascii(buf: &mut String, bytes: &[u8]) {
    debug_assert!(bytes.is_ascii());
    // SAFETY: callers pass ASCII digits and dots only (computed from `b'0' + digit`), and ASCII
    // is valid UTF-8, so the String stays valid.
    unsafe { buf.as_mut_vec() }.extend_from_slice(bytes);
}

/// Append the decimal digits of `v` (two digits per step from a table: `itoa`).
#[inline]
pub fn push_u64(buf: &mut String, v: u64) {
    buf.push_str(itoa::Buffer::new().format(v));
}

/// Append `seconds.nanoseconds` (nine digits) of a nanosecond time: the `Display` of `Ts`.
#[inline]
pub fn push_ts(buf: &mut String, ns: u64) {
    // Assembled on the stack and appended once: one copy, not one per part.
    let mut secs = itoa::Buffer::new();
    let secs = secs.format(ns / 1_000_000_000).as_bytes();
    let mut tmp = [0u8; 30];
    tmp[..secs.len()].copy_from_slice(secs);
    let mut frac = ns % 1_000_000_000;
    let end = secs.len() + 10;
    tmp[secs.len()] = b'.';
    for d in tmp[secs.len() + 1..end].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    push_ascii(buf, &tmp[..end]);
}

/// Append the dotted quad of an IPv4 address (assembled on the stack, appended once).
#[inline]
fn push_v4(buf: &mut String, ip: Ipv4Addr) {
    let mut tmp = [0u8; 15];
    let mut at = 0;
    for (n, octet) in ip.octets().into_iter().enumerate() {
        if n > 0 {
            tmp[at] = b'.';
            at += 1;
        }
        // One to three digits, no leading zeros.
        if octet >= 100 {
            tmp[at] = b'0' + octet / 100;
            at += 1;
        }
        if octet >= 10 {
            tmp[at] = b'0' + octet / 10 % 10;
            at += 1;
        }
        tmp[at] = b'0' + octet % 10;
        at += 1;
    }
    push_ascii(buf, &tmp[..at]);
}

/// Append the `Display` text of an address (IPv6 through `core::fmt`: its compression rules are
/// not worth duplicating, and IPv6 is the rarer case).
#[inline]
pub fn push_ip(buf: &mut String, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_v4(buf, *v4),
        IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Ts;
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
    }
}
