"""The WebSocket endpoint (`ws://HOST:8080/ws`): parse each frame, call the backend, forward
job events. It only does I/O; the protocol lives in ffpool.protocol.

One writer task per connection owns the socket; forwarders feed it through a bounded queue, so a
slow client slows only its own forwarders, whose subscriptions then drop progress samples.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus

from pydantic import BaseModel
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ffpool import logs, names
from ffpool.backends.base import BackendError, JobBackend
from ffpool.jobs.models import Job, job_id_for_key, new_job_id
from ffpool.metrics import Metrics
from ffpool.protocol import (
    Accepted,
    Cancel,
    Error,
    ErrorCode,
    Ping,
    Pong,
    ProtocolError,
    Submit,
    Subscribe,
    encode,
    parse_client_message,
)
from ffpool.settings import Settings

log = logs.get(__name__)
OUTBOX_SIZE = 512
MAX_SUBSCRIPTIONS = 1000
# Frames beyond this are cut off by the library itself (close 1009); below it, frames larger
# than max_message_bytes get an `error` reply and the connection stays open.
HARD_FRAME_FACTOR = 16


class Session:
    """One client connection: its outbox, its writer and its job forwarders."""

    def __init__(
        self, ws: ServerConnection, backend: JobBackend, settings: Settings, metrics: Metrics
    ) -> None:
        self.ws = ws
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.outbox: asyncio.Queue[BaseModel] = asyncio.Queue(OUTBOX_SIZE)
        self.forwarders: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            async for raw in self.ws:
                await self.handle(raw)
        except ConnectionClosed:
            pass
        finally:
            for task in (*self.forwarders.values(), writer):
                task.cancel()
            await asyncio.gather(*self.forwarders.values(), writer, return_exceptions=True)

    async def handle(self, raw: str | bytes) -> None:
        try:
            msg = parse_client_message(raw, self.settings.max_message_bytes)
            match msg:
                case Submit():
                    await self.submit(msg)
                case Cancel():
                    await self.cancel(msg)
                case Subscribe():
                    await self.subscribe(msg.job_id, msg.request_id)
                case Ping():
                    await self.outbox.put(Pong(request_id=msg.request_id))
        except ProtocolError as exc:
            await self._refuse(exc.reply)
        except BackendError as exc:
            await self._refuse(Error(code=ErrorCode(exc.code), message=str(exc)))

    async def _refuse(self, reply: Error) -> None:
        self.metrics.observe_error(reply.code.value)
        log.debug("request refused", code=reply.code.value, detail=reply.message)
        await self.outbox.put(reply)

    async def submit(self, msg: Submit) -> None:
        key = msg.idempotency_key
        job = Job(
            id=job_id_for_key(key) if key else new_job_id(),
            spec=msg.job,
            priority=msg.priority,
            idempotency_key=key,
        )
        # Subscribe before submitting so no event is missed; hold events until `accepted` is out.
        release = await self.follow(job.id, snapshot=False, wait_until_subscribed=True, hold=True)
        try:
            submission = await self.backend.submit(job)
        except BackendError as exc:
            self.forwarders.pop(job.id).cancel()
            raise _error(exc, msg.request_id, job.id) from None
        record = submission.record
        await self.outbox.put(
            Accepted(job_id=record.job_id, state=record.state,
                     duplicate=submission.duplicate, request_id=msg.request_id)
        )  # fmt: skip
        if submission.duplicate:
            await self._send_snapshot(job.id)
        release.set()

    async def cancel(self, msg: Cancel) -> None:
        await self.follow(msg.job_id, snapshot=False, wait_until_subscribed=True)
        try:
            record = await self.backend.cancel(msg.job_id)
        except BackendError as exc:
            raise _error(exc, msg.request_id, msg.job_id) from None
        if record.state.terminal:
            raise ProtocolError(
                ErrorCode.NOT_CANCELLABLE, f"job is already {record.state}", msg.request_id
            )

    async def subscribe(self, job_id: str, request_id: str | None) -> None:
        if await self.backend.get(job_id) is None:
            raise ProtocolError(ErrorCode.UNKNOWN_JOB, f"no job {job_id}", request_id)
        await self.follow(job_id, snapshot=True)

    async def follow(
        self,
        job_id: str,
        *,
        snapshot: bool,
        wait_until_subscribed: bool = False,
        hold: bool = False,
    ) -> asyncio.Event:
        """Forward a job's events to this client; with `snapshot`, send its state first.

        Returns the gate that releases held events (`hold=True`); set already otherwise.
        """
        release = asyncio.Event()
        if not hold:
            release.set()
        if job_id in self.forwarders and not self.forwarders[job_id].done():
            if snapshot:
                await self._send_snapshot(job_id)
            release.set()
            return release
        if len(self.forwarders) >= MAX_SUBSCRIPTIONS:
            self.forwarders = {k: t for k, t in self.forwarders.items() if not t.done()}
        if len(self.forwarders) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError(ErrorCode.BUSY, "too many jobs followed on one connection")
        subscribed = asyncio.Event()
        self.forwarders[job_id] = asyncio.create_task(
            self._forward(job_id, snapshot, subscribed, release)
        )
        if wait_until_subscribed:
            await subscribed.wait()
        return release

    async def _forward(
        self, job_id: str, snapshot: bool, subscribed: asyncio.Event, release: asyncio.Event
    ) -> None:
        async with self.backend.subscribe(job_id) as sub:
            subscribed.set()
            await release.wait()
            if snapshot and await self._send_snapshot(job_id):
                return
            async for event in sub:
                await self.outbox.put(event)

    async def _send_snapshot(self, job_id: str) -> bool:
        """Send the job's state (and its outcome if finished); True when it has finished."""
        record = await self.backend.get(job_id)
        if record is None:
            return False
        await self.outbox.put(record.snapshot())
        if (final := record.terminal_event()) is not None:
            await self.outbox.put(final)
            return True
        return False

    async def _write(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.ws.send(encode(message))


def _error(exc: BackendError, request_id: str | None, job_id: str) -> ProtocolError:
    err = ProtocolError(ErrorCode(exc.code), str(exc), request_id)
    err.reply = err.reply.model_copy(update={"job_id": job_id})
    return err


def _only_ws_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != names.WS_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, f"WebSocket endpoint is {names.WS_PATH}\n")
    return None


async def start_ws_server(backend: JobBackend, settings: Settings, metrics: Metrics) -> Server:
    async def handler(ws: ServerConnection) -> None:
        metrics.ws_connected(1)
        try:
            await Session(ws, backend, settings, metrics).run()
        finally:
            metrics.ws_connected(-1)
            with contextlib.suppress(Exception):
                await ws.close()

    return await serve(
        handler,
        settings.host,
        settings.ws_port,
        process_request=_only_ws_path,
        max_size=settings.max_message_bytes * HARD_FRAME_FACTOR,
        max_queue=16,
    )
