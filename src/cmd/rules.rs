//! `netrec rules check FILE` / `netrec rules list`.

use super::{RuleArgs, load_rules, parse_rule_file};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum RulesCmd {
    /// Validate rule files; errors are `file:line:col: message`.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show the rules that would be loaded (default pack merged with --rules files).
    List {
        #[command(flatten)]
        rules: RuleArgs,
    },
}

pub fn run(cmd: RulesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCmd::Check { files } => {
            let mut bad = 0;
            for f in &files {
                match parse_rule_file(f) {
                    Ok(set) => println!("{}: ok, {} rules", f.display(), set.rules().len()),
                    Err(e) => {
                        eprintln!("{e:#}");
                        bad += 1;
                    }
                }
            }
            Ok(if bad > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        RulesCmd::List { rules } => {
            let set = load_rules(&rules)?;
            let mut b = tabled::builder::Builder::default();
            b.push_record([
                "id", "detector", "enabled", "severity", "attack", "track", "window", "suppress", "origin",
            ]);
            for r in set.rules() {
                b.push_record(rule_row(r));
            }
            let mut t = b.build();
            t.with(tabled::settings::Style::psql());
            println!("{t}");
            println!("rule set digest: {}", set.digest());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rule_row(r: &netrec_rules::ruleset::Rule) -> [String; 9] {
    [
        r.id.clone(),
        r.detector.name().to_string(),
        r.enabled.to_string(),
        r.severity.as_str().to_string(),
        r.attack_id.clone(),
        r.track.as_str().to_string(),
        format!("{}s", r.window_ns as f64 / 1e9),
        format!("{}s", r.suppress_ns as f64 / 1e9),
        format!("{}:{}", r.origin.file, r.origin.line),
    ]
}
