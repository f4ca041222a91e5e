"""Run the whole service (memory backend, real FFmpeg) in the test's loop on ephemeral ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from ffpool.app import Running, running
from ffpool.domain.protocol import server_adapter
from ffpool.settings import Settings


def settings_for(media_root: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "ws_port": 0,
        "http_port": 0,
        "ops_port": 0,
        "media_root": media_root,
        "max_concurrent_jobs": 2,
        "cancel_grace_seconds": 1.0,
        "drain_seconds": 0.0,
    }
    return Settings(**(base | overrides))


@asynccontextmanager
async def service(media_root: Path, **overrides: Any) -> AsyncIterator[Running]:
    async with running(settings_for(media_root, **overrides)) as svc:
        yield svc


class Conn:
    """A raw protocol connection: send dicts, receive parsed server messages."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.backlog: list[Any] = []

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def recv(self, timeout: float = 30.0) -> Any:
        if self.backlog:
            return self.backlog.pop(0)
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return server_adapter.validate_json(raw)

    async def expect(self, type_: str, timeout: float = 30.0) -> Any:
        """The next message of this type; others are kept for later `recv` calls."""
        skipped = []
        try:
            while (msg := await self.recv(timeout)).type != type_:
                skipped.append(msg)
            return msg
        finally:
            self.backlog[:0] = skipped

    async def until_terminal(self, job_id: str, timeout: float = 60.0) -> list[Any]:
        events = []
        while True:
            msg = await self.recv(timeout)
            if getattr(msg, "job_id", None) != job_id:
                continue
            events.append(msg)
            if msg.type in ("completed", "failed", "cancelled"):
                return events


@asynccontextmanager
async def conn(svc: Running) -> AsyncIterator[Conn]:
    async with connect(svc.ws_url, max_size=2**24) as ws:
        yield Conn(ws)


def submit(op: dict[str, Any], path: str = "clips/sample.mp4", **extra: Any) -> dict[str, Any]:
    return {
        "type": "submit",
        "job": {"input": {"kind": "path", "path": path}, "operation": op},
        **extra,
    }
