"""scripts/setup.sh's FFmpeg decision, run against stand-in tools (no root, no apt, no pip)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls.log"
exec /bin/cat >/dev/null
"""


def tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(script)
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A PATH with only what setup.sh needs, a non-root `id`, and a venv whose python logs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("cat", "dirname"):
        real = shutil.which(name)
        assert real is not None
        (bin_dir / name).symlink_to(real)
    tool(bin_dir, "id", "#!/bin/sh\necho 1000\n")
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    tool(venv_bin, "python", FAKE_PYTHON)
    return tmp_path


def run_setup(sandbox: Path) -> list[str]:
    env = {
        "PATH": str(sandbox / "bin"),
        "VENV": str(sandbox / "venv"),
        "HOME": str(sandbox),
        # The FFmpeg decision alone: not this machine's broker or cluster packages.
        "FFPOOL_SETUP_BROKER": "0",
        "FFPOOL_CLUSTER_PACKAGES": "0",
        "FFPOOL_S3_SERVER": "0",
    }
    subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "setup.sh")],
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    log = sandbox / "venv" / "bin" / "calls.log"
    calls = log.read_text().splitlines()
    log.unlink()
    return [c for c in calls if c.startswith("-m pip install") and "-e" in c.split()]


def test_no_ffmpeg_and_no_root_installs_the_static_extra(sandbox: Path) -> None:
    assert run_setup(sandbox) == [
        "-m pip install -q --disable-pip-version-check -e .[dev,ffmpeg-static]"
    ]
    assert run_setup(sandbox) == []  # stamped: nothing to do


def test_a_venv_set_up_without_the_extra_gets_it(sandbox: Path) -> None:
    stamp = sandbox / "venv" / ".ffpool-installed"
    stamp.touch()  # an earlier set-up, when FFmpeg came from the system
    assert run_setup(sandbox) == [
        "-m pip install -q --disable-pip-version-check -e .[dev,ffmpeg-static]"
    ]


def test_system_ffmpeg_means_no_extra(sandbox: Path) -> None:
    for name in ("ffmpeg", "ffprobe"):
        tool(sandbox / "bin", name, "#!/bin/sh\n")
    assert run_setup(sandbox) == ["-m pip install -q --disable-pip-version-check -e .[dev]"]
