# One task runner: the README's commands and .ci/run use these targets.
SHELL := /usr/bin/env bash
export PULUMI_SKIP_UPDATE_CHECK := true

# The real tools (Pulumi CLI, Kubernetes provider, control plane, kwok, linters), built once and cached
# by version; evaluated only by the targets that need them.
TOOLS = $(shell hack/toolchain.sh --bin-dir)
STACK ?= dev

.PHONY: build test vet lint docs toolchain e2e bench local-up local-preview local-down preview up ci

## build: compile the program and every package
build:
	go build ./...

## test: unit tests under mocks (fast, no cloud, no tools), and the control plane's process bookkeeping under the race detector
test:
	go test ./...
	go test -race ./testbed/gke/

## vet: gofmt and go vet, with and without the e2e tag
vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go vet -tags e2e ./...

## lint: vet, then golangci-lint (.golangci.yml) and actionlint on the GitHub workflow
lint: vet
	@tools="$(TOOLS)"; \
	"$$tools/golangci-lint" run ./... && \
	"$$tools/actionlint" .github/workflows/*.yml && echo "lint: clean"

## docs: regenerate the README's config table from Pulumi.yaml
docs:
	go run ./cmd/configdoc

## toolchain: build the real tools into ~/.cache/loklak-dumps/tools (a second run is instant)
toolchain:
	hack/toolchain.sh

## e2e: the archiver's rclone (the toolchain's build, and the stand-in's rclone/rclone image) against a Cloud
## Storage emulator; the real engine and Kubernetes provider against a real kube-apiserver on loopback
## (kwok's nodes), then the same on a real node (kubelet, containerd, the CSI stand-in; as root). -p 1: one
## control plane at a time.
e2e:
	LOKLAK_TOOLS_BIN="$(TOOLS)" go test -tags e2e -count=1 -p 1 -timeout 50m -v ./testbed/e2e/rclone/ ./testbed/e2e/ ./testbed/e2e/realnode/ ./testbed/e2e/localrun/

## bench: program, build, preview and update timings beside their floors (prints tables; ~14 min)
bench:
	LOKLAK_TOOLS_BIN="$(TOOLS)" go run ./testbed/bench $(BENCHFLAGS)

## local-up: start a local control plane (or reuse the running one) and run `up` for the local stack
local-up:
	LOKLAK_TOOLS_BIN="$(TOOLS)" go run ./testbed/cmd/local up

## local-preview: preview the local stack against the running local control plane
local-preview:
	LOKLAK_TOOLS_BIN="$(TOOLS)" go run ./testbed/cmd/local preview

## local-down: destroy the local stack and stop the local control plane
local-down:
	LOKLAK_TOOLS_BIN="$(TOOLS)" go run ./testbed/cmd/local down

## preview / up: against your cloud, with your Pulumi CLI and credentials (STACK=dev|prod)
preview:
	pulumi preview --stack $(STACK) --diff
up:
	pulumi up --stack $(STACK)

## ci: what .ci/run runs
ci: build lint test e2e
