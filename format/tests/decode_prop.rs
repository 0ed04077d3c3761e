//! Property tests: the decoder never panics, on arbitrary bytes with any link type, and on
//! valid frames that were bit-flipped or truncated. Also checks invariants that must hold
//! for every output.

#[path = "decode_builder.rs"]
mod builder;

use netrec_format::LinkType;
use netrec_format::decode::{Decoded, MAX_VLANS, decode};
use proptest::prelude::*;

/// Link types the decoder knows, plus a few it does not.
const LINK_TYPES: [u32; 22] = [
    0,
    1,
    9,
    12,
    14,
    50,
    51,
    101,
    108,
    113,
    117,
    119,
    163,
    192,
    228,
    229,
    239,
    258,
    276,
    2,
    147,
    0xffff_ffff,
];

/// Invariants for any decode result.
fn check(d: &Decoded, data: &[u8], wire_len: u32) {
    assert!(usize::from(d.vlan_count) <= MAX_VLANS);
    let end = (wire_len as usize).max(data.len());
    if let Some(n) = d.net {
        assert!((n.offset as usize) < data.len(), "net offset inside the captured bytes");
    }
    assert!(d.payload_offset as usize <= end);
    assert!(d.payload_offset as usize + d.payload_len as usize <= end, "payload within the wire length");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        lt in prop::sample::select(&LINK_TYPES[..]),
        data in prop::collection::vec(any::<u8>(), 0..160),
        extra in 0u32..2000,
    ) {
        let wire = data.len() as u32 + extra;
        let d = decode(LinkType(lt), &data, wire);
        check(&d, &data, wire);
        // Deterministic: same input, same output.
        prop_assert_eq!(d, decode(LinkType(lt), &data, wire));
    }

    /// Bytes that start like real headers reach deeper code than uniform noise does.
    #[test]
    fn mutated_valid_frames_never_panic(
        idx in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        lie in 0u32..3,
    ) {
        let corpus = builder::corpus();
        let (lt, mut f) = corpus[idx.index(corpus.len())].clone();
        let wire_full = f.len() as u32;
        for (at, x) in flips {
            let i = at.index(f.len());
            f[i] ^= x;
        }
        f.truncate(cut.index(f.len() + 1));
        // Wire length: the original, the captured size, or less than captured (a liar).
        let wire = match lie { 0 => wire_full, 1 => f.len() as u32, _ => (f.len() as u32) / 2 };
        let d = decode(lt, &f, wire);
        check(&d, &f, wire);
    }
}

/// Every truncation of every corpus frame, exhaustively (cheap: a few thousand decodes).
#[test]
fn every_truncation_of_the_corpus() {
    for (lt, f) in builder::corpus() {
        let full = decode(lt, &f, f.len() as u32);
        assert!(!full.anomalies.any_malformed(), "corpus frame is clean: {lt:?} {:?}", full.anomalies);
        for n in 0..=f.len() {
            let d = decode(lt, &f[..n], f.len() as u32);
            check(&d, &f[..n], f.len() as u32);
        }
    }
}
