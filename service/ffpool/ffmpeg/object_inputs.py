"""A job's input from object storage (STORAGE=s3), downloaded into the run's scratch directory.

An `s3` input is checked again against what its tenant may read (storage/access.py): the
server checked it at submit, and a worker never trusts the queue to have only checked jobs.
An upload is the object the server stored under S3_BUCKET/S3_PREFIX/uploads/<tenant>/<id>.
A path input is read from MEDIA_ROOT as without object storage (inputs.py). The download goes
with the run, whatever its outcome, like a URL input's (docs/storage.md, "Failure codes").
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ffpool import logs, names
from ffpool.auth.tenants import TenantSettings
from ffpool.domain.events import FailureCode
from ffpool.domain.jobs import Job, S3Input, UploadInput
from ffpool.ffmpeg.inputs import URL_INPUT_NAME, InputError, materialize
from ffpool.settings import Settings
from ffpool.storage import access
from ffpool.storage.media import Storage
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStore, ObjectStoreError

log = logs.get(__name__)

STORAGE_UNAVAILABLE: Final = "the object storage could not be reached"


def upload_ref(settings: Settings, tenant: str, upload_id: str) -> ObjectRef:
    """Where an HTTP upload is stored in the pool's bucket (docs/storage.md, object layout)."""
    if settings.s3_bucket is None:
        raise InputError(FailureCode.INTERNAL_ERROR, "STORAGE=s3 needs S3_BUCKET")
    pool = ObjectRef(settings.s3_bucket, settings.s3_prefix)
    return pool.child(names.S3_UPLOADS_PREFIX, tenant, upload_id)


def input_error(exc: ObjectStoreError, ref: ObjectRef, what: str) -> InputError:
    """The failure a client sees for an object that could not be read."""
    match exc.kind:
        case ObjectErrorKind.NOT_FOUND:
            return InputError(FailureCode.INPUT_NOT_FOUND, f"{what} {ref.url} does not exist")
        case ObjectErrorKind.DENIED:
            return InputError(
                FailureCode.INPUT_REJECTED, f"the pool's credentials may not read {ref.url}"
            )
        case ObjectErrorKind.TOO_LARGE:
            return InputError(FailureCode.INPUT_TOO_LARGE, f"{what} {ref.url}: {exc.message}")
        case ObjectErrorKind.INVALID:
            # Refused by the storage (a checksum mismatch, an archived object, a KMS error):
            # the object cannot be used as it is, and the store's message says why.
            return InputError(FailureCode.INPUT_REJECTED, f"{what} {ref.url}: {exc.message}")
        case _:
            return InputError(FailureCode.STORAGE_ERROR, f"{STORAGE_UNAVAILABLE}: {exc.message}")


async def fetch_object(
    objects: ObjectStore, ref: ObjectRef, dest: Path, max_bytes: int, what: str = "input"
) -> Path:
    try:
        size = await objects.download(ref, dest, max_bytes)
    except ObjectStoreError as exc:
        log.warning("object input download failed", ref=ref.url, kind=exc.kind.value)
        raise input_error(exc, ref, what) from exc
    log.info("object input downloaded", ref=ref.url, size=size)
    return dest


async def materialize_from_objects(
    job: Job,
    storage: Storage,
    settings: Settings,
    objects: ObjectStore,
    tenant: TenantSettings,
    *,
    into: Path,
) -> Path:
    """The local file for a job's input with object storage; raises InputError."""
    job_input = job.spec.input
    if isinstance(job_input, S3Input):
        try:
            ref = access.check_read(settings, tenant, job_input.url)
        except access.AccessDenied as exc:
            raise InputError(FailureCode.INPUT_REJECTED, str(exc)) from exc
        return await fetch_object(objects, ref, into / URL_INPUT_NAME, settings.url_max_bytes)
    if isinstance(job_input, UploadInput):
        ref = upload_ref(settings, job.tenant, job_input.upload_id)
        return await fetch_object(
            objects, ref, into / URL_INPUT_NAME, settings.url_max_bytes, "upload"
        )
    return await materialize(job_input, job.id, storage, settings, job.tenant, into=into)
