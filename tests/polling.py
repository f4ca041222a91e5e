"""Poll with a deadline: the one way tests wait for something to become true (`poll_until` in
plain code, `eventually` on an event loop)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")


def poll_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Call `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, timeout: float, what: str, interval: float = 0.02
) -> T:
    """Call (and await, if it is async) `check` until it returns something truthy, without
    blocking the loop; fail naming `what` after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(interval)
