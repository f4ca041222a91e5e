"""Following a job through the faults of a replicated service (Client.follow).

Two things look like failures to a plain `wait` and are not: a server that answers
`unknown_job` for a job accepted a moment ago on another replica (it learns of it shortly),
and a connection that closed because its server stopped (any other replica can answer). So a
follow subscribes again, with back-off, until the outcome arrives, `unknown_job` has lasted
longer than a grace period, or the deadline passes. While it has no connection it says so
once (`on_reconnecting`) and, given `reconnect_for`, gives up after that long without one,
raising the last attempt's error (a refused connection, a time-out): a server that is gone
is reported, not waited for in silence.
"""

from __future__ import annotations

import asyncio
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


class Outage:
    """The time without a connection: told once when it begins, given up after `limit_s`."""

    def __init__(
        self, limit_s: float | None, on_lost: Callable[[BaseException], None] | None
    ) -> None:
        self.limit_s = limit_s
        self.on_lost = on_lost
        self.since: float | None = None
        self.last: Exception | None = None
        """The error to report on giving up: the last attempt's (refused, timed out)."""

    def lost(self, now: float, exc: Exception) -> None:
        if self.since is None:
            self.since, self.last = now, exc
            if self.on_lost is not None:
                self.on_lost(exc)

    def left(self, now: float) -> float | None:
        """Seconds of reconnecting left (None: no limit); <= 0 means give up."""
        if self.limit_s is None or self.since is None:
            return None
        return self.limit_s - (now - self.since)

    def watching(self, on_event: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """`on_event`, and the end of an outage: an event from the server (a subscription's
        first is the job's state) is a working connection; an open socket alone is not."""

        def seen(event: Any) -> None:
            self.since, self.last = None, None
            if on_event is not None:
                on_event(event)

        return seen


async def follow(
    client: Followed,
    job_id: str,
    on_event: Callable[[Any], None] | None,
    timeout: float | None,
    ws_urls: Sequence[str],
    unknown_grace_s: float,
    outage: Outage | None = None,
) -> Outcome:
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    urls = itertools.cycle(ws_urls or [client.ws_url])
    outage = outage or Outage(None, None)
    first_unknown: float | None = None
    failures = 0
    async with asyncio.timeout_at(deadline):
        while True:
            try:
                await client.subscribe(job_id)
                return await client.wait(job_id, outage.watching(on_event))
            except ClientError as exc:
                if exc.error.code is not ErrorCode.UNKNOWN_JOB:
                    raise
                first_unknown = first_unknown if first_unknown is not None else loop.time()
                if give_up_unknown(first_unknown, loop.time(), unknown_grace_s):
                    raise
            except (ConnectionError, WebSocketException) as exc:
                outage.lost(loop.time(), exc)
                await _reconnect(client, next(urls), outage)
            failures += 1
            await asyncio.sleep(retry_delay(failures))


async def _reconnect(client: Followed, ws_url: str, outage: Outage) -> None:
    """One attempt, within what is left of the outage's limit; a server that is still down is
    tried again after the next back-off, until the limit, when the last error is raised."""
    loop = asyncio.get_running_loop()
    left = outage.left(loop.time())
    if left is not None and left <= 0 and outage.last is not None:
        raise outage.last
    try:
        async with asyncio.timeout(left):
            await client.reconnect(ws_url)
    except (OSError, TimeoutError, WebSocketException) as exc:
        outage.last = exc
        if (left := outage.left(loop.time())) is not None and left <= 0:
            raise
