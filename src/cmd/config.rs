//! Alert-delivery options shared by `record` and `analyze --deliver`: `--config FILE` plus flags
//! for the common sinks. The work is in `netrec_recorder::sinks`.

use anyhow::Context as _;
use netrec_format::Alert;
use netrec_recorder::sinks::config::{EveOutput, SecretSource, parse_syslog_addr};
use netrec_recorder::sinks::transport::{SyslogFormat, WebhookFormat};
use netrec_recorder::sinks::{AlertEvent, DeliveryConfig, SinkKind, SinkReport, SinkSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookFormatArg {
    #[default]
    Generic,
    Slack,
    Wechat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyslogFormatArg {
    #[default]
    Rfc5424,
    Cef,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeliveryArgs {
    /// Delivery configuration (TOML: sinks, delivery defaults, metrics; see docs/config.example.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write Suricata-EVE alert records to FILE.
    #[arg(long, value_name = "FILE")]
    pub eve: Option<PathBuf>,
    /// POST each alert to URL (repeatable; `env:NAME` or `file:PATH` keep the URL's token off the command line).
    #[arg(long, value_name = "URL")]
    pub webhook: Vec<String>,
    /// Body of the --webhook requests.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = WebhookFormatArg::Generic)]
    pub webhook_format: WebhookFormatArg,
    /// Send alerts to syslog: udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub syslog: Vec<String>,
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SyslogFormatArg::Rfc5424)]
    pub syslog_format: SyslogFormatArg,
}

/// The configuration file (if any) with the flags' sinks added.
pub fn delivery_config(args: &DeliveryArgs) -> anyhow::Result<DeliveryConfig> {
    // A config error reads `file:line:col: what is wrong` (main adds `netrec: ` and exits 2).
    let mut cfg = match &args.config {
        Some(p) => DeliveryConfig::load(p)?,
        None => DeliveryConfig::default(),
    };
    if let Some(p) = &args.eve {
        cfg.add_sink(SinkKind::Eve(EveOutput::File { path: p.clone(), rotate_bytes: 0, keep: 0 }));
    }
    for url in &args.webhook {
        let src = SecretSource::parse(url);
        if let SecretSource::Literal(u) = &src
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            anyhow::bail!("--webhook: URL must start with http:// or https:// (or be env:NAME / file:PATH)");
        }
        let format = match args.webhook_format {
            WebhookFormatArg::Generic => WebhookFormat::Generic,
            WebhookFormatArg::Slack => WebhookFormat::Slack,
            WebhookFormatArg::Wechat => WebhookFormat::Wechat,
        };
        cfg.add_sink(SinkKind::Webhook {
            url: src,
            format,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            ca_file: None,
        });
    }
    for a in &args.syslog {
        let addr = parse_syslog_addr(a).map_err(|e| anyhow::anyhow!("--syslog: {e}"))?;
        let format = match args.syslog_format {
            SyslogFormatArg::Rfc5424 => SyslogFormat::Rfc5424,
            SyslogFormatArg::Cef => SyslogFormat::Cef,
        };
        cfg.add_sink(SinkKind::Syslog {
            addr,
            format,
            facility: 16,
            hostname: None,
            app_name: "netrec".into(),
            timeout: Duration::from_secs(10),
        });
    }
    Ok(cfg)
}

/// `analyze --deliver`: the configuration, checked before the analysis (None without --deliver).
pub fn analyze_delivery(deliver: bool, args: &DeliveryArgs) -> anyhow::Result<Option<DeliveryConfig>> {
    if !deliver {
        return Ok(None);
    }
    let cfg = delivery_config(args)?;
    if cfg.sinks.is_empty() {
        anyhow::bail!("--deliver needs a sink: --config FILE (with [[sink]]), --eve, --webhook or --syslog");
    }
    Ok(Some(cfg))
}

/// Start the configured sinks (None when there are none).
pub fn start_sinks(cfg: &DeliveryConfig) -> anyhow::Result<Option<Arc<SinkSet>>> {
    if cfg.sinks.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(cfg.start().context("cannot start alert sinks")?)))
}

/// Print each sink's figures; true when any alert was not delivered.
pub fn print_reports(reports: &[SinkReport]) -> bool {
    let mut lost = false;
    for r in reports {
        eprintln!("netrec: {r}");
        lost |= r.dropped() > 0;
    }
    lost
}

/// `analyze --deliver`: send the alerts of `inputs` through the configured sinks and wait for
/// delivery (bounded by the configuration's `shutdown_timeout`). Replays the inputs once more
/// (the analysis itself streams into SQLite and keeps no alert list); only with `--deliver`.
pub fn deliver_inputs(
    inputs: &[PathBuf],
    rules: &netrec_rules::ruleset::RuleSet,
    cfg: &DeliveryConfig,
) -> anyhow::Result<bool> {
    let Some(sinks) = start_sinks(cfg)? else { return Ok(false) };
    if inputs.is_empty() {
        return Ok(print_reports(&SinkSet::finish_shared(sinks, cfg.shutdown_timeout)));
    }
    // Alerts only: the flow records would only cost memory.
    let collected = super::flows::collect_into(inputs, rules, None)?;
    let alerts: &[Alert] = &collected.sink.alerts;
    for a in alerts {
        sinks.send(AlertEvent { update: false, alert: a.clone() });
    }
    eprintln!("netrec: delivering {} alerts to {} sink(s)", alerts.len(), cfg.sinks.len());
    Ok(print_reports(&SinkSet::finish_shared(sinks, cfg.shutdown_timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_add_named_sinks() {
        let args = DeliveryArgs {
            eve: Some("/tmp/e.json".into()),
            webhook: vec!["https://a/x".into(), "env:HOOK".into()],
            syslog: vec!["udp://127.0.0.1:5514".into()],
            ..DeliveryArgs::default()
        };
        let c = delivery_config(&args).unwrap();
        let names: Vec<&str> = c.sinks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["eve", "webhook", "webhook-2", "syslog"]);
        let bad = DeliveryArgs { syslog: vec!["127.0.0.1:514".into()], ..DeliveryArgs::default() };
        assert!(delivery_config(&bad).unwrap_err().to_string().starts_with("--syslog: "));
    }
}
