//! Terminal rendering with `tabled`.

use super::blocks::{Block, Grid};
use std::fmt::Write as _;
use tabled::builder::Builder;
use tabled::settings::Style;

pub(crate) fn render(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(1, t) => {
                let _ = writeln!(s, "{}\n{}\n", t.to_uppercase(), "=".repeat(t.chars().count()));
            }
            Block::Heading(2, t) => {
                let _ = writeln!(s, "\n{t}\n{}", "-".repeat(t.chars().count()));
            }
            Block::Heading(_, t) => {
                let _ = writeln!(s, "\n# {t}");
            }
            Block::Text(t) => {
                let _ = writeln!(s, "{}", one_line(t));
            }
            Block::Facts(facts) => {
                let w = facts.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                for (k, v) in facts {
                    let _ = writeln!(s, "  {k:<w$}  {}", one_line(v));
                }
            }
            Block::Table(g) => table(&mut s, g),
            Block::Chart(_) => {}
        }
    }
    s
}

fn table(s: &mut String, g: &Grid) {
    let _ = writeln!(s, "\n{}:", g.caption);
    if g.rows.is_empty() {
        let _ = writeln!(s, "  (none)");
        return;
    }
    let mut b = Builder::default();
    b.push_record(g.headers.iter().map(|h| h.to_string()));
    for row in &g.rows {
        b.push_record(row.iter().map(|c| one_line(c)));
    }
    let mut t = b.build();
    t.with(Style::psql());
    let _ = writeln!(s, "{t}");
}

/// Terminal cells stay on one line, and control characters from the data never reach the
/// terminal (an alert message could carry escape sequences from packet bytes).
fn one_line(v: &str) -> String {
    v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
