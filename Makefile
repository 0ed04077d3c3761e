# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both work on a fresh machine with only stable Rust installed.
CARGO ?= cargo
DEMO_PCAP := fixtures/pcap/demo.pcap
DEMO_DB := target/demo/netrec.sqlite

.PHONY: demo test lint build

build:
	$(CARGO) build --release --locked -p netrec

# Analyze the bundled demo capture (attacks mixed into normal traffic) into SQLite and
# print the incident and traffic summary.
demo: build
	mkdir -p target/demo
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	./target/release/netrec analyze $(DEMO_PCAP) --db $(DEMO_DB)

# The whole test suite (what CI runs after fmt and clippy).
test:
	$(CARGO) test --workspace --locked --all-targets
	$(CARGO) test --workspace --locked --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
