//! Segment files on disk: `.partial` then rename, the hash chain, listing and retention.

use netrec_format::segment::sample::PacketGen;
use netrec_format::segment::*;
use netrec_format::store::*;
use netrec_format::*;
use std::path::{Path, PathBuf};

const T0: u64 = 1_700_000_000_000_000_000;
const S: u64 = 1_000_000_000;

fn small_cfg() -> WriterConfig {
    WriterConfig { max_block_bytes: 256, max_block_age_ns: 0, zstd_level: 3, header_delta: true }
}

/// Writes `n` chained segments of a few packets each; returns their final paths.
fn write_chain(dir: &Path, n: u64) -> Vec<PathBuf> {
    let mut prev = [0u8; 32];
    let mut pg = PacketGen::new(9, 4, Ts(T0), 64);
    let mut paths = vec![];
    for seq in 0..n {
        let info = SegmentHeaderInfo { seq, prev_sha256: prev, created_ns: T0 + seq * 60 * S };
        let mut f = SegmentFile::create(dir, info, small_cfg()).unwrap();
        assert!(f.partial_path().exists());
        f.write_meta(&SegmentMeta { host: "h".into(), snaplen: 64, ..Default::default() }).unwrap();
        for _ in 0..4 {
            let p = pg.next_packet();
            f.push_packet(&p).unwrap();
        }
        let (path, summary) = f.close().unwrap();
        assert!(path.exists());
        assert!(!path.with_extension("nrseg.partial").exists());
        assert_eq!(summary.counts.packets, 4);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.bytes, bytes.len() as u64);
        prev = summary.sha256;
        paths.push(path);
    }
    paths
}

fn chain_of(paths: &[PathBuf], override_: Option<(usize, &[u8])>) -> ChainReport {
    verify_chain(paths.iter().enumerate().map(|(i, p)| {
        let bytes = match override_ {
            Some((j, b)) if j == i => b.to_vec(),
            _ => std::fs::read(p).unwrap(),
        };
        (p.clone(), std::io::Cursor::new(bytes))
    }))
}

#[test]
fn chain_detects_every_changed_byte_and_a_missing_middle() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_chain(dir.path(), 3);
    let rep = chain_of(&paths, None);
    assert!(rep.is_intact(), "{:?}", rep.first_problem());
    // The names are the ones the naming module builds, and listing is by sequence.
    let listed = list_segments(dir.path()).unwrap();
    assert_eq!(listed.iter().map(|l| l.path.clone()).collect::<Vec<_>>(), paths);
    assert_eq!(paths[1].file_name().unwrap(), "seg-0000000001-20231114T221420Z.nrseg");

    for (k, p) in paths.iter().enumerate() {
        let good = std::fs::read(p).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let rep = chain_of(&paths, Some((k, &bad)));
            match rep.first_problem() {
                Some(ChainProblem::Damaged { path, damage }) => {
                    assert_eq!(path, p, "byte {i} of file {k}");
                    assert!(damage.offset <= i as u64);
                }
                other => panic!("byte {i} of file {k}: {other:?}"),
            }
        }
    }

    // Delete the middle segment: a chain break naming the third file.
    let rep = chain_of(&[paths[0].clone(), paths[2].clone()], None);
    match rep.first_problem() {
        Some(ChainProblem::Break(b)) => {
            assert_eq!(b.path, paths[2]);
            assert_eq!(b.prev_path, paths[0]);
            assert_eq!((b.expected_seq, b.found_seq), (1, 2));
            assert!(b.is_sequence_gap() && b.is_hash_mismatch());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn crash_leaves_a_partial_file_whose_synced_blocks_are_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let info = SegmentHeaderInfo { seq: 5, prev_sha256: [0; 32], created_ns: T0 };
    let mut f = SegmentFile::create(dir.path(), info, small_cfg()).unwrap();
    let mut pg = PacketGen::new(1, 4, Ts(T0), 64);
    let mut synced = 0;
    for _ in 0..20 {
        let p = pg.next_packet();
        synced += f.push_packet(&p).unwrap();
    }
    assert!(synced >= 2);
    let partial = f.partial_path();
    drop(f); // crash: no trailer, no rename
    let listed = list_segments(dir.path()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].name.partial);
    let bytes = std::fs::read(&partial).unwrap();
    let mut r = SegmentReader::new(&bytes[..], Recovery::TornTail).unwrap();
    let blocks: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(blocks.len(), synced);
    assert!(matches!(r.warnings()[0].kind, WarningKind::MissingTrailer));
    // Retention never touches the partial file.
    let p = RetentionPolicy { max_total_bytes: Some(0), max_age_ns: Some(0) };
    assert!(apply_retention(dir.path(), p, Ts(u64::MAX)).unwrap().is_empty());
    assert!(partial.exists());
}

#[test]
fn apply_retention_deletes_oldest_closed_segments_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_chain(dir.path(), 4);
    std::fs::write(dir.path().join("notes.txt"), vec![0u8; 100_000]).unwrap();
    let sizes: Vec<u64> = paths.iter().map(|p| std::fs::metadata(p).unwrap().len()).collect();
    let total: u64 = sizes.iter().sum();
    // Keep room for the newest two only.
    let p = RetentionPolicy { max_total_bytes: Some(sizes[2] + sizes[3]), max_age_ns: None };
    let deleted = apply_retention(dir.path(), p, Ts(0)).unwrap();
    assert_eq!(deleted, paths[..2].to_vec());
    assert!(total > sizes[2] + sizes[3]);
    assert!(dir.path().join("notes.txt").exists());
    let left: Vec<PathBuf> = list_segments(dir.path()).unwrap().into_iter().map(|l| l.path).collect();
    assert_eq!(left, paths[2..].to_vec());
    // The remaining chain is intact (its first file's predecessor is gone by design).
    assert!(chain_of(&left, None).is_intact());
}

#[test]
fn rotation_drives_a_segment_sequence_with_synthetic_time() {
    // Rotate every minute on the minute or at 2 KiB, whichever comes first.
    let pol = RotationPolicy { max_bytes: 2048, max_age_ns: 0, align_ns: Some(60 * S) };
    let mut opened = Ts(T0 + 10 * S); // 22:13:30
    let mut rotations = vec![];
    let mut bytes = 0u64;
    for i in 1..=200u64 {
        let now = Ts(T0 + 10 * S + i * S); // one packet of 100 bytes per second
        bytes += 100;
        if pol.should_rotate(opened, now, bytes) {
            rotations.push((now.0 - T0) / S);
            opened = now;
            bytes = 0;
        }
    }
    // Size rotations every 21 s, reset by the minute boundaries (T0 is 22:13:20, so
    // minutes fall at T0 + 40 s, +100 s, +160 s).
    assert_eq!(rotations, vec![31, 40, 61, 82, 100, 121, 142, 160, 181, 202]);
}
