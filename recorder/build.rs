//! With the `embed-ebpf` feature, builds the kernel programs (recorder-ebpf/) from source with the
//! pinned nightly + rust-src + bpf-linker (scripts/toolchains.sh installs them) and embeds the
//! object. Without it nothing happens: `netrec analyze` users need no eBPF toolchain, and
//! `netrec record --bpf-object FILE` can still load a separately built object.

use std::path::PathBuf;
use std::process::Command;

const NIGHTLY: &str = "nightly-2026-10-30";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netrec_embedded_ebpf)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=NETREC_EBPF_OBJECT");
    if std::env::var_os("CARGO_FEATURE_EMBED_EBPF").is_none() {
        return;
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let ebpf_dir = manifest.join("../recorder-ebpf");
    for p in ["src", "Cargo.toml", "Cargo.lock", "common/src", "common/Cargo.toml"] {
        println!("cargo::rerun-if-changed={}", ebpf_dir.join(p).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // A prebuilt object may be supplied (e.g. by a packager); otherwise build from source.
    let object = if let Some(obj) = std::env::var_os("NETREC_EBPF_OBJECT") {
        // A rebuilt object must be embedded again even when the eBPF sources did not change.
        println!("cargo::rerun-if-changed={}", PathBuf::from(&obj).display());
        PathBuf::from(obj)
    } else {
        let target_dir = out.join("ebpf-target");
        let mut cmd = Command::new("cargo");
        // Host build settings must not leak into the nested BPF build.
        for var in [
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTUP_TOOLCHAIN",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg(format!("+{NIGHTLY}"))
            .args([
                "build",
                "--release",
                "--locked",
                "-Z",
                "build-std=core",
                "--target",
                "bpfel-unknown-none",
            ])
            .arg("--manifest-path")
            .arg(ebpf_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // aya-ebpf's build scripts pick the kernel arch from this (pt_regs layouts).
            .env(
                "AYA_BPF_TARGET_ARCH",
                std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into()),
            );
        let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo for the eBPF build: {e}"));
        if !status.success() {
            panic!(
                "building the eBPF programs failed ({status}). They need the {NIGHTLY} toolchain with rust-src and \
                 bpf-linker: run scripts/toolchains.sh ebpf, or build without the `ebpf` feature"
            );
        }
        target_dir.join("bpfel-unknown-none/release/netrec-recorder-ebpf")
    };
    let dest = out.join("netrec.bpf.o");
    std::fs::copy(&object, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", object.display()));
    println!("cargo::rustc-env=NETREC_EBPF_OBJ={}", dest.display());
    println!("cargo::rustc-cfg=netrec_embedded_ebpf");
}
