//! The `netrec` command line: thin, clap + dispatch.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "netrec", version, about = "Offline-capable network forensic recorder and replay analyzer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {}
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("netrec: {err:#}");
            ExitCode::from(2)
        }
    }
}
