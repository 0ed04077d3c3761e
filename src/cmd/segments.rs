//! `netrec segments ls | cat | verify`: argument parsing and printing only; the logic is in
//! `netrec_analyzer::segments`.

use anyhow::Context;
use netrec_analyzer::segments::{self, SegmentInfo, SegmentsError};
use netrec_format::Ts;
use netrec_format::segment::name::civil_from_unix;
use netrec_format::segment::{ChainBreak, RecordCounts, SegmentError, SegmentName, verify_chain};
use netrec_format::store::list_segments;
use std::fs::File;
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
    /// Check checksums, trailers and the hash chain across rotations and restarts; warn about
    /// gaps in time. Exit 0 if intact, 1 on damage or a chain break, 2 if inputs cannot be read.
    Verify {
        /// Segment directories and/or files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Warn when consecutive segments are further apart in time than this (0: never).
        #[arg(long, value_name = "DUR", value_parser = super::record::parse_duration, default_value = "60s")]
        gap: std::time::Duration,
    },
}

pub fn run(args: SegmentsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SegmentsCommand::Ls { dir } => ls(&dir),
        SegmentsCommand::Cat { files, json } => cat(&files, json),
        SegmentsCommand::Verify { paths, gap } => verify(&paths, gap),
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

/// Verification findings, in discovery order.
#[derive(Default)]
struct Findings {
    /// Damage and chain breaks (exit 1).
    damage: Vec<String>,
    /// Inputs that could not be read (exit 2).
    errors: Vec<String>,
    /// Gaps, recovered segments, open segments: reported, exit code unchanged.
    notes: Vec<String>,
    files: usize,
    counts: RecordCounts,
    recovered: usize,
    gaps: usize,
}

fn verify(paths: &[PathBuf], gap: std::time::Duration) -> anyhow::Result<ExitCode> {
    let mut f = Findings::default();
    let mut loose: Vec<PathBuf> = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Err(e) => f.errors.push(format!("{}: {e}", p.display())),
            Ok(md) if md.is_dir() => match list_segments(p) {
                Err(e) => f.errors.push(format!("{}: {e}", p.display())),
                Ok(list) => {
                    let (partial, closed): (Vec<_>, Vec<_>) = list.into_iter().partition(|l| l.name.partial);
                    for l in partial {
                        f.notes.push(format!(
                            "{}: open segment (.partial) not verified: being written, or left by a crash (the next record or import into this directory recovers it)",
                            l.path.display()
                        ));
                    }
                    if closed.is_empty() {
                        f.errors.push(format!(
                            "{}: no segment files (seg-*.nrseg) in this directory",
                            p.display()
                        ));
                    } else {
                        verify_one_chain(closed.into_iter().map(|l| l.path).collect(), gap, &mut f);
                    }
                }
            },
            Ok(_) => loose.push(p.clone()),
        }
    }
    if !loose.is_empty() {
        let key =
            |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).and_then(SegmentName::parse).map(|n| n.seq);
        if loose.iter().all(|p| key(p).is_some()) {
            loose.sort_by_key(|p| key(p));
        }
        verify_one_chain(loose, gap, &mut f);
    }
    // Problems first: the first line names the first damaged file or break.
    for l in f.damage.iter().chain(&f.errors) {
        eprintln!("netrec: {l}");
    }
    for l in &f.notes {
        eprintln!("netrec: {l}");
    }
    if !f.errors.is_empty() {
        return Ok(ExitCode::from(2));
    }
    if !f.damage.is_empty() {
        return Ok(ExitCode::from(1));
    }
    let c = f.counts;
    println!(
        "ok: {} segment(s) intact, hash chain unbroken ({} packets, {} flows, {} alerts, {} loss records; {} closed by recovery, {} gap(s) over {})",
        f.files,
        c.packets,
        c.flows,
        c.alerts,
        c.loss,
        f.recovered,
        f.gaps,
        fmt_dur(gap.as_nanos() as u64)
    );
    Ok(ExitCode::SUCCESS)
}

/// `1h2m3.5s`-style length of a time span.
fn fmt_dur(ns: u64) -> String {
    let (s, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        out.push_str(&format!("{s}.{:03}s", frac / 1_000_000));
    }
    out
}

fn verify_one_chain(paths: Vec<PathBuf>, gap: std::time::Duration, f: &mut Findings) {
    let mut opened = Vec::with_capacity(paths.len());
    for p in paths {
        match File::open(&p) {
            Ok(r) => opened.push((p, io::BufReader::new(r))),
            Err(e) => f.errors.push(format!("{}: {e}", p.display())),
        }
    }
    let rep = verify_chain(opened);
    for (i, (p, r)) in rep.files.iter().enumerate() {
        let prev_damaged = i > 0 && rep.files[i - 1].1.damage.is_some();
        // A break right after a damaged file is a consequence of that damage: not repeated.
        if let Some(b) = rep.breaks.iter().find(|b| b.index == i)
            && !prev_damaged
        {
            f.damage.push(chain_break_line(b));
        }
        if let Some(d) = &r.damage {
            let line = match &d.error {
                // Messages of errors inside a block already name the block and the offset.
                e if e.block().is_some() => format!("{}: {e}", p.display()),
                e => format!("{}: offset {}: {e}", p.display(), d.offset),
            };
            match &d.error {
                SegmentError::Io(e) => f.errors.push(format!("{}: {e}", p.display())),
                _ => f.damage.push(line),
            }
        }
        let (c, t) = (&r.counts, &mut f.counts);
        (t.meta, t.packets, t.flows, t.alerts, t.loss) =
            (t.meta + c.meta, t.packets + c.packets, t.flows + c.flows, t.alerts + c.alerts, t.loss + c.loss);
        f.files += 1;
    }
    for (i, p, r) in rep.recovered() {
        // The next file of the chain is the first of the run that followed.
        f.recovered += 1;
        let next = match rep.files.get(i + 1) {
            Some((n, _)) => format!("; {} starts the next run's chain link", n.display()),
            None => String::new(),
        };
        f.notes.push(format!(
            "{}: closed by recovery, not by its writer (a crash or a write failure; the .partial had {} bytes){next}",
            p.display(),
            r.trailer_ext.original_len,
        ));
    }
    let threshold = u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX);
    if threshold > 0 {
        for g in rep.time_gaps(threshold) {
            f.gaps += 1;
            f.notes.push(format!(
                "warning: {}: {} gap in time after {} (last record {}, next first record {})",
                g.path.display(),
                fmt_dur(g.gap_ns()),
                g.prev_path.display(),
                utc_ns(g.prev_max_ts),
                utc_ns(g.next_min_ts)
            ));
        }
    }
}

fn utc_ns(t: Ts) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(t.0 / 1_000_000_000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z", t.0 % 1_000_000_000)
}

/// The break with the header field that does not continue the chain: `seq` at offset 24,
/// `prev_sha256` at offset 32 (SPEC.md §3).
fn chain_break_line(b: &ChainBreak) -> String {
    let offset = if b.is_sequence_gap() { 24 } else { 32 };
    let mut l =
        format!("{}: offset {offset}: hash chain break after {}:", b.path.display(), b.prev_path.display());
    if b.is_sequence_gap() {
        l.push_str(&format!(
            " expected sequence {}, found {} (missing segment?);",
            b.expected_seq, b.found_seq
        ));
    }
    if b.is_hash_mismatch() {
        l.push_str(&format!(
            " prev_sha256 in header is {}, previous file hashes to {}",
            hex::encode(b.found_prev_sha256),
            hex::encode(b.expected_prev_sha256)
        ));
    } else {
        l.push_str(" previous file hash matches");
    }
    l
}
