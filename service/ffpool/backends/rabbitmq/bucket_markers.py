"""Per-job state records in the pool's bucket (STORAGE=s3): markers.py without a shared volume.

`S3_BUCKET/<S3_PREFIX>/jobs/<id>/` holds `accepted.json` (the job as accepted), `completed.json`
(the `completed` event: the executor's commit, bucket_commit.py), `failed.json` (a dead-lettered
job's failure) and `cancelled` (empty), with the semantics of the marker files: any server can
tell what became of any job, and any worker recognises a redelivered copy of a finished job,
also after the process that wrote them died. `completed.json` is only ever created if absent
(the first commit wins, as the files' link(2)); the others are overwritten like the files,
as is `started.json` (quorum mode: the highest attempt that started a run, attempts.py).

Best effort like the files: a failed write is logged and dropped (the in-memory guards and the
events exchange still hold), a failed read finds nothing. Every call is bounded by
S3_TIMEOUT_SECONDS per request in the store, and by twice that here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from ffpool import logs
from ffpool.backends.rabbitmq import records
from ffpool.backends.rabbitmq.markers import Outcome, StartedRecord
from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, JobRecord
from ffpool.domain.jobs import Job
from ffpool.ffmpeg.bucket_commit import COMPLETED_RECORD, MAX_RECORD_BYTES, job_records
from ffpool.settings import Settings
from ffpool.storage.objects import ObjectRef, ObjectStore, ObjectStoreError

log = logs.get(__name__)

ACCEPTED_RECORD: Final = "accepted.json"
FAILED_RECORD: Final = "failed.json"
CANCELLED_RECORD: Final = "cancelled"
STARTED_RECORD: Final = "started.json"
# Records of many jobs are read at once (a resync after a reconnect): a bounded number at a time.
MAX_CONCURRENT_READS: Final = 16
# Job ids are 32 hex digits; anything that could leave the job's prefix is never a key.
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def record_ref(settings: Settings, job_id: str, name: str) -> ObjectRef:
    """The key of one of a job's records (names above, and COMPLETED_RECORD)."""
    return job_records(settings, job_id).child(name)


class BucketMarkers:
    def __init__(self, objects: ObjectStore, settings: Settings) -> None:
        self._objects = objects
        self._settings = settings
        self._limit_s = 2 * settings.s3_timeout_seconds
        self._reads = asyncio.Semaphore(MAX_CONCURRENT_READS)

    def _ref(self, job_id: str, name: str) -> ObjectRef | None:
        return record_ref(self._settings, job_id, name) if _SAFE_ID.fullmatch(job_id) else None

    async def _call(self, what: str, job_id: str, call: Awaitable[T]) -> T | None:
        try:
            async with asyncio.timeout(self._limit_s):
                return await call
        except (ObjectStoreError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, ObjectStoreError) else "timed out"
            log.warning("job record call failed", what=what, job_id=job_id, reason=reason)
            return None

    async def _read(self, job_id: str, name: str, model: type[M]) -> M | None:
        ref = self._ref(job_id, name)
        if ref is None:
            return None
        data = await self._call("read", job_id, self._objects.get_bytes(ref, MAX_RECORD_BYTES))
        if data is None:
            return None
        try:
            return model.model_validate_json(data)
        except ValidationError:
            log.warning("unreadable job record", ref=ref.url)
            return None

    async def _exists(self, job_id: str, name: str) -> bool:
        ref = self._ref(job_id, name)
        if ref is None:
            return False
        return await self._call("head", job_id, self._objects.head(ref)) is not None

    async def _write(self, job_id: str, name: str, body: bytes, *, if_absent: bool) -> bool:
        ref = self._ref(job_id, name)
        if ref is None:
            return False
        put = self._objects.put_bytes(ref, body, if_absent=if_absent)
        return await self._call("write", job_id, put) is not None  # None: it failed

    async def completed(self, job_id: str) -> CompletedEvent | None:
        return await self._read(job_id, COMPLETED_RECORD, CompletedEvent)

    async def check(self, job_id: str) -> tuple[CompletedEvent | None, bool]:
        """(the completed event, whether cancelled), both read at once."""
        done, cancelled = await asyncio.gather(
            self.completed(job_id), self._exists(job_id, CANCELLED_RECORD)
        )
        return done, cancelled

    async def mark_completed(self, event: CompletedEvent) -> None:
        # Only if absent: the executor's commit created it already, and it stays the record.
        body = event.model_dump_json().encode()
        await self._write(event.job_id, COMPLETED_RECORD, body, if_absent=True)

    async def mark_accepted(self, job: Job) -> None:
        body = job.model_dump_json().encode()
        await self._write(job.id, ACCEPTED_RECORD, body, if_absent=False)

    async def mark_failed(self, event: FailedEvent) -> None:
        body = event.model_dump_json().encode()
        await self._write(event.job_id, FAILED_RECORD, body, if_absent=False)

    async def mark_cancelled(self, job_id: str) -> None:
        await self._write(job_id, CANCELLED_RECORD, b"", if_absent=False)

    async def mark_started(self, job_id: str, attempt: int) -> bool:
        body = StartedRecord(attempt=attempt).model_dump_json().encode()
        return await self._write(job_id, STARTED_RECORD, body, if_absent=False)

    async def started(self, job_id: str) -> int:
        found = await self._read(job_id, STARTED_RECORD, StartedRecord)
        return found.attempt if found is not None else 0

    async def remove(self, job_id: str) -> None:
        if _SAFE_ID.fullmatch(job_id):
            prefix = job_records(self._settings, job_id)
            await self._call("remove", job_id, self._objects.delete_prefix(prefix))

    async def record(self, job_id: str) -> JobRecord | None:
        """The job's record as its objects tell it (records.from_files), None if none."""
        accepted, completed, failed, cancelled = await asyncio.gather(
            self._read(job_id, ACCEPTED_RECORD, Job),
            self.completed(job_id),
            self._read(job_id, FAILED_RECORD, FailedEvent),
            self._exists(job_id, CANCELLED_RECORD),
        )
        return records.from_files(job_id, accepted, completed, failed, cancelled)

    async def outcomes(self, job_ids: list[str]) -> list[Outcome]:
        """The outcomes the records hold for these jobs (those that have one), in order;
        at most MAX_CONCURRENT_READS jobs are read at a time."""
        found = await asyncio.gather(*(self._bounded_outcome(j) for j in job_ids))
        return [o for o in found if o is not None]

    async def _bounded_outcome(self, job_id: str) -> Outcome | None:
        async with self._reads:
            return await self._outcome(job_id)

    async def _outcome(self, job_id: str) -> Outcome | None:
        if (done := await self.completed(job_id)) is not None:
            return done  # the commit wins over a cancel that raced it (records.from_files)
        if (failed := await self._read(job_id, FAILED_RECORD, FailedEvent)) is not None:
            return failed
        if await self._exists(job_id, CANCELLED_RECORD):
            return CancelledEvent(job_id=job_id)
        return None
