"""What every step of a chunked run needs: the settings, the FFmpeg binaries, and one way to
run a process and turn its failure into the job's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ffpool.chunks.subjobs import SubJobs
from ffpool.ffmpeg import outcome
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.process import run
from ffpool.settings import Settings

# How often a waiting parent asks for its chunks' outcomes (a stat or a HEAD each): a chunk
# takes seconds at least, so a quarter second is fast enough to start the join promptly.
POLL_S = 0.25


class Lending:
    """How many slots this process has lent to waiting parents: at most `limit` (its own
    slot count). A lent slot may take another chunked parent, which waits and would lend
    again: without a bound one worker could hold any number of waiting parents and run as
    many FFmpeg processes. A waiting parent past the bound asks again as it polls
    (chunks/waiting.py): its chunks need a slot once the others' lent ones are given back."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.lent = 0

    def free(self) -> bool:
        return self.lent < self._limit

    @asynccontextmanager
    async def lend(self, subjobs: SubJobs) -> AsyncIterator[bool]:
        """Lend a slot while inside if the bound allows; yields whether it did."""
        if not self.free():
            yield False
            return
        self.lent += 1
        try:
            async with subjobs.lend_slot():
                yield True
        finally:
            self.lent -= 1


@dataclass(frozen=True)
class Tools:
    settings: Settings
    binaries: Binaries
    root: Path
    """The directory whose path is hidden from FFmpeg's messages to clients."""
    lending: Lending = field(default_factory=lambda: Lending(1))
    poll_s: float = POLL_S

    async def run(
        self,
        argv: Sequence[str],
        remaining: Callable[[], float],
        *,
        on_stdout: Callable[[bytes], None] | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
    ) -> None:
        """Run a process within the job's remaining time; raises JobFailure if it fails."""
        result = await run(
            argv,
            timeout_s=remaining(),
            grace_s=self.settings.cancel_grace_seconds,
            on_stdout=on_stdout,
            on_stderr_line=on_stderr_line,
        )
        failure = outcome.classify(result, self.settings.job_timeout_seconds, self.root)
        if failure is not None:
            raise failure
