"""A worker started before the broker waits for it, retrying with back-off, instead of
exiting; with a bound on the wait it gives up with a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ffpool.backends.base import BackendUnavailable
from ffpool.backends.rabbitmq import build_server, build_worker
from ffpool.domain.events import JobState
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    job,
    make_settings,
    need_broker,
    prefix_for_test,
    started,
    until_state,
)
from tests.integration.rabbit_procs import FFPOOL, service_env

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def broker_on(port: int) -> AsyncIterator[None]:
    """The local broker, reachable on `port` only while this is open (a broker 'coming up')."""

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_a_worker_waits_for_a_broker_that_comes_up_later(tmp_path: Path) -> None:
    port = free_port()
    async with prefix_for_test() as prefix:
        url = f"amqp://guest:guest@127.0.0.1:{port}/"
        worker = make_settings(prefix, tmp_path, "w", rabbitmq_url=url, max_concurrent_jobs=1)
        backend = build_worker(worker, FakeMetrics(), FakeExecutor())
        starting = asyncio.create_task(backend.start())
        await asyncio.sleep(2.0)
        assert not starting.done(), "the worker gave up while the broker was down"
        async with broker_on(port):
            await asyncio.wait_for(starting, 40)
            try:
                server = make_settings(prefix, tmp_path, "s")
                async with started(build_server(server, FakeMetrics())) as front:
                    j = job("ok")
                    await front.submit(j)
                    await until_state(front, j.id, JobState.COMPLETED)
            finally:
                await backend.stop()


async def test_a_bounded_wait_ends_in_a_clear_error(tmp_path: Path) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    worker = make_settings(
        "fftest.none", tmp_path, "w", rabbitmq_url=url, broker_startup_wait_seconds=1.5
    )
    backend = build_worker(worker, FakeMetrics(), FakeExecutor())
    with pytest.raises(BackendUnavailable, match="cannot reach RabbitMQ"):
        await asyncio.wait_for(backend.start(), 20)


async def test_sigterm_stops_a_worker_that_waits_for_the_broker(tmp_path: Path) -> None:
    """A pod deleted while its worker waits for the broker must not hang until SIGKILL."""
    env = service_env("fftest.none", tmp_path, "w", f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    proc = await asyncio.create_subprocess_exec(
        FFPOOL,
        "worker",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"retrying" not in await proc.stderr.readline():
                pass
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            rest = await proc.stderr.read()
            assert await proc.wait() == 0
        assert b"stopped before the service was ready" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
