# CleanTrack jobs. `make dev` runs the whole system; `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
BIN := bin


.PHONY: build test e2e-cluster e2e-pgbouncer dev services migrate seed vet lint fmt bench drills chaos fuzz clean

build:
	$(GO) build -buildvcs=auto -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet ./...

# gofmt, go vet (also with the bench and drills tags) and staticcheck at a
# pinned version, installed into $(go env GOPATH)/bin when missing or another.
STATICCHECK_VERSION := 0.8.2
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt: not formatted (run make fmt):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags bench,drills ./...
	@$(STATICCHECK) -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION))' || { \
		echo "installing staticcheck v$(STATICCHECK_VERSION)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@v$(STATICCHECK_VERSION); }
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags bench,drills ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# Starts local PostgreSQL and Redis when they are down (see scripts in .ci/).
services:
	@bash .ci/services

# Tests of a package run four at a time: they mostly wait on PostgreSQL, Redis
# and child processes. On two cores (two packages at once) that lends at most
# eight of redistest's fifteen Redis databases at a time. gotestsum (pinned,
# installed into $(go env GOPATH)/bin when missing or another) closes the run
# with each skipped test and its reason; .ci/test then checks that no test
# database is left behind.
GOTESTSUM_VERSION := 1.13.0
GOTESTSUM = $(shell $(GO) env GOPATH)/bin/gotestsum

test: services
	@$(GOTESTSUM) --version 2>/dev/null | grep -qxF 'gotestsum version v$(GOTESTSUM_VERSION)' || { \
		echo "installing gotestsum v$(GOTESTSUM_VERSION)"; \
		$(GO) install gotest.tools/gotestsum@v$(GOTESTSUM_VERSION) || echo "could not install gotestsum"; }
	@GOTESTSUM=$(GOTESTSUM) bash .ci/test

# .ci/dev checks the services and builds once itself; $$PPID is make, which
# it watches so that a SIGTERM to make stops every process.
dev:
	@DEV_PARENT_PID=$$PPID bash .ci/dev

# The end-to-end flow on a Redis Cluster of three masters started for the run
# (internal/enginetest), about a minute: apply, emails, a flush recovered by
# the inbox sweep, thin events; each test holds the whole cluster in turn.
E2E_CLUSTER_TESTS := TestWebhookToAccount|TestRedisFlushedAfterAcceptIsRedriven|TestBillingEmailsEndToEnd|TestWelcomeEmailInOutbox|TestThinEventThroughTheBinaries
e2e-cluster: services
	$(GO) run ./internal/enginetest/cmd/withredis -mode cluster -- \
		$(GO) test -count=1 -timeout 5m -run '^($(E2E_CLUSTER_TESTS))$$' ./internal/e2e/
# The end-to-end tests once more, every process connecting through a private
# PgBouncer in pool_mode=transaction (installed with apt-get when missing).
e2e-pgbouncer: services
	$(GO) run ./internal/pgbouncertest/cmd/withpgbouncer -- $(GO) test -count=1 -timeout 5m ./internal/e2e/

migrate: build
	$(BIN)/cleantrack migrate

seed: build
	$(BIN)/cleantrack seed demo

clean:
	rm -rf $(BIN) tmp

# Benchmark suite: raw ceilings, intake, billing, email, compliance, memory and
# idle CPU of the real binaries. Table on stdout, JSON under tmp/bench/.
bench: services
	$(GO) run -tags bench ./internal/bench/cmd/bench

# Fault drills against the real binaries, a private PostgreSQL and a private
# Redis; ends with "N passed, M failed". DRILLS=3,5 runs a subset.
drills: services
	$(GO) run -tags drills ./internal/drill/cmd/drills $(if $(DRILLS),-only $(DRILLS))

# Chaos: the whole system on Sentinel-backed Redis, PgBouncer and a private
# PostgreSQL, steady webhook load, a fault every 10-30 s, checks after a
# drain; ends with "N passed, M failed". CHAOS_DURATION=2m for a short run.
CHAOS_DURATION ?= 10m
chaos: services
	CHAOS_DURATION=$(CHAOS_DURATION) $(GO) run -tags drills ./internal/drill/cmd/chaos

# Short fuzz run of the two webhook handlers (Stripe, Resend) and the payload
# decoder, about 20 s each on two cores. Execution counts, not durations: Go
# 1.26 can fail a duration-bounded run with a spurious "context deadline
# exceeded" (golang/go#75804).
fuzz: services
	$(GO) test -run '^$$' -fuzz '^FuzzStripeWebhook$$' -fuzztime 50000x -fuzzminimizetime 100x ./internal/web/
	$(GO) test -run '^$$' -fuzz '^FuzzResendWebhook$$' -fuzztime 20000x -fuzzminimizetime 100x ./internal/web/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime 200000x -fuzzminimizetime 100x ./internal/billing/
	$(GO) test -run '^$$' -fuzz '^FuzzShapesAgree$$' -fuzztime 70000x -fuzzminimizetime 100x ./internal/billing/
