"""tests/conftest.py finds FFmpeg as the service does (binaries.resolve), failing in CI and
skipping elsewhere when it cannot. Checked in inner pytest runs with stand-in executables."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
INNER_TEST = """
import os

def test_paths(ffmpeg_bin, ffprobe_bin):
    assert ffmpeg_bin == os.environ["EXPECT_FFMPEG"]
    assert ffprobe_bin == os.environ["EXPECT_FFPROBE"]
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=INNER_TEST)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("FFPROBE_PATH", raising=False)
    return pytester


def test_configured_ffmpeg_path_is_what_tests_use(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        (fake / name).write_text("#!/bin/sh\n")
        (fake / name).chmod(0o755)
    monkeypatch.setenv("FFMPEG_PATH", str(fake / "ffmpeg"))  # ffprobe: its sibling
    monkeypatch.setenv("EXPECT_FFMPEG", str(fake / "ffmpeg"))
    monkeypatch.setenv("EXPECT_FFPROBE", str(fake / "ffprobe"))
    inner.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(("ci", "outcome"), [(None, "skipped"), ("true", "errors")])
def test_unresolvable_ffmpeg_skips_or_fails_in_ci(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: str
) -> None:
    monkeypatch.setenv("FFMPEG_PATH", "/nonexistent/ffmpeg")
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    result = inner.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*FFMPEG_PATH=/nonexistent/ffmpeg is not an executable file*"])
