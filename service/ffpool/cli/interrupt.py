"""Ctrl-C while a job runs (`submit` after acceptance, `watch`): the first press asks the server
to cancel the job and waits a few seconds for its `cancelled` outcome; a second press leaves at
once, the job still running. Before acceptance a press just stops.

Presses are counted by the event loop's SIGINT handler: a KeyboardInterrupt raised inside a
coroutine would tear through whatever it was awaiting (and print a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ffpool.client.outcomes import Outcome
from ffpool.client.session import Client

# How long the first Ctrl-C waits for the server's `cancelled` (a running FFmpeg gets SIGTERM,
# then SIGKILL after CANCEL_GRACE_SECONDS: docs/protocol.md, `cancel`).
CANCEL_WAIT_S: Final = 10.0
# After the first Ctrl-C, a second within this time leaves the job running: the cancel is sent
# only once it has passed (a quick double press means "let me go, keep the job").
LEAVE_WINDOW_S: Final = 1.0
# A job id given to `watch` may be unknown for a moment on another replica (docs/protocol.md,
# `subscribe`); a person typing one expects a quick "no such job" otherwise.
UNKNOWN_GRACE_S: Final = 3.0
# How long `watch` and `submit` try to reconnect to a server that went away before giving up
# with the connection's error (exit 3; docs/cli.md, "Exit status"): long enough for a rolling
# restart, short enough that a server that is gone is reported.
RECONNECT_FOR_S: Final = 60.0
RECONNECTING: Final = "connection lost; reconnecting…"


class Interrupts:
    """Ctrl-C presses, counted; `first_of` waits for a task or the n-th press."""

    def __init__(self) -> None:
        self.presses = 0
        self._pressed: dict[int, asyncio.Event] = {}

    def press(self) -> None:
        self.presses += 1
        for n, event in self._pressed.items():
            if n <= self.presses:
                event.set()

    def _event(self, n: int) -> asyncio.Event:
        event = self._pressed.setdefault(n, asyncio.Event())
        if self.presses >= n:
            event.set()
        return event

    async def first_of(
        self, task: asyncio.Future[Any], presses: int, timeout: float | None = None
    ) -> bool:
        """Wait until `task` is done (True), the `presses`-th Ctrl-C, or `timeout` (False)."""
        key = asyncio.ensure_future(self._event(presses).wait())
        try:
            await asyncio.wait({task, key}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            key.cancel()
        return task.done()


@contextlib.contextmanager
def interrupts() -> Iterator[Interrupts]:
    """Count Ctrl-C presses on the running loop while in the block."""
    loop = asyncio.get_running_loop()
    keys = Interrupts()
    loop.add_signal_handler(signal.SIGINT, keys.press)
    try:
        yield keys
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def stop(task: asyncio.Future[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@dataclass(frozen=True)
class Followed:
    """How following a job ended: its outcome (None: left running, or no outcome in time),
    and whether Ctrl-C was pressed."""

    outcome: Outcome | None
    interrupted: bool


async def follow_job(
    client: Client,
    job_id: str,
    keys: Interrupts,
    on_event: Callable[[Any], None],
    say: Callable[[str], None],
    reconnect_for: float = RECONNECT_FOR_S,
) -> Followed:
    """Follow the job to its outcome through dropped connections (Client.follow; `say` tells
    of each loss, and `reconnect_for` seconds without a connection end it). Ctrl-C cancels
    it unless pressed again within LEAVE_WINDOW_S (the job is left running); a press while
    the cancel is awaited stops waiting."""
    following = asyncio.ensure_future(
        client.follow(
            job_id,
            on_event,
            unknown_grace_s=UNKNOWN_GRACE_S,
            reconnect_for=reconnect_for,
            on_reconnecting=lambda _: say(RECONNECTING),
        )
    )
    try:
        if await keys.first_of(following, presses=1):
            return Followed(following.result(), interrupted=False)
        say(f"cancelling job {job_id} (Ctrl-C again to leave it running)")
        await keys.first_of(following, presses=2, timeout=LEAVE_WINDOW_S)
        sent = not following.done() and keys.presses < 2
        if sent:
            # A refusal (the job just finished) reaches the follow, which has its outcome.
            with contextlib.suppress(ConnectionError, TimeoutError):
                await client.cancel(job_id)
            await keys.first_of(following, presses=2, timeout=CANCEL_WAIT_S)
        if following.done():
            return Followed(following.result(), interrupted=True)
        say(_left(job_id, sent, keys.presses))
        return Followed(None, interrupted=True)
    finally:
        await stop(following)


def _left(job_id: str, sent: bool, presses: int) -> str:
    """Why we leave without the job's outcome, and how to see it."""
    if not sent:
        return f"left running: ffpool watch {job_id}"
    if presses >= 2:
        return f"not waiting for the cancel to take effect: ffpool watch {job_id}"
    return f"no outcome within {CANCEL_WAIT_S:g}s of the cancel: ffpool watch {job_id}"
