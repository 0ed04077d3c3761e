//! Text formatting shared by the renderers. No clock: times come from the data.

// One calendar conversion for the whole project (segment names use it too).
use netrec_format::segment::name::civil_from_days;

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (proleptic Gregorian; negative times clamp to 1970).
pub(crate) fn utc(secs: i64) -> String {
    let secs = secs.max(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

/// `utc` for a decimal timestamp string as stored (`"1418145369.924505488"`).
pub(crate) fn utc_of_decimal(ts: &str) -> String {
    let secs = ts.split('.').next().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    utc(secs)
}

/// Nanoseconds as the decimal text used everywhere.
pub(crate) fn ts_text(ns: i64) -> String {
    let ns = ns.max(0);
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Human byte count with SI units (`4.7 kB`).
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut u = 0;
    while v >= 999.95 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Percent with one decimal.
pub(crate) fn pct(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A float with up to `digits` decimals.
pub(crate) fn num(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

/// Optional milliseconds, `-` when absent.
pub(crate) fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

/// A list, shortened to `max` items plus "(+N more)".
pub(crate) fn list(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    let mut s = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        s.push_str(&format!(" (+{} more)", items.len() - max));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // `date -u -d @1418145369` -> 2014-12-09 17:16:09
        assert_eq!(utc(1_418_145_369), "2014-12-09 17:16:09 UTC");
        // Leap day: `date -u -d @951782400` -> 2000-02-29 00:00:00
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_of_decimal("1418145369.924505488"), "2014-12-09 17:16:09 UTC");
        assert_eq!(utc_of_decimal("garbage"), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(4680), "4.7 kB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(u64::MAX), "18.4 EB");
    }

    #[test]
    fn timestamps_and_lists() {
        assert_eq!(ts_text(1_500_000_000), "1.500000000");
        assert_eq!(list(&[], 3), "-");
        let l: Vec<String> = (1..=5).map(|n| n.to_string()).collect();
        assert_eq!(list(&l, 3), "1, 2, 3 (+2 more)");
    }
}
