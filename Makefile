# The two commands of the README. Everything else is cargo.
CARGO ?= cargo

.PHONY: demo test bench setup build

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

## Render real speech through every bundled noise profile and print the SNR achieved.
demo: build
	./target/release/voicesim demo

## The full test suite: unit, integration, CLI, doc tests, and each benchmark run once.
test: setup
	$(CARGO) test --locked --all-targets
	$(CARGO) test --locked --doc

## Criterion benchmarks (timing lives here, never in tests).
bench: setup
	$(CARGO) bench --locked
