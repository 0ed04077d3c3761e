//! Mutation tests of the bad-input rule: "Bad input (malformed pcap, truncated or corrupt segment)
//! gets a clear error that names the file and the byte offset, never a panic, and nothing already
//! recorded is lost."
//!
//! Real inputs (fixture pcaps, small shared captures, segments written by `netrec import`, a
//! pcapng written by `netrec export`) are damaged by a fixed-seed generator (cut, 1-8 bytes XORed,
//! a 4-byte field set to 0 or 0xFFFFFFFF, 1-64 garbage bytes inserted) and every mutant goes
//! through the real binary: `flows`, `alerts`, `analyze`, and for segments `segments verify` and
//! `export`. Set NETREC_MUTATION_SEED to try other seeds; every failure message names the seed,
//! the mutant and the command.

mod common;

use common::*;
use netrec_format::segment::{BlockBody, Recovery, SegmentReader};
use std::fmt;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Default seed ("netrecmu"); NETREC_MUTATION_SEED (decimal or 0x-hex) overrides it.
const SEED: u64 = 0x6e65_7472_6563_6d75;
const MUTANTS_PER_INPUT: usize = 12;
/// A run on these small inputs takes well under a second; a minute means a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn base_seed() -> u64 {
    match std::env::var("NETREC_MUTATION_SEED") {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("NETREC_MUTATION_SEED={v:?}: {e}"))
        }
        Err(_) => SEED,
    }
}

/// xorshift64* (Vigna): deterministic, no `rand` crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // The all-zero state is a fixed point.
        Rng(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// In `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// FNV-1a: a per-input seed from its name, so adding an input does not change the others' mutants.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

// ---------------------------------------------------------------------------------------------
// Inputs and their structure, parsed here (independently of netrec) from the original bytes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pcap,
    PcapNg,
    Segment,
}

/// A framing unit of the original file: a pcap record, a pcapng block, a segment block.
#[derive(Clone, Copy, Debug)]
struct Unit {
    start: usize,
    end: usize,
    /// Packets it holds (0 for pcapng SHB/IDB..., segment meta/alert/trailer blocks).
    packets: u64,
}

struct Original {
    name: String,
    kind: Kind,
    bytes: Vec<u8>,
    /// File header length (pcap 24, pcapng the first SHB, segment the file header).
    header_len: usize,
    /// Every unit after the header, in file order, covering the file to its end.
    units: Vec<Unit>,
}

impl Original {
    fn load(path: &Path, kind: Kind) -> Original {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_owned();
        let (header_len, units) = match kind {
            Kind::Pcap => pcap_units(&bytes),
            Kind::PcapNg => pcapng_units(&bytes),
            Kind::Segment => segment_units(path),
        };
        let covered = units.last().map_or(header_len, |u| u.end);
        assert_eq!(covered, bytes.len(), "{name}: the units must cover the whole file");
        Original { name, kind, bytes, header_len, units }
    }

    fn packets(&self) -> u64 {
        self.units.iter().map(|u| u.packets).sum()
    }

    /// The last complete unit ending at or before `at` (the header when there is none).
    fn complete_end(&self, at: usize) -> usize {
        self.units.iter().take_while(|u| u.end <= at).last().map_or(self.header_len, |u| u.end)
    }

    /// Packets in units that lie entirely before `at`.
    fn packets_before(&self, at: usize) -> u64 {
        self.units.iter().take_while(|u| u.end <= at).map(|u| u.packets).sum()
    }
}

fn rd32(b: &[u8], off: usize, le: bool) -> u32 {
    let a: [u8; 4] = b[off..off + 4].try_into().expect("4 bytes");
    if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
}

/// Classic pcap: 24-byte global header, then 16-byte record headers with incl_len at 8..12, in
/// the byte order of the magic.
fn pcap_units(b: &[u8]) -> (usize, Vec<Unit>) {
    let le = match b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a classic pcap: {:02x?}", &b[..4]),
    };
    let mut units = Vec::new();
    let mut off = 24;
    while off < b.len() {
        let end = off + 16 + rd32(b, off + 8, le) as usize;
        assert!(end <= b.len(), "original pcap has a cut record at {off}");
        units.push(Unit { start: off, end, packets: 1 });
        off = end;
    }
    (24, units)
}

