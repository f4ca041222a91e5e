"""What a process opens at start besides its backend: the tenants file and, with STORAGE=s3,
the object store, checked once so a wrong bucket or key stops the start with a clear message
instead of failing every job (docs/storage.md).
"""

from __future__ import annotations

import asyncio
from typing import Final

from ffpool import logs
from ffpool.auth import tenants
from ffpool.auth.tenants import TenantsFile, TenantsFileError
from ffpool.settings import Settings, StorageKind
from ffpool.storage.objects import ObjectRef, ObjectStore, ObjectStoreError

log = logs.get(__name__)

# A key nobody writes: reading it proves the bucket exists and the credentials may read it.
PROBE_KEY: Final = ".ffpool-reachable"
# The store's own calls have S3_TIMEOUT_SECONDS each and bounded retries; this bounds them all.
PROBE_TIMEOUT_FACTOR: Final = 4


async def load_tenants(settings: Settings) -> TenantsFile:
    """TENANTS_FILE parsed (no file: no tenants); a file that cannot be used stops the start."""
    try:
        return await asyncio.to_thread(tenants.load, settings.tenants_file)
    except TenantsFileError as exc:
        raise SystemExit(str(exc)) from None


def _new_store(settings: Settings) -> ObjectStore:
    from ffpool.storage.s3 import S3ObjectStore

    return S3ObjectStore.from_settings(settings)


async def open_objects(settings: Settings) -> ObjectStore | None:
    """The pool's object store with STORAGE=s3 (None without), once S3_BUCKET answered."""
    if settings.storage is not StorageKind.S3:
        return None
    bucket = settings.s3_bucket
    if bucket is None:
        raise SystemExit("STORAGE=s3 needs S3_BUCKET: the bucket for uploads, job records, outputs")
    store = _new_store(settings)
    probe = ObjectRef(bucket, settings.s3_prefix).child(PROBE_KEY)
    try:
        async with asyncio.timeout(settings.s3_timeout_seconds * PROBE_TIMEOUT_FACTOR):
            await store.get_bytes(probe, max_bytes=1024)
    except (ObjectStoreError, TimeoutError) as exc:
        await store.close()
        detail = (
            f"{exc.kind.value}: {exc.message}" if isinstance(exc, ObjectStoreError) else "timeout"
        )
        raise SystemExit(f"S3_BUCKET {bucket} cannot be used ({detail})") from None
    log.info("object storage ready", bucket=bucket, prefix=settings.s3_prefix)
    return store
