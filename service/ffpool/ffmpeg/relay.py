"""Relaying FFmpeg's progress to a job's listener, with a heartbeat when FFmpeg is quiet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ffpool.domain.events import ProgressEvent
from ffpool.ffmpeg import outcome
from ffpool.ffmpeg.process import run
from ffpool.ffmpeg.progress import ProgressTracker
from ffpool.settings import Settings

ProgressCallback = Callable[[ProgressEvent], None]


class ProgressRelay:
    """Forwards FFmpeg's progress, and repeats the last one when FFmpeg is quiet: a slow
    encoder can hold FFmpeg's main loop (which writes -progress) for seconds, and clients are
    promised an event at least once a second."""

    def __init__(self, tracker: ProgressTracker, sink: ProgressCallback, quiet_s: float):
        self._tracker = tracker
        self._sink = sink
        self._quiet_s = quiet_s
        self._last = time.monotonic()

    def feed(self, chunk: bytes) -> None:
        for event in self._tracker.feed(chunk):
            self._emit(event)

    def _emit(self, event: ProgressEvent) -> None:
        self._last = time.monotonic()
        self._sink(event)

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._quiet_s / 2)
            if time.monotonic() - self._last >= self._quiet_s:
                self._emit(self._tracker.heartbeat())


async def run_tracked(
    argv: Sequence[str],
    tracker: ProgressTracker,
    on_progress: ProgressCallback,
    *,
    timeout_s: float,
    settings: Settings,
    root: Path,
) -> None:
    """Run one FFmpeg process, its progress relayed to `on_progress` (a heartbeat when it is
    quiet); raises the JobFailure its result maps to (outcome.py), `root` hidden from it."""
    relay = ProgressRelay(tracker, on_progress, min(settings.progress_interval_seconds, 0.5))
    heartbeat = asyncio.create_task(relay.heartbeat())
    try:
        result = await run(
            argv,
            timeout_s=timeout_s,
            grace_s=settings.cancel_grace_seconds,
            on_stdout=relay.feed,
            on_stderr_line=tracker.stderr_line,
        )
    finally:
        heartbeat.cancel()
        await asyncio.wait([heartbeat])
    if not heartbeat.cancelled() and (error := heartbeat.exception()) is not None:
        raise error
    failure = outcome.classify(result, settings.job_timeout_seconds, root)
    if failure is not None:
        raise failure
