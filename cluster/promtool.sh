#!/usr/bin/env bash
# Builds Prometheus' promtool from the Go module proxy into a cache keyed by version, for the tests
# that load the chart's alert rules and the Grafana dashboard's queries (docs/monitoring.md).
# A wrapper module requires github.com/prometheus/prometheus and builds the command from there
# (as cluster/build.sh does for Kubernetes): `go install module/cmd/promtool@version` refuses a
# module whose go.mod has replace directives, which v0.316.0's has not, but a later one may. Prints the binary's path on its last line. Idempotent: a warm call
# takes well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${FFPOOL_CACHE:-$HOME/.cache/ffpool}
bin="$cache/promtool/prometheus-$PROMETHEUS_MODULE_VERSION/bin"
if [ -x "$bin/promtool" ]; then
    echo "$bin/promtool"
    exit 0
fi
# Go's own installer puts the toolchain in /usr/local/go, which not every shell has on PATH.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "cluster/promtool.sh: Go is needed to build promtool" >&2; exit 1; }

export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=mod CGO_ENABLED=0
export GOTOOLCHAIN=local
mod="$cache/promtool/work/prometheus-$PROMETHEUS_MODULE_VERSION"
mkdir -p "$bin" "$mod"
start=$(date +%s)
(
    cd "$mod"
    if [ ! -f go.sum ]; then
        rm -f go.mod
        go mod init ffpool.dev/promtool-build >&2
        go mod edit -require="github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION"
        cat >tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
GO
        go mod tidy >&2
    fi
    # remove_all_sd leaves out Prometheus' service discovery plugins (cloud SDKs: most of a cold
    # build's time); the tests need promtool's rules and PromQL commands only.
    go build -trimpath -tags remove_all_sd -ldflags "-s -w" -o "$bin/promtool" \
        github.com/prometheus/prometheus/cmd/promtool >&2
)
echo "cluster/promtool.sh: built promtool in $(($(date +%s) - start)) s" >&2
echo "$bin/promtool"
