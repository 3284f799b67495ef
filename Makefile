# airlock: `make run` serves a local trial, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
BIN := bin/airlock
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TEST_TIMEOUT ?= 30m
BENCH_TIME ?= 1s
FUZZ_TIME ?= 10m

.PHONY: all build run test test-deps bench bench-go bench-compare bench-load fuzz generate demo clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/airlock

# A local trial: embedded defaults, dev token issuer on loopback, in-memory
# approvals, recordings under ./.airlock, the example policies.
run: build
	./$(BIN) serve

# Tests need a real redis-server; install it when missing (root) or say how.
test-deps:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing redis-server (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
		else \
			echo "redis-server is missing: run 'sudo apt-get install -y redis-server'"; exit 1; \
		fi; \
	fi

# The packages with concurrent state run again under the race detector.
RACE_PKGS := ./authz/... ./extauthz/... ./approvals/... ./recorder/... ./extproc/... ./policies/... ./identity/... ./envoy/... ./test/standin/...

test: test-deps
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)
	$(GO) run ./cmd/airlock policy test policies/examples

# Benchmarks: the in-process figures, the masker against hoop's alcatraz
# and gitleaks (a separate module), then the gRPC load comparisons.
bench: bench-go bench-compare bench-load

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) ./authz/... ./extauthz/... ./gcp/... ./policies/... ./identity/... ./masking/... ./extproc/... ./approvals/...
	$(GO) test -run '^$$' -bench 'Spool|MaskHeaders' -benchmem -benchtime 100000x ./recorder/
	$(GO) test -run '^$$' -bench UploadGCS -benchtime 20000x ./recorder/
	$(GO) test -run '^$$' -bench RecordDecision -benchmem -benchtime 3s ./cmd/airlock/

bench-compare:
	cd bench/masking && $(GO) test -run '^$$' -bench . -benchtime 3x

bench-load: build
	@bash scripts/bench-load.sh $(BIN)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzNormalizePath -fuzztime 30s ./gcp
	$(GO) test -run '^$$' -fuzz FuzzRecognize -fuzztime $(FUZZ_TIME) ./gcp
	$(GO) test -run '^$$' -fuzz FuzzBatch -fuzztime $(FUZZ_TIME) ./gcp
	$(GO) test -run '^$$' -fuzz FuzzParseStrictJSON -fuzztime $(FUZZ_TIME) ./gcp
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s ./policies
	$(GO) test -run '^$$' -fuzz FuzzFingerprint -fuzztime $(FUZZ_TIME) ./authz
	$(GO) test -run '^$$' -fuzz FuzzMasker -fuzztime $(FUZZ_TIME) ./masking
	$(GO) test -run '^$$' -fuzz FuzzTokenizer -fuzztime $(FUZZ_TIME) ./masking
	$(GO) test -run '^$$' -fuzz FuzzProtobuf -fuzztime $(FUZZ_TIME) ./masking
	$(GO) test -run '^$$' -fuzz FuzzGRPCFrames -fuzztime $(FUZZ_TIME) ./extproc
	$(GO) test -run '^$$' -fuzz FuzzResponseHeaders -fuzztime $(FUZZ_TIME) ./extproc

# One agent session end to end (Envoy stand-in, airlock, fake Google Cloud),
# told as a story; the same run is a test in `make test`.
demo:
	set -o pipefail; AIRLOCK_DEMO=1 $(GO) test -count=1 -run '^TestDemo$$' -v ./test/e2e | grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS' -e '^ok '

generate:
	$(GO) generate ./...

clean:
	rm -rf bin .airlock
