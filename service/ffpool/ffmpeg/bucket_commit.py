"""A run's scratch space and commit when there is no shared filesystem (STORAGE=s3).

Each run works in its own LOCAL scratch directory, SCRATCH_ROOT/<job id>/.run-<random>/; no
lock is taken, since two copies of a job may run at once on two machines that share nothing
but the bucket. The commit (docs/storage.md, "Commits without a shared filesystem"):

1. if `<S3_PREFIX>/jobs/<id>/completed.json` exists, another run finished: report its event;
2. upload each output whole to `<output base>/<id>/<name>` (a single PUT, or a multipart
   upload that becomes visible only when it completes: S3 objects are never half-visible);
3. create `completed.json` only if absent (a conditional PUT): the first commit wins, a later
   one reports the winner's event. Its outputs have the same keys, written by the same job.

Any storage failure leaves no record, so nothing half-uploaded is ever reported as done. The
scratch directory goes with the run, whatever its outcome; an emptied job directory too.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from ffpool import logs, names
from ffpool.auth.signed_links import is_package
from ffpool.domain.events import CompletedEvent, OutputFile
from ffpool.ffmpeg.commit import SCRATCH_PREFIX
from ffpool.settings import Settings
from ffpool.storage.objects import (
    ObjectErrorKind,
    ObjectRef,
    ObjectStore,
    ObjectStoreError,
    parse_url,
)

log = logs.get(__name__)

COMPLETED_RECORD: Final = "completed.json"
# A completed event is a few KiB (domain/bounds.py caps what it may hold); anything this large
# under the record's key is not one of ours.
MAX_RECORD_BYTES: Final = 1024 * 1024
# Re-reads of the record after its create failed or lost its answer (a storage blip).
RECORD_REREAD_DELAYS_S: Final = (0.0, 0.5, 2.0)


def scratch_root(settings: Settings) -> Path:
    return settings.scratch_root or settings.media_root / ".scratch"


def job_records(settings: Settings, job_id: str) -> ObjectRef:
    """`S3_BUCKET/<S3_PREFIX>/jobs/<job id>`: where a job's state records are kept."""
    if settings.s3_bucket is None:
        raise ValueError("STORAGE=s3 needs S3_BUCKET")
    pool = ObjectRef(settings.s3_bucket, settings.s3_prefix)
    return pool.child(names.S3_JOBS_PREFIX, job_id)


async def read_completed(objects: ObjectStore, ref: ObjectRef) -> CompletedEvent | None:
    """The completed record at `ref`; None if absent or unreadable (raises ObjectStoreError
    when the storage cannot answer: "absent" must not be guessed then)."""
    data = await objects.get_bytes(ref, MAX_RECORD_BYTES)
    if data is None:
        return None
    try:
        return CompletedEvent.model_validate_json(data)
    except ValidationError:
        log.warning("unreadable completed record", ref=ref.url)
        return None


def storage_message(exc: ObjectStoreError) -> str:
    """A storage failure outside the input's download (the job's record, the outputs' upload),
    for the client: the store's messages name the object, never a secret."""
    if exc.kind is ObjectErrorKind.DENIED:
        return f"the object storage refused the pool's credentials: {exc.message}"
    return f"the object storage failed ({exc.kind.value}): {exc.message}"


@dataclass
class BucketScope:
    objects: ObjectStore
    record: ObjectRef
    """`completed.json` of the job."""
    outputs: ObjectRef
    """`<output base>/<job id>`: the outputs' keys are `<this>/<name>`."""
    scratch: Path
    link_ttl_s: float
    done: CompletedEvent | None = None
    """The committed outcome found on entry: another run finished the job, do not run it."""

    async def commit(self, event: CompletedEvent) -> CompletedEvent:
        """Upload the event's outputs (files named so in the scratch directory), then create
        the record; the outcome that holds afterwards. Raises ObjectStoreError, and then no
        record was written."""
        files = []
        # A package's files are linked through the package route, never one by one: no
        # presigned link per file, which would make its record too large (docs/ladders.md).
        presign = not is_package(event)
        for out in event.outputs:
            # Checked before every upload, not once: a twin run that committed meanwhile keeps
            # its objects (the same keys), which this run's upload would otherwise replace.
            if (winner := await read_completed(self.objects, self.record)) is not None:
                log.info("job already committed by another run", job_id=event.job_id)
                return await self.fresh_links(winner)
            files.append(await self._upload(out, presign))
        final = event.model_copy(update={"outputs": tuple(files)})
        body = final.model_dump_json().encode()
        try:
            if await self.objects.put_bytes(self.record, body, if_absent=True):
                return final
        except ObjectStoreError:
            # The PUT may have landed with its answer lost: the record, if readable, decides.
            if (landed := await self._reread()) is None:
                raise
            return await self.fresh_links(landed)
        log.warning("another run committed first", job_id=event.job_id)
        winner = await self._reread()
        return final if winner is None else await self.fresh_links(winner)

    async def _reread(self) -> CompletedEvent | None:
        """The record after a failed or lost create: a few tries, None if still unreadable."""
        for delay_s in RECORD_REREAD_DELAYS_S:
            await asyncio.sleep(delay_s)
            try:
                return await read_completed(self.objects, self.record)
            except ObjectStoreError:
                continue
        return None

    async def _upload(self, out: OutputFile, presign: bool = True) -> OutputFile:
        stored = await self.objects.put_file(
            self.outputs.child(out.name), self.scratch / out.name, out.content_type
        )
        update: dict[str, object] = {"location": stored.ref.url, "sha256": stored.sha256}
        if presign:
            link = await self.objects.presign_get(stored.ref, self.link_ttl_s, filename=out.name)
            update["url"] = link
        return out.model_copy(update={**update, "size": stored.size})

    async def fresh_links(self, event: CompletedEvent) -> CompletedEvent:
        """A recorded event's download links, presigned again: the record's own may have
        expired since it was written (presigning is local: no request to the storage). A
        package's keep their route links."""
        if is_package(event):
            return event
        files = []
        for out in event.outputs:
            if out.location is not None:
                ref = parse_url(out.location)
                link = await self.objects.presign_get(ref, self.link_ttl_s, filename=out.name)
                out = out.model_copy(update={"url": link})
            files.append(out)
        return event.model_copy(update={"outputs": tuple(files)})


@contextlib.asynccontextmanager
async def bucket_scope(
    objects: ObjectStore, settings: Settings, job_id: str, output_base: ObjectRef
) -> AsyncIterator[BucketScope]:
    """A fresh local scratch directory and the job's commit check; the directory (and the
    job's, once empty) is removed on the way out, whatever happened."""
    job_dir = scratch_root(settings) / job_id
    scratch = job_dir / f"{SCRATCH_PREFIX}{secrets.token_hex(8)}"
    record = job_records(settings, job_id).child(COMPLETED_RECORD)
    scope = BucketScope(
        objects,
        record,
        output_base.child(job_id),
        scratch,
        settings.download_link_ttl_seconds,
    )
    found = await read_completed(objects, record)
    scope.done = None if found is None else await scope.fresh_links(found)
    await asyncio.to_thread(scratch.mkdir, mode=0o755, parents=True)
    try:
        yield scope
    finally:
        await asyncio.shield(asyncio.to_thread(_remove, scratch, job_dir))


def _remove(scratch: Path, job_dir: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
    with contextlib.suppress(OSError):
        job_dir.rmdir()  # only if empty: another run of the job may be working beside it
