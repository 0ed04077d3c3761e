//! The `netrec` command line: thin, clap + dispatch. Library crates do the work.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "netrec", version, about = "Offline-capable network forensic recorder and replay analyzer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the flow table of pcap, pcapng or segment inputs.
    Flows(cmd::flows::FlowsArgs),
    /// Run decoder, flow table and detection engine over inputs and print the alerts.
    Alerts(cmd::alerts::AlertsArgs),
    /// Validate rule files and list the loaded rules.
    #[command(subcommand)]
    Rules(cmd::rules::RulesCmd),
    /// Replay inputs into a SQLite database and print an incident and traffic summary.
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Render incident, traffic and performance reports from a database.
    Report(cmd::report::ReportArgs),
    /// Inspect and verify recorded segment files.
    Segments(cmd::segments::SegmentsArgs),
    /// Record live traffic with the eBPF programs into segments, detecting as it goes.
    Record(cmd::record::RecordArgs),
    /// Write pcap/pcapng captures into segments exactly as `record` would (offline writer).
    Import(cmd::import::ImportArgs),
    /// Write the recorded packet headers of segments as pcapng, with alert comments.
    Export(cmd::export::ExportArgs),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Flows(a) => cmd::flows::run(a),
        Command::Alerts(a) => cmd::alerts::run(a),
        Command::Rules(c) => cmd::rules::run(c),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Segments(a) => cmd::segments::run(a),
        Command::Record(a) => cmd::record::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Export(a) => cmd::export::run(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) if cmd::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("netrec: {err:#}");
            ExitCode::from(2)
        }
    }
}