/// pcapng: blocks of (type, total length, body, total length); the SHB's byte-order magic sets
/// the endianness of its section. EPB (6), SPB (3) and the obsolete PB (2) hold one packet.
fn pcapng_units(b: &[u8]) -> (usize, Vec<Unit>) {
    let mut units = Vec::new();
    let (mut off, mut le, mut header_len) = (0, true, 0);
    while off < b.len() {
        let btype = rd32(b, off, true);
        if btype == 0x0a0d_0d0a {
            le = b[off + 8..off + 12] == [0x4d, 0x3c, 0x2b, 0x1a];
        }
        let end = off + rd32(b, off + 4, le) as usize;
        assert!(end > off && end <= b.len(), "original pcapng has a bad block at {off}");
        if off == 0 {
            header_len = end;
        } else {
            let packets = u64::from(matches!(rd32(b, off, le), 2 | 3 | 6));
            units.push(Unit { start: off, end, packets });
        }
        off = end;
    }
    (header_len, units)
}

/// Link types of the interface description blocks of a (damaged) pcapng, walking blocks as far as
/// their lengths hold together.
fn pcapng_link_types(b: &[u8]) -> Vec<u16> {
    let (mut off, mut le, mut out) = (0, true, Vec::new());
    while off + 12 <= b.len() {
        let btype = rd32(b, off, le);
        if rd32(b, off, true) == 0x0a0d_0d0a {
            le = b[off + 8..off + 12] == [0x4d, 0x3c, 0x2b, 0x1a];
        } else if btype == 1 {
            let l = [b[off + 8], b[off + 9]];
            out.push(if le { u16::from_le_bytes(l) } else { u16::from_be_bytes(l) });
        }
        let len = rd32(b, off + 4, le) as usize;
        if len < 12 || off + len > b.len() {
            break;
        }
        off += len;
    }
    out
}

/// Segment blocks as netrec's own strict reader sees them (the original is intact): 48-byte block
/// header + stored payload each; the file header is what precedes the first block.
fn segment_units(path: &Path) -> (usize, Vec<Unit>) {
    let file = std::fs::File::open(path).expect("open segment");
    let rd = SegmentReader::new(file, Recovery::Strict).expect("original segment reads");
    let mut units = Vec::new();
    for block in rd {
        let b = block.unwrap_or_else(|e| panic!("original segment {}: {e}", path.display()));
        let start = usize::try_from(b.offset).expect("offset");
        let end = start + 48 + b.header.stored_len as usize;
        let packets = match &b.body {
            BlockBody::Packets(p) => p.len() as u64,
            _ => 0,
        };
        units.push(Unit { start, end, packets });
    }
    (units.first().expect("segment has blocks").start, units)
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Clone, Debug)]
enum Mutation {
    /// Keep `bytes[..at]`.
    Truncate { at: usize },
    /// XOR each byte at a position with a non-zero mask (positions distinct).
    Flip { bytes: Vec<(usize, u8)> },
    /// Set `bytes[at..at + 4]` to `value` (0 or 0xFFFFFFFF).
    Overwrite { at: usize, value: u32 },
    /// Insert `garbage` before `bytes[at]`.
    Insert { at: usize, garbage: Vec<u8> },
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::Truncate { at } => write!(f, "truncate at byte {at}"),
            Mutation::Flip { bytes } => {
                let list: Vec<String> = bytes.iter().map(|(p, m)| format!("{p}^{m:#04x}")).collect();
                write!(f, "flip {} byte(s): {}", bytes.len(), list.join(" "))
            }
            Mutation::Overwrite { at, value } => {
                write!(f, "overwrite bytes {at}..{} with {value:#010x}", at + 4)
            }
            Mutation::Insert { at, garbage } => {
                write!(f, "insert {} byte(s) at {at}: {}", garbage.len(), hex::encode(garbage))
            }
        }
    }
}

