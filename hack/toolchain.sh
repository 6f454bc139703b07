#!/usr/bin/env bash
# Builds, from source, the real tools the end-to-end tests and the local run need, into a cache outside the
# repository keyed by version, and prints where they are. Idempotent: a tool whose binary is already cached is
# not rebuilt, so a second run takes about a second.
#
#   hack/toolchain.sh            build what is missing, print "name path" lines
#   hack/toolchain.sh --bin-dir  build what is missing, print only the directory to put on PATH
#   hack/toolchain.sh --versions print the pinned versions, build nothing
#
# Why from source: this machine reaches only the Go module proxy, Debian and npm. The Pulumi CLI, the
# Kubernetes provider, the control plane, the kubelet, kwok, rclone and a static kubectl (for an image) all
# build from Go modules; etcd, the real node's container runtime (containerd, runc, the CNI plugins) and
# busybox come from Debian.
# Versions live here, except the Pulumi CLI's, which is read from go.mod so the CLI and SDK never drift.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- versions (one place each) ------------------------------------------------------------------------------
pulumi_version=$(cd "$repo_root" && go list -m -f '{{.Version}}' github.com/pulumi/pulumi/sdk/v3)
# The only provider/v4 version the module proxy serves: a pseudo-version from 2026-01, about v4.25.0.
# It must be built with its own pins (pkg/sdk v3.215.0, k8s sdk v4.24.0); newer ones do not compile with it.
k8s_provider_module_version=v4.0.0-20260115033456-f47bc2d6f199
k8s_provider_version=4.25.0-dev.f47bc2d6f199
k8s_provider_pulumi_pin=v3.215.0
k8s_provider_sdk_pin=v4.24.0
# The plugin version the Kubernetes SDK in go.mod asks the engine for; the binary above is registered under it.
k8s_plugin_version=$(cd "$repo_root" && go list -m -f '{{.Version}}' github.com/pulumi/pulumi-kubernetes/sdk/v4)
# The GCP plugin version the pulumi-gcp SDK in go.mod asks for: the Compute Engine stand-in reports it.
gcp_plugin_version=$(cd "$repo_root" && go list -m -f '{{.Version}}' github.com/pulumi/pulumi-gcp/sdk/v7)
# renovate: datasource=go depName=k8s.io/kubernetes
kubernetes_version=v1.33.13
# renovate: datasource=go depName=sigs.k8s.io/kwok
kwok_version=v0.7.0
# renovate: datasource=go depName=github.com/golangci/golangci-lint/v2
golangci_lint_version=v2.15.0
# renovate: datasource=go depName=github.com/rhysd/actionlint
actionlint_version=v1.7.12
# The archiver sidecar's image, rclone/rclone:1.71.0, which the Docker Hub stand-in serves from this build
# (testbed/dockerhub.RcloneRef and RcloneVersion name the same version).
# renovate: datasource=go depName=github.com/rclone/rclone
rclone_version=v1.71.0

cache=${LOKLAK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/loklak-dumps/tools}
mkdir -p "$cache"

log() { printf 'toolchain: %s\n' "$*" >&2; }

# new_wrapper DIR: an empty wrapper module in DIR (go build -mod=mod fills in go.mod and go.sum).
new_wrapper() {
  rm -rf "$1" && mkdir -p "$1"
  printf 'module toolwrap\n\ngo 1.24\n' >"$1/go.mod"
}

