//! A sort key that orders address texts as SQLite's BINARY collation does. The texts themselves
//! come from `netrec_format::text` (no `core::fmt` per row).

pub(crate) use netrec_format::text::push_ip;

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
    use proptest::prelude::*;
    use std::net::IpAddr;

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
