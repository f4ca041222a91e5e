"""Each followed job's queue of events on the client (session.Client's `events()`): bounded,
and ended by CLOSED when the WebSocket closes, so a wait ends rather than hangs."""

from __future__ import annotations

import asyncio
from typing import Any, Final

# Events buffered per job not yet read by `events()`: about ten minutes of progress at two
# events a second. Beyond that the oldest are dropped (progress supersedes progress).
MAX_BUFFERED_EVENTS: Final = 1200


class _Closed:
    """Pushed to every job's queue when the WebSocket closes: waits end, not hang."""


CLOSED: Final = _Closed()


def offer(queue: asyncio.Queue[Any], item: Any) -> None:
    """Put without blocking the reader; a full queue loses its oldest item."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
