"""A parent's wait for its chunks: outcomes polled, progress folded, failures and cancels.

The chunks' outcomes are read from where every worker records them (markers or records:
SubJobs.outcome), so a parent run never depends on an event it might miss; their progress
comes as events, best effort.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Final

from ffpool import logs
from ffpool.chunks.plan import ChunkPlan
from ffpool.chunks.progress import ChunkProgress
from ffpool.chunks.subjobs import SubJobs
from ffpool.chunks.tools import Lending
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    ProgressEvent,
)
from ffpool.domain.jobs import Job, chunk_job_id
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.ffmpeg.relay import ProgressCallback

log = logs.get(__name__)
# Outcome reads per second at most while waiting (stats or HEADs): many chunks are polled
# in turn, not all at every tick.
MAX_READS_PER_S: Final = 64.0
# After a parent run is stopped, how long to watch for its cancel to be recorded (the
# worker records it once the run has ended) before its chunks are left to a later run.
CANCEL_WATCH_S: Final = 30.0
_WATCHERS: set[asyncio.Task[None]] = set()


async def wait_for_chunks(
    subjobs: SubJobs,
    job: Job,
    chunks: ChunkPlan,
    split: str,
    on_progress: ProgressCallback,
    remaining: Callable[[], float],
    lending: Lending,
    poll_s: float,
) -> None:
    """Return when every chunk completed; raise JobFailure when one failed, was cancelled,
    or the parent's time ran out (the other chunks are then cancelled)."""
    ids = {chunk_job_id(job.id, cut.index, split): cut.index for cut in chunks.cuts}
    durations = {cid: chunks.cuts[i].duration_s for cid, i in ids.items()}
    progress = ChunkProgress(job.id, durations, chunks.duration_s)
    pending = dict(ids)
    started = time.monotonic()
    moved = False

    def on_chunk(event: ProgressEvent) -> None:
        nonlocal moved
        moved = progress.update(event) or moved

    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(subjobs.watch(job.id, on_chunk))
            lent = False
            while pending:
                if not lent and lending.free():
                    lent = await stack.enter_async_context(lending.lend(subjobs))
                remaining()  # raises JobFailure(TIMEOUT) once the parent's time is up
                moved = await _poll(subjobs, pending, progress, chunks.count) or moved
                if moved:  # a sample only when something moved: each goes to every server
                    moved = False
                    on_progress(progress.event(time.monotonic() - started))
                if pending:
                    await asyncio.sleep(max(poll_s, len(pending) / MAX_READS_PER_S))
    except JobFailure:
        await subjobs.cancel(list(pending))
        raise


async def _poll(
    subjobs: SubJobs, pending: dict[str, int], progress: ChunkProgress, count: int
) -> bool:
    """Read the pending chunks' outcomes; True when one completed."""
    moved = False
    for chunk_id, index in list(pending.items()):
        outcome = await subjobs.outcome(chunk_id)
        match outcome:
            case CompletedEvent():
                moved = progress.done(chunk_id) or moved
                del pending[chunk_id]
            case FailedEvent():
                del pending[chunk_id]
                raise JobFailure(
                    outcome.code,
                    f"chunk {index + 1} of {count} failed: {outcome.message}",
                    outcome.stderr_tail,
                )
            case CancelledEvent():
                del pending[chunk_id]
                raise JobFailure(
                    FailureCode.INTERNAL_ERROR, f"chunk {index + 1} of {count} was cancelled"
                )
            case None:
                pass
    return moved


async def cancel_if_parent_ended(
    subjobs: SubJobs,
    parent_id: str,
    chunk_ids: list[str],
    on_cancelled: Callable[[], Awaitable[None]] | None,
) -> None:
    """A stopped parent run may be a client's cancel (its chunks must go too) or a hand-back
    or lost connection (a later run resumes them): the parent's recorded outcome tells."""
    deadline = time.monotonic() + CANCEL_WATCH_S
    while time.monotonic() < deadline:
        if isinstance(await subjobs.outcome(parent_id), CancelledEvent | FailedEvent):
            log.info("parent cancelled: cancelling its chunks", job_id=parent_id)
            await subjobs.cancel(chunk_ids)
            if on_cancelled is not None:
                await on_cancelled()
            return
        await asyncio.sleep(0.5)


def spawn(coro: Awaitable[None]) -> None:
    async def guarded() -> None:
        try:
            await coro
        except Exception:
            log.exception("cancelling a parent's chunks failed")

    task = asyncio.create_task(guarded())
    _WATCHERS.add(task)
    task.add_done_callback(_WATCHERS.discard)
