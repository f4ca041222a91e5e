"""Fetched inputs and scratch left by crashed runs: swept once a worker starts, never a live
run's; and user-given paths that the file system refuses are bad input, not server faults."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from ffpool.domain.events import FailureCode
from ffpool.ffmpeg.commit import LOCK
from ffpool.ffmpeg.sweep import leftover, remove_stale_leftovers
from ffpool.storage.media import LocalStorage, StorageError, media_path_problem

OLD = "0" * 32
BUSY = "1" * 32
FRESH = "2" * 32
HOUR = 3600.0


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    storage = LocalStorage(tmp_path / "media")
    for job in (OLD, BUSY, FRESH):
        job_dir = storage.job_dir(job)
        (job_dir / "output.mp4").write_bytes(b"committed")
        (job_dir / ".input").write_bytes(b"fetched before this change")
        (job_dir / ".run-0011223344556677").mkdir()
        (job_dir / ".run-0011223344556677" / ".input").write_bytes(b"fetched")
        for name in (".input", ".run-0011223344556677", "output.mp4"):
            age(job_dir / name, 0 if job == FRESH else 2 * HOUR)
    return storage.root


def test_stale_leftovers_go_committed_outputs_and_live_runs_stay(root: Path) -> None:
    busy_lock = os.open(root / "jobs" / BUSY / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(busy_lock, fcntl.LOCK_EX)  # a run of BUSY is in progress
    try:
        removed = remove_stale_leftovers(root, HOUR, time.time())
    finally:
        os.close(busy_lock)
    assert removed == [f"{OLD}/.input", f"{OLD}/.run-0011223344556677"]
    assert sorted(os.listdir(root / "jobs" / OLD)) == [LOCK, "output.mp4"]
    for job in (BUSY, FRESH):
        assert (root / "jobs" / job / ".input").exists()
        assert (root / "jobs" / job / ".run-0011223344556677" / ".input").exists()
    assert remove_stale_leftovers(root, HOUR, time.time()) == [
        f"{BUSY}/.input",
        f"{BUSY}/.run-0011223344556677",
    ]


def test_leftover_names() -> None:
    assert leftover(".input")
    assert leftover(".input.part")
    assert leftover(".run-abc")
    assert not leftover("output.mp4")
    assert not leftover(".ffpool-completed.json")
    assert not leftover(LOCK)


def test_no_jobs_directory_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert remove_stale_leftovers(tmp_path, HOUR, time.time()) == []


@pytest.mark.parametrize(
    "rel",
    [
        "clips/" + "a" * 300 + ".mp4",  # ENAMETOOLONG
        "a" * 256,
    ],
)
def test_overlong_component_refused_before_the_disk(tmp_path: Path, rel: str) -> None:
    assert media_path_problem(rel) == "path components may not be longer than 255 bytes"
    storage = LocalStorage(tmp_path)
    with pytest.raises(StorageError) as info:
        storage.resolve_media_path(rel)
    assert info.value.code is FailureCode.INPUT_REJECTED


def test_file_system_refusals_are_rejections(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    os.symlink("loop2", tmp_path / "clips" / "loop1")
    os.symlink("loop1", tmp_path / "clips" / "loop2")
    assert media_path_problem("a" * 255) is None
    cases = {
        "clips/a.mp4/inside": FailureCode.INPUT_REJECTED,  # ENOTDIR
        "clips/loop1": FailureCode.INPUT_REJECTED,  # ELOOP
        "clips/" + "/".join(["a" * 255] * 3): FailureCode.INPUT_NOT_FOUND,
        "clips/missing.mp4": FailureCode.INPUT_NOT_FOUND,
    }
    for rel, code in cases.items():
        with pytest.raises(StorageError) as info:
            storage.resolve_media_path(rel)
        assert info.value.code is code, rel
