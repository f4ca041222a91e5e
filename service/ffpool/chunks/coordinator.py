"""The parent run of a chunked job: split the input, queue the chunks, wait, join.

Runs inside the parent job's ordinary run (chunks/executor.py), between the input's probe and
the commit, and leaves exactly the files the single FFmpeg run would have left, so the rest of
the run (finalize, commit, outcome) is the same for both (docs/chunks.md).

Crash safety: chunk inputs are stored and their jobs queued before `plan.json` is stored; a
parent run that finds `plan.json` (its previous run died or was handed back) only waits and
joins. Each split has its own id, part of its chunks' ids: a parent cut again (its
`plan.json` lost) never takes an earlier split's chunk outcomes for its own.

Chunks are queued at the highest priority: a parent already running finishes before another
starts, and a slot lent by a waiting parent (SubJobs.lend_slot) takes its chunks, not a
second parent that would wait in turn (docs/chunks.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from ffpool import logs
from ffpool.chunks import argv as chunk_argv
from ffpool.chunks.joining import Joiner
from ffpool.chunks.offsets import start_times_argv, video_offset
from ffpool.chunks.plan import (
    MAX_KEYFRAMES_JSON_BYTES,
    ChunkPlan,
    input_name,
    parse_keyframes,
    plan_chunks,
)
from ffpool.chunks.store import ChunkStore
from ffpool.chunks.subjobs import SubJobs
from ffpool.chunks.tools import Tools
from ffpool.chunks.waiting import cancel_if_parent_ended, spawn, wait_for_chunks
from ffpool.domain.events import FailureCode, MediaInfo
from ffpool.domain.jobs import (
    MAX_CHUNKS,
    Chunking,
    ChunkMode,
    ChunkTask,
    Job,
    chunk_job_id,
)
from ffpool.ffmpeg.argv import FFmpegPlan
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.ffmpeg.relay import ProgressCallback

log = logs.get(__name__)
PLAN_NAME: Final = "plan.json"
# Chunks go ahead of every job not yet started (the highest job priority).
CHUNK_PRIORITY: Final = 9


class Split(BaseModel):
    """One cut of a parent: what `plan.json` holds."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[0-9a-f]{16}$")
    plan: ChunkPlan
    video_offset_s: float = Field(default=0.0, ge=0)

    def chunk_ids(self, parent_id: str) -> list[str]:
        return [chunk_job_id(parent_id, cut.index, self.id) for cut in self.plan.cuts]


