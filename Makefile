# adclick — see README.md. The two commands a new user needs: make run, make test.
SHELL := /bin/bash
GO ?= go
BIN := bin/adclick

.PHONY: all build run recount test test-unit bench lint fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/adclick

# The all-in-one: an embedded Kafka-protocol broker, a click generator writing
# a log, the log watcher, the streaming job on prism, the DB writers, Pebble and
# the query API with its dashboard on http://127.0.0.1:8080/. Ctrl-C drains.
run: build
	$(BIN) allinone --data-dir .cache/allinone

# A bounded recount: generate a sample click log (with duplicates, late and
# malformed lines) and recount it on prism.
recount: build
	@mkdir -p .cache
	$(BIN) generate --count 200000 --start 2024-01-01T10:00:00Z --event-rate 1000 \
	  --dup-share 0.05 --late-share 0.03 --malformed-share 0.01 --append=false --out .cache/sample.jsonl
	$(BIN) aggregate --input .cache/sample.jsonl --output .cache/results.jsonl --dead-letters .cache/dead-letters.jsonl
	@echo "results: .cache/results.jsonl ($$(wc -l < .cache/results.jsonl) records); top list of the last minute (first 300 characters):"
	@grep '"window_size":1,' .cache/results.jsonl | sort | tail -1 | cut -c1-300

# Everything: make lint first, then every test, including the integration
# tests against a real Apache Kafka and Apache Cassandra that
# testing/testenv/run.sh fetches from Maven Central and starts on 127.0.0.1,
# and the dashboard test in headless Chromium.
test: lint
	bash queryapi/testdata/ensure-chromium.sh
	testing/testenv/run.sh $(GO) test -count=1 -timeout 45m ./...

# Unit tests only (no servers): a fast local loop. Never in CI.
test-unit:
	ADCLICK_SKIP_INTEGRATION=1 $(GO) test -count=1 ./...

# Benchmarks: Go benchmarks (figures in BENCHMARKS.md). Each is reported next
# to a baseline measured in the same run.
bench:
	testing/testenv/run.sh $(GO) test -run '^$$' -bench . -benchtime 3x ./...

# Formatting, go.mod and go.sum as go mod tidy leaves them, go vet and
# staticcheck (pinned by the tool directive in go.mod).
lint:
	@files=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$files" || { echo "$$files"; echo "gofmt: files above need formatting (make fmt)"; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin .cache
