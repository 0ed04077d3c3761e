//! One self-contained HTML file: inline CSS, inline SVG, no scripts, no external references.
//! Every piece of data text goes through [`esc`].

use super::blocks::{Block, ChartKind};
use super::{Report, svg};
use std::fmt::Write as _;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}\
h1{border-bottom:2px solid #333}h2{margin-top:2em;border-bottom:1px solid #aaa}h3{margin-top:1.5em}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}caption{text-align:left;font-weight:bold;padding:.3em 0}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f0f0f0}\
tr:nth-child(even) td{background:#fafafa}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}\
dt{font-weight:bold}dd{margin:0}.chart{display:block;margin:1em 0;font-size:12px}.chart text{fill:#333}\
.none{color:#777;font-style:italic}";

pub(crate) fn render(report: &Report, blocks: &[Block]) -> String {
    let mut s = String::with_capacity(16 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>");
    let _ = write!(s, "<title>netrec report</title><style>{CSS}</style></head>\n<body>\n");
    let mut heading = 0usize;
    for b in blocks {
        match b {
            Block::Heading(level, t) => {
                heading += 1;
                let l = (*level).clamp(1, 6);
                let _ = writeln!(s, "<h{l} id=\"s{heading}\">{}</h{l}>", esc(t));
            }
            Block::Text(t) => {
                let _ = writeln!(s, "<p>{}</p>", esc(t));
            }
            Block::Facts(facts) => {
                s.push_str("<dl>");
                for (k, v) in facts {
                    let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
                }
                s.push_str("</dl>\n");
            }
            Block::Table(g) => {
                if g.rows.is_empty() {
                    let _ = writeln!(
                        s,
                        "<p><strong>{}</strong>: <span class=\"none\">none</span></p>",
                        esc(&g.caption)
                    );
                    continue;
                }
                let _ = write!(s, "<table><caption>{}</caption><thead><tr>", esc(&g.caption));
                for h in &g.headers {
                    let _ = write!(s, "<th>{}</th>", esc(h));
                }
                s.push_str("</tr></thead><tbody>\n");
                for row in &g.rows {
                    s.push_str("<tr>");
                    for c in row {
                        let _ = write!(s, "<td>{}</td>", esc(c));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody></table>\n");
            }
            Block::Chart(kind) => {
                if let Some(t) = &report.traffic {
                    match kind {
                        ChartKind::Series => s.push_str(&svg::series(&t.series)),
                        ChartKind::ProtocolMix => s.push_str(&svg::protocol_mix(&t.protocols)),
                    }
                    s.push('\n');
                }
            }
        }
    }
    s.push_str("</body></html>\n");
    s
}

/// Escape text for HTML element content and quoted attribute values.
pub(crate) fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in HTML text; drop them visibly.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("a\u{1b}[31m"), "a\u{FFFD}[31m");
    }
}

#[cfg(test)]
mod proptests {
    use super::esc;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Escaped text can never open a tag, end an attribute or start an entity of its own.
        #[test]
        fn escaped_text_is_inert(s in any::<String>()) {
            let e = esc(&s);
            prop_assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
            // Every '&' starts one of our entities.
            for (i, _) in e.match_indices('&') {
                let rest = &e[i..];
                prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|x| rest.starts_with(x)));
            }
        }
    }
}
