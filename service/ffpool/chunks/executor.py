"""The executor workers run: ffmpeg/executor.py's, plus chunked jobs (docs/chunks.md).

A chunk sub-job (`job.chunk` set) is run by the chunk runner; a job asking for chunking runs
as any job (input, probe, commit, outcome) except that its one FFmpeg run is replaced by the
coordinator's split, wait and join. Until a backend binds its `SubJobs` (app.py), every job
runs in one pass.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from ffpool import logs
from ffpool.auth.tenants import TenantsFile
from ffpool.chunks.coordinator import Coordinator
from ffpool.chunks.runner import ChunkRunner
from ffpool.chunks.store import ChunkStore, chunk_store
from ffpool.chunks.subjobs import SubJobs
from ffpool.chunks.tools import Lending, Tools
from ffpool.domain.events import CompletedEvent, FailedEvent, MediaInfo, ProgressEvent
from ffpool.domain.jobs import Chunking, ChunkMode, Job, chunkable, chunking_of
from ffpool.ffmpeg.argv import FFmpegPlan
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.executor import Attempt, Executor
from ffpool.ffmpeg.relay import ProgressCallback
from ffpool.settings import Settings
from ffpool.storage.media import Storage
from ffpool.storage.objects import ObjectStore

log = logs.get(__name__)
# How often a worker sweeps the chunk store for what crashed or cancelled parents left.
SWEEP_EVERY_S: Final = 3600.0


class ParallelExecutor(Executor):
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        binaries: Binaries | None = None,
        objects: ObjectStore | None = None,
        tenants: TenantsFile | None = None,
    ) -> None:
        super().__init__(settings, storage, binaries, objects, tenants)
        self.store: ChunkStore = chunk_store(settings, storage, self.objects)
        self._runner = ChunkRunner(settings, lambda: self.binaries, self.store)
        self._subjobs: SubJobs | None = None
        self._next_sweep = 0.0
        self._splits: dict[str, list[str]] = {}
        self._lending = Lending(settings.max_concurrent_jobs)

    def bind(self, subjobs: SubJobs) -> None:
        """The backend that carries this process's jobs also carries their chunks."""
        self._subjobs = subjobs

    async def execute(
        self, job: Job, on_progress: ProgressCallback
    ) -> CompletedEvent | FailedEvent:
        if time.monotonic() >= self._next_sweep:
            # Now and then: the chunks of parents whose runs crashed or were cancelled
            # while no run of theirs was waiting.
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            await self._sweep_chunks()
        if job.chunk is not None:
            return await self._runner.run(job, on_progress)
        event = await super().execute(job, on_progress)
        if self._subjobs is not None and self._chunking(job) is not None:
            # Committed or failed for good: its chunks' files are of no further use. (A
            # cancelled run raised instead; its chunks are removed once the cancel is
            # recorded: chunks/waiting.py.)
            await self._forget_chunks(job.id)
        return event

    async def _encode(
        self,
        attempt: Attempt,
        plan: FFmpegPlan,
        src: Path,
        info: MediaInfo,
        scratch: Path,
        on_progress: ProgressCallback,
    ) -> ProgressEvent:
        job = attempt.job
        chunking = self._chunking(job)
        if self._subjobs is not None and chunking is not None:
            tools = Tools(self.settings, self.binaries, self._root, self._lending)
            coordinator = Coordinator(tools, self.store, self._subjobs, self._splits)
            split = await coordinator.produce(
                job,
                chunking,
                plan,
                src,
                info,
                scratch,
                on_progress,
                lambda: self._remaining(attempt),
            )
            if split is not None:
                done = split.plan.duration_s
                return ProgressEvent(job_id=job.id, percent=100.0, out_time_s=done, eta_s=0)
        return await super()._encode(attempt, plan, src, info, scratch, on_progress)

    def _chunking(self, job: Job) -> Chunking | None:
        """The job's own request, else the server's default (CHUNK_AUTO_SECONDS: `auto`) for
        an operation that can be split."""
        asked = chunking_of(job.spec.operation)
        seconds = self.settings.chunk_auto_seconds
        if asked is not None or seconds is None or not chunkable(job.spec.operation):
            return asked
        return Chunking(mode=ChunkMode.AUTO, chunk_seconds=seconds)

    async def _sweep_chunks(self) -> None:
        # Twice the job timeout: a parent's run ends within one, and a redelivered parent
        # resumes from its stored plan (chunks/coordinator.py) within the next.
        try:
            await self.store.sweep(2 * self.settings.job_timeout_seconds)
        except Exception as exc:
            log.warning("sweeping old chunks failed", error=repr(exc))

    async def _forget_chunks(self, job_id: str) -> None:
        try:
            await self.store.remove(job_id)
            if self._subjobs is not None and (ids := self._splits.pop(job_id, None)):
                await self._subjobs.forget(ids)
        except Exception as exc:
            log.warning("removing a job's chunks failed", job_id=job_id, error=repr(exc))
