//! Markdown rendering: headings, bullet facts and pipe tables, no HTML, so it renders on code
//! forums and issue trackers. All data text is escaped.

use super::blocks::Block;
use std::fmt::Write as _;

pub(crate) fn render(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, t) => {
                let _ = writeln!(s, "{} {}\n", "#".repeat(usize::from(*level)), esc(t));
            }
            Block::Text(t) => {
                let _ = writeln!(s, "{}\n", esc(t));
            }
            Block::Facts(facts) => {
                for (k, v) in facts {
                    let _ = writeln!(s, "- **{}**: {}", esc(k), esc(v));
                }
                s.push('\n');
            }
            Block::Table(g) => {
                let _ = writeln!(s, "**{}**\n", esc(&g.caption));
                if g.rows.is_empty() {
                    s.push_str("(none)\n\n");
                    continue;
                }
                row(&mut s, g.headers.iter().copied());
                row(&mut s, g.headers.iter().map(|_| "---"));
                for r in &g.rows {
                    row(&mut s, r.iter().map(String::as_str));
                }
                s.push('\n');
            }
            Block::Chart(_) => {}
        }
    }
    s
}

fn row<'a>(s: &mut String, cells: impl Iterator<Item = &'a str>) {
    s.push('|');
    for c in cells {
        let _ = write!(s, " {} |", esc(c));
    }
    s.push('\n');
}

/// Backslash-escape the Markdown punctuation that can start markup (emphasis, code, links,
/// HTML, entities, table cells; CommonMark allows a backslash before any ASCII punctuation) and
/// flatten line breaks, so data can neither break a table nor inject markup or HTML.
pub(crate) fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_pipes() {
        assert_eq!(esc("a|b"), r"a\|b");
        assert_eq!(esc("<script>"), r"\<script\>");
        assert_eq!(esc("x\ny"), "x y");
        assert_eq!(esc("10.0.0.1:80"), "10.0.0.1:80");
    }
}

#[cfg(test)]
mod proptests {
    use super::esc;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Escaped text stays on one line and every markup character is preceded by a backslash.
        #[test]
        fn escaped_cells_cannot_break_tables(s in any::<String>()) {
            let e = esc(&s);
            prop_assert!(!e.contains('\n') && !e.contains('\r'));
            let mut chars = e.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    prop_assert!(chars.next().is_some(), "dangling backslash in {e:?}");
                } else {
                    prop_assert!(!"`*_[]<>|~&".contains(c), "unescaped {c:?} in {e:?}");
                }
            }
        }
    }
}
