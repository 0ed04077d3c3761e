#!/usr/bin/env bash
# Installs, idempotently, the toolchains netrec's build needs (../shared/EBPF.md has the facts):
#   - stable 1.98.0 for the workspace (the aya crates need rustc >= 1.98);
#   - nightly-2026-10-30 + rust-src for the eBPF crate (-Z build-std=core, bpfel-unknown-none);
#   - bpf-linker 0.13.0 linked against that nightly's own libLLVM 23 (Debian has no libLLVM 23).
# Usage: scripts/toolchains.sh [user|ebpf|all]   (default all)
set -euo pipefail
export RUSTUP_AUTO_INSTALL=0
STABLE=1.98.0
NIGHTLY=nightly-2026-10-30
BPF_LINKER_VERSION=0.13.0
what=${1:-all}

have_toolchain() { rustup toolchain list | grep -q "^$1"; }

install_user() {
    if ! have_toolchain "$STABLE"; then
        rustup toolchain install "$STABLE" --profile minimal --component rustfmt,clippy
    fi
    for c in rustfmt clippy; do
        rustup component list --toolchain "$STABLE" --installed | grep -q "^$c" || rustup component add --toolchain "$STABLE" "$c"
    done
}

install_ebpf() {
    if ! have_toolchain "$NIGHTLY"; then
        rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src,clippy
    fi
    for c in rust-src clippy; do
        rustup component list --toolchain "$NIGHTLY" --installed | grep -q "^$c" || rustup component add --toolchain "$NIGHTLY" "$c"
    done
    local sysroot
    sysroot=$(rustc +"$NIGHTLY" --print sysroot)
    local linker
    linker=$(command -v bpf-linker || true)
    if [ -n "$linker" ] && bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION" \
        && ! ldd "$linker" | grep -q 'not found'; then
        return 0
    fi
    # bpf-linker links libLLVM by name; point it at the nightly's copy (same LLVM major as the compiler).
    local prefix
    prefix=$(mktemp -d)
    mkdir -p "$prefix/lib"
    local llvm
    # The ELF is libLLVM.so.<ver>-rust-...; libLLVM-<major>-rust-...so is a linker script naming it.
    llvm=$(ls "$sysroot"/lib/libLLVM.so.* 2>/dev/null | head -n1)
    [ -n "$llvm" ] || { echo "no libLLVM.so.* in $sysroot/lib" >&2; exit 2; }
    ln -sf "$llvm" "$prefix/lib/libLLVM.so"
    ln -sf "$llvm" "$prefix/lib/$(basename "$llvm")"
    LLVM_PREFIX="$prefix" RUSTFLAGS="-C link-arg=-Wl,-rpath,$sysroot/lib" \
        cargo +"$STABLE" install --locked --force bpf-linker --version "$BPF_LINKER_VERSION" \
        --no-default-features --features llvm-23
    rm -rf "$prefix"
}

case "$what" in
    user) install_user ;;
    ebpf) install_user; install_ebpf ;;
    all) install_user; install_ebpf ;;
    *) echo "usage: $0 [user|ebpf|all]" >&2; exit 2 ;;
esac