class Coordinator:
    def __init__(
        self,
        tools: Tools,
        store: ChunkStore,
        subjobs: SubJobs,
        splits: dict[str, list[str]] | None = None,
    ) -> None:
        """`splits`: where each parent's chunk ids are noted once known, for the executor to
        forget them when the parent ends (chunks/executor.py)."""
        self._tools = tools
        self._store = store
        self._subjobs = subjobs
        self._splits = splits if splits is not None else {}

    async def produce(
        self,
        job: Job,
        chunking: Chunking,
        plan: FFmpegPlan,
        src: Path,
        info: MediaInfo,
        scratch: Path,
        on_progress: ProgressCallback,
        remaining: Callable[[], float],
    ) -> Split | None:
        """Leave `plan`'s outputs in `scratch`, encoded chunk by chunk on any worker, and
        return the split; None when the job is not worth splitting (the caller runs the
        single pass)."""
        split = await self._stored_split(job.id, scratch)
        fresh = split is None
        if split is None:
            split = await self._new_split(src, info, chunking, remaining)
            if split is None:
                return None
        self._splits[job.id] = split.chunk_ids(job.id)
        try:
            if fresh:
                await self._cut(job, src, split, scratch, remaining)
            else:
                log.info("chunked job resumed: its chunks are queued", job_id=job.id)
            await self._finish(job, split, plan, src, info, scratch, on_progress, remaining)
        except asyncio.CancelledError:
            # A client's cancel, or a hand-back (the next run resumes): the parent's
            # recorded outcome tells, once this run has ended (chunks/waiting.py).
            ids = split.chunk_ids(job.id)
            spawn(cancel_if_parent_ended(self._subjobs, job.id, ids, self._remover(job.id)))
            raise
        return split

    def _remover(self, job_id: str) -> Callable[[], Awaitable[None]]:
        return lambda: self._store.remove(job_id)

    async def _finish(
        self,
        job: Job,
        split: Split,
        plan: FFmpegPlan,
        src: Path,
        info: MediaInfo,
        scratch: Path,
        on_progress: ProgressCallback,
        remaining: Callable[[], float],
    ) -> None:
        started = time.monotonic()
        joiner = Joiner(self._tools, self._store, job, plan, info, scratch, split.video_offset_s)
        audio = asyncio.create_task(joiner.encode_audio(src, remaining))
        try:
            tools = self._tools
            await wait_for_chunks(
                self._subjobs,
                job,
                split.plan,
                split.id,
                on_progress,
                remaining,
                tools.lending,
                tools.poll_s,
            )
            await audio
        finally:
            if not audio.done():
                audio.cancel()
                await asyncio.wait({audio})
        joined = time.monotonic()
        await joiner.join(split.plan, remaining)
        log.info(
            "chunked job joined",
            job_id=job.id,
            chunks=split.plan.count,
            wait_seconds=round(joined - started, 3),
            join_seconds=round(time.monotonic() - joined, 3),
        )

    async def _new_split(
        self, src: Path, info: MediaInfo, chunking: Chunking, remaining: Callable[[], float]
    ) -> Split | None:
        if info.duration is None or info.duration <= 0:
            return None
        if chunking.mode is ChunkMode.AUTO and not await self._worth_it(
            info.duration, chunking.chunk_seconds
        ):
            return None
        chunks = await self._plan(src, info.duration, chunking.chunk_seconds, remaining)
        if chunks.count < 2:
            return None
        offset = await self._video_offset(src, remaining)
        return Split(id=uuid.uuid4().hex[:16], plan=chunks, video_offset_s=offset)

    async def _worth_it(self, duration_s: float, chunk_seconds: float) -> bool:
        """Auto: the input lasts two chunks or more and another slot could take one now."""
        return duration_s >= 2 * chunk_seconds and await self._subjobs.capacity() >= 2

    async def _plan(
        self, src: Path, duration_s: float, chunk_seconds: float, remaining: Callable[[], float]
    ) -> ChunkPlan:
        text = await self._probe(chunk_argv.keyframes_argv(self._tools.binaries, src), remaining)
        try:
            keyframes = await asyncio.to_thread(parse_keyframes, text)
        except ValueError as exc:
            raise JobFailure(FailureCode.INVALID_MEDIA, f"the input's keyframes: {exc}") from exc
        return plan_chunks(keyframes, duration_s, chunk_seconds, MAX_CHUNKS)

    async def _video_offset(self, src: Path, remaining: Callable[[], float]) -> float:
        text = await self._probe(start_times_argv(self._tools.binaries, src), remaining)
        return video_offset(text)

    async def _probe(self, argv: Sequence[str], remaining: Callable[[], float]) -> str:
        """An ffprobe's JSON, bounded (chunks/plan.py MAX_KEYFRAMES_JSON_BYTES)."""
        collected = bytearray()

        def collect(data: bytes) -> None:
            if len(collected) + len(data) > MAX_KEYFRAMES_JSON_BYTES:
                raise JobFailure(FailureCode.INPUT_REJECTED, "the input has too many packets")
            collected.extend(data)

        await self._tools.run(argv, remaining, on_stdout=collect)
        return collected.decode(errors="replace")

    async def _cut(
        self, job: Job, src: Path, split: Split, scratch: Path, remaining: Callable[[], float]
    ) -> None:
        cut_dir = scratch / "chunks-in"
        await asyncio.to_thread(cut_dir.mkdir, exist_ok=True)
        started = time.monotonic()
        chunks = split.plan
        argv = chunk_argv.cut_argv(self._tools.binaries, self._tools.settings, src, chunks, cut_dir)
        await self._tools.run(argv, remaining)
        for cut in chunks.cuts:
            path = cut_dir / input_name(cut.index)
            if not await asyncio.to_thread(path.is_file):
                raise JobFailure(
                    FailureCode.INTERNAL_ERROR, f"cutting the input left no chunk {cut.index}"
                )
            await self._store.put(job.id, input_name(cut.index), path)
        await self._subjobs.submit([sub_job(job, split, i) for i in range(chunks.count)])
        plan_file = scratch / PLAN_NAME
        await asyncio.to_thread(plan_file.write_text, split.model_dump_json())
        await self._store.put(job.id, PLAN_NAME, plan_file)
        log.info(
            "chunked job split",
            job_id=job.id,
            chunks=chunks.count,
            cut_seconds=round(time.monotonic() - started, 3),
        )

    async def _stored_split(self, job_id: str, scratch: Path) -> Split | None:
        dest = scratch / f"stored-{PLAN_NAME}"
        if not await self._store.fetch(job_id, PLAN_NAME, dest):
            return None
        text = await asyncio.to_thread(dest.read_text)
        return Split.model_validate_json(text)


def sub_job(parent: Job, split: Split, index: int) -> Job:
    """Chunk `index` of `parent` as a job of its own: the parent's spec and tenant, the
    highest priority (a started parent finishes first)."""
    cut = split.plan.cuts[index]
    return Job(
        id=chunk_job_id(parent.id, index, split.id),
        spec=parent.spec,
        priority=CHUNK_PRIORITY,
        tenant=parent.tenant,
        chunk=ChunkTask(
            parent=parent.id,
            index=index,
            count=split.plan.count,
            start_s=cut.start_s,
            duration_s=cut.duration_s,
        ),
    )
