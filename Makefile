# The two commands of the README. Everything else is cargo.
CARGO ?= cargo

.PHONY: demo test test-busy bench setup setup-test build fuzz docs

# Seconds each fuzz target runs: briefly in `make test`, longer in `make fuzz`.
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_SECONDS ?= 300

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

# The crates download while the system packages install, the models while cargo builds: on a
# fresh machine a minute sooner.
build:
	@mkdir -p target; $(CARGO) fetch --locked > target/fetch.log 2>&1 & fetch=$$!; \
	scripts/setup.sh --packages || exit; \
	wait $$fetch || { cat target/fetch.log >&2; exit 1; }
	@scripts/setup.sh --models > target/setup-models.log 2>&1 & models=$$!; \
	$(CARGO) build --release --locked; built=$$?; \
	if ! wait $$models; then cat target/setup-models.log >&2; exit 1; fi; \
	cat target/setup-models.log; exit $$built

## Run the example suite against the built-in reference agent on a clean line and in a cafe at 20/10/5/0 dB.
demo: build
	./target/release/voicesim demo

## The full test suite: clippy (no panics in library code), unit, property, integration, CLI
## and doc tests, each benchmark run once, the Python wheel built and its tests run in a fresh
## venv, the book built and its links and examples checked, and a short seeded run of every
## fuzz target.
test: setup-test
	$(CARGO) clippy --locked --all-targets --features test-hooks -- -D warnings
	$(CARGO) test --locked --all-targets --features test-hooks
	$(CARGO) test --locked --doc
	$(CARGO) check --locked --no-default-features
	scripts/test-python.sh
	scripts/test-docs.sh
	fuzz/run.sh --smoke $(FUZZ_SMOKE_SECONDS)

## The tests beside BUSY_LOOPS busy processes (two: both cores of a small CI machine taken),
## as voicesim often runs: no test may pass or fail on speed. Use it when you touch timing.
BUSY_LOOPS ?= 2
test-busy: setup-test
	scripts/busy.sh $(BUSY_LOOPS) $(CARGO) test --locked --all-targets --features test-hooks

## Every fuzz target for FUZZ_SECONDS each (their corpora grow in fuzz/target/work).
fuzz: setup
	fuzz/run.sh $(FUZZ_SECONDS)

## The manual: the CLI reference and the JSON Schemas regenerated, the book built offline into
## target/book (open target/book/index.html).
docs:
	@scripts/setup.sh --packages
	scripts/docs.sh

## Criterion benchmarks (timing lives here, never in tests).
bench: setup
	$(CARGO) bench --locked
