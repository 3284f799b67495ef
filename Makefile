# airlock: `make run` serves a local trial, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
BIN := bin/airlock
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TEST_TIMEOUT ?= 30m
BENCH_TIME ?= 1s
FUZZ_TIME ?= 10m

# The container image (deploy/Dockerfile), and where it is pushed: the
# chart's image.repository and image.tag name the same (README, Install).
IMAGE ?= ghcr.io/airlockhq/airlock
IMAGE_TAG ?= $(VERSION)
DOCKER ?= docker
PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: all build run lint test test-deps bench bench-go bench-compare bench-load fuzz generate demo demo-gcloud clean image image-push image-multiarch chart-test chart-package

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/airlock

# A local trial: embedded defaults, dev token issuer on loopback, in-memory
# approvals, recordings under ./.airlock, the example policies.
run: build
	./$(BIN) serve

# Tests need a real redis-server and, for the console's browser tests, a
# headless Chromium, and the connect guide's snippets curl, python3 and node;
# install them when missing (root) or say how.
test-deps:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing redis-server (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
		else \
			echo "redis-server is missing: run 'sudo apt-get install -y redis-server'"; exit 1; \
		fi; \
	fi
	@for pair in curl:curl python3:python3 node:nodejs; do \
		tool=$${pair%%:*}; pkg=$${pair#*:}; \
		if ! command -v $$tool >/dev/null 2>&1; then \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
				echo "installing $$pkg (apt-get)"; \
				apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null; \
			else \
				echo "$$tool is missing: run 'sudo apt-get install -y $$pkg'"; exit 1; \
			fi; \
		fi; \
	done
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing: run 'sudo apt-get install -y chromium'"; exit 1; \
		fi; \
	fi

# The packages with concurrent state run again under the race detector.
RACE_PKGS := ./authz/... ./extauthz/... ./approvals/... ./recorder/... ./extproc/... ./policies/... ./identity/... ./envoy/... ./console/... ./test/standin/... ./mcp/...

# Static analysis: gofmt, go vet and staticcheck (pinned in go.mod as a
# tool; test/standin/staticcheck.conf says why the stand-in reads Envoy's
# deprecated fields).
lint:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: test-deps lint
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)
	$(GO) run ./cmd/airlock policy test policies/examples

# Benchmarks: the in-process figures, the masker against hoop's alcatraz
# and gitleaks (a separate module), then the gRPC load comparisons.
bench: bench-go bench-compare bench-load

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) ./authz/... ./extauthz/... ./gcp/... ./policies/... ./identity/... ./masking/... ./extproc/... ./approvals/... ./mcp/...
	$(GO) test -run '^$$' -bench 'Spool|MaskHeaders' -benchmem -benchtime 100000x ./recorder/
	$(GO) test -run '^$$' -bench UploadGCS -benchtime 20000x ./recorder/

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
	$(GO) test -run '^$$' -fuzz FuzzMCPResponse -fuzztime $(FUZZ_TIME) ./mcp
	$(GO) test -run '^$$' -fuzz FuzzMCPRequest -fuzztime $(FUZZ_TIME) ./mcp

# One agent session end to end (Envoy stand-in, airlock, fake Google Cloud),
# told as a story; the same run is a test in `make test`.
demo:
	set -o pipefail; AIRLOCK_DEMO=1 $(GO) test -count=1 -run '^TestDemo$$' -v ./test/e2e | grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS' -e '^ok '

# The real gcloud CLI through the Envoy stand-in and airlock (shipped
# baseline policies) to a fake Google Cloud: an allowed list, a refused
# delete, an approval and its retry, a masked secret. Needs gcloud.
demo-gcloud:
	set -o pipefail; AIRLOCK_DEMO=1 $(GO) test -count=1 -run '^TestGcloudThroughTheGateway$$' -v ./test/e2e | grep -v -e '^=== RUN' -e '^--- PASS' -e '^    --- PASS' -e '^PASS' -e '^ok '

generate:
	$(GO) generate ./...

# The image, built with the local Docker engine (BuildKit) from the
# repository root; image-push pushes it, image-multiarch builds and pushes
# linux/amd64 and linux/arm64 at once with buildx.
image:
	$(DOCKER) build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(IMAGE_TAG) .

image-push: image
	$(DOCKER) push $(IMAGE):$(IMAGE_TAG)

image-multiarch:
	$(DOCKER) buildx build --platform $(PLATFORMS) -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(IMAGE_TAG) --push .

# The Helm chart (deploy/helm/airlock): rendered and checked with Helm's own
# library, as the kustomize and Istio manifests are; chart-package needs the
# helm CLI and writes bin/airlock-CHART_VERSION.tgz for `helm push`.
chart-test:
	$(GO) test -count=1 -run 'Chart|Kustomize|Kubernetes|Istio|Dockerfile|MakeImage|Readme' ./deploy

chart-package:
	helm package deploy/helm/airlock --app-version $(IMAGE_TAG) --destination bin

clean:
	rm -rf bin .airlock
