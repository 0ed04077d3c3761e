//! `cargo run -p xtask -- <task>`: fixture and benchmark capture generation.

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use xtask::{bench, fixtures};

const USAGE: &str = "usage:
  cargo run -p xtask -- gen-fixtures [--out DIR]          (default: fixtures/pcap of the workspace)
  cargo run --release -p xtask -- gen-bench --kind mix|synflood --packets N --out FILE [--snaplen N] [--seed N]
  cargo run --release -p xtask -- seg-bench --pcap FILE [--snaplen N] [--name NAME] [--dump FILE]   (segment size and speed;
      --dump also writes the snapped records as an uncompressed 1.0 segment, for codec studies)";

mod segbench;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let mut opts: Vec<(String, String)> = Vec::new();
    while let Some(k) = args.next() {
        let v = args.next().with_context(|| format!("{k} needs a value\n{USAGE}"))?;
        opts.push((k, v));
    }
    let get = |k: &str| opts.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match task.as_str() {
        "gen-fixtures" => {
            let out = get("--out").map(PathBuf::from).unwrap_or_else(fixtures_dir);
            for (name, len) in
                fixtures::write_all(&out).with_context(|| format!("writing {}", out.display()))?
            {
                println!("{:>10}  {}", len, out.join(name).display());
            }
            Ok(())
        }
        "gen-bench" => {
            let kind: bench::Kind = get("--kind").context("--kind is required")?.parse()?;
            let packets: u64 =
                get("--packets").unwrap_or_else(|| "1000000".into()).parse().context("--packets")?;
            let out = PathBuf::from(get("--out").context("--out is required")?);
            let snaplen: u32 = get("--snaplen").unwrap_or_else(|| "0".into()).parse().context("--snaplen")?;
            let seed: u64 = match get("--seed") {
                Some(s) => s.parse().context("--seed")?,
                None => bench::BENCH_SEED,
            };
            let file = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
            let started = std::time::Instant::now();
            let w = std::io::BufWriter::with_capacity(1 << 20, file);
            let (w, st) = bench::generate(w, kind, packets, snaplen, seed)?;
            // into_inner flushes; no fsync, the page cache is fine for a benchmark input.
            drop(w.into_inner().map_err(|e| e.into_error())?);
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}: {} packets, {} wire bytes ({:.0} B/packet) in {:.2} s ({:.2} Mpps)",
                out.display(),
                st.packets,
                st.wire_bytes,
                st.wire_bytes as f64 / st.packets.max(1) as f64,
                secs,
                st.packets as f64 / secs / 1e6
            );
            Ok(())
        }
        "seg-bench" => {
            let pcap = PathBuf::from(get("--pcap").context("--pcap is required")?);
            let snaplen: usize =
                get("--snaplen").unwrap_or_else(|| "128".into()).parse().context("--snaplen")?;
            let name = get("--name").unwrap_or_else(|| pcap.display().to_string());
            let dump = get("--dump").map(PathBuf::from);
            let r = segbench::run(&pcap, snaplen, dump.as_deref())?;
            println!("{}\n{}", segbench::MARKDOWN_HEADER, r.markdown_row(&name));
            Ok(())
        }
        _ => bail!("unknown task {task:?}\n{USAGE}"),
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap")
}
