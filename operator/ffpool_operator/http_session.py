"""One aiohttp session for a client of the operator's: opened on first use, never again once
closed (a handler still running while the operator shuts down must not open a session that
nothing would close). The Kubernetes client and the RabbitMQ management client use it."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp


class LazySession:
    def __init__(self, make: Callable[[], aiohttp.ClientSession]) -> None:
        self._make = make
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def get(self) -> aiohttp.ClientSession | None:
        """The session, opened now if need be; None once closed."""
        if self._closed:
            return None
        if self._session is None:
            self._session = self._make()
        return self._session

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
