"""Following a job through the faults of a replicated service (Client.follow).

Two things look like failures to a plain `wait` and are not: a server that answers
`unknown_job` for a job accepted a moment ago on another replica (it learns of it shortly),
and a connection that closed because its server stopped (any other replica can answer). So a
follow subscribes again, with back-off, until the outcome arrives, `unknown_job` has lasted
longer than a grace period, or the deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from websockets.exceptions import WebSocketException

from ffpool.client.outcomes import ClientError, Outcome
from ffpool.domain.protocol import ErrorCode

UNKNOWN_GRACE_S: Final = 10.0
RETRY_FIRST_S: Final = 0.1
RETRY_MAX_S: Final = 2.0


class Followed(Protocol):
    """What a follow needs of the client (session.Client)."""

    ws_url: str

    async def subscribe(self, job_id: str) -> None: ...

    async def wait(self, job_id: str, on_event: Callable[[Any], None] | None = None) -> Outcome: ...

    async def reconnect(self, ws_url: str | None = None) -> None: ...


def retry_delay(failures: int) -> float:
    """Back-off between re-subscriptions: 0.1 s, doubling, at most 2 s."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** min(failures - 1, 10))


def give_up_unknown(first_unknown: float, now: float, grace_s: float) -> bool:
    """An `unknown_job` that has lasted past the grace period is believed."""
    return now - first_unknown > grace_s


async def follow(
    client: Followed,
    job_id: str,
    on_event: Callable[[Any], None] | None,
    timeout: float | None,
    ws_urls: Sequence[str],
    unknown_grace_s: float,
) -> Outcome:
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    urls = itertools.cycle(ws_urls or [client.ws_url])
    first_unknown: float | None = None
    failures = 0
    async with asyncio.timeout_at(deadline):
        while True:
            try:
                await client.subscribe(job_id)
                return await client.wait(job_id, on_event)
            except ClientError as exc:
                if exc.error.code is not ErrorCode.UNKNOWN_JOB:
                    raise
                first_unknown = first_unknown if first_unknown is not None else loop.time()
                if give_up_unknown(first_unknown, loop.time(), unknown_grace_s):
                    raise
            except (ConnectionError, WebSocketException):
                await _reconnect(client, next(urls))
            failures += 1
            await asyncio.sleep(retry_delay(failures))


async def _reconnect(client: Followed, ws_url: str) -> None:
    """One attempt; a server that is still down is tried again after the next back-off."""
    with contextlib.suppress(OSError, TimeoutError, WebSocketException):
        await client.reconnect(ws_url)
