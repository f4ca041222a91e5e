"""Per-job marker files under MEDIA_ROOT/jobs/<id>/, the at-least-once guard.

A worker writes `.ffpool-completed.json` (the `completed` event) before it acks a job, and a
server writes `.ffpool-cancelled` when it cancels a queued job. A redelivered or republished
copy of the job is then recognised by its id on any worker sharing MEDIA_ROOT (outputs are
there anyway) and is not transcoded twice. Dot names can never clash with output names.
File I/O runs in a thread: never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import ValidationError

from ffpool.jobs.events import CompletedEvent
from ffpool.storage import JOBS_DIR

COMPLETED = ".ffpool-completed.json"
CANCELLED = ".ffpool-cancelled"


class Markers:
    def __init__(self, media_root: Path) -> None:
        self._root = media_root / JOBS_DIR

    def _path(self, job_id: str, name: str) -> Path:
        return self._root / job_id / name

    async def completed(self, job_id: str) -> CompletedEvent | None:
        return await asyncio.to_thread(self._read_completed, job_id)

    async def check(self, job_id: str) -> tuple[CompletedEvent | None, bool]:
        """(the completed event, whether cancelled) in one trip to a thread."""
        return await asyncio.to_thread(self._check, job_id)

    def _check(self, job_id: str) -> tuple[CompletedEvent | None, bool]:
        try:
            present = set(os.listdir(self._root / job_id))
        except OSError:
            return None, False
        done = self._read_completed(job_id) if COMPLETED in present else None
        return done, CANCELLED in present

    async def mark_completed(self, event: CompletedEvent) -> None:
        await asyncio.to_thread(self._write, event.job_id, COMPLETED, event.model_dump_json())

    async def mark_cancelled(self, job_id: str) -> None:
        await asyncio.to_thread(self._write, job_id, CANCELLED, "")

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