impl Mutation {
    /// Mutation `k` of an input: kinds in turn; the second round of four lands in the file
    /// header or just after it, where the framing is decided (random offsets in a large file
    /// rarely do).
    fn generate(rng: &mut Rng, orig: &Original, k: usize) -> Mutation {
        let len = orig.bytes.len();
        let span = if k / 4 == 1 { (orig.header_len + 64).min(len) } else { len };
        loop {
            let m = match k % 4 {
                0 => Mutation::Truncate { at: rng.below(span) },
                1 => {
                    let n = rng.between(1, 8);
                    let mut bytes: Vec<(usize, u8)> = Vec::new();
                    while bytes.len() < n {
                        let p = rng.below(span);
                        if !bytes.iter().any(|&(q, _)| q == p) {
                            bytes.push((p, rng.between(1, 255) as u8));
                        }
                    }
                    Mutation::Flip { bytes }
                }
                2 => Mutation::Overwrite {
                    at: rng.below(span.min(len - 3)),
                    value: if rng.below(2) == 0 { 0 } else { u32::MAX },
                },
                _ => Mutation::Insert {
                    at: rng.below(span + 1),
                    garbage: (0..rng.between(1, 64)).map(|_| rng.below(256) as u8).collect(),
                },
            };
            // A field overwritten with its own value is no mutant: draw again.
            if m.apply(&orig.bytes) != orig.bytes {
                return m;
            }
        }
    }

    fn apply(&self, orig: &[u8]) -> Vec<u8> {
        let mut b = orig.to_vec();
        match self {
            Mutation::Truncate { at } => b.truncate(*at),
            Mutation::Flip { bytes } => bytes.iter().for_each(|&(p, m)| b[p] ^= m),
            Mutation::Overwrite { at, value } => b[*at..*at + 4].copy_from_slice(&value.to_le_bytes()),
            Mutation::Insert { at, garbage } => {
                b.splice(*at..*at, garbage.iter().copied());
            }
        }
        b
    }

    /// Byte ranges of the original whose content is lost or changed. An insertion changes no
    /// original byte but splits the unit it falls inside (one at a unit start splits nothing).
    fn damaged(&self, orig: &[u8]) -> Vec<(usize, usize)> {
        match self {
            Mutation::Truncate { at } => vec![(*at, orig.len())],
            Mutation::Flip { bytes } => bytes.iter().map(|&(p, _)| (p, p + 1)).collect(),
            Mutation::Overwrite { at, .. } => vec![(*at, *at + 4)],
            Mutation::Insert { at, .. } => vec![(*at, *at)],
        }
    }

    /// First original byte that is not where, or what, it was.
    fn first_changed(&self, orig: &[u8]) -> usize {
        self.damaged(orig).iter().map(|r| r.0).min().expect("a mutation damages something")
    }
}

/// Packets netrec must still deliver from a mutant: the format decides what survives damage.
/// pcap and pcapng have no resynchronisation (damaged framing ends the input), so every unit
/// before the first changed byte; segments resynchronise on block sync markers, so every block
/// the damage does not touch.
fn packets_kept_at_least(orig: &Original, m: &Mutation) -> u64 {
    let first = m.first_changed(&orig.bytes);
    let mutant = m.apply(&orig.bytes);
    if first < orig.header_len && !(orig.kind == Kind::Segment && segment_header_read_past(&mutant)) {
        // An unreadable file header refuses the whole file (a documented error, exit 2).
        return 0;
    }
    match orig.kind {
        Kind::Pcap | Kind::PcapNg => orig.packets_before(first),
        Kind::Segment => {
            let hit = |u: &Unit| {
                m.damaged(&orig.bytes)
                    .iter()
                    .any(|&(s, e)| if s == e { u.start < s && s < u.end } else { s < u.end && u.start < e })
            };
            orig.units.iter().filter(|u| !hit(u)).map(|u| u.packets).sum()
        }
    }
}

/// A segment whose file header is damaged but whole and still starts like one (the magic at most
/// one byte off) is read past, block by block (SPEC.md §7.4): losing a file's every block to one
/// bad header byte would lose what was recorded. A header cut short or a foreign magic refuses it.
fn segment_header_read_past(mutant: &[u8]) -> bool {
    mutant.len() >= 80
        && mutant[..8].iter().zip(netrec_format::segment::MAGIC).filter(|(a, b)| **a != *b).count() <= 1
}

// ---------------------------------------------------------------------------------------------
// Running the binary with a timeout

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }
}

