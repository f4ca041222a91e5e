"""One run of a job at a time, each in its own scratch space, committed atomically.

Two copies of a job can reach two workers at once (a redelivery after a lost connection, a
twin publish by two servers, a resubmit). Without care both write the same files, and the
first one's success is destroyed by the second one's clean-up. So, under MEDIA_ROOT/jobs/<id>/:

- `.ffpool-run.lock` is held with flock(2) for the whole run, by every process sharing
  MEDIA_ROOT: a second copy waits for it. The kernel drops the lock when its holder dies,
  kill -9 included, so a crashed run never blocks the job (and its FFmpeg dies with it,
  pdeathsig.py). flock works across processes on one host and on NFSv4 (emulated with byte
  range locks by Linux clients).
- Each run writes only into `.run-<random>/`, its scratch directory. Failure or cancel removes
  that directory and nothing else.
- The commit moves the outputs to their final names, then creates `.ffpool-completed.json`
  (the `completed` event) exclusively, with link(2), which fails if it exists: the first
  commit wins. A run that finds the record already there (before running, or at its commit)
  discards its scratch and reports the recorded outcome. Outputs are moved before the record
  is created, so a record never names files that are not there; under the lock no other run
  can be between the two steps.
- Committed outputs are only ever removed with the whole job directory (retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from ffpool import logs
from ffpool.domain.events import CompletedEvent

log = logs.get(__name__)

COMPLETED: Final = ".ffpool-completed.json"
LOCK: Final = ".ffpool-run.lock"
SCRATCH_PREFIX: Final = ".run-"
LOCK_POLL_S: Final = 0.2


def read_completed(job_dir: Path) -> CompletedEvent | None:
    try:
        return CompletedEvent.model_validate_json((job_dir / COMPLETED).read_bytes())
    except (OSError, ValidationError):
        return None


def stale_scratch(names: Sequence[str], own: str) -> list[str]:
    """Scratch directories of earlier runs (crashed ones: the lock holder is the only run)."""
    return [n for n in names if n.startswith(SCRATCH_PREFIX) and n != own]


def _try_lock(path: Path) -> int | None:
    """Blocking: an fd holding the exclusive lock, or None if another run holds it. The fd is
    close-on-exec (Python's default), so FFmpeg never inherits the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


@dataclass
class RunScope:
    job_dir: Path
    scratch: Path
    done: CompletedEvent | None = None
    """The committed outcome found on entry: another run finished the job, do not run it."""

    def committed(self) -> CompletedEvent | None:
        return read_completed(self.job_dir)

    def commit(self, files: Sequence[str], event: CompletedEvent) -> CompletedEvent:
        """Blocking: publish `files` (names in the scratch directory) and the outcome; the
        outcome that holds afterwards (another run's, if it committed first)."""
        if (winner := self.committed()) is not None:
            return winner
        for name in files:
            os.replace(self.scratch / name, self.job_dir / name)
        record = self.scratch / COMPLETED
        record.write_text(event.model_dump_json())
        try:
            os.link(record, self.job_dir / COMPLETED)
        except FileExistsError:
            log.warning("another run committed first", job_id=event.job_id)
            return self.committed() or event
        return event

    def discard(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def clear_stale(self) -> None:
        with contextlib.suppress(OSError):
            for name in stale_scratch(os.listdir(self.job_dir), self.scratch.name):
                shutil.rmtree(self.job_dir / name, ignore_errors=True)


async def _acquire(scope: RunScope) -> int:
    waited = False
    while (fd := await _enter(scope)) is None:
        if not waited:
            log.info("another run of this job is in progress: waiting", job=scope.job_dir.name)
            waited = True
        await asyncio.sleep(LOCK_POLL_S)
    return fd


async def _enter(scope: RunScope) -> int | None:
    """`_try_enter` in a thread. A cancel (a stop, a lost connection) does not stop the
    thread: what it takes is given back when it ends, or the lock would stay held by this
    process for good, and every later run of the job would wait for it."""
    attempt = asyncio.ensure_future(asyncio.to_thread(_try_enter, scope))
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError:
        attempt.add_done_callback(functools.partial(_give_back, scope))
        raise


def _give_back(scope: RunScope, attempt: asyncio.Future[int | None]) -> None:
    if attempt.cancelled() or attempt.exception() is not None:
        return
    if (fd := attempt.result()) is not None:
        asyncio.get_running_loop().run_in_executor(None, _release, scope, fd)


@contextlib.asynccontextmanager
async def run_scope(job_dir: Path) -> AsyncIterator[RunScope]:
    """Hold the job's run lock and a fresh scratch directory; the scratch directory is
    removed on the way out (after a commit it holds only the record's copy)."""
    scope = RunScope(job_dir, job_dir / f"{SCRATCH_PREFIX}{secrets.token_hex(8)}")
    fd = await _acquire(scope)
    try:
        yield scope
    finally:
        await asyncio.shield(asyncio.to_thread(_release, scope, fd))


def _try_enter(scope: RunScope) -> int | None:
    """Blocking, one thread hop: the lock, then (if taken) the commit check and the scratch
    directory; None while another run holds the lock."""
    fd = _try_lock(scope.job_dir / LOCK)
    if fd is None:
        return None
    try:
        scope.done = scope.committed()
        scope.clear_stale()
        scope.scratch.mkdir(mode=0o755)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _release(scope: RunScope, fd: int) -> None:
    try:
        scope.discard()
    finally:
        os.close(fd)
