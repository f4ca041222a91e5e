"""An async Python client for the ffpool WebSocket protocol and its HTTP side.

async with Client("ws://127.0.0.1:8080/ws") as client:
    upload_id = await client.upload(Path("clip.mp4"))
    accepted = await client.submit(JobSpec(input=UploadInput(upload_id=upload_id),
                                           operation=TranscodeOp(height=720)))
    outcome = await client.wait(accepted.job_id, on_event=print)
    for output in outcome.outputs:
        await client.download(output, Path("out"))
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from ffpool.jobs.events import CancelledEvent, CompletedEvent, FailedEvent, OutputFile
from ffpool.jobs.models import JobSpec
from ffpool.protocol import (
    Accepted,
    Cancel,
    Error,
    Message,
    Pong,
    Submit,
    Subscribe,
    encode,
    server_adapter,
)

Outcome = CompletedEvent | FailedEvent | CancelledEvent
TERMINAL = (CompletedEvent, FailedEvent, CancelledEvent)
CHUNK = 256 * 1024


class ClientError(Exception):
    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def http_url_for(ws_url: str, http_port: int = 8081) -> str:
    """The HTTP side of a server: same host, port 8081 (ws→http, wss→https)."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, f"{parts.hostname}:{http_port}", "", "", ""))


class Client:
    def __init__(self, ws_url: str, http_url: str | None = None, timeout: float = 30.0) -> None:
        self.ws_url = ws_url
        self.http_url = http_url or http_url_for(ws_url)
        self.timeout = timeout
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._events: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._ws = await asyncio.wait_for(connect(self.ws_url, max_size=2**24), self.timeout)
        self._reader = asyncio.create_task(self._read())
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            msg = server_adapter.validate_json(raw)
            request_id = getattr(msg, "request_id", None)
            if isinstance(msg, Accepted | Error | Pong) and request_id in self._pending:
                future = self._pending.pop(request_id)
                if not future.done():
                    future.set_result(msg)
            elif getattr(msg, "job_id", None):
                self._events[msg.job_id].put_nowait(msg)
        for future in self._pending.values():
            future.set_exception(ConnectionError("connection closed"))

    async def _request(self, msg: Message, request_id: str) -> Any:
        assert self._ws is not None, "use `async with Client(...)`"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._ws.send(encode(msg))
        reply = await asyncio.wait_for(future, self.timeout)
        if isinstance(reply, Error):
            raise ClientError(reply)
        return reply

    async def submit(
        self, spec: JobSpec, priority: int = 0, idempotency_key: str | None = None
    ) -> Accepted:
        rid = uuid.uuid4().hex
        msg = Submit(job=spec, priority=priority, idempotency_key=idempotency_key, request_id=rid)
        reply: Accepted = await self._request(msg, rid)
        return reply

    async def subscribe(self, job_id: str) -> None:
        """Follow a job (after a reconnect, say): its state comes first, then live events."""
        assert self._ws is not None
        await self._ws.send(encode(Subscribe(job_id=job_id)))

    async def cancel(self, job_id: str) -> None:
        assert self._ws is not None
        await self._ws.send(encode(Cancel(job_id=job_id)))

    async def events(self, job_id: str) -> AsyncIterator[Any]:
        """Every event of the job until (and including) its outcome."""
        queue = self._events[job_id]
        while True:
            event = await queue.get()
            yield event
            if isinstance(event, TERMINAL):
                return

    async def wait(self, job_id: str, on_event: Callable[[Any], None] | None = None) -> Outcome:
        async for event in self.events(job_id):
            if on_event is not None:
                on_event(event)
            if isinstance(event, TERMINAL):
                return event
        raise ConnectionError("event stream ended")

    async def upload(self, path: Path) -> str:
        assert self._http is not None
        with path.open("rb") as handle:
            async with self._http.post(f"{self.http_url}/uploads", data=handle) as resp:
                body = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"upload failed ({resp.status}): {body}")
                return str(body["upload_id"])

    async def download(self, output: OutputFile, dest_dir: Path) -> Path:
        assert self._http is not None
        await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
        dest = dest_dir / Path(output.name).name
        async with self._http.get(urljoin(self.http_url + "/", output.url)) as resp:
            resp.raise_for_status()
            with dest.open("wb") as handle:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    await asyncio.to_thread(handle.write, chunk)
        return dest
