//! One module per subcommand; shared helpers here.

pub mod alerts;
pub mod analyze;
pub mod config;
pub mod export;
pub mod flows;
mod flowsort;
pub mod import;
pub mod record;
pub mod report;
pub mod rules;
pub mod segments;

use anyhow::Context as _;
use netrec_rules::ruleset::RuleSet;
use std::path::{Path, PathBuf};

/// A write to a closed pipe (`netrec flows x.pcap | head`) is success, not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            // serde_json wraps the io::Error and does not expose it as its source.
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// Rule-file options shared by `alerts`, `analyze`, `rules list` and `record`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RuleArgs {
    /// Rule file (TOML) merged over the default pack; a rule with an existing id overrides it.
    /// Repeatable; later files win.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not load the bundled default pack (only the --rules files).
    #[arg(long)]
    pub no_default_rules: bool,
}

/// Parse one rule file; list files it references are resolved relative to it.
pub fn parse_rule_file(path: &Path) -> anyhow::Result<RuleSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read rule file", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut resolve = |name: &str| -> Result<String, String> {
        let p = base.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    // RuleError displays as `file:line:col: message`: that line is the whole error.
    RuleSet::parse_with(&path.display().to_string(), &text, &mut resolve).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn load_rules(args: &RuleArgs) -> anyhow::Result<RuleSet> {
    let mut set = if args.no_default_rules { RuleSet::default() } else { RuleSet::default_pack() };
    for path in &args.rules {
        set = set.merge(parse_rule_file(path)?);
    }
    Ok(set)
}

/// Write all of `bytes` to stdout (a closed pipe surfaces as BrokenPipe, which `main` treats as success).
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
