"""Where a chunked job's pieces wait between workers: the cut chunks, their encodes, the plan.

Two implementations of one protocol (docs/chunks.md):

- `FileChunkStore`, on the shared MEDIA_ROOT: `MEDIA_ROOT/chunks/<parent>/<name>`. A run's
  workspace is a directory beside them on the same file system, so `put` is a rename and
  `fetch` a hard link: no bytes are copied.
- `ObjectChunkStore` (STORAGE=s3): `S3_PREFIX/chunks/<parent>/<name>` in the pool's bucket;
  workspaces are local, in SCRATCH_ROOT/<parent>/.run-<random>/, where the executor's scratch
  sweep (ffmpeg/sweep.py `sweep_scratch`) finds those of crashed runs.

Names are ours (chunks/plan.py); they are still checked, like the parent's id, so nothing here
can address a path outside the parent's directory or prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Final, Protocol

from ffpool import logs, names
from ffpool.ffmpeg.bucket_commit import scratch_root
from ffpool.ffmpeg.commit import SCRATCH_PREFIX
from ffpool.settings import Settings, StorageKind
from ffpool.storage.media import CHUNKS_DIR, DIR_MODE, Storage, chunk_dir
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStore, ObjectStoreError

log = logs.get(__name__)

CHUNK_CONTENT_TYPE: Final = "application/octet-stream"
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9]+)?")
_ID: Final = re.compile(r"[0-9a-f]{32}")


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a chunk file name: {name!r}")
    return name


def _parent(parent: str) -> str:
    if not _ID.fullmatch(parent):
        raise ValueError("not a job id")
    return parent


class ChunkStore(Protocol):
    async def put(self, parent: str, name: str, path: Path) -> None:
        """Store the local file `path` (which may be moved away) as `name`; readers see the
        whole file or none."""

    async def fetch(self, parent: str, name: str, dest: Path) -> bool:
        """The stored `name` as the local file `dest`; False when there is none."""

    async def has(self, parent: str, name: str) -> bool: ...

    async def remove(self, parent: str) -> None:
        """Everything stored for `parent`; nothing there is not an error."""

    def workspace(self, parent: str) -> AbstractAsyncContextManager[Path]:
        """A fresh local directory for one run, removed on exit whatever happens."""

    async def sweep(self, older_than_s: float) -> list[str]:
        """Remove what crashed runs left that is older than `older_than_s` (call it with the
        job timeout, once per worker process); returns the parents removed."""


async def _remove_tree(path: Path) -> None:
    # Shielded: a cancelled run still leaves nothing behind.
    await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))


class FileChunkStore:
    def __init__(self, root: Path) -> None:
        """`root`: MEDIA_ROOT (the real path: Storage.root)."""
        self.root = root

    def _dir(self, parent: str) -> Path:
        return chunk_dir(self.root, _parent(parent))

    async def put(self, parent: str, name: str, path: Path) -> None:
        await asyncio.to_thread(self._put, self._dir(parent), _checked(name), path)

    @staticmethod
    def _put(folder: Path, name: str, path: Path) -> None:
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        try:
            os.replace(path, folder / name)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another file system: a copy, then a rename
                raise
            temp = folder / f".{name}.{uuid.uuid4().hex}.part"
            try:
                shutil.copyfile(path, temp)
                os.replace(temp, folder / name)
            finally:
                temp.unlink(missing_ok=True)

    async def fetch(self, parent: str, name: str, dest: Path) -> bool:
        source = self._dir(parent) / _checked(name)
        return await asyncio.to_thread(_link_or_copy, source, dest)

    async def has(self, parent: str, name: str) -> bool:
        path = self._dir(parent) / _checked(name)
        return await asyncio.to_thread(path.is_file)

    async def remove(self, parent: str) -> None:
        await _remove_tree(self._dir(parent))

    @contextlib.asynccontextmanager
    async def workspace(self, parent: str) -> AsyncIterator[Path]:
        path = self._dir(parent) / f"{SCRATCH_PREFIX}{uuid.uuid4().hex}"
        await asyncio.to_thread(path.mkdir, DIR_MODE, True)
        try:
            yield path
        finally:
            await _remove_tree(path)

    async def sweep(self, older_than_s: float) -> list[str]:
        """Remove the pieces of parents untouched for `older_than_s` (a crashed or abandoned
        run's: every run touches its parent's directory when it makes its workspace, and a
        parent's run ends within the job timeout); returns their ids."""
        cutoff = time.time() - older_than_s
        return await asyncio.to_thread(_remove_stale, self.root / CHUNKS_DIR, cutoff)


def _link_or_copy(source: Path, dest: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        dest.unlink()
    try:
        os.link(source, dest)
    except FileNotFoundError:
        return False
    except OSError:  # no hard links here (another file system): a copy
        try:
            shutil.copyfile(source, dest)
        except FileNotFoundError:
            return False
    return True


def _remove_stale(folder: Path, cutoff: float) -> list[str]:
    removed = []
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                stale = entry.stat(follow_symlinks=False).st_mtime < cutoff
                if _ID.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False) and stale:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.name)
    return sorted(removed)


