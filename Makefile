# The two commands of the README. Everything else is cargo.
CARGO ?= cargo

.PHONY: demo test bench setup build

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

## Run the example suite against the built-in reference agent on a clean line and in a cafe at 20/10/5/0 dB.
demo: build
	./target/release/voicesim demo

## The full test suite: unit, integration, CLI, doc tests, and each benchmark run once.
test: setup
	$(CARGO) clippy --locked --all-targets --features test-hooks -- -D warnings
	$(CARGO) test --locked --all-targets --features test-hooks
	$(CARGO) test --locked --doc

## Criterion benchmarks (timing lives here, never in tests).
bench: setup
	$(CARGO) bench --locked
