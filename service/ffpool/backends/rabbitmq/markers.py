"""Per-job marker files under MEDIA_ROOT/jobs/<id>/, the at-least-once guard.

The executor's commit creates `.ffpool-completed.json` (the `completed` event, commit.py), a
worker writes it again (the same event: an executor may not commit) before it acks a job, and
`.ffpool-cancelled` is written by a server that cancels a queued job or by the worker that
stopped a running one at its client's request. A redelivered or republished
copy of the job is then recognised by its id on any worker sharing MEDIA_ROOT (outputs are
there anyway) and is not transcoded twice. In quorum mode a worker also records the attempt it
starts (`.ffpool-started.json`): the attempt count is runs started (attempts.py). Dot names can
never clash with output names.
File I/O runs in one dedicated thread, never on the event loop, a batch per wake-up: with
many slots finishing at once one thread hop serves them all (a hop per call through
asyncio.to_thread cost about a third of dispatch throughput, bench/dispatch.py).
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, Field, ValidationError

from ffpool.backends.rabbitmq import records
from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, JobRecord
from ffpool.domain.jobs import Job
from ffpool.ffmpeg.commit import COMPLETED, read_completed
from ffpool.storage.media import JOBS_DIR

__all__ = ["ACCEPTED", "CANCELLED", "COMPLETED", "FAILED", "STARTED", "JobMarkers", "Markers"]
CANCELLED = ".ffpool-cancelled"
# The job as accepted (written by the accepting server after the broker's confirm, before the
# client hears `accepted`) and a dead-lettered job's failure: with the two above, any server
# can tell what became of any job still on disk, also after its accepting server died.
ACCEPTED = ".ffpool-accepted.json"
FAILED = ".ffpool-failed.json"
# The highest attempt that started a run (quorum mode: an attempt is a run that started, not a
# return the broker counted; attempts.quorum_attempt). JSON: {"attempt": N}.
STARTED = ".ffpool-started.json"
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # a job id (ids are 32 hex digits)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Outcome = CompletedEvent | FailedEvent | CancelledEvent
_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class StartedRecord(BaseModel):
    """The body of STARTED (and of the bucket's `started.json`)."""

    attempt: int = Field(ge=0)


class FileThread:
    """One daemon thread running file calls in batches; results go back to each caller's
    loop with one wake-up per loop per batch."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def run(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, call))
        self._ensure_started()
        return await future

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="ffpool-markers", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            batch = [self._calls.get()]
            while not self._calls.empty():
                batch.append(self._calls.get_nowait())
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
            for loop, future, call in batch:
                try:
                    outcome: tuple[Any, Any, Any] = (future, call(), None)
                except Exception as exc:
                    outcome = (future, None, exc)
                by_loop.setdefault(loop, []).append(outcome)
            for loop, outcomes in by_loop.items():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_resolve, outcomes)


def _resolve(outcomes: list[tuple[Any, Any, Any]]) -> None:
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


_FILES = FileThread()


class JobMarkers(Protocol):
    """A job's state records, read and written by every server and worker: files under
    MEDIA_ROOT (Markers) or objects in the pool's bucket (bucket_markers.py). Best effort:
    a write that fails is logged and dropped, a read that fails finds nothing."""

    async def completed(self, job_id: str) -> CompletedEvent | None: ...

    async def check(self, job_id: str) -> tuple[CompletedEvent | None, bool]: ...

    async def mark_completed(self, event: CompletedEvent) -> None: ...

    async def mark_accepted(self, job: Job) -> None: ...

    async def mark_failed(self, event: FailedEvent) -> None: ...

    async def mark_cancelled(self, job_id: str) -> None: ...

    async def mark_started(self, job_id: str, attempt: int) -> bool:
        """Record `attempt` as the highest that started a run (overwrites: a hand-back lowers
        it again); False if it could not be written."""

    async def started(self, job_id: str) -> int:
        """The highest attempt recorded as started, 0 if none (or unreadable)."""

    async def record(self, job_id: str) -> JobRecord | None: ...

    async def outcomes(self, job_ids: list[str]) -> list[Outcome]: ...

    async def remove(self, job_id: str) -> None:
        """Remove all of a job's records (a chunk job's, once its parent ended)."""


class Markers:
    def __init__(self, media_root: Path) -> None:
        self._root = media_root / JOBS_DIR

    def _path(self, job_id: str, name: str) -> Path:
        return self._root / job_id / name

    async def completed(self, job_id: str) -> CompletedEvent | None:
        return await _FILES.run(lambda: self._read_completed(job_id))

    async def check(self, job_id: str) -> tuple[CompletedEvent | None, bool]:
        """(the completed event, whether cancelled) in one trip to a thread."""
        return await _FILES.run(lambda: self._check(job_id))

    def _check(self, job_id: str) -> tuple[CompletedEvent | None, bool]:
        try:
            present = set(os.listdir(self._root / job_id))
        except OSError:
            return None, False
        done = self._read_completed(job_id) if COMPLETED in present else None
        return done, CANCELLED in present

    async def mark_completed(self, event: CompletedEvent) -> None:
        body = event.model_dump_json()
        await _FILES.run(lambda: self._write(event.job_id, COMPLETED, body))

    async def mark_accepted(self, job: Job) -> None:
        body = job.model_dump_json()
        await _FILES.run(lambda: self._write(job.id, ACCEPTED, body))

    async def mark_failed(self, event: FailedEvent) -> None:
        body = event.model_dump_json()
        await _FILES.run(lambda: self._write(event.job_id, FAILED, body))

    async def record(self, job_id: str) -> JobRecord | None:
        """The job's record as its files tell it (records.from_files), None if none."""
        return await _FILES.run(lambda: self._record(job_id))

    def _record(self, job_id: str) -> JobRecord | None:
        try:
            present = set(os.listdir(self._root / job_id))
        except (OSError, ValueError):
            return None
        return records.from_files(
            job_id,
            self._read(job_id, ACCEPTED, Job) if ACCEPTED in present else None,
            self._read_completed(job_id) if COMPLETED in present else None,
            self._read(job_id, FAILED, FailedEvent) if FAILED in present else None,
            CANCELLED in present,
        )

    async def outcomes(self, job_ids: list[str]) -> list[Outcome]:
        """The outcomes the files record for these jobs (those that have one), one trip."""
        return await _FILES.run(lambda: [o for j in job_ids if (o := self._outcome(j))])

    def _outcome(self, job_id: str) -> Outcome | None:
        try:
            present = set(os.listdir(self._root / job_id))
        except (OSError, ValueError):
            return None
        if COMPLETED in present and (done := self._read_completed(job_id)) is not None:
            return done  # the commit wins over a cancel that raced it (records.from_files)
        if FAILED in present and (failed := self._read(job_id, FAILED, FailedEvent)):
            return failed
        return CancelledEvent(job_id=job_id) if CANCELLED in present else None

    def _read(self, job_id: str, name: str, model: type[M]) -> M | None:
        try:
            return model.model_validate_json(self._path(job_id, name).read_bytes())
        except (OSError, ValidationError):
            return None

    async def mark_cancelled(self, job_id: str) -> None:
        await _FILES.run(lambda: self._write(job_id, CANCELLED, ""))

    async def mark_started(self, job_id: str, attempt: int) -> bool:
        if not _SAFE_ID.fullmatch(job_id):  # never a path out of MEDIA_ROOT/jobs/
            return False
        body = StartedRecord(attempt=attempt).model_dump_json()
        return await _FILES.run(lambda: self._write(job_id, STARTED, body))

    async def started(self, job_id: str) -> int:
        if not _SAFE_ID.fullmatch(job_id):
            return 0
        found = await _FILES.run(lambda: self._read(job_id, STARTED, StartedRecord))
        return found.attempt if found is not None else 0

    async def remove(self, job_id: str) -> None:
        if _SAFE_ID.fullmatch(job_id):  # never a path out of MEDIA_ROOT/jobs/
            await _FILES.run(lambda: shutil.rmtree(self._root / job_id, ignore_errors=True))

    def _read_completed(self, job_id: str) -> CompletedEvent | None:
        return read_completed(self._root / job_id)

    def _write(self, job_id: str, name: str, text: str) -> bool:
        final = self._path(job_id, name)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f"{name}.{os.getpid()}.tmp")
            temp.write_text(text)
            os.replace(temp, final)
        except OSError:
            return False  # best effort: the in-memory guards still hold on this worker
        return True
