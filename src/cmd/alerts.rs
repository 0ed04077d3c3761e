//! `netrec alerts`: decoder + flows + engine over inputs; prints the alerts.

use super::flows::{collect_into, exit_code};
use super::{RuleArgs, load_rules};
use anyhow::Context as _;
use netrec_format::Alert;
use netrec_rules::alert_json;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertFormat {
    Table,
    Jsonl,
}

#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    /// pcap, pcapng (optionally .gz/.zst) or segment files, or directories of them; `-` (or a
    /// pipe) streams a capture from standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[arg(long, value_enum, default_value_t = AlertFormat::Table)]
    pub format: AlertFormat,
    /// Exit with code 1 when at least one alert was raised (for CI regressions).
    #[arg(long)]
    pub fail_on_alert: bool,
}

pub fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(&args.rules)?;
    let c = collect_into(&args.inputs, &rules, None)?;
    let alerts = &c.sink.alerts;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        AlertFormat::Jsonl => {
            for a in alerts {
                serde_json::to_writer(&mut out, &alert_json(a)).context("write")?;
                out.write_all(b"\n").context("write")?;
            }
        }
        AlertFormat::Table => out.write_all(table(alerts).as_bytes()).context("write")?,
    }
    out.flush().context("write")?;
    eprintln!("netrec: {} packets, {} alerts", c.stats.packets, alerts.len());
    let code = exit_code(&c);
    if code == ExitCode::SUCCESS && args.fail_on_alert && !alerts.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

fn list(ips: &[std::net::IpAddr], total: u64) -> String {
    let shown: Vec<String> = ips.iter().take(3).map(|i| i.to_string()).collect();
    let more = total.saturating_sub(shown.len() as u64);
    if more > 0 { format!("{} (+{more})", shown.join(", ")) } else { shown.join(", ") }
}

fn table(alerts: &[Alert]) -> String {
    if alerts.is_empty() {
        return "no alerts\n".to_string();
    }
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "id", "class", "severity", "rule", "first", "last", "sources", "targets", "count", "message",
    ]);
    for a in alerts {
        b.push_record([
            a.id.to_string(),
            a.class.clone(),
            a.severity.as_str().to_string(),
            a.rule_id.clone(),
            a.first_ts.to_decimal(),
            a.last_ts.to_decimal(),
            list(&a.src, a.src_count),
            list(&a.dst, a.dst_count),
            a.count.to_string(),
            a.message.clone(),
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::psql());
    format!("{t}\n")
}
