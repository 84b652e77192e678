# One profile (release, with overflow checks) for the demo, the tests and the benchmarks, so the
# RocksDB C++ library is built once. The target folder lives outside the clone so that every
# clone on this machine, CI's included, reuses that build. (The binary alone and the tests build
# RocksDB with the same features only because Cargo.toml's `[build-dependencies]` evens out
# what the tests' dev-dependencies add; `cargo build --unit-graph` shows it.)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/junbao-target
CARGO ?= cargo

.PHONY: setup demo test bench lint screenshots

setup:
	@scripts/setup.sh

demo: setup
	$(CARGO) run --release --locked -- demo

test: setup
	$(CARGO) test --release --locked --workspace

bench: setup
	$(CARGO) run --release --locked -- bench --batch 1000
	$(CARGO) run --release --locked -- bench --batch 8000
	$(CARGO) bench --locked --bench append
	$(CARGO) run --release --locked -- bench-http --clients 64 --requests 100000
	$(CARGO) run --release --locked -- bench-http --clients 64 --requests 100000 --server-threads 1
	$(CARGO) run --release --locked -- bench-http --clients 64 --requests 100000 --server-one-thread

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

# Refreshes the console's screenshots and printed sheet in docs/console/ (docs/CONSOLE.md).
screenshots: setup
	JUNBAO_CONSOLE_SHOTS=docs/console $(CARGO) test --release --locked --test console