class ObjectChunkStore:
    def __init__(self, objects: ObjectStore, prefix: ObjectRef, scratch: Path, max_bytes: int):
        """`prefix`: the pool's `S3_BUCKET/S3_PREFIX`; `scratch`: SCRATCH_ROOT; `max_bytes`:
        the largest piece a fetch accepts."""
        self.objects = objects
        self.prefix = prefix.child(names.S3_CHUNKS_PREFIX)
        self.scratch = scratch
        self.max_bytes = max_bytes

    def _ref(self, parent: str, name: str) -> ObjectRef:
        return self.prefix.child(_parent(parent), _checked(name))

    async def put(self, parent: str, name: str, path: Path) -> None:
        await self.objects.put_file(self._ref(parent, name), path, CHUNK_CONTENT_TYPE)

    async def fetch(self, parent: str, name: str, dest: Path) -> bool:
        try:
            await self.objects.download(self._ref(parent, name), dest, self.max_bytes)
        except ObjectStoreError as exc:
            if exc.kind is ObjectErrorKind.NOT_FOUND:
                await asyncio.to_thread(dest.unlink, True)
                return False
            raise
        return True

    async def has(self, parent: str, name: str) -> bool:
        return await self.objects.head(self._ref(parent, name)) is not None

    async def remove(self, parent: str) -> None:
        await self.objects.delete_prefix(self.prefix.child(_parent(parent)))

    @contextlib.asynccontextmanager
    async def workspace(self, parent: str) -> AsyncIterator[Path]:
        path = self.scratch / _parent(parent) / f"{SCRATCH_PREFIX}{uuid.uuid4().hex}"
        await asyncio.to_thread(path.mkdir, DIR_MODE, True)
        try:
            yield path
        finally:
            await _remove_tree(path)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.rmdir, path.parent)  # only if empty

    async def sweep(self, older_than_s: float) -> list[str]:
        """Workspaces of crashed runs go with the executor's scratch sweep; stored pieces
        go with their parent (`remove`): a bucket is not listed here."""
        return []


def chunk_store(settings: Settings, storage: Storage, objects: ObjectStore | None) -> ChunkStore:
    """The pool's chunk store: in its bucket with STORAGE=s3, else under MEDIA_ROOT."""
    if settings.storage is not StorageKind.S3:
        return FileChunkStore(storage.root)
    if objects is None or settings.s3_bucket is None:
        raise ValueError("STORAGE=s3 needs an object store and S3_BUCKET")
    prefix = ObjectRef(settings.s3_bucket, settings.s3_prefix)
    return ObjectChunkStore(objects, prefix, scratch_root(settings), settings.max_output_bytes)
