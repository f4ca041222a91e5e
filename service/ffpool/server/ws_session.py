"""One WebSocket connection's session: parse each frame, call the backend, forward job events.
It only does I/O; the protocol lives in ffpool.domain.protocol.

One writer task per connection owns the socket; forwarders feed it through a bounded queue, so a
slow client slows only its own forwarders, whose subscriptions then drop progress samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ffpool import logs
from ffpool.auth.gate import Authenticator
from ffpool.auth.identity import Caller
from ffpool.backends import tenancy
from ffpool.backends.base import BackendBusy, BackendError, JobBackend, QuotaExceeded, UnknownJob
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import Job, new_job_id
from ffpool.domain.protocol import (
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
from ffpool.metrics import Metrics
from ffpool.server.job_checks import JobChecks
from ffpool.server.output_links import OutputLinks
from ffpool.settings import Settings
from ffpool.storage.media import Storage
from ffpool.storage.quota import OverQuota

log = logs.get(__name__)
OUTBOX_SIZE = 512
MAX_SUBSCRIPTIONS = 1000


@dataclass
class Gate:
    """A follow in the making: subscribed at once, forwarding only once opened, so the
    caller can send its own reply (`accepted`) first and no event is lost in between."""

    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    snapshot: bool = False

    def open(self, *, snapshot: bool) -> None:
        self.snapshot = snapshot
        self.opened.set()


class Session:
    """One client connection: its outbox, its writer and its job forwarders. It sees the
    backend through its caller's tenant only (`tenancy.scoped`)."""

    def __init__(
        self,
        ws: ServerConnection,
        backend: JobBackend,
        settings: Settings,
        metrics: Metrics,
        caller: Caller,
        auth: Authenticator,
        storage: Storage | None = None,
        checks: JobChecks | None = None,
        links: OutputLinks | None = None,
    ) -> None:
        self.ws = ws
        self.backend = tenancy.scoped(backend, caller.tenant)
        self.settings = settings
        self.metrics = metrics
        self.caller = caller
        self.auth = auth
        self.storage = storage
        self.checks = checks or JobChecks(settings)
        self.links = links or OutputLinks(auth)
        self.outbox: asyncio.Queue[BaseModel] = asyncio.Queue(OUTBOX_SIZE)
        self.forwarders: dict[str, asyncio.Task[None]] = {}
        self.side_tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            async for raw in self.ws:
                await self.handle(raw)
        except ConnectionClosed:
            pass
        finally:
            tasks = [*self.forwarders.values(), *self.side_tasks, writer]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def handle(self, raw: str | bytes) -> None:
        try:
            msg = parse_client_message(raw, self.settings.max_message_bytes)
            match msg:
                case Submit():
                    await self.submit(msg)
                case Cancel():
                    await self.cancel(msg)
                case Subscribe():
                    await self.subscribe(msg)
                case Ping():
                    await self.outbox.put(Pong(request_id=msg.request_id))
        except ProtocolError as exc:
            await self._refuse(exc.reply)
        except Exception:
            # A bug must cost this request, not the connection or other clients.
            log.exception("request failed")
            await self._refuse(Error(code=ErrorCode.INTERNAL_ERROR, message="internal error"))

    async def _refuse(self, reply: Error) -> None:
        self.metrics.observe_error(reply.code.value)
        log.debug("request refused", code=reply.code.value, detail=reply.message)
        await self.outbox.put(reply)

    async def submit(self, msg: Submit) -> None:
        key, tenant = msg.idempotency_key, self.caller.tenant
        if (problem := self.checks.problem(tenant, msg.job)) is not None:
            # Before the backend sees it: a job naming what its tenant may not use never runs.
            raise ProtocolError(ErrorCode.INVALID_JOB, problem, msg.request_id)
        job_id = (
            tenancy.keyed_job_id(key, msg.job, tenant, self.auth.job_id_key)
            if key
            else new_job_id()
        )
        job = Job(
            id=job_id, spec=msg.job, priority=msg.priority, idempotency_key=key, tenant=tenant
        )
        gate = await self.follow(job_id, msg.request_id)
        try:
            if self.storage is not None:
                _check_quota(self.storage, tenant)
            submission = await self.backend.submit(job)
        except BackendError as exc:
            self._unfollow(job_id)
            raise _error(exc, msg.request_id, job_id) from None
        record = submission.record
        await self.outbox.put(
            Accepted(
                job_id=record.job_id,
                state=record.state,
                duplicate=submission.duplicate,
                request_id=msg.request_id,
            )
        )
        gate.open(snapshot=submission.duplicate)

    async def cancel(self, msg: Cancel) -> None:
        await self._known(msg.job_id, msg.request_id)
        gate = await self.follow(msg.job_id, msg.request_id)
        gate.open(snapshot=False)
        try:
            record = await self.backend.cancel(msg.job_id)
        except BackendError as exc:
            raise _error(exc, msg.request_id, msg.job_id) from None
        if record.state.terminal:
            raise _error(
                BackendError(f"job is already {record.state}"),
                msg.request_id,
                msg.job_id,
                ErrorCode.NOT_CANCELLABLE,
            )

    async def subscribe(self, msg: Subscribe) -> None:
        await self._known(msg.job_id, msg.request_id)
        gate = await self.follow(msg.job_id, msg.request_id)
        gate.open(snapshot=True)

    async def _known(self, job_id: str, request_id: str | None) -> None:
        if await self.backend.get(job_id) is None:
            raise _error(UnknownJob(f"no job {job_id}"), request_id, job_id)

    async def follow(self, job_id: str, request_id: str | None) -> Gate:
        """Subscribe this connection to a job (once); returns the gate to open."""
        gate = Gate()
        if job_id in self.forwarders:
            if len(self.side_tasks) >= MAX_SUBSCRIPTIONS:  # snapshots owed to a non-reader
                raise _error(
                    BackendBusy("too many requests pending on one connection"), request_id, job_id
                )
            gate.subscribed.set()  # already following; only a snapshot may be due
            self._spawn(self._snapshot_when_opened(job_id, gate))
            return gate
        if len(self.forwarders) >= MAX_SUBSCRIPTIONS:
            raise _error(
                BackendBusy("too many jobs followed on one connection"), request_id, job_id
            )
        self.forwarders[job_id] = asyncio.create_task(self._forward(job_id, gate))
        await gate.subscribed.wait()
        return gate

    def _unfollow(self, job_id: str) -> None:
        task = self.forwarders.pop(job_id, None)
        if task is not None:
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    async def _snapshot_when_opened(self, job_id: str, gate: Gate) -> None:
        await gate.opened.wait()
        if gate.snapshot:
            await self._send_snapshot(job_id)

    async def _forward(self, job_id: str, gate: Gate) -> None:
        try:
            async with self.backend.subscribe(job_id) as sub:
                gate.subscribed.set()
                await gate.opened.wait()
                if gate.snapshot and await self._send_snapshot(job_id):
                    return
                record = await self.backend.get(job_id)
                if record is None or record.state.terminal:
                    # Finished before we subscribed: nothing more will come.
                    for event in sub.pending():
                        await self.outbox.put(event)
                    return
                async for event in sub:
                    await self.outbox.put(event)
        finally:
            if self.forwarders.get(job_id) is asyncio.current_task():
                del self.forwarders[job_id]

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
            if isinstance(message, CompletedEvent):
                # Signed as it leaves, so the link's lifetime starts when the client gets it.
                message = await self.links.completed(message)
            await self.ws.send(encode(message))


def _check_quota(storage: Storage, tenant: str) -> None:
    """Storage's refusal as the error clients know (`quota_exceeded`); in memory, no disk walk."""
    try:
        storage.check_quota(tenant)
    except OverQuota as exc:
        raise QuotaExceeded(str(exc)) from None


def _error(
    exc: BackendError, request_id: str | None, job_id: str, code: ErrorCode | None = None
) -> ProtocolError:
    err = ProtocolError(code or ErrorCode(exc.code), str(exc), request_id)
    err.reply = err.reply.model_copy(update={"job_id": job_id})
    return err
