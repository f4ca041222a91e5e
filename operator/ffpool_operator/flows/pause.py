"""The wait between two passes of a daemon (autoscaling poll, topology drift check)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any, Protocol


class Stopped(Protocol):
    """kopf's DaemonStopped, as far as `pause` uses it."""

    def __bool__(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> Awaitable[object]: ...


async def pause(stopped: Stopped, spec: Any, seconds: float, step: float = 0.25) -> None:
    """Waits `seconds` between polls, but returns early when the pool's spec changes: kopf
    keeps a daemon's `spec` a live view of the object, and a fixed invalid spec or a new
    interval must not wait out the old (up to 30 s) sleep."""
    seen = _snapshot(spec)
    deadline = time.monotonic() + seconds
    while not stopped and (left := deadline - time.monotonic()) > 0:
        await stopped.wait(min(step, left))
        if _snapshot(spec) != seen:
            return


def _snapshot(spec: Any) -> str:
    return json.dumps(dict(spec or {}), sort_keys=True, default=str)  # a view: copy it
