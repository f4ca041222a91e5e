"""What runs of a crashed worker leave in job directories: fetched inputs and scratch.

A run removes its scratch directory (and the URL input fetched into it) itself, whatever its
outcome (commit.py, inputs.py). A worker killed mid-run cannot; a later run of the same job
clears them (commit.RunScope.clear_stale), but a job that is not run again would keep them for
its whole retention. So a worker sweeps once when it starts running jobs: in each job
directory, scratch directories and URL inputs (also at the job directory's top, where they
were fetched before) that are older than the job timeout are removed, under the job's run
lock, so never those of a run in progress, on this host or another sharing MEDIA_ROOT.

With object storage (STORAGE=s3) runs work in SCRATCH_ROOT/<job id>/.run-<random>/ without a
lock (bucket_commit.py): scratch directories older than the job timeout there cannot belong to
a run in progress (a run is stopped at its timeout), so they are removed, and emptied job
directories with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ffpool import logs
from ffpool.ffmpeg.commit import LOCK, SCRATCH_PREFIX
from ffpool.ffmpeg.inputs import URL_INPUT_NAME
from ffpool.settings import Settings
from ffpool.storage.media import JOBS_DIR

log = logs.get(__name__)

_INPUT_NAMES = frozenset({URL_INPUT_NAME, f"{URL_INPUT_NAME}.part"})
_JOB_ID = re.compile(r"[0-9a-f]{32}")


def leftover(name: str) -> bool:
    """A run's scratch directory or a fetched URL input (by name)."""
    return name.startswith(SCRATCH_PREFIX) or name in _INPUT_NAMES


def _stale(job_dir: Path, cutoff: float) -> list[Path]:
    found = []
    with contextlib.suppress(OSError), os.scandir(job_dir) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if leftover(entry.name) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    found.append(Path(entry.path))
    return found


def _remove_unlocked(job_dir: Path, paths: list[Path]) -> bool:
    """Remove `paths` if no run holds the job's lock; False when one does (or it cannot be
    taken: then nothing is removed)."""
    try:
        fd = os.open(job_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        for path in paths:
            _remove(path)
        return True
    finally:
        os.close(fd)  # releases the lock: it belongs to this open file description


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_leftovers(root: Path, older_than_s: float, now: float) -> list[str]:
    """Blocking: remove leftovers older than `older_than_s` before `now` (epoch seconds) in
    every job directory under `root` whose run lock is free; returns `<job>/<name>` removed."""
    removed = []
    cutoff = now - older_than_s
    with contextlib.suppress(FileNotFoundError), os.scandir(root / JOBS_DIR) as jobs:
        for job in jobs:
            if not job.is_dir(follow_symlinks=False):
                continue
            paths = _stale(Path(job.path), cutoff)
            if paths and _remove_unlocked(Path(job.path), paths):
                removed += [f"{job.name}/{p.name}" for p in paths]
    return sorted(removed)


async def _sweep(
    remove: Callable[[Path, float, float], list[str]], root: Path, settings: Settings, what: str
) -> list[str]:
    """`remove` now, in a thread, for what is older than the job timeout; a failing scan is
    logged, never fails the job that started it."""
    try:
        removed = await asyncio.to_thread(remove, root, settings.job_timeout_seconds, time.time())
    except OSError as exc:
        log.warning("sweep failed", what=what, error=type(exc).__name__)
        return []
    if removed:
        log.info("stale leftovers removed", what=what, count=len(removed))
    return removed


async def sweep_once(root: Path, settings: Settings) -> list[str]:
    """Stale job inputs and scratch of crashed runs under MEDIA_ROOT."""
    return await _sweep(remove_stale_leftovers, root, settings, "job inputs and scratch")


def remove_stale_scratch(root: Path, older_than_s: float, now: float) -> list[str]:
    """Blocking: scratch directories under `root`/<job>/ older than `older_than_s` before
    `now`, removed with their job directory once it is empty; returns `<job>/<name>`."""
    removed = []
    cutoff = now - older_than_s
    with contextlib.suppress(FileNotFoundError), os.scandir(root) as jobs:
        for job in jobs:
            # Job directories only: SCRATCH_ROOT also holds uploads in transit.
            if not _JOB_ID.fullmatch(job.name) or not job.is_dir(follow_symlinks=False):
                continue
            for path in _stale(Path(job.path), cutoff):
                _remove(path)
                removed.append(f"{job.name}/{path.name}")
            with contextlib.suppress(OSError):
                os.rmdir(job.path)  # only if empty
    return sorted(removed)


async def sweep_scratch(root: Path, settings: Settings) -> list[str]:
    """Stale run directories under SCRATCH_ROOT (object storage)."""
    return await _sweep(remove_stale_scratch, root, settings, "scratch")
