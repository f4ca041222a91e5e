"""Opening a channel is a network call: it gives up after the broker timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractRobustConnection

from ffpool.backends.rabbitmq import connection


class SilentBroker:
    """A connection whose broker never answers `channel.open`."""

    async def channel(self, **_: Any) -> None:
        await asyncio.Event().wait()


async def test_opening_a_channel_times_out() -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await connection.open_channel(cast(AbstractRobustConnection, SilentBroker()), 0.2)
    assert time.monotonic() - began < 2