/// Runs netrec with stdout and stderr in anonymous files (no pipe to fill up), polling for exit;
/// a run still going after RUN_TIMEOUT is killed and fails the test as a hang. A panic or a
/// death by signal fails it too.
fn run(args: &[&str], ctx: &str) -> Run {
    let mut out = tempfile::tempfile().expect("tempfile");
    let mut err = tempfile::tempfile().expect("tempfile");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrec"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .spawn()
        .expect("spawn netrec");
    let started = Instant::now();
    let mut nap = Duration::from_millis(1);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for netrec") {
            break st;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{ctx}\n`netrec {}` hangs: killed after {RUN_TIMEOUT:?}", args.join(" "));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    let read = |f: &mut std::fs::File| {
        let mut v = Vec::new();
        f.rewind().and_then(|()| f.read_to_end(&mut v)).expect("read output");
        v
    };
    let (stdout, stderr) = (read(&mut out), String::from_utf8_lossy(&read(&mut err)).into_owned());
    let cmd = format!("netrec {}", args.join(" "));
    assert!(!stderr.contains("panicked"), "{ctx}\n`{cmd}` panicked:\n{stderr}");
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        panic!("{ctx}\n`{cmd}` killed by signal {:?}:\n{stderr}", status.signal())
    });
    Run { code, stdout, stderr }
}

// ---------------------------------------------------------------------------------------------
// What the messages must say

