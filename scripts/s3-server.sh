#!/usr/bin/env bash
# Builds versitygw, the S3-compatible server the object-storage tests and bench/s3_upload.py run
# against (docs/storage.md), from the Go module proxy into a cache keyed by version, the way
# cluster/build.sh builds the control plane. Prints the binary's path on its last line.
# Idempotent: a warm call takes well under a second; a cold one about two minutes on 2 cores.
set -euo pipefail

VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
cache=${FFPOOL_CACHE:-$HOME/.cache/ffpool}
bin="$cache/s3/versitygw-$VERSITYGW_VERSION/bin"

if [ -x "$bin/versitygw" ]; then
    echo "$bin/versitygw"
    exit 0
fi
# Go's own installer puts the toolchain in /usr/local/go, which not every shell has on PATH.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "scripts/s3-server.sh: Go is needed to build versitygw" >&2; exit 1; }

export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=mod CGO_ENABLED=0
export GOTOOLCHAIN=local
mkdir -p "$bin"
start=$(date +%s)
# Into a temporary name first: an interrupted build never leaves a binary that looks complete.
tmp=$(mktemp -d "$cache/s3/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
mv "$tmp/versitygw" "$bin/versitygw"
echo "scripts/s3-server.sh: built versitygw $VERSITYGW_VERSION in $(($(date +%s) - start)) s" >&2
echo "$bin/versitygw"
