#!/usr/bin/env bash
# Builds the real control plane from the Go module proxy into a cache keyed by version:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl, helm.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, client-go, ...) at v0.0.0, which the
# proxy does not serve, so `go install k8s.io/kubernetes/...@vX` fails; a wrapper module requires
# k8s.io/kubernetes and replaces each staging module with its published v0.N.P (the list comes
# from k/k's own go.mod of that release, so it never drifts). docs/cluster.md has the details.
# Prints the binary directory on its last line. Idempotent: a warm call takes well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${FFPOOL_CACHE:-$HOME/.cache/ffpool}
bin="$cache/k8s/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION/bin"
want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl helm)

missing=()
for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} = 0 ]; then
    echo "$bin"
    exit 0
fi
# Go's own installer puts the toolchain in /usr/local/go, which not every shell has on PATH.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "cluster/build.sh: Go is needed to build ${missing[*]}" >&2; exit 1; }

export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=mod CGO_ENABLED=0
export GOTOOLCHAIN=local
work="$cache/k8s/work"
mkdir -p "$bin" "$work"
start=$(date +%s)

build_kubernetes() {
    local mod="$work/kubernetes-$KUBERNETES_VERSION" minor
    minor=${KUBERNETES_VERSION#v1.}
    mkdir -p "$mod"
    (
        cd "$mod"
        if [ ! -f go.sum ]; then
            rm -f go.mod
            go mod init ffpool.dev/k8s-build >&2
            go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
            # The staging modules are the ones k/k requires at v0.0.0.
            local kk
            kk=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
                sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
            for m in $(awk '/^\t?k8s\.io\/[^ ]+ v0\.0\.0$/ {print $1}' "$kk"); do
                go mod edit -replace="$m=$m@v0.$minor"
            done
            cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
            go mod tidy >&2
        fi
        local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
        ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
        ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
        go build -trimpath -ldflags "$ldflags" -o "$bin/" \
            k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
            k8s.io/kubernetes/cmd/kubelet >&2
    )
}

build_etcd() {
    local mod="$work/etcd-$ETCD_VERSION"
    mkdir -p "$mod"
    (
        cd "$mod"
        if [ ! -f go.sum ]; then
            rm -f go.mod
            go mod init ffpool.dev/etcd-build >&2
            cat >main.go <<'GO'
// etcd's own entry point (go.etcd.io/etcd/server/v3/etcdmain), built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
            go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
            go mod tidy >&2
        fi
        go build -trimpath -ldflags "-s -w" -o "$bin/etcd" . >&2
    )
}

build_helm() {
    GOBIN="$bin" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
}

for b in "${missing[@]}"; do
    case $b in
    etcd) build_etcd ;;
    helm) build_helm ;;
    kube-*|kubectl|kubelet) [ -x "$bin/kubectl" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubelet" ] &&
        [ -x "$bin/kube-scheduler" ] && [ -x "$bin/kube-controller-manager" ] || build_kubernetes ;;
    esac
done
echo "cluster/build.sh: built ${missing[*]} in $(($(date +%s) - start)) s" >&2
echo "$bin"
