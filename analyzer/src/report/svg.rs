//! Inline SVG charts for the HTML report. Coordinates are printed with fixed precision so the
//! output is byte-stable; every label goes through the HTML escape.

use super::fmt::{self, bytes};
use super::html::esc;
use super::{MinutePoint, ProtoShare};
use std::fmt::Write as _;

const W: f64 = 760.0;
const H: f64 = 220.0;
const ML: f64 = 70.0;
const MR: f64 = 20.0;
const MT: f64 = 20.0;
const MB: f64 = 40.0;

fn open(s: &mut String, w: f64, h: f64, title: &str) {
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
}

/// Packets per minute as an area chart.
pub(crate) fn series(points: &[MinutePoint]) -> String {
    let mut s = String::new();
    open(&mut s, W, H, "Packets per minute");
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let _ = write!(
        s,
        r##"<line x1="{ML:.1}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#888"/><line x1="{ML:.1}" y1="{MT:.1}" x2="{ML:.1}" y2="{y:.1}" stroke="#888"/>"##,
        y = MT + ph,
        x2 = ML + pw
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no packets</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return s;
    };
    let max = points.iter().map(|p| p.packets).max().unwrap_or(0).max(1) as f64;
    let span = (last.minute - first.minute).max(1) as f64;
    let xy = |p: &MinutePoint| {
        let x =
            if points.len() == 1 { ML + pw / 2.0 } else { ML + (p.minute - first.minute) as f64 / span * pw };
        (x, MT + ph - p.packets as f64 / max * ph)
    };
    let mut pts = String::new();
    for p in points {
        let (x, y) = xy(p);
        let _ = write!(pts, "{x:.1},{y:.1} ");
    }
    let (x0, _) = xy(first);
    let (x1, _) = xy(last);
    let _ = write!(
        s,
        r##"<polygon points="{x0:.1},{b:.1} {p}{x1:.1},{b:.1}" fill="#4a7ab5" fill-opacity="0.25"/><polyline points="{p}" fill="none" stroke="#4a7ab5" stroke-width="1.5"/>"##,
        b = MT + ph,
        p = pts
    );
    if points.len() == 1 {
        let (x, y) = xy(first);
        let _ = write!(s, r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#4a7ab5"/>"##);
    }
    let _ = write!(
        s,
        r#"<text x="{a:.1}" y="{MT:.1}" text-anchor="end" dy="0.8em">{max}</text><text x="{a:.1}" y="{b:.1}" text-anchor="end">0</text>"#,
        a = ML - 6.0,
        b = MT + ph,
        max = max as u64
    );
    let _ = write!(
        s,
        r#"<text x="{ML:.1}" y="{y:.1}">{t0}</text><text x="{x:.1}" y="{y:.1}" text-anchor="end">{t1}</text></svg>"#,
        y = H - 12.0,
        x = ML + pw,
        t0 = esc(&fmt::utc(first.minute)),
        t1 = esc(&fmt::utc(last.minute))
    );
    s
}

/// Protocol mix as horizontal bars (share of packets).
pub(crate) fn protocol_mix(protos: &[ProtoShare]) -> String {
    const ROW: f64 = 24.0;
    const LABEL: f64 = 90.0;
    const BAR: f64 = 480.0;
    let h = MT + ROW * protos.len().max(1) as f64 + 10.0;
    let mut s = String::new();
    open(&mut s, W, h, "Protocol mix (share of packets)");
    if protos.is_empty() {
        let _ = write!(s, r#"<text x="{LABEL:.1}" y="{:.1}">no packets</text></svg>"#, MT + 14.0);
        return s;
    }
    for (n, p) in protos.iter().enumerate() {
        let y = MT + n as f64 * ROW;
        let w = (p.packet_share * BAR).max(1.0);
        let _ = write!(
            s,
            r##"<text x="{lx:.1}" y="{ty:.1}" text-anchor="end">{name}</text><rect x="{LABEL:.1}" y="{y:.1}" width="{w:.1}" height="{bh:.1}" fill="#5b9a68"/><text x="{vx:.1}" y="{ty:.1}">{pct} ({pk} packets, {by})</text>"##,
            lx = LABEL - 8.0,
            ty = y + 14.0,
            name = esc(&p.proto),
            bh = ROW - 6.0,
            vx = LABEL + w + 6.0,
            pct = esc(&fmt::pct(p.packet_share)),
            pk = p.packets,
            by = esc(&bytes(p.bytes))
        );
    }
    s.push_str("</svg>");
    s
}
