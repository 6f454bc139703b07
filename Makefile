# One task runner: the README's commands and .ci/run use these targets.
SHELL := /usr/bin/env bash
export PULUMI_SKIP_UPDATE_CHECK := true

.PHONY: test vet build toolchain e2e local-up local-down ci

## build: compile the program and every package
build:
	go build ./...

## vet: gofmt and go vet
vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go vet -tags e2e ./...

## test: unit tests under mocks (fast, no cloud, no tools)
test:
	go test ./...

## toolchain: build the real Pulumi CLI, Kubernetes provider, control plane and kwok (cached by version)
toolchain:
	hack/toolchain.sh

## e2e: the real engine and Kubernetes provider against a real kube-apiserver on loopback
e2e:
	LOKLAK_TOOLS_BIN="$$(hack/toolchain.sh --bin-dir)" go test -tags e2e -count=1 -timeout 40m -v ./e2e/

## local-up: start a local control plane and run `up` for the local stack against it
local-up:
	LOKLAK_TOOLS_BIN="$$(hack/toolchain.sh --bin-dir)" go run ./cmd/local up

## local-down: destroy the local stack and stop the local control plane
local-down:
	LOKLAK_TOOLS_BIN="$$(hack/toolchain.sh --bin-dir)" go run ./cmd/local down

## ci: what .ci/run runs
ci: build vet test e2e
