//! Helpers shared by the format crate's integration tests.

/// `../shared/captures` above the crate (or `NETREC_CAPTURES`).
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
