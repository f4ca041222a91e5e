"""The wait between two passes of a daemon (autoscaling poll, topology drift check)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from ffpool import names


class Stopped(Protocol):
    """kopf's DaemonStopped, as far as `pause` uses it."""

    def __bool__(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> Awaitable[object]: ...


async def pause(
    stopped: Stopped, spec: Any, seconds: float, step: float = 0.25, meta: Any = None
) -> None:
    """Waits `seconds` between polls, but returns early when the pool's spec changes: kopf
    keeps a daemon's `spec` a live view of the object, and a fixed invalid spec or a new
    interval must not wait out the old (up to 30 s) sleep. With `meta` (also a live view), a
    change of the autoscaling annotations ends the wait too: removing a pause resumes at once."""
    seen = _snapshot(spec, meta)
    deadline = time.monotonic() + seconds
    while not stopped and (left := deadline - time.monotonic()) > 0:
        await stopped.wait(min(step, left))
        if _snapshot(spec, meta) != seen:
            return


def _snapshot(spec: Any, meta: Any) -> str:
    annotations = dict((meta or {}).get("annotations") or {})
    # Only the pause annotations: kopf rewrites its own (`ffpool.dev/...`) after each handler.
    watched = {
        k: v for k, v in annotations.items() if k.startswith(names.AUTOSCALING_ANNOTATION_PREFIX)
    }
    state = {"spec": dict(spec or {}), "annotations": watched}  # views: copy them
    return json.dumps(state, sort_keys=True, default=str)
