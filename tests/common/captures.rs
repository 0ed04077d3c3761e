//! `captures_dir()`, the one copy: included with `#[path]` by the tests of every crate
//! (format, rules, analyzer, netrec), which each have no other shared test code.

/// `../shared/captures` above the including crate (or `$NETREC_CAPTURES`): real third-party
/// captures with tshark ground truth.
pub fn captures_dir() -> std::path::PathBuf {
    if let Ok(d) = std::env::var("NETREC_CAPTURES") {
        return d.into();
    }
    let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
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
