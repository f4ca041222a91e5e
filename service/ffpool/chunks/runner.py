"""Runs one chunk sub-job (`job.chunk` set): fetch its cut video, encode it, store the result.

A chunk's run is the single run's video encode on a piece of the input (docs/chunks.md):
`out-NNNN.mkv` for a transcode, one `out-NNNN-rK.mkv` per rung for a ladder. The outputs are
stored last-name-first, so the first name (`output_name(i)` or `output_name(i, 0)`) present
means all are: a redelivered chunk whose first run got that far returns at once, and the
coordinator may check that one name alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from ffpool import logs
from ffpool.chunks import argv as chunk_argv
from ffpool.chunks.plan import input_name, output_name
from ffpool.chunks.store import ChunkStore
from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode
from ffpool.domain.jobs import ChunkTask, Job, LadderOp, TranscodeOp
from ffpool.ffmpeg import ladder, outcome
from ffpool.ffmpeg.binaries import Binaries, BinariesNotFound
from ffpool.ffmpeg.bucket_commit import storage_message
from ffpool.ffmpeg.probe import ProbeError, probe
from ffpool.ffmpeg.progress import ProgressTracker
from ffpool.ffmpeg.relay import ProgressCallback, run_tracked
from ffpool.settings import Settings
from ffpool.storage.objects import ObjectStoreError

log = logs.get(__name__)

# A chunk's probe reads our own fresh stream copy: seconds, never the whole budget.
CHUNK_PROBE_TIMEOUT_S: Final = 60.0
_Failure = outcome.JobFailure | ProbeError | ObjectStoreError | OSError


# A chunk's storage calls are tried this many times, a second more apart each time.
STORAGE_ATTEMPTS = 3
STORAGE_RETRY_S = 1.0


class ChunkRunner:
    def __init__(
        self, settings: Settings, binaries_provider: Callable[[], Binaries], store: ChunkStore
    ) -> None:
        """`binaries_provider`: the executor's (bound, resolved on first use) binaries."""
        self.settings = settings
        self._binaries = binaries_provider
        self.store = store

    async def run(self, job: Job, on_progress: ProgressCallback) -> CompletedEvent | FailedEvent:
        """Never raises, except CancelledError (after removing the run's workspace)."""
        started = time.monotonic()
        try:
            event: CompletedEvent | FailedEvent = await self._run_retrying(
                job, started, on_progress
            )
        except asyncio.CancelledError:
            log.info("chunk cancelled", job_id=job.id)
            raise
        except (outcome.JobFailure, ProbeError, ObjectStoreError, OSError) as exc:
            event = _failure(exc).event(job.id)
        except Exception:
            log.exception("chunk failed unexpectedly", job_id=job.id)
            event = FailedEvent(
                job_id=job.id, code=FailureCode.INTERNAL_ERROR, message="internal error"
            )
        if isinstance(event, FailedEvent):
            log.info("chunk failed", job_id=job.id, code=event.code.value, reason=event.message)
        return event

    async def _run_retrying(
        self, job: Job, started: float, on_progress: ProgressCallback
    ) -> CompletedEvent | FailedEvent:
        """A storage failure (a bucket's or a volume's hiccup) is tried again here, the chunk's
        own business: it would otherwise fail the whole parent. FFmpeg's failures are not:
        the same chunk would fail the same way."""
        for attempt in range(1, STORAGE_ATTEMPTS + 1):
            try:
                return await self._run(job, job.chunk, started, on_progress)
            except (ObjectStoreError, OSError) as exc:
                if attempt == STORAGE_ATTEMPTS:
                    raise
                log.warning("chunk storage failed: trying again", job_id=job.id, error=repr(exc))
                await asyncio.sleep(STORAGE_RETRY_S * attempt)
        raise AssertionError("unreachable")

    async def _run(
        self, job: Job, chunk: ChunkTask | None, started: float, on_progress: ProgressCallback
    ) -> CompletedEvent | FailedEvent:
        if chunk is None:
            raise outcome.JobFailure(FailureCode.INTERNAL_ERROR, "not a chunk job")
        op = job.spec.operation
        if not isinstance(op, TranscodeOp | LadderOp):
            raise outcome.JobFailure(FailureCode.INTERNAL_ERROR, f"{op.op} is never chunked")
        first = output_name(chunk.index, 0 if isinstance(op, LadderOp) else None)
        if await self.store.has(chunk.parent, first):
            log.info("chunk already encoded: not run again", job_id=job.id)
            return _completed(job, started)
        try:
            binaries = self._binaries()
        except BinariesNotFound as exc:
            raise outcome.JobFailure(FailureCode.INTERNAL_ERROR, str(exc)) from exc
        log.info("chunk started", job_id=job.id, parent=chunk.parent, index=chunk.index)
        async with self.store.workspace(chunk.parent) as workspace:
            src = workspace / input_name(chunk.index)
            if not await self.store.fetch(chunk.parent, input_name(chunk.index), src):
                return FailedEvent(
                    job_id=job.id,
                    code=FailureCode.INTERNAL_ERROR,
                    message="chunk input missing",
                )
            remaining = _Budget(self.settings.job_timeout_seconds, started)
            argv, outs = await self._argv(op, chunk.index, binaries, src, remaining)
            await self._encode(job, chunk, argv, remaining, workspace, on_progress)
            for out in outs:  # -fs stops at the limit with exit code 0: a full file is cut
                size = await asyncio.to_thread(_size, out)
                limit = self.settings.max_output_bytes
                if (failure := outcome.size_failure(out.name, size, limit)) is not None:
                    raise failure
            for out in reversed(outs):  # the first name last: see the module's docstring
                await self.store.put(chunk.parent, out.name, out)
        log.info("chunk encoded", job_id=job.id, parent=chunk.parent, index=chunk.index)
        return _completed(job, started)

    async def _argv(
        self,
        op: TranscodeOp | LadderOp,
        index: int,
        binaries: Binaries,
        src: Path,
        remaining: _Budget,
    ) -> tuple[Sequence[str], list[Path]]:
        """The encode of chunk `index` (the file `src`) and the files it writes beside it."""
        if isinstance(op, TranscodeOp):
            outs = [src.parent / output_name(index)]
            return chunk_argv.encode_argv(binaries, self.settings, op, src, outs[0]), outs
        # A ladder's rungs follow from the chunk's own frame size, as from the input's.
        timeout_s = min(CHUNK_PROBE_TIMEOUT_S, remaining())
        max_pixels = self.settings.max_input_pixels
        info = await probe(binaries, src, timeout_s, max_pixels=max_pixels)
        rungs = ladder.resolve_rungs(op, info)
        outs = [src.parent / output_name(index, k) for k in range(len(rungs))]
        return ladder.ladder_video_argv(binaries, self.settings, op, rungs, src, outs), outs

    async def _encode(
        self,
        job: Job,
        chunk: ChunkTask,
        argv: Sequence[str],
        remaining: _Budget,
        workspace: Path,
        on_progress: ProgressCallback,
    ) -> None:
        tracker = ProgressTracker(job.id, expected_duration_s=chunk.duration_s or None)
        await run_tracked(
            argv,
            tracker,
            on_progress,
            timeout_s=remaining(),
            settings=self.settings,
            root=workspace,
        )
        on_progress(tracker.completed())


class _Budget:
    """The job's time left, from its start; a JobFailure(TIMEOUT) once none is."""

    def __init__(self, limit_s: float, started: float) -> None:
        self._limit_s = limit_s
        self._started = started

    def __call__(self) -> float:
        left = self._limit_s - (time.monotonic() - self._started)
        if left <= 0:
            raise outcome.JobFailure(FailureCode.TIMEOUT, "the job ran out of its time limit")
        return left


def _failure(exc: _Failure) -> outcome.JobFailure:
    if isinstance(exc, outcome.JobFailure):
        return exc
    if isinstance(exc, ObjectStoreError):
        return outcome.JobFailure(FailureCode.STORAGE_ERROR, storage_message(exc))
    if isinstance(exc, OSError):
        log.warning("chunk store failed", error=type(exc).__name__)
        return outcome.JobFailure(FailureCode.STORAGE_ERROR, "the chunk store failed")
    return outcome.JobFailure(exc.code, exc.message)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _completed(job: Job, started: float) -> CompletedEvent:
    elapsed = round(time.monotonic() - started, 3)
    return CompletedEvent(job_id=job.id, outputs=(), processing_time_s=elapsed)
