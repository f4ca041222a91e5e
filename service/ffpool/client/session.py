"""An async Python client for the ffpool WebSocket protocol and its HTTP side.

token = os.environ["FFPOOL_TOKEN"]
async with Client.connect_to("https://ffpool.example.com", token=token) as client:
    upload_id = await client.upload(Path("clip.mp4"))
    accepted = await client.submit(JobSpec(input=UploadInput(upload_id=upload_id),
                                           operation=TranscodeOp(height=720)),
                                   output="s3://media-out/acme/")  # optional: in a bucket
    outcome = await client.wait(accepted.job_id, on_event=print, timeout=3600)
    for output in outcome.outputs:
        await client.download(output, Path("out"))  # output.location: s3://... if in a bucket

`connect_to` takes ONE server URL (an Ingress's, or a server's HTTP port) and derives the
WebSocket from it (endpoints.py); `Client(ws_url, http_url)` takes both. The HTTP queries
(`job`, `jobs`, `dead_letters`, `upload`, `download`, `save`) are in queries.py.

Every network call has a time limit: connecting and each request reply (`timeout`), each read
of an HTTP body and each stall of an upload (`read_timeout`), and waits on a job when given one.
When the WebSocket closes, pending requests and waits end with ConnectionError. With a `token`,
every request carries `Authorization: Bearer <token>` (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ffpool import names
from ffpool.client import resume as resume
from ffpool.client.discovery import discover, open_websocket
from ffpool.client.endpoints import http_url_for as http_url_for
from ffpool.client.outcomes import TERMINAL
from ffpool.client.outcomes import ClientError as ClientError
from ffpool.client.outcomes import Outcome as Outcome
from ffpool.client.queries import HttpQueries
from ffpool.client.streams import CLOSED, MAX_BUFFERED_EVENTS, offer
from ffpool.domain.jobs import JobSpec
from ffpool.domain.protocol import (
    Accepted,
    Cancel,
    Error,
    Message,
    Ping,
    Pong,
    Submit,
    Subscribe,
    encode,
    server_adapter,
)


class Client(HttpQueries):
    def __init__(
        self,
        ws_url: str,
        http_url: str | None = None,
        timeout: float = 30.0,
        read_timeout: float = 60.0,
        token: str | None = None,
        *,
        websocket: bool = True,
        ws_fallback: str | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.ws_fallback = ws_fallback  # tried when ws_url answers 404 (endpoints.py)
        self.websocket = websocket  # False: the HTTP side only (queries need no WebSocket)
        self._headers = {names.AUTH_HEADER: names.BEARER_PREFIX + token} if token else {}
        self.http_url = http_url or http_url_for(ws_url)
        self.timeout = timeout
        self.read_timeout = read_timeout
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._events: dict[str, asyncio.Queue[Any]] = {}
        self._closed = False
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect_to(
        cls,
        server_url: str,
        *,
        token: str | None = None,
        http_url: str | None = None,
        websocket: bool = True,
        timeout: float = 30.0,
        read_timeout: float = 60.0,
    ) -> AsyncIterator[Client]:
        """A client of the server at ONE URL, connected: its `/ui/config.json` tells where
        the WebSocket is (endpoints.py). `http_url` overrides the HTTP side (`--http`).
        Raises endpoints.NotAnFfpoolServer when the URL answers as something else."""
        found = await discover(server_url, http_url, timeout)
        client = cls(
            found.ws_url, found.http_url, timeout, read_timeout, token, websocket=websocket
        )
        client.ws_fallback = found.ws_fallback
        async with client:
            yield client

    async def __aenter__(self) -> Client:
        limits = aiohttp.ClientTimeout(
            total=None, connect=self.timeout, sock_read=self.read_timeout
        )
        self._http = aiohttp.ClientSession(timeout=limits)
        if self.websocket:
            try:
                await self._open()
            except BaseException:
                await self._http.close()
                raise
        return self

    async def _open(self) -> None:
        opened = await open_websocket(self.ws_url, self.ws_fallback, self._headers, self.timeout)
        self._ws, self.ws_url = opened
        self._closed = False
        self._reader = asyncio.create_task(self._read())

    async def reconnect(self, ws_url: str | None = None) -> None:
        """A new WebSocket (to `ws_url`, another replica, if given). Waits and event streams
        of the old one end with ConnectionError; follow jobs again with `subscribe`."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), self.timeout)
        self._close_all()
        self._events.clear()
        if ws_url is not None:
            self.ws_url = ws_url
        await self._open()

    async def follow(
        self,
        job_id: str,
        on_event: Callable[[Any], None] | None = None,
        timeout: float | None = None,
        *,
        ws_urls: Sequence[str] = (),
        unknown_grace_s: float = resume.UNKNOWN_GRACE_S,
        reconnect_for: float | None = None,
        on_reconnecting: Callable[[BaseException], None] | None = None,
    ) -> Outcome:
        """Like `wait` after a `subscribe`, riding out what a replicated service does
        (resume.py): `unknown_job` is retried for `unknown_grace_s`, a closed connection is
        reconnected (to the next of `ws_urls`, if given; `on_reconnecting` is told) until
        `reconnect_for` seconds pass without one (None: until `timeout`)."""
        lost = resume.Outage(reconnect_for, on_reconnecting)
        return await resume.follow(self, job_id, on_event, timeout, ws_urls, unknown_grace_s, lost)

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    self._dispatch(server_adapter.validate_json(raw))
                except ValidationError:
                    continue  # a message type newer than this client: not ours to handle
        except ConnectionClosed:
            pass
        finally:
            self._close_all()

    def _dispatch(self, msg: Any) -> None:
        request_id = getattr(msg, "request_id", None)
        future = self._pending.pop(request_id, None) if request_id else None
        if future is not None:
            if not future.done():
                future.set_result(msg)
        elif job_id := getattr(msg, "job_id", None):
            offer(self._queue(job_id), msg)

    def _close_all(self) -> None:
        """Fail every pending request and end every job's event stream."""
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
        self._pending.clear()
        for queue in self._events.values():
            offer(queue, CLOSED)

    def _queue(self, job_id: str) -> asyncio.Queue[Any]:
        queue = self._events.get(job_id)
        if queue is None:
            queue = self._events[job_id] = asyncio.Queue(MAX_BUFFERED_EVENTS)
        return queue

    async def _send(self, msg: Message) -> None:
        if self._ws is None:
            raise RuntimeError("use `async with Client(...)` (with its WebSocket)")
        if self._closed:
            raise ConnectionError("connection closed")
        async with asyncio.timeout(self.timeout):
            await self._ws.send(encode(msg))

    async def _request(self, msg: Message, request_id: str) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._send(msg)
            reply = await asyncio.wait_for(future, self.timeout)
        finally:
            self._pending.pop(request_id, None)
        if isinstance(reply, Error):
            raise ClientError(reply)
        return reply

    async def submit(
        self,
        spec: JobSpec,
        priority: int = 0,
        idempotency_key: str | None = None,
        *,
        output: str | None = None,
        callback: str | None = None,
    ) -> Accepted:
        """Submit a job. `output` (s3://bucket/prefix) and `callback` (a URL) override the
        spec's; outputs in object storage come back with `location` and a presigned `url`."""
        if output is not None or callback is not None:
            changes = {"output": output, "callback": callback}
            changes = {k: v for k, v in changes.items() if v is not None}
            spec = JobSpec.model_validate(spec.model_dump(mode="json") | changes)
        rid = uuid.uuid4().hex
        msg = Submit(job=spec, priority=priority, idempotency_key=idempotency_key, request_id=rid)
        reply: Accepted = await self._request(msg, rid)
        return reply

    async def ping(self) -> Pong:
        rid = uuid.uuid4().hex
        reply: Pong = await self._request(Ping(request_id=rid), rid)
        return reply

    async def subscribe(self, job_id: str) -> None:
        """Follow a job (after a reconnect, say): its state comes first, then live events.
        A refusal (unknown job) ends that job's `events()` with ClientError."""
        self._queue(job_id)
        await self._send(Subscribe(job_id=job_id))

    async def cancel(self, job_id: str) -> None:
        """Ask to cancel; the outcome (or a refusal, as ClientError) comes in `events()`."""
        self._queue(job_id)
        await self._send(Cancel(job_id=job_id))

    async def events(self, job_id: str, timeout: float | None = None) -> AsyncIterator[Any]:
        """Every event of the job until (and including) its outcome. Raises TimeoutError once
        `timeout` seconds have passed, ConnectionError if the connection closes first, and
        ClientError if the server refuses a request about this job."""
        queue = self._queue(job_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                if self._closed and queue.empty():
                    raise ConnectionError("connection closed")
                async with asyncio.timeout_at(deadline):
                    event = await queue.get()
                if event is CLOSED:
                    raise ConnectionError("connection closed")
                if isinstance(event, Error):
                    raise ClientError(event)
                yield event
                if isinstance(event, TERMINAL):
                    return
        finally:
            if self._events.get(job_id) is queue and queue.empty():
                del self._events[job_id]

    async def wait(
        self,
        job_id: str,
        on_event: Callable[[Any], None] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """The job's outcome; raises as `events()` does."""
        async for event in self.events(job_id, timeout):
            if on_event is not None:
                on_event(event)
            if isinstance(event, TERMINAL):
                return event
        raise ConnectionError("event stream ended")
