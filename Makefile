# CleanTrack jobs. `make dev` runs the whole system; `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: build test dev services migrate seed vet fmt bench drills fuzz clean

build:
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# Starts local PostgreSQL and Redis when they are down (see scripts in .ci/).
services:
	@bash .ci/services

test: services
	$(GO) test -count=1 -timeout 20m ./...

dev: services build
	@bash .ci/dev

migrate: build
	$(BIN)/cleantrack migrate

seed: build
	$(BIN)/cleantrack seed demo

clean:
	rm -rf $(BIN) tmp
