"""Runs one job: input → FFmpeg → outputs, reported as a `completed` or `failed` event.

A run holds the job's run lock and writes into its own scratch directory; a finished run
commits its outputs atomically, and the first commit wins (commit.py). A failed or cancelled
run removes only its own scratch files, never another run's, never committed outputs. With
object storage (STORAGE=s3) a run works in a local scratch directory, reads its input from the
bucket and commits by uploading, the first commit still winning (bucket_commit.py).

Hot path per job: one ffprobe of the input (its frame size is checked before anything decodes
it: limits.py), one FFmpeg process (its stderr gives the input duration for the progress
percentage), plus one ffprobe of the output for video/audio results; a thumbnail's metadata is
read from the image header. A ladder's package is a directory of files FFmpeg names itself:
they are listed after the run (output_dir.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ffpool import logs
from ffpool.auth.tenants import TenantSettings, TenantsFile, settings_for
from ffpool.domain import bounds
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    MediaInfo,
    OutputFile,
    ProgressEvent,
)
from ffpool.domain.jobs import Job, ProbeOp
from ffpool.ffmpeg import limits, output_dir, pdeathsig, sweep
from ffpool.ffmpeg import outcome as outcome
from ffpool.ffmpeg.argv import FFmpegPlan, PlannedOutput, build_plan
from ffpool.ffmpeg.binaries import Binaries, BinariesNotFound, resolve
from ffpool.ffmpeg.bucket_commit import bucket_scope, scratch_root, storage_message
from ffpool.ffmpeg.commit import run_scope
from ffpool.ffmpeg.inputs import InputError, materialize
from ffpool.ffmpeg.object_inputs import materialize_from_objects
from ffpool.ffmpeg.probe import ProbeError, probe
from ffpool.ffmpeg.progress import ProgressTracker
from ffpool.ffmpeg.relay import ProgressCallback, run_tracked
from ffpool.settings import Settings, StorageKind
from ffpool.storage import access
from ffpool.storage.media import Storage, StorageError
from ffpool.storage.objects import ObjectStore, ObjectStoreError

log = logs.get(__name__)

# The output probe reads our own fresh file: it needs seconds, never the whole job budget.
OUTPUT_PROBE_TIMEOUT_S: Final = 60.0
# An input's probe reads only the start of the input (ffprobe's probesize): seconds as well.
INPUT_PROBE_TIMEOUT_S: Final = 60.0

_Failure = outcome.JobFailure | InputError | StorageError | ProbeError | ObjectStoreError


@dataclass
class Attempt:
    """One run of a job on this worker: its time budget counts from `started`."""

    job: Job
    started: float

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class Executor:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        binaries: Binaries | None = None,
        objects: ObjectStore | None = None,
        tenants: TenantsFile | None = None,
    ):
        """With STORAGE=s3, `objects` is the pool's store (required) and `tenants` says
        what each tenant may read and where its outputs go; otherwise both are unused."""
        if settings.storage is StorageKind.S3 and objects is None:
            raise ValueError("STORAGE=s3 needs an object store")
        self.settings = settings
        self.storage = storage
        self.objects = objects if settings.storage is StorageKind.S3 else None
        self.tenants = tenants or TenantsFile()
        self._binaries = binaries
        self._bound: Binaries | None = None
        self._swept = False

    @property
    def binaries(self) -> Binaries:
        """Resolved on first use, so a process that never runs jobs (a RabbitMQ-backed server)
        needs no FFmpeg; a worker reads it at start-up to fail fast. Raises BinariesNotFound."""
        if self._bound is None:
            found = self._binaries or resolve(self.settings)
            self._bound = limits.bound(found, self.settings)  # every run behind its rlimits
            pdeathsig.trampoline()  # checked here, at worker start, not in a job's first run
        return self._bound

    async def execute(
        self, job: Job, on_progress: ProgressCallback
    ) -> CompletedEvent | FailedEvent:
        """Never raises, except CancelledError (after removing the run's scratch directory)."""
        attempt = Attempt(job=job, started=time.monotonic())
        log.info("job started", job_id=job.id, operation=job.spec.operation.op)
        try:
            event: CompletedEvent | FailedEvent = await self._execute(attempt, on_progress)
        except asyncio.CancelledError:
            # The run's scratch directory is gone already (run_scope): nothing else to undo.
            log.info("job cancelled", job_id=job.id, elapsed_s=round(attempt.elapsed_s, 3))
            raise
        except (outcome.JobFailure, InputError, StorageError, ProbeError, ObjectStoreError) as exc:
            event = self._failure(exc).event(job.id)
        except Exception:
            log.exception("job failed unexpectedly", job_id=job.id)
            event = FailedEvent(
                job_id=job.id, code=FailureCode.INTERNAL_ERROR, message="internal error"
            )
        if isinstance(event, FailedEvent):
            log.info("job failed", job_id=job.id, code=event.code.value, reason=event.message)
        else:
            log.info("job completed", job_id=job.id, seconds=event.processing_time_s)
        return event

    async def _execute(self, attempt: Attempt, on_progress: ProgressCallback) -> CompletedEvent:
        job = attempt.job
        self._require_binaries()
        if self.objects is not None:
            return await self._execute_with_objects(attempt, self.objects, on_progress)
        if not self._swept:
            # Once per process: what runs of a crashed worker left behind (sweep.py).
            self._swept = True
            await sweep.sweep_once(self.storage.root, self.settings)
        job_dir = await asyncio.to_thread(self.storage.job_dir, job.id, job.tenant)
        async with run_scope(job_dir) as scope:
            if scope.done is not None:
                log.info("job already committed by another run: not run again", job_id=job.id)
                return scope.done
            event = await self._produce(attempt, scope.scratch, on_progress)
            names = tuple(out.name for out in event.outputs)
            return await asyncio.to_thread(scope.commit, names, event)

    async def _execute_with_objects(
        self, attempt: Attempt, objects: ObjectStore, on_progress: ProgressCallback
    ) -> CompletedEvent:
        """STORAGE=s3: local scratch, input from and outputs to object storage."""
        job = attempt.job
        if not self._swept:
            self._swept = True
            await sweep.sweep_scratch(scratch_root(self.settings), self.settings)
        tenant = settings_for(self.tenants, job.tenant)
        try:
            base = access.output_base(
                self.settings, tenant, job.spec.output, tenant_name=job.tenant
            )
        except access.AccessDenied as exc:
            raise outcome.JobFailure(FailureCode.INPUT_REJECTED, str(exc)) from exc
        async with bucket_scope(objects, self.settings, job.id, base) as scope:
            if scope.done is not None:
                log.info("job already committed by another run: not run again", job_id=job.id)
                return scope.done
            event = await self._produce(attempt, scope.scratch, on_progress, tenant)
            return await scope.commit(event)

    async def _input(self, job: Job, scratch: Path, tenant: TenantSettings | None) -> Path:
        """The input as a local file; a download goes into the run's scratch directory, and
        so with the run, whatever its outcome."""
        if self.objects is not None and tenant is not None:
            return await materialize_from_objects(
                job, self.storage, self.settings, self.objects, tenant, into=scratch
            )
        return await materialize(
            job.spec.input, job.id, self.storage, self.settings, job.tenant, into=scratch
        )

    async def _produce(
        self,
        attempt: Attempt,
        scratch: Path,
        on_progress: ProgressCallback,
        tenant: TenantSettings | None = None,
    ) -> CompletedEvent:
        """The run itself, all in the scratch directory: its event, naming its outputs."""
        job = attempt.job
        src = await self._input(job, scratch, tenant)
        # Every input is probed first: its frame size decides whether it is decoded at all.
        timeout_s = min(INPUT_PROBE_TIMEOUT_S, self._remaining(attempt))
        max_pixels = self.settings.max_input_pixels
        info = await probe(self.binaries, src, timeout_s, max_pixels=max_pixels)
        read = (await asyncio.to_thread(src.stat)).st_size
        if isinstance(job.spec.operation, ProbeOp):
            return self._completed(attempt, (), info, read)
        plan = build_plan(job.spec.operation, src, scratch, self.binaries, self.settings, info)
        if plan.output_dir is not None:
            await asyncio.to_thread(output_dir.prepare, plan)
        last = await self._encode(attempt, plan, src, info, scratch, on_progress)
        max_bytes = self.settings.max_output_bytes
        outputs, sizes = await asyncio.to_thread(output_dir.finalized, plan, max_bytes)
        if self.objects is None:  # the disk quota; bucket bytes are not metered (storage.md)
            await asyncio.to_thread(self.storage.charge_outputs, job.tenant, sum(sizes))
        on_progress(last)
        files = tuple(
            self._output_file(job.id, out, size) for out, size in zip(outputs, sizes, strict=True)
        )
        timeout_s = min(OUTPUT_PROBE_TIMEOUT_S, self._remaining(attempt))
        metadata = await output_dir.metadata(self.binaries, plan, timeout_s, job.id)
        return self._completed(attempt, files, metadata, read)

    async def _encode(
        self,
        attempt: Attempt,
        plan: FFmpegPlan,
        src: Path,
        info: MediaInfo,
        scratch: Path,
        on_progress: ProgressCallback,
    ) -> ProgressEvent:
        """Leave `plan`'s outputs (temporary names) in the scratch directory; returns the
        run's final progress sample. One FFmpeg run here; chunks/executor.py may split it."""
        tracker = await self._run(attempt, plan, on_progress)
        return tracker.completed()

    async def _run(
        self, attempt: Attempt, plan: FFmpegPlan, on_progress: ProgressCallback
    ) -> ProgressTracker:
        tracker = ProgressTracker(
            attempt.job.id,
            expected_duration_s=plan.expected_duration_s,
            input_seek_s=plan.input_seek_s,
            track_percent=plan.track_percent,
        )

        await run_tracked(
            plan.argv,
            tracker,
            on_progress,
            timeout_s=self._remaining(attempt),
            settings=self.settings,
            root=self._root,
        )
        return tracker

    def _require_binaries(self) -> None:
        try:
            self.binaries  # noqa: B018 - resolves and caches
        except BinariesNotFound as exc:
            raise outcome.JobFailure(FailureCode.INTERNAL_ERROR, str(exc)) from exc

    def _remaining(self, attempt: Attempt) -> float:
        remaining = self.settings.job_timeout_seconds - attempt.elapsed_s
        if remaining <= 0:
            raise outcome.JobFailure(FailureCode.TIMEOUT, "the job ran out of its time limit")
        return remaining

    @property
    def _root(self) -> Path:
        """The directory whose path is hidden from FFmpeg's messages to clients."""
        return self.storage.root if self.objects is None else scratch_root(self.settings)

    def _failure(self, exc: _Failure) -> outcome.JobFailure:
        if isinstance(exc, outcome.JobFailure):
            return exc
        if isinstance(exc, ObjectStoreError):
            return outcome.JobFailure(FailureCode.STORAGE_ERROR, storage_message(exc))
        tail = exc.stderr_tail if isinstance(exc, ProbeError) else ""
        return outcome.JobFailure(exc.code, exc.message, outcome.useful_tail(tail, self._root))

    def _output_file(self, job_id: str, out: PlannedOutput, size: int) -> OutputFile:
        url = outcome.output_url(job_id, out.name, self.settings.public_http_url)
        return OutputFile(name=out.name, size=size, content_type=out.content_type, url=url)

    def _completed(
        self,
        attempt: Attempt,
        files: tuple[OutputFile, ...],
        info: MediaInfo | None,
        input_bytes: int,
    ) -> CompletedEvent:
        return CompletedEvent(
            job_id=attempt.job.id,
            outputs=files,
            processing_time_s=round(attempt.elapsed_s, 3),
            metadata=bounds.bound_media_info(info),
            input_bytes=input_bytes,
        )
