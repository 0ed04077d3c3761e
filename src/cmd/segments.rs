//! `netrec segments ls | cat | verify`: argument parsing and printing only; the logic is in
//! `netrec_analyzer::segments`.

use anyhow::Context;
use netrec_analyzer::segments::{self, SegmentInfo, SegmentsError};
use netrec_format::Ts;
use netrec_format::segment::name::civil_from_unix;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SegmentsArgs {
    #[command(subcommand)]
    pub command: SegmentsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SegmentsCommand {
    /// List the segments of a directory: sequence, time range, records, size, compression.
    Ls {
        /// Segment directory.
        dir: PathBuf,
    },
    /// Decode segment records (damaged blocks are skipped and reported on stderr).
    Cat {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per line, with a "type" field.
        #[arg(long)]
        json: bool,
    },
    /// Check checksums, trailers and the hash chain. Exit 0 if intact, 2 otherwise.
    Verify {
        /// Segment directories and/or files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub fn run(args: SegmentsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SegmentsCommand::Ls { dir } => ls(&dir),
        SegmentsCommand::Cat { files, json } => cat(&files, json),
        SegmentsCommand::Verify { paths } => verify(&paths),
    }
}

fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

fn utc(ts: Option<Ts>) -> String {
    match ts {
        None => "-".to_owned(),
        Some(t) => {
            let (y, mo, d, h, mi, s) = civil_from_unix(t.0 / 1_000_000_000);
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        }
    }
}

fn ls(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let list = segments::list_dir(dir)?;
    if list.is_empty() {
        eprintln!("netrec: {}: no segment files (seg-*.nrseg) in this directory", dir.display());
        return Ok(ExitCode::from(2));
    }
    let header = [
        "file", "seq", "first", "last", "meta", "packets", "flows", "alerts", "loss", "bytes", "ratio",
        "closed",
    ];
    let rows: Vec<[String; 12]> = list.iter().map(row).collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = io::stdout().lock();
    let mut print = |cells: &[String]| -> io::Result<()> {
        let mut line = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            // Text left, numbers right.
            if i == 0 || i == 2 || i == 3 || i == 11 {
                line.push_str(&format!("{c:<w$}"));
            } else {
                line.push_str(&format!("{c:>w$}"));
            }
            if i + 1 < cells.len() {
                line.push_str("  ");
            }
        }
        writeln!(out, "{}", line.trim_end())
    };
    let res = print(&header.map(str::to_owned)).and_then(|()| rows.iter().try_for_each(|r| print(r)));
    match res {
        Err(e) if is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
        r => r.context("writing to stdout")?,
    }
    let mut code = ExitCode::SUCCESS;
    for i in &list {
        if let Some(p) = &i.problem {
            // Open segments are expected while recording; other problems are reported.
            if !i.name.partial {
                eprintln!("netrec: {}: {p}", i.path.display());
                code = ExitCode::from(2);
            }
        }
    }
    Ok(code)
}

fn row(i: &SegmentInfo) -> [String; 12] {
    let name = i.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let c = i.counts;
    [
        name,
        i.seq.map_or_else(|| "?".into(), |s| s.to_string()),
        utc(i.min_ts),
        utc(i.max_ts),
        c.meta.to_string(),
        c.packets.to_string(),
        c.flows.to_string(),
        c.alerts.to_string(),
        c.loss.to_string(),
        i.stored_bytes.to_string(),
        format!("{:.2}", i.compression_ratio()),
        if i.closed_cleanly {
            "yes".into()
        } else if i.name.partial {
            "open".into()
        } else {
            "NO".into()
        },
    ]
}

fn cat(files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut code = ExitCode::SUCCESS;
    for f in files {
        match segments::cat_file(f, json, &mut out) {
            Ok(rep) => {
                for w in &rep.warnings {
                    eprintln!("netrec: {}: {w}", f.display());
                    code = ExitCode::from(2);
                }
            }
            Err(SegmentsError::Output(e)) if is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
            Err(e) => {
                // One bad file among many: report, count, go on.
                eprintln!("netrec: {e}");
                code = ExitCode::from(2);
            }
        }
    }
    match out.flush() {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        r => {
            r.context("writing to stdout")?;
            Ok(code)
        }
    }
}

fn verify(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let rep = segments::verify_paths(paths);
    for p in &rep.skipped_partial {
        eprintln!("netrec: {}: open segment (.partial) not verified", p.display());
    }
    if rep.is_ok() {
        let c = rep.counts;
        println!(
            "ok: {} segment(s) intact, hash chain unbroken ({} packets, {} flows, {} alerts, {} loss records)",
            rep.files.len(),
            c.packets,
            c.flows,
            c.alerts,
            c.loss
        );
        return Ok(ExitCode::SUCCESS);
    }
    for p in &rep.problems {
        eprintln!("netrec: {p}");
    }
    Ok(ExitCode::from(2))
}
