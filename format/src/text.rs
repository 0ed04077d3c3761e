//! Text forms of numbers, addresses and times written without `core::fmt`, for output paths that
//! format millions of them (database rows, JSON lines of flows): `write!` was a tenth of the
//! database writer's time and a third of `netrec flows --format jsonl`.
//!
//! Every function produces exactly the `Display` text of the value (tested against it).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// "00" to "99": two digits per division step.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Append the first `n` bytes of `tmp`, ASCII made by this module (digits, dots). The whole of
/// `tmp` is copied into spare capacity: a copy of a constant size is a few vector moves, where a
/// variable-length one (`extend_from_slice`) is a call to `memcpy`, which was the largest single
/// cost of `netrec flows --format jsonl` on a flood (a dozen calls per line).
#[inline(always)]
fn push_fixed<const N: usize>(buf: &mut String, tmp: &[u8; N], n: usize) {
    let n = n.min(N);
    debug_assert!(tmp[..n].is_ascii());
    // SAFETY: only the `n` ASCII bytes become part of the String (below), and ASCII is UTF-8.
    let v = unsafe { buf.as_mut_vec() };
    v.reserve(N);
    for (d, s) in v.spare_capacity_mut()[..N].iter_mut().zip(tmp) {
        d.write(*s);
    }
    // SAFETY: `reserve(N)` made room for N bytes, the loop initialized them, and n <= N.
    unsafe { v.set_len(v.len() + n) };
}

/// Write the `width` low decimal digits of `v` into `out[..width]`, zero-padded, two per step.
#[inline(always)]
fn put_digits(out: &mut [u8], mut v: u64, width: usize) {
    let mut at = width;
    while at >= 2 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if at == 1 {
        out[0] = b'0' + (v % 10) as u8;
    }
}

/// Number of decimal digits of `v` (1 for 0).
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Append the decimal digits of `v`.
#[inline]
pub fn push_u64(buf: &mut String, v: u64) {
    let mut tmp = [0u8; 20];
    let n = digit_count(v);
    put_digits(&mut tmp, v, n);
    push_fixed(buf, &tmp, n);
}

/// Append `seconds.nanoseconds` (nine digits) of a nanosecond time: the `Display` of `Ts`.
#[inline]
pub fn push_ts(buf: &mut String, ns: u64) {
    // Assembled on the stack and appended once.
    let mut tmp = [0u8; 32];
    let secs = ns / 1_000_000_000;
    let n = digit_count(secs);
    put_digits(&mut tmp, secs, n);
    tmp[n] = b'.';
    put_digits(&mut tmp[n + 1..], ns % 1_000_000_000, 9);
    push_fixed(buf, &tmp, n + 10);
}

/// The text of every octet value, padded to 4 bytes, and its length in the last byte: an octet
/// is one fixed 4-byte copy instead of up to three divisions and branches.
const OCTETS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut v = 0;
    while v < 256 {
        let (h, d, u) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        t[v] = if v >= 100 {
            [b'0' + h, b'0' + d, b'0' + u, 3]
        } else if v >= 10 {
            [b'0' + d, b'0' + u, 0, 2]
        } else {
            [b'0' + u, 0, 0, 1]
        };
        v += 1;
    }
    t
};

/// Append the dotted quad of an IPv4 address (assembled on the stack, appended once).
#[inline]
fn push_v4(buf: &mut String, ip: Ipv4Addr) {
    // 4 octets of at most 3 digits, 3 dots, and room for the last 4-byte copy: 19 < 20.
    let mut tmp = [0u8; 20];
    let mut at = 0;
    for octet in ip.octets() {
        let o = &OCTETS[usize::from(octet)];
        tmp[at..at + 4].copy_from_slice(o);
        at += usize::from(o[3]);
        tmp[at] = b'.';
        at += 1;
    }
    // Without the last dot.
    push_fixed(buf, &tmp, at - 1);
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
        // Every digit count, and the values either side of each power of ten.
        let mut p = 1u64;
        for _ in 0..20 {
            for v in [p - 1, p, p + 1, p.saturating_mul(10) - 1] {
                let mut s = String::from("x");
                push_u64(&mut s, v);
                assert_eq!(s, format!("x{v}"));
            }
            p = p.saturating_mul(10);
        }
        for ns in [0, 1, 999_999_999, 1_000_000_000, 1_000_000_000_000_000_000, u64::MAX] {
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
