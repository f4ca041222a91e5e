"""The daemon's wait between polls ends early on a spec change or a stop, not otherwise."""

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import kopf

from ffpool import names
from ffpool_operator.flows.pause import pause


class FakeStopped:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        return self.event.is_set()


async def _timed(coro: Coroutine[Any, Any, None]) -> float:
    start = time.monotonic()
    await coro
    return time.monotonic() - start


async def test_waits_the_interval_when_nothing_changes() -> None:
    body = kopf.Body({"spec": {"image": "a"}})
    assert await _timed(pause(FakeStopped(), body.spec, 0.3, step=0.05)) >= 0.3


async def test_a_spec_change_ends_the_wait() -> None:
    raw = {"spec": {"autoscaling": {"minReplicas": 5, "maxReplicas": 1}}}
    body = kopf.Body(raw)  # a live view, as kopf gives daemons

    async def fix() -> None:
        await asyncio.sleep(0.1)
        raw["spec"]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 5}

    task = asyncio.create_task(fix())
    assert await _timed(pause(FakeStopped(), body.spec, 30.0, step=0.05)) < 1.0
    await task


async def test_a_stop_ends_the_wait() -> None:
    stopped = FakeStopped()
    asyncio.get_running_loop().call_later(0.1, stopped.event.set)
    assert await _timed(pause(stopped, {"image": "a"}, 30.0)) < 1.0


async def test_a_pause_annotation_change_ends_the_wait() -> None:
    """Removing `autoscaling.ffpool.dev/paused` resumes at once, not after the interval."""
    raw: dict[str, Any] = {
        "metadata": {"annotations": {names.ANNOTATION_PAUSED: "true"}},
        "spec": {"image": "a"},
    }
    body = kopf.Body(raw)

    async def resume() -> None:
        await asyncio.sleep(0.1)
        del raw["metadata"]["annotations"][names.ANNOTATION_PAUSED]

    task = asyncio.create_task(resume())
    assert await _timed(pause(FakeStopped(), body.spec, 30.0, step=0.05, meta=body.meta)) < 1.0
    await task


async def test_other_annotations_do_not_end_the_wait() -> None:
    """kopf rewrites its own annotations after each handler: those are no reason to poll."""
    raw: dict[str, Any] = {"metadata": {"annotations": {}}, "spec": {"image": "a"}}
    body = kopf.Body(raw)

    async def touch() -> None:
        await asyncio.sleep(0.05)
        raw["metadata"]["annotations"][f"{names.API_GROUP}/last-handled-configuration"] = "x"

    task = asyncio.create_task(touch())
    assert await _timed(pause(FakeStopped(), body.spec, 0.3, step=0.05, meta=body.meta)) >= 0.3
    await task