/// The number after `key` (e.g. "byte ", "offset ") in `s`, if any.
fn number_after(s: &str, key: &str) -> Option<u64> {
    s.match_indices(key).find_map(|(i, _)| {
        let digits: String = s[i + key.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// The byte offset a message (after "<path>: ") names: capture readers start it with "byte N: ",
/// segment messages say "offset N" where the damaged structure is named. Checked to lie in
/// `bounds`: not before the damage (everything before it is intact) nor beyond the mutant's end.
fn named_offset(what: &str, bounds: (u64, u64), ctx: &str) -> Option<u64> {
    let capture =
        what.strip_prefix("byte ").and_then(|r| r.split_once(": ")).and_then(|(n, _)| n.parse::<u64>().ok());
    let off = capture.or_else(|| number_after(what, "offset "))?;
    let (floor, len) = bounds;
    assert!(
        (floor..=len).contains(&off),
        "{ctx}\noffset {off} outside {floor}..={len} (from the first damaged unit to the end): {what}"
    );
    Some(off)
}

/// Where messages about a mutant may point: from the start of the unit holding the first changed
/// byte (0 inside the file header) to the mutant's end.
fn damage_bounds(orig: &Original, m: &Mutation, mutant: &[u8]) -> (u64, u64) {
    let first = m.first_changed(&orig.bytes);
    let floor = if first < orig.header_len {
        0
    } else {
        orig.units.iter().find(|u| first < u.end).map_or(orig.bytes.len(), |u| u.start)
    };
    (floor as u64, mutant.len() as u64)
}

/// An error line about an input of `flows`/`alerts`/`analyze` (after "netrec: <path>: ") that has
/// no byte offset is acceptable only when it says exactly what is wrong with the file as a whole.
fn offsetless_error_ok(what: &str, orig: &Original, m: &Mutation, mutant: &[u8]) -> bool {
    if what == "file is empty" {
        return mutant.is_empty();
    }
    if let Some(rest) = what.strip_prefix("not a pcap or pcapng capture (first bytes ") {
        // The magic number, zero-padded to 4 bytes: the message names offset 0's content.
        let mut magic = [0u8; 4];
        let n = mutant.len().min(4);
        magic[..n].copy_from_slice(&mutant[..n]);
        let magic_len = if orig.kind == Kind::Segment { 8 } else { 4 };
        return rest == format!("{})", hex::encode(magic)) && m.first_changed(&orig.bytes) < magic_len;
    }
    if let Some(rest) = what.strip_prefix("link type ") {
        // A damaged link-type field: the pcap header's (bytes 20..24, low 16 bits) or a pcapng
        // IDB's. Segment packet blocks are checksummed: no damage gets that far.
        let lt = number_after(what, "link type ").and_then(|l| u16::try_from(l).ok());
        let declared = match orig.kind {
            Kind::Pcap => {
                mutant.len() >= 24
                    && lt == Some(rd32(mutant, 20, mutant[0] == 0xd4 || mutant[0] == 0x4d) as u16)
            }
            Kind::PcapNg => lt.is_some_and(|l| pcapng_link_types(mutant).contains(&l)),
            Kind::Segment => false,
        };
        return declared && rest.contains(" is not supported (");
    }
    // Everything else, segment file-header faults included, names its offset.
    false
}

/// Stderr of `flows`/`alerts`/`analyze --quiet` on one mutant: the summary line (flows, alerts),
/// warnings and at most one error, each naming the mutant and a byte offset (or a whole-file
/// fault, see `offsetless_error_ok`). Returns the packets of the summary, and the errors and
/// warnings after their "<path>: ".
fn check_replay_stderr<'a>(
    r: &'a Run,
    path: &str,
    orig: &Original,
    m: &Mutation,
    mutant: &[u8],
    ctx: &str,
) -> (Option<u64>, Vec<&'a str>, Vec<&'a str>) {
    let (mut packets, mut errors, mut warnings) = (None, Vec::new(), Vec::new());
    let prefix = format!("{path}: ");
    let bounds = damage_bounds(orig, m, mutant);
    for line in r.lines() {
        let body =
            line.strip_prefix("netrec: ").unwrap_or_else(|| panic!("{ctx}\nstray stderr line: {line}"));
        // "N packets, M flows, ..." (flows) or "N packets, A alerts" (alerts).
        if let Some((n, _)) = body.split_once(" packets, ")
            && let Ok(n) = n.parse::<u64>()
        {
            assert_eq!(packets, None, "{ctx}\ntwo summary lines:\n{}", r.stderr);
            packets = Some(n);
            continue;
        }
        if let Some(w) = body.strip_prefix("warning: ") {
            let what = w.strip_prefix(&prefix).unwrap_or_else(|| {
                panic!("{ctx}\nwarning does not start with the mutant's path {path}:\n{}", r.stderr)
            });
            let offsetless = (what.contains(" packets of unsupported link type ")
                && what.ends_with(" skipped"))
                || what.ends_with(" more warnings");
            assert!(
                offsetless || named_offset(what, bounds, ctx).is_some(),
                "{ctx}\nwarning names no byte offset: {line}"
            );
            warnings.push(what);
            continue;
        }
        let what = body.strip_prefix(&prefix).unwrap_or_else(|| {
            panic!("{ctx}\nerror does not start with the mutant's path {path}:\n{}", r.stderr)
        });
        assert!(
            named_offset(what, bounds, ctx).is_some() || offsetless_error_ok(what, orig, m, mutant),
            "{ctx}\nerror names no byte offset (and is no whole-file fault): {line}"
        );
        errors.push(what);
    }
    (packets, errors, warnings)
}

/// Summed `packets` of `flows --format jsonl` output.
fn flow_packets(stdout: &[u8], ctx: &str) -> u64 {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{ctx}\nbad jsonl line {l:?}: {e}"));
            v["packets"].as_u64().unwrap_or_else(|| panic!("{ctx}\nno packets in {l}"))
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// One mutant through every command

/// Every check on one mutant. `base_db` holds the analysis of the original: analyzing the mutant
/// into a copy of it must not lose a row of it.
fn check_mutant(orig: &Original, m: &Mutation, seed: u64, k: usize, base_db: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mutant = m.apply(&orig.bytes);
    let file = dir.path().join(&orig.name);
    std::fs::write(&file, &mutant).expect("write mutant");
    let path = s(&file);
    let ctx = format!(
        "input {} ({:?}, {} bytes), seed {seed:#x}, mutant #{k}: {m} -> {} bytes at {path}",
        orig.name,
        orig.kind,
        orig.bytes.len(),
        mutant.len()
    );

    // flows: exit 0, or 2 when nothing of the only input was usable (src/cmd/flows.rs exit_code).
    let flows = run(&["flows", "--format", "jsonl", path], &ctx);
    assert!(matches!(flows.code, 0 | 2), "{ctx}\nflows exit {}:\n{}", flows.code, flows.stderr);
    let (packets, errors, warnings) = check_replay_stderr(&flows, path, orig, m, &mutant, &ctx);
    let packets = packets.unwrap_or_else(|| panic!("{ctx}\nno summary line from flows:\n{}", flows.stderr));
    // One line per failed input: exit 2 exactly when there is one.
    assert_eq!(flows.code == 2, !errors.is_empty(), "{ctx}\nflows exit {} with {errors:?}", flows.code);
    assert!(errors.len() <= 1, "{ctx}\none error line per input: {errors:?}");
    let kept = packets_kept_at_least(orig, m);
    assert!(
        packets >= kept,
        "{ctx}\nflows read {packets} packets; {kept} lie before any damage and were lost"
    );
    if let Mutation::Truncate { at } = *m {
        check_truncation(orig, at, &flows, packets, &warnings, &dir, &ctx);
    }

    // alerts: the same reading, so the same exit code and packet count.
    let alerts = run(&["alerts", "--format", "jsonl", path], &ctx);
    assert_eq!(alerts.code, flows.code, "{ctx}\nalerts and flows disagree:\n{}", alerts.stderr);
    let (a_packets, a_errors, _) = check_replay_stderr(&alerts, path, orig, m, &mutant, &ctx);
    assert_eq!(a_packets, Some(packets), "{ctx}\nalerts read other packets than flows:\n{}", alerts.stderr);
    assert_eq!(a_errors, errors, "{ctx}\nalerts and flows report different errors");
    // One mutant in four, rotating so that flips, overwrites and insertions all get their turn.
    if (k + k / 4) % 4 == 3 {
        let again = run(&["alerts", "--format", "jsonl", path], &ctx);
        assert!(again.stdout == alerts.stdout, "{ctx}\nalerts differ between two runs on the same mutant");
        assert_eq!(again.stderr, alerts.stderr, "{ctx}\nalerts stderr differs between two runs");
    }

    // analyze into a copy of the original's database.
    let db = dir.path().join("db.sqlite");
    std::fs::copy(base_db, &db).expect("copy database");
    let before = input_rows(&db);
    let an = run(&["analyze", "--quiet", "--db", s(&db), path], &ctx);
    assert_eq!(
        an.code, flows.code,
        "{ctx}\nanalyze exit {} but flows exit {}:\n{}",
        an.code, flows.code, an.stderr
    );
    let (none, an_errors, _) = check_replay_stderr(&an, path, orig, m, &mutant, &ctx);
    assert_eq!(none, None, "{ctx}\nanalyze --quiet printed a summary");
    assert_eq!(an_errors.len(), usize::from(an.code == 2), "{ctx}\nanalyze errors: {an_errors:?}");
    let after = input_rows(&db);
    assert_eq!(after[..before.len()], before[..], "{ctx}\nanalyze of a mutant changed rows already recorded");
    let added: Vec<_> = after[before.len()..].iter().filter(|r| r.complete).collect();
    if an.code == 0 {
        assert!(
            added.len() == 1 && added[0].path == path && added[0].packets == packets as i64,
            "{ctx}\nanalyze should have stored the mutant complete with {packets} packets: {added:?}"
        );
    } else {
        assert!(added.is_empty(), "{ctx}\na failed input stored as complete: {added:?}");
    }

    if orig.kind == Kind::Segment {
        check_segment_commands(path, &dir, packets, damage_bounds(orig, m, &mutant), &ctx);
    }
}

/// Truncation: nothing complete before the cut is lost, exactly. A copy cut cleanly at the end
/// of the last complete unit gives the same flows, and the damaged tail is reported at that
/// unit's end.
fn check_truncation(
    orig: &Original,
    at: usize,
    flows: &Run,
    packets: u64,
    warnings: &[&str],
    dir: &tempfile::TempDir,
    ctx: &str,
) {
    let expected = orig.packets_before(at);
    if at < orig.header_len {
        assert_eq!(flows.code, 2, "{ctx}\na cut file header must be an error:\n{}", flows.stderr);
        return;
    }
    assert_eq!(
        packets, expected,
        "{ctx}\nflows read {packets} packets, {expected} were complete before the cut"
    );
    let end = orig.complete_end(at);
    let clean = dir.path().join(format!("clean-{}", orig.name));
    std::fs::write(&clean, &orig.bytes[..end]).expect("write clean cut");
    let c = run(&["flows", "--format", "jsonl", s(&clean)], ctx);
    assert_eq!(c.code, 0, "{ctx}\nclean cut at {end}:\n{}", c.stderr);
    assert_eq!(
        flow_packets(&flows.stdout, ctx),
        flow_packets(&c.stdout, ctx),
        "{ctx}\nflow packets differ from the copy cut cleanly at byte {end}"
    );
    assert!(flows.stdout == c.stdout, "{ctx}\nflows differ from the copy cut cleanly at byte {end}");
    let tail_named = warnings.iter().any(|w| named_offset(w, (0, at as u64), ctx) == Some(end as u64));
    match orig.kind {
        // A cut on a record boundary is a shorter capture, not damage.
        Kind::Pcap | Kind::PcapNg if at == end => {
            assert!(warnings.is_empty(), "{ctx}\nwarnings for a cut on a record boundary: {warnings:?}")
        }
        _ => {
            assert!(tail_named, "{ctx}\nno warning names byte {end}, where the cut unit starts: {warnings:?}")
        }
    }
}

/// `segments verify` finds the damage (exit 1, naming the mutant and an offset); `export` writes
/// every packet it can read (the same count as `flows`) and exits 2 for the damage.
fn check_segment_commands(path: &str, dir: &tempfile::TempDir, packets: u64, bounds: (u64, u64), ctx: &str) {
    let v = run(&["segments", "verify", path], ctx);
    assert_eq!(v.code, 1, "{ctx}\nsegments verify must report damage (exit 1):\n{}", v.stderr);
    let lines = v.lines();
    assert!(!lines.is_empty(), "{ctx}\nverify says nothing");
    for l in &lines {
        let what = l
            .strip_prefix(&format!("netrec: {path}: "))
            .unwrap_or_else(|| panic!("{ctx}\nverify line does not name the mutant: {l}"));
        assert!(named_offset(what, bounds, ctx).is_some(), "{ctx}\nverify names no offset: {l}");
    }

    let out = dir.path().join("export.pcapng");
    let e = run(&["export", "--pcap", s(&out), path], ctx);
    let mut summary = None;
    for l in e.lines() {
        if let Some(w) = l.strip_prefix("netrec: warning: ") {
            let what = w
                .strip_prefix(&format!("{path}: "))
                .unwrap_or_else(|| panic!("{ctx}\nexport warning does not name the mutant: {l}"));
            assert!(named_offset(what, bounds, ctx).is_some(), "{ctx}\nexport warning names no offset: {l}");
        } else if l.starts_with("netrec: exported ") {
            summary = Some(l);
        } else {
            panic!("{ctx}\nunexpected export line: {l}\n{}", e.stderr);
        }
    }
    assert_eq!(e.code, 2, "{ctx}\nexport of a damaged segment must exit 2:\n{}", e.stderr);
    let summary = summary.unwrap_or_else(|| panic!("{ctx}\nno export summary:\n{}", e.stderr));
    let (written, read) = (number_after(summary, "exported "), number_after(summary, " of "));
    assert_eq!(
        (written, read),
        (Some(packets), Some(packets)),
        "{ctx}\nexport should write every packet flows read ({packets}): {summary}"
    );
}

#[derive(Debug, PartialEq)]
struct InputRow {
    path: String,
    complete: bool,
    packets: i64,
    flows: i64,
    alerts: i64,
}

fn input_rows(db: &Path) -> Vec<InputRow> {
    let conn = db_ro(db);
    let mut st = conn
        .prepare(
            "SELECT path, complete, coalesce(packets, -1),
                    (SELECT count(*) FROM flows f WHERE f.input_id = i.id),
                    (SELECT count(*) FROM alerts a WHERE a.input_id = i.id)
             FROM inputs i ORDER BY id",
        )
        .expect("query inputs");
    st.query_map([], |r| {
        Ok(InputRow {
            path: r.get(0)?,
            complete: r.get::<_, i64>(1)? != 0,
            packets: r.get(2)?,
            flows: r.get(3)?,
            alerts: r.get(4)?,
        })
    })
    .expect("inputs")
    .map(Result::unwrap)
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The inputs

/// The analysis of the intact input: the database every mutant is analyzed into (a copy of), and
/// the check that this file's parser agrees with netrec and that netrec finds nothing to warn
/// about (so every message on a mutant is about the damage).
fn analyze_original(orig: &Original, path: &Path, work: &Path) -> PathBuf {
    let db = work.join("base.sqlite");
    let o = run(&["analyze", "--quiet", "--db", s(&db), s(path)], &orig.name);
    assert_eq!(o.code, 0, "{}: the intact input must analyze:\n{}", orig.name, o.stderr);
    assert!(o.stderr.trim().is_empty(), "{}: warnings on the intact input:\n{}", orig.name, o.stderr);
    let rows = input_rows(&db);
    assert!(
        rows.len() == 1 && rows[0].complete && rows[0].packets == orig.packets() as i64,
        "{}: the test's parser finds {} packets, netrec stored {rows:?}",
        orig.name,
        orig.packets()
    );
    db
}

/// Every mutant of one input.
fn mutate_input(path: &Path, kind: Kind) {
    let orig = Original::load(path, kind);
    let seed = base_seed() ^ fnv(&orig.name);
    let work = tempfile::tempdir().expect("tempdir");
    let base_db = analyze_original(&orig, path, work.path());
    let mut rng = Rng::new(seed);
    for k in 0..MUTANTS_PER_INPUT {
        let m = Mutation::generate(&mut rng, &orig, k);
        check_mutant(&orig, &m, seed, k, &base_db);
    }
}

#[test]
fn mutated_fixture_pcaps_fail_cleanly_and_keep_their_records() {
    for name in ["syn_flood.pcap", "port_scan_syn.pcap", "dns_tunnel.pcap", "fragment_anomaly.pcap"] {
        mutate_input(&fixture(&format!("pcap/{name}")), Kind::Pcap);
    }
}

#[test]
fn mutated_shared_captures_fail_cleanly_and_keep_their_records() {
    let dir = captures_dir();
    for (name, kind) in [
        ("pcapng-multi-interface.pcapng", Kind::PcapNg),
        // A classic pcap despite its name: formats are detected by content.
        ("tcp-ack-ping-sweep.pcapng", Kind::Pcap),
        ("vlan-qinqinq.pcap", Kind::Pcap),
        ("ipv4-fragmented-1.pcap", Kind::Pcap),
        ("tcp-handshake-nanosecond.pcap", Kind::Pcap),
    ] {
        let path = dir.join(name);
        let size = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len();
        assert!(size < 200_000, "{name} is {size} bytes: pick small captures");
        mutate_input(&path, kind);
    }
}

/// The one segment `netrec import` writes of a fixture, with small blocks (several per file).
fn import_fixture(name: &str, work: &Path) -> PathBuf {
    let segdir = work.join("segs");
    let pcap = fixture(&format!("pcap/{name}"));
    let o = run(&["import", s(&pcap), "--out", s(&segdir), "--rotate-size", "64K"], name);
    assert_eq!(o.code, 0, "import {name}:\n{}", o.stderr);
    let segs: Vec<PathBuf> = std::fs::read_dir(&segdir)
        .expect("segment dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "nrseg"))
        .collect();
    assert_eq!(segs.len(), 1, "{name}: one segment expected: {segs:?}");
    segs[0].clone()
}

#[test]
fn mutated_segments_fail_cleanly_and_keep_their_blocks() {
    for name in ["port_scan_syn.pcap", "dns_tunnel.pcap"] {
        let work = tempfile::tempdir().expect("tempdir");
        let seg = import_fixture(name, work.path());
        let orig = Original::load(&seg, Kind::Segment);
        assert!(orig.units.iter().filter(|u| u.packets > 0).count() >= 3, "{name}: too few packet blocks");
        mutate_input(&seg, Kind::Segment);
    }
}

/// pcapng as netrec's exporter writes it (EPBs with comments): the shared captures have only one
/// small pcapng.
#[test]
fn mutated_exported_pcapngs_fail_cleanly_and_keep_their_blocks() {
    let work = tempfile::tempdir().expect("tempdir");
    let seg = import_fixture("dns_tunnel.pcap", work.path());
    let pcapng = work.path().join("dns_tunnel.pcapng");
    let o = run(&["export", "--quiet", "--pcap", s(&pcapng), s(&seg)], "export");
    assert_eq!(o.code, 0, "export:\n{}", o.stderr);
    mutate_input(&pcapng, Kind::PcapNg);
}

/// Cuts at every structural edge of a classic pcap: inside the magic, inside the global header,
/// exactly after it, inside and right after the first record header, on and next to record
/// boundaries, one byte short of the end.
#[test]
fn pcaps_cut_at_structural_edges_keep_every_complete_record() {
    let path = fixture("pcap/fragment_anomaly.pcap");
    let orig = Original::load(&path, Kind::Pcap);
    let work = tempfile::tempdir().expect("tempdir");
    let base_db = analyze_original(&orig, &path, work.path());
    let (first, last) = (orig.units[0], *orig.units.last().expect("records"));
    let mut cuts = vec![0, 1, 3, 4, 23, 24, 25, 24 + 15, 24 + 16, first.end - 1, first.end, first.end + 1];
    cuts.extend([last.start, last.start + 16, orig.bytes.len() - 1]);
    for (k, at) in cuts.into_iter().enumerate() {
        check_mutant(&orig, &Mutation::Truncate { at }, 0, k, &base_db);
    }
}
