//! Segment file names: the one place they are built and parsed (SPEC.md §8).
//!
//! `seg-<seq, 10 digits>-<start UTC YYYYMMDDTHHMMSSZ>.nrseg`, and `.nrseg.partial` while open.

use crate::model::Ts;

pub const EXTENSION: &str = ".nrseg";
pub const PARTIAL_EXTENSION: &str = ".nrseg.partial";
/// A `.partial` with nothing recoverable is renamed to this (never deleted); not a segment name.
pub const QUARANTINE_EXTENSION: &str = ".nrseg.quarantine";

/// A parsed segment file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    pub seq: u64,
    /// Start time, whole seconds since the epoch (UTC).
    pub start_secs: u64,
    /// The file is still open (or was never closed).
    pub partial: bool,
}

impl SegmentName {
    pub fn new(seq: u64, start: Ts) -> Self {
        SegmentName { seq, start_secs: start.0 / 1_000_000_000, partial: false }
    }
    pub fn partial(self) -> Self {
        SegmentName { partial: true, ..self }
    }
    pub fn closed(self) -> Self {
        SegmentName { partial: false, ..self }
    }
    /// File name of the quarantined form of this segment (`attempt` > 0 appends `.<attempt>`,
    /// so an earlier quarantined file of the same name is never overwritten).
    pub fn quarantine_name(&self, attempt: u32) -> String {
        let closed = self.closed().to_string();
        let stem = closed.strip_suffix(EXTENSION).unwrap_or(&closed);
        match attempt {
            0 => format!("{stem}{QUARANTINE_EXTENSION}"),
            n => format!("{stem}{QUARANTINE_EXTENSION}.{n}"),
        }
    }
    /// Parses a file name (not a path). None if it is not a segment name.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let (stem, partial) = if let Some(s) = name.strip_suffix(PARTIAL_EXTENSION) {
            (s, true)
        } else {
            (name.strip_suffix(EXTENSION)?, false)
        };
        let rest = stem.strip_prefix("seg-")?;
        let (seq, time) = rest.split_once('-')?;
        if seq.len() < 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq: u64 = seq.parse().ok()?;
        Some(SegmentName { seq, start_secs: parse_utc(time)?, partial })
    }
}

impl std::fmt::Display for SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, mo, d, h, mi, s) = civil_from_unix(self.start_secs);
        let ext = if self.partial { PARTIAL_EXTENSION } else { EXTENSION };
        write!(f, "seg-{:010}-{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z{ext}", self.seq)
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds -> (year, month, day, hour, minute, second) in UTC.
pub fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let sod = (secs % 86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod / 60 % 60, sod % 60)
}

/// `YYYYMMDDTHHMMSSZ` -> Unix seconds; None unless it is a valid date and time.
fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = b.get(r)?;
        if !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        t.iter().try_fold(0u32, |a, c| a.checked_mul(10)?.checked_add(u32::from(c - b'0')))
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || d == 0 || h > 23 || mi > 59 || sec > 59 || y < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    // Reject dates like Feb 30 by round-tripping.
    if civil_from_days(days) != (i64::from(y), mo, d) {
        return None;
    }
    Some(days as u64 * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2014-12-09T17:16:09Z (checked with `date -u -d @1418145369`).
        assert_eq!(civil_from_unix(1_418_145_369), (2014, 12, 9, 17, 16, 9));
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        // 2000-02-29 (leap day of a century leap year) = 951782400.
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
        // 2100-03-01 = 4107542400 (2100 is not a leap year).
        assert_eq!(civil_from_unix(4_107_542_400), (2100, 3, 1, 0, 0, 0));
    }

    #[test]
    fn days_roundtrip() {
        for z in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn name_roundtrip_and_format() {
        let n = SegmentName::new(42, Ts(1_418_145_369_924_505_488));
        assert_eq!(n.to_string(), "seg-0000000042-20141209T171609Z.nrseg");
        assert_eq!(n.partial().to_string(), "seg-0000000042-20141209T171609Z.nrseg.partial");
        assert_eq!(SegmentName::parse(&n.to_string()), Some(n));
        assert_eq!(SegmentName::parse(&n.partial().to_string()), Some(n.partial()));
        assert_eq!(n.partial().quarantine_name(0), "seg-0000000042-20141209T171609Z.nrseg.quarantine");
        assert_eq!(n.quarantine_name(2), "seg-0000000042-20141209T171609Z.nrseg.quarantine.2");
        // Quarantined files are not segments: listings and retention ignore them.
        assert_eq!(SegmentName::parse(&n.quarantine_name(0)), None);
    }

    #[test]
    fn rejects_non_names() {
        for s in [
            "seg-0000000042-20141209T171609Z.nrse",
            "seg-42-20141209T171609Z.nrseg",
            "seg-0000000042-20141330T171609Z.nrseg",
            "seg-0000000042-20150229T000000Z.nrseg",
            "seg-0000000042-20141209T246009Z.nrseg",
            "seg-000000004x-20141209T171609Z.nrseg",
            "xseg-0000000042-20141209T171609Z.nrseg",
            "seg-0000000042-20141209T171609.nrseg",
            "",
        ] {
            assert_eq!(SegmentName::parse(s), None, "{s}");
        }
    }
}