# ---- Pulumi CLI ---------------------------------------------------------------------------------------------
build_pulumi() {
  local out=$cache/pulumi/$pulumi_version
  [[ -x $out/pulumi ]] && return
  log "building the Pulumi CLI $pulumi_version (cold: about 6 minutes)"
  local w=$cache/src/pulumi-$pulumi_version
  new_wrapper "$w"
  cat >>"$w/go.mod" <<EOF

require (
	github.com/pulumi/pulumi/pkg/v3 $pulumi_version
	github.com/pulumi/pulumi/sdk/v3 $pulumi_version
)

// Copied from pkg/v3's own go.mod: replaces in dependencies are ignored.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
  (cd "$w" && GOFLAGS=-mod=mod go build -trimpath -o "$w/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mkdir -p "$out" && mv "$w/pulumi" "$out/pulumi"
}

# ---- Kubernetes resource provider ---------------------------------------------------------------------------
build_k8s_provider() {
  local out=$cache/pulumi-resource-kubernetes/$k8s_provider_version
  [[ -x $out/pulumi-resource-kubernetes ]] && return
  log "building pulumi-resource-kubernetes $k8s_provider_version (cold: about 12 minutes)"
  local w=$cache/src/pulumi-resource-kubernetes-$k8s_provider_version
  new_wrapper "$w"
  cat >>"$w/go.mod" <<EOF

require (
	github.com/pulumi/pulumi-kubernetes/provider/v4 $k8s_provider_module_version
	github.com/pulumi/pulumi-kubernetes/sdk/v4 $k8s_provider_sdk_pin
	github.com/pulumi/pulumi/pkg/v3 $k8s_provider_pulumi_pin
	github.com/pulumi/pulumi/sdk/v3 $k8s_provider_pulumi_pin
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
  (cd "$w" && GOFLAGS=-mod=mod go mod download github.com/pulumi/pulumi-kubernetes/provider/v4)
  local src
  src=$(cd "$w" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  # main.go //go:embeds schema-embed.json and terraform-mapping-embed.json, which the module zip lacks;
  # the provider's own generate.go makes them from schema.json and terraform-mapping.json.
  cp "$src"/cmd/pulumi-resource-kubernetes/{main.go,generate.go,schema.json,terraform-mapping.json} "$w/"
  chmod u+w "$w"/*
  (cd "$w" && GOFLAGS=-mod=mod VERSION=$k8s_provider_version go run generate.go)
  (cd "$w" && GOFLAGS=-mod=mod go build -trimpath -o "$w/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$k8s_provider_version" .)
  mkdir -p "$out" && mv "$w/pulumi-resource-kubernetes" "$out/"
}

# ---- Kubernetes control plane and kubectl -------------------------------------------------------------------
# kubernetes_wrapper DIR: the wrapper module that builds k8s.io/kubernetes commands at kubernetes_version.
kubernetes_wrapper() {
  local w=$1
  new_wrapper "$w"
  printf '\nrequire k8s.io/kubernetes %s\n' "$kubernetes_version" >>"$w/go.mod"
  # k8s.io/kubernetes replaces its staging modules with ./staging/src/...; map each to its v0.x release.
  local gomod staging_version=v0.${kubernetes_version#v1.}
  gomod=$(cd "$w" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$kubernetes_version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}' >>"$w/go.mod"
}

# kubernetes_ldflags: the version strings Kubernetes' release builds stamp (kubectl version, the API server's /version).
kubernetes_ldflags() {
  local minor=${kubernetes_version#v1.}
  minor=${minor%%.*}
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$kubernetes_version"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$kubernetes_version"
  printf '%s\n' "$ld"
}

build_kubernetes() {
  local out=$cache/kubernetes/$kubernetes_version cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
  local missing=() c
  for c in "${cmds[@]}"; do [[ -x $out/$c ]] || missing+=("$c"); done
  ((${#missing[@]})) || return 0
  log "building ${missing[*]} $kubernetes_version (cold: about 15 minutes, the kubelet about 4 more)"
  local w=$cache/src/kubernetes-$kubernetes_version
  kubernetes_wrapper "$w"
  local ld
  ld=$(kubernetes_ldflags)
  mkdir -p "$out"
  for c in "${missing[@]}"; do
    (cd "$w" && GOFLAGS=-mod=mod go build -trimpath -o "$w/$c" -ldflags "$ld" "k8s.io/kubernetes/cmd/$c")
    mv "$w/$c" "$out/$c"
  done
}

# ---- a static kubectl, for the registry.k8s.io stand-in's kubectl image ------------------------------------
# The kubectl above links the C library (net and os/user use cgo on this machine), and an image holds none, so
# the stand-in for registry.k8s.io/kubectl (testbed/dockerhub.KubectlRef) is made of this one: the same
# source, wrapper module and version strings, with CGO_ENABLED=0, as Kubernetes' release builds kubectl.
# Cached apart from the dynamic one, by version: a 61 MB binary. Cold: 9 minutes after build_kubernetes, on 2
# CPUs shared with other builds (most of the Go build cache is rebuilt without cgo).
build_kubectl_static() {
  local out=$cache/kubectl-static/$kubernetes_version
  [[ -x $out/kubectl ]] && return
  log "building a static kubectl $kubernetes_version (cold: about 9 minutes)"
  local w=$cache/src/kubernetes-$kubernetes_version
  # build_kubernetes made the wrapper; make it anew only if it is gone or for another version.
  grep -qx "require k8s.io/kubernetes $kubernetes_version" "$w/go.mod" 2>/dev/null || kubernetes_wrapper "$w"
  local ld
  ld=$(kubernetes_ldflags)
  mkdir -p "$out"
  (cd "$w" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out/.kubectl.building" -ldflags "$ld" k8s.io/kubernetes/cmd/kubectl)
  mv "$out/.kubectl.building" "$out/kubectl"
}

# ---- kwok, the fake kubelet ---------------------------------------------------------------------------------
build_kwok() {
  local out=$cache/kwok/$kwok_version
  [[ -x $out/kwok ]] && return
  log "building kwok $kwok_version (cold: about 3 minutes)"
  GOBIN=$out GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
}

# ---- linters: golangci-lint (v2) and actionlint ----------------------------------------------------------
build_linters() {
  local out=$cache/golangci-lint/$golangci_lint_version
  if [[ ! -x $out/golangci-lint ]]; then
    log "building golangci-lint $golangci_lint_version (cold: about 4 minutes)"
    GOBIN=$out GOFLAGS= go install -trimpath "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_lint_version"
  fi
  out=$cache/actionlint/$actionlint_version
  if [[ ! -x $out/actionlint ]]; then
    log "building actionlint $actionlint_version (cold: about 1 minute)"
    GOBIN=$out GOFLAGS= go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
  fi
}

# ---- rclone, for the Docker Hub stand-in's rclone/rclone image --------------------------------------------
# rclone's own main with every backend, static (the image has no C library), with the version string its
# release builds carry (rclone's Makefile sets fs.Version; without it `rclone version` says v1.71.0-DEV).
# Cold: 162 s and 70 MB on 2 CPUs (an empty GOCACHE, the modules already downloaded; about 2 minutes more
# to download them).
build_rclone() {
  local out=$cache/rclone/$rclone_version
  [[ -x $out/rclone ]] && return
  log "building rclone $rclone_version (cold: about 3 minutes)"
  GOBIN=$out GOFLAGS= CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X github.com/rclone/rclone/fs.Version=$rclone_version" "github.com/rclone/rclone@$rclone_version"
}

# ---- the testbed's own commands (this repository's code) ----------------------------------------------------
# The real GCP provider cannot be built here (the proxy refuses it), so the end-to-end tests load
# testbed/cmd/pulumi-resource-gcp as the `gcp` plugin. The real node runs the PD CSI driver stand-in
# (csi-gce-standin) and pulls from the Docker Hub stand-in (dockerhub-standin), which makes its images from the
# static binaries in bin/images: the loklak stand-in and the pause program, built here from this checkout on
# every run (go build is incremental: about a second when nothing changed), so they always match the source
# being tested; and rclone, busybox and the static kubectl (for the registry.k8s.io stand-in's kubectl
# image, which the same command serves), linked there by link_bin.
build_testbed_commands() {
  local bin=$1
  (cd "$repo_root" && go build -trimpath -o "$bin/pulumi-resource-gcp" \
    -ldflags "-X main.version=${gcp_plugin_version#v}" ./testbed/cmd/pulumi-resource-gcp)
  (cd "$repo_root" && go build -trimpath -o "$bin/" ./testbed/cmd/csi-gce-standin ./testbed/cmd/dockerhub-standin)
  mkdir -p "$bin/images"
  # As testbed/loklak/image.BuildBinary builds them: static, reproducible.
  (cd "$repo_root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -buildid=" -o "$bin/images/loklak-standin" ./testbed/cmd/loklak-standin)
  (cd "$repo_root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -buildid=" -o "$bin/images/pause" ./testbed/cmd/loklak-standin/pause)
}

# ---- from Debian: etcd, and the real node's runtime ----------------------------------------------------------
# etcd for the control plane; containerd (1.6), runc and the CNI plugins (bridge, host-local, portmap, loopback
# in /usr/lib/cni) for the real node; e2fsprogs and util-linux (mkfs.ext4, resize2fs, losetup) for the
# simulated disks' bytes and the CSI stand-in; iptables, which the kubelet and the bridge plugin call;
# busybox-static, whose /bin/busybox is the shell, sleep and date of the Docker Hub stand-in's rclone image
# (it must be the static build: Debian's plain busybox package needs libc, which the image lacks).
debian_packages=(etcd-server containerd runc containernetworking-plugins e2fsprogs util-linux mount iptables busybox-static)
debian_commands=(etcd containerd runc /usr/lib/cni/bridge mkfs.ext4 losetup mount iptables /bin/busybox)

install_debian_packages() {
  local c missing=false
  for c in "${debian_commands[@]}"; do
    if [[ $c == /* ]]; then [[ -x $c ]] || missing=true; else command -v "$c" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$c" >/dev/null || missing=true; fi
  done
  # A /bin/busybox from the plain busybox package is dynamic; busybox-static replaces it.
  [[ $(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null) == "install ok installed" ]] || missing=true
  $missing || return 0
  log "installing ${debian_packages[*]} from Debian (cold: about 1 minute)"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debian_packages[@]}" >&2
  # Debian starts the packaged etcd and containerd as services where systemd runs; the tests start their own,
  # with their own sockets, ports and directories.
  if command -v systemctl >/dev/null; then
    for c in etcd containerd; do
      if systemctl is-active --quiet "$c" 2>/dev/null; then "${sudo[@]}" systemctl disable --now "$c" >&2 || true; fi
    done
  fi
}

# ---- one bin directory for the current versions -------------------------------------------------------------
link_bin() {
  # A .../bin directory, so the Automation API can take its parent as the CLI's root.
  local bin=$cache/toolset-pulumi$pulumi_version-k8s$kubernetes_version-kwok$kwok_version-prov$k8s_provider_version-lint$golangci_lint_version-al$actionlint_version-rclone$rclone_version/bin
  mkdir -p "$bin"
  ln -sf "$cache/pulumi/$pulumi_version/pulumi" "$bin/pulumi"
  ln -sf "$cache/pulumi-resource-kubernetes/$k8s_provider_version/pulumi-resource-kubernetes" "$bin/pulumi-resource-kubernetes"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
    ln -sf "$cache/kubernetes/$kubernetes_version/$c" "$bin/$c"
  done
  ln -sf "$cache/kwok/$kwok_version/kwok" "$bin/kwok"
  ln -sf "$(command -v etcd)" "$bin/etcd"
  for c in containerd containerd-shim-runc-v2 ctr runc; do ln -sf "$(command -v "$c")" "$bin/$c"; done
  ln -sf "$cache/golangci-lint/$golangci_lint_version/golangci-lint" "$bin/golangci-lint"
  ln -sf "$cache/actionlint/$actionlint_version/actionlint" "$bin/actionlint"
  ln -sf "$cache/rclone/$rclone_version/rclone" "$bin/rclone"
  # What the Docker Hub stand-in makes rclone/rclone:1.71.0 of (testbed/dockerhub.ReadBinaries).
  mkdir -p "$bin/images"
  ln -sf "$cache/rclone/$rclone_version/rclone" "$bin/images/rclone"
  ln -sf /bin/busybox "$bin/images/busybox"
  # What it makes registry.k8s.io/kubectl:v1.33.13 of (testbed/dockerhub.KubectlImage): a static kubectl.
  ln -sf "$cache/kubectl-static/$kubernetes_version/kubectl" "$bin/images/kubectl"
  # The plugin version the SDK asks for, so the harness can register the binary under it.
  printf '%s\n' "$k8s_plugin_version" >"$bin/.k8s-plugin-version"
  build_testbed_commands "$bin"
  printf '%s\n' "$bin"
}

# versions prints every pinned version without building anything (a unit test checks them against go.mod).
versions() {
  printf '%s %s\n' pulumi "$pulumi_version" kubernetes-plugin "$k8s_plugin_version" \
    kubernetes-provider "$k8s_provider_version" gcp-plugin "$gcp_plugin_version" kubernetes "$kubernetes_version" kwok "$kwok_version" \
    golangci-lint "$golangci_lint_version" actionlint "$actionlint_version" rclone "$rclone_version"
}

main() {
  local only_bin=false
  case ${1:-} in
    --bin-dir) only_bin=true ;;
    --versions) versions; return ;;
    "") ;;
    *) echo "usage: hack/toolchain.sh [--bin-dir|--versions]" >&2; return 2 ;;
  esac
  install_debian_packages
  build_pulumi
  build_kubernetes
  build_kwok
  build_k8s_provider
  build_linters
  build_rclone
  build_kubectl_static
  local bin
  bin=$(link_bin)
  if $only_bin; then
    printf '%s\n' "$bin"
  else
    local f
    for f in "$bin"/*; do printf '%-28s %s\n' "$(basename "$f")" "$(readlink -f "$f")"; done
    printf '\nexport PATH=%s:$PATH\n' "$bin"
  fi
}

main "$@"
