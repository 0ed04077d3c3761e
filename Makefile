# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both work on a fresh machine that has only stable Rust: they install what else they need.
CARGO ?= cargo
NIGHTLY := nightly-2026-10-30
DEMO_PCAP := fixtures/pcap/demo.pcap
DEMO_DB := target/demo/netrec.sqlite
EBPF_FEATURE := --features netrec/ebpf

.PHONY: demo test lint build build-ebpf toolchains

# netrec without the eBPF recorder: analyze/flows/alerts/report/segments need nothing else.
build:
	$(CARGO) build --release --locked -p netrec

# netrec with the eBPF programs built from source and embedded (installs the eBPF toolchain).
build-ebpf: toolchains
	$(CARGO) build --release --locked -p netrec $(EBPF_FEATURE)

toolchains:
	scripts/toolchains.sh ebpf

# Analyze the bundled demo capture (attacks mixed into normal traffic) into SQLite and print
# the incident and traffic summary.
demo: build
	mkdir -p target/demo
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	./target/release/netrec analyze $(DEMO_PCAP) --db $(DEMO_DB)

# The whole test suite (CI runs it after `make lint`). Privileged tests (eBPF, network
# namespaces) run when root and are skipped otherwise (CI is root: there they must run).
test: toolchains
	$(CARGO) test --workspace --locked $(EBPF_FEATURE)

lint: toolchains
	$(CARGO) fmt --all -- --check
	rustfmt --edition 2024 --check recorder-ebpf/src/main.rs
	$(CARGO) clippy --workspace --all-targets --locked $(EBPF_FEATURE) -- -D warnings
	cd recorder-ebpf && $(CARGO) +$(NIGHTLY) clippy --release --locked -Z build-std=core --target bpfel-unknown-none -- -D warnings
