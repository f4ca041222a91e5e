"""A package's files after the run (ffmpeg/output_dir.py): listed master first, each name
checked against the output-name rule, their count and total size bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.domain.events import FailureCode
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.ffmpeg.output_dir import collect


def package(tmp_path: Path, *names: str) -> Path:
    out = tmp_path / ".package"
    out.mkdir()
    for name in names:
        (out / name).write_bytes(b"x" * 10)
    return out


def failure(out: Path, max_files: int = 100, max_bytes: int = 10_000) -> JobFailure:
    with pytest.raises(JobFailure) as caught:
        collect(out, out.parent, max_files, max_bytes)
    return caught.value


def test_files_listed_master_first_and_moved_beside(tmp_path: Path) -> None:
    out = package(tmp_path, "seg-v0-00000.m4s", "media-v0.m3u8", "init_0.mp4", "master.m3u8")
    found = collect(out, tmp_path, 100, 10_000)
    assert [f.name for f in found] == [
        "master.m3u8",
        "media-v0.m3u8",
        "init_0.mp4",
        "seg-v0-00000.m4s",
    ]
    assert found[0].temp_path == out / "master.m3u8"
    assert found[0].final_path == tmp_path / "master.m3u8"
    assert found[0].content_type == "application/vnd.apple.mpegurl"


def test_too_many_files(tmp_path: Path) -> None:
    out = package(tmp_path, "a.m4s", "b.m4s", "c.m4s")
    assert failure(out, max_files=2).code is FailureCode.OUTPUT_TOO_LARGE


def test_too_many_bytes_in_all(tmp_path: Path) -> None:
    out = package(tmp_path, "a.m4s", "b.m4s")
    assert failure(out, max_bytes=20).code is FailureCode.OUTPUT_TOO_LARGE


@pytest.mark.parametrize("name", [".hidden", "seg.m4s.tmp", "x.part", "-dash.m4s"])
def test_names_outside_the_rule_fail(tmp_path: Path, name: str) -> None:
    out = package(tmp_path, "master.m3u8", name)
    assert failure(out).code is FailureCode.INTERNAL_ERROR


def test_a_directory_inside_fails(tmp_path: Path) -> None:
    out = package(tmp_path, "master.m3u8")
    (out / "sub").mkdir()
    assert failure(out).code is FailureCode.INTERNAL_ERROR


def test_an_empty_package_fails(tmp_path: Path) -> None:
    assert failure(package(tmp_path)).code is FailureCode.FFMPEG_ERROR
