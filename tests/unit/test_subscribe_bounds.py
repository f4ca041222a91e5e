"""What `subscribe` can make a server hold: repeated subscribes of one job on a connection
that never reads are bounded (MAX_SUBSCRIPTIONS pending snapshots, then `busy`, then the
connection stops being read), and each answer is at most one bounded record's outcome."""

from __future__ import annotations

import asyncio
import json
from typing import cast

from websockets.asyncio.server import ServerConnection

from ffpool.auth.gate import Authenticator
from ffpool.auth.identity import ANONYMOUS
from ffpool.backends.memory import MemoryBackend
from ffpool.domain.jobs import Job, JobSpec, PathInput, TrimOp
from ffpool.domain.protocol import Error, ErrorCode
from ffpool.metrics import Metrics
from ffpool.server.ws_session import MAX_SUBSCRIPTIONS, OUTBOX_SIZE, Session
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics
from tests.polling import eventually


async def test_repeated_subscribes_are_bounded_on_a_connection_that_never_reads() -> None:
    settings = Settings(_env_file=None, max_concurrent_jobs=1)
    executor = FakeExecutor(hold=True)
    backend = MemoryBackend(settings, executor, FakeMetrics())
    await backend.start()
    job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=TrimOp(duration=1)))
    await backend.submit(job)
    await eventually(lambda: executor.started == [job.id], timeout=10, what="the run")
    # No writer runs: nothing leaves the outbox, as with a client that never reads.
    ws = cast(ServerConnection, None)
    session = Session(ws, backend, settings, Metrics(), ANONYMOUS, Authenticator(settings, b"k"))
    frame = json.dumps({"type": "subscribe", "job_id": job.id})
    try:
        sent = 0
        while len(session.side_tasks) < MAX_SUBSCRIPTIONS:  # snapshots pile up, unsent
            assert sent < 2 * (OUTBOX_SIZE + MAX_SUBSCRIPTIONS), "never reached the bound"
            await asyncio.wait_for(session.handle(frame), 10)
            sent += 1
        assert session.outbox.qsize() == OUTBOX_SIZE
        refused = asyncio.create_task(session.handle(frame))
        replies = []
        while not any(isinstance(r, Error) for r in replies):  # the `busy` error gets through
            replies.append(await asyncio.wait_for(session.outbox.get(), 10))
        error = next(r for r in replies if isinstance(r, Error))
        assert error.code is ErrorCode.BUSY
        await asyncio.wait_for(refused, 10)
        assert len(session.side_tasks) <= MAX_SUBSCRIPTIONS
    finally:
        tasks = [*session.forwarders.values(), *session.side_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.release(job.id)
        await backend.stop()
