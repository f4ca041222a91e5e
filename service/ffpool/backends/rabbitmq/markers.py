"""Per-job marker files under MEDIA_ROOT/jobs/<id>/, the at-least-once guard.

A worker writes `.ffpool-completed.json` (the `completed` event) before it acks a job, and a
server writes `.ffpool-cancelled` when it cancels a queued job. A redelivered or republished
copy of the job is then recognised by its id on any worker sharing MEDIA_ROOT (outputs are
there anyway) and is not transcoded twice. Dot names can never clash with output names.
File I/O runs in one dedicated thread, never on the event loop, a batch per wake-up: with
many slots finishing at once one thread hop serves them all (a hop per call through
asyncio.to_thread cost about a third of dispatch throughput, bench/dispatch.py).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from ffpool.jobs.events import CompletedEvent
from ffpool.storage import JOBS_DIR

COMPLETED = ".ffpool-completed.json"
CANCELLED = ".ffpool-cancelled"
T = TypeVar("T")
_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


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
                self._thread = threading.Thread(target=self._serve, name="ffpool-markers",
                                                daemon=True)  # fmt: skip
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
                    loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[Any, Any, Any]]) -> None:
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


_FILES = FileThread()


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

    async def mark_cancelled(self, job_id: str) -> None:
        await _FILES.run(lambda: self._write(job_id, CANCELLED, ""))

    def _read_completed(self, job_id: str) -> CompletedEvent | None:
        try:
            return CompletedEvent.model_validate_json(self._path(job_id, COMPLETED).read_bytes())
        except (OSError, ValidationError):
            return None

    def _write(self, job_id: str, name: str, text: str) -> None:
        final = self._path(job_id, name)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f"{name}.{os.getpid()}.tmp")
            temp.write_text(text)
            os.replace(temp, final)
        except OSError:
            return  # best effort: the in-memory guards still hold on this worker
