//! Helpers shared by the end-to-end tests of the `netrec` binary.
#![allow(dead_code)]

pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `../shared/captures` (or `$NETREC_CAPTURES`): real third-party captures with tshark ground truth.
pub fn captures_dir() -> PathBuf {
    if let Ok(d) = std::env::var("NETREC_CAPTURES") {
        return d.into();
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let cand = dir.join("../shared/captures");
        if cand.join("MANIFEST.tsv").exists() {
            return cand;
        }
        if !dir.pop() {
            panic!("../shared/captures not found above {}; set NETREC_CAPTURES", env!("CARGO_MANIFEST_DIR"));
        }
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// Capture files listed in MANIFEST.tsv, in manifest order.
pub fn manifest_captures() -> Vec<PathBuf> {
    let dir = captures_dir();
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .map(|f| dir.join(f))
        .collect()
}

pub fn netrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrec")).args(args).output().expect("run netrec")
}

pub fn netrec_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrec")).current_dir(dir).args(args).output().expect("run netrec")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse JSON lines.
pub fn jsonl(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json line {l:?}: {e}")))
        .collect()
}
