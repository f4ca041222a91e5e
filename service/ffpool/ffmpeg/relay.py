"""Relaying FFmpeg's progress to a job's listener, with a heartbeat when FFmpeg is quiet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ffpool.domain.events import ProgressEvent
from ffpool.ffmpeg.progress import ProgressTracker

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
