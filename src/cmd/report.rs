//! `netrec report`: render a report from the database `netrec analyze` wrote.

use anyhow::Context as _;
use netrec_analyzer::db::{Db, DbError};
use netrec_analyzer::report::{Report, ReportKind};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Database written by `netrec analyze`.
    #[arg(long, value_name = "PATH", default_value = "./netrec.sqlite")]
    pub db: PathBuf,
    /// Which report to produce.
    #[arg(value_enum, default_value_t = KindArg::All)]
    pub kind: KindArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    Incidents,
    Traffic,
    Performance,
    All,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// Terminal tables.
    Table,
    /// Markdown (tables, no HTML).
    Md,
    /// One self-contained HTML file.
    Html,
    /// JSON, documented in docs/reports.md.
    Json,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let db = match Db::open_read_only(&args.db) {
        Ok(db) => db,
        Err(e @ DbError::Missing { .. }) => {
            return Err(anyhow::Error::new(e).context(format!(
                "no report database at {} (run `netrec analyze --db {} ...` first, or pass --db)",
                args.db.display(),
                args.db.display()
            )));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", args.db.display())),
    };
    let kind = match args.kind {
        KindArg::Incidents => ReportKind::Incidents,
        KindArg::Traffic => ReportKind::Traffic,
        KindArg::Performance => ReportKind::Performance,
        KindArg::All => ReportKind::All,
    };
    let report = Report::load(&db, kind)
        .with_context(|| format!("cannot read the report from {}", args.db.display()))?;
    let text = match args.format {
        FormatArg::Table => report.to_table(),
        FormatArg::Md => report.to_markdown(),
        FormatArg::Html => report.to_html(),
        FormatArg::Json => report.to_json(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => {}
                // A closed pipe (`netrec report | head`) is success.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e).context("cannot write the report to standard output"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
