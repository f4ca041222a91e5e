"""ffpool.client.session against the real service (memory backend, real FFmpeg, ephemeral ports):
every wait ends, by an outcome, a deadline, a refusal or the connection closing."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ffpool.app import Running
from ffpool.auth.keys import derive, load_signing_key
from ffpool.backends.tenancy import keyed_job_id
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import CancelledEvent, CompletedEvent
from ffpool.domain.jobs import (
    ANONYMOUS_TENANT,
    JobSpec,
    PathInput,
    ThumbnailOp,
    TranscodeOp,
    UploadInput,
)
from ffpool.domain.protocol import ErrorCode
from tests.integration.service import service
from tests.polling import eventually

pytestmark = pytest.mark.ffmpeg

# Seconds of work on the sample clip: long enough to still be running when the test acts.
SLOW = JobSpec(
    input=PathInput(path="clips/sample.mp4"),
    operation=TranscodeOp(preset="veryslow", height=480, crf=18),
)
UNKNOWN_JOB = "f" * 32


async def test_upload_submit_wait_download(media_root: Path, tmp_path: Path) -> None:
    clip = media_root / "clips" / "sample.mp4"
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        upload_id = await client.upload(clip)
        spec = JobSpec(input=UploadInput(upload_id=upload_id), operation=ThumbnailOp(time=1))
        outcome = await client.wait((await client.submit(spec)).job_id, timeout=60)
        assert isinstance(outcome, CompletedEvent), outcome
        local = await client.download(outcome.outputs[0], tmp_path / "out")
    assert local.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert local.stat().st_size == outcome.outputs[0].size


async def test_wait_and_events_end_at_their_deadline(media_root: Path) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        job_id = (await client.submit(SLOW)).job_id
        with pytest.raises(TimeoutError):
            await client.wait(job_id, timeout=0.3)
        with pytest.raises(TimeoutError):
            async for _ in client.events(job_id, timeout=0.3):
                pass
        await client.cancel(job_id)  # the stream still works after a deadline passed
        outcome = await client.wait(job_id, timeout=30)
        assert isinstance(outcome, CancelledEvent), outcome


async def test_refused_cancel_ends_the_jobs_events_with_client_error(media_root: Path) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        await client.cancel(UNKNOWN_JOB)
        with pytest.raises(ClientError) as caught:
            await client.wait(UNKNOWN_JOB, timeout=10)
        assert caught.value.error.code is ErrorCode.UNKNOWN_JOB
        assert caught.value.error.job_id == UNKNOWN_JOB
        await client.ping()  # the connection is still usable


async def started_one(svc: Running) -> bool:
    return (await svc.backend.stats()).active_jobs >= 1  # it left the queue


async def test_error_with_a_job_id_answers_its_request(media_root: Path) -> None:
    """queue_full names the job it refused, and must still fail `submit` (not wait forever)."""
    async with (
        service(media_root, max_concurrent_jobs=1, max_queued_jobs=1) as svc,
        Client(svc.ws_url, svc.http_url, timeout=10) as client,
    ):
        await client.submit(SLOW)
        await eventually(lambda: started_one(svc), timeout=30, what="the first job started")
        await client.submit(SLOW)  # fills the queue
        with pytest.raises(ClientError) as caught:
            await client.submit(SLOW)
        assert caught.value.error.code is ErrorCode.QUEUE_FULL
        assert caught.value.error.job_id is not None


async def first_event(client: Client, job_id: str) -> object:
    async for event in client.events(job_id):
        return event
    return None


async def test_connection_closing_ends_waits_with_connection_error(media_root: Path) -> None:
    async with contextlib.AsyncExitStack() as running_service:
        svc = await running_service.enter_async_context(service(media_root))
        async with Client(svc.ws_url, svc.http_url) as client:
            await client.ping()
            waiting = asyncio.create_task(client.wait(UNKNOWN_JOB))
            following = asyncio.create_task(first_event(client, "e" * 32))
            await asyncio.sleep(0)  # both are now waiting for events
            await running_service.aclose()  # the service stops and closes its connections
            for task in (waiting, following):
                with pytest.raises(ConnectionError):
                    await asyncio.wait_for(task, 10)
            with pytest.raises(ConnectionError):
                await client.wait("d" * 32, timeout=10)  # a wait after the close ends at once
            with pytest.raises(ConnectionError):
                await client.ping()


@contextlib.asynccontextmanager
async def server_that_never_reads() -> AsyncIterator[str]:
    """An HTTP endpoint that accepts connections and never reads a byte: an upload stalls."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_stalled_upload_times_out(media_root: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(64 * 1024 * 1024))  # far more than the socket buffers hold
    async with (
        service(media_root) as svc,
        server_that_never_reads() as http_url,
        Client(svc.ws_url, http_url, read_timeout=0.5) as client,
    ):
        upload = asyncio.create_task(client.upload(big))
        await asyncio.wait([upload], timeout=20)
        if not upload.done():
            upload.cancel()
            pytest.fail("a stalled upload hangs")
        with pytest.raises(TimeoutError):
            upload.result()


@contextlib.asynccontextmanager
async def relay(url: str) -> AsyncIterator[tuple[str, Callable[[], int]]]:
    """A TCP relay in front of `url`: the URL through it, and a call that drops every connection
    it carries at once (as a network fault would) and says how many; later ones go through."""
    target = urllib.parse.urlsplit(url)
    open_ends: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        open_ends.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop() -> int:
        for end in open_ends:
            end.transport.abort()
        dropped = len(open_ends) // 2
        open_ends.clear()
        return dropped

    server = await asyncio.start_server(carry, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield target._replace(netloc=f"127.0.0.1:{port}").geturl(), drop
    finally:
        drop()
        server.close()
        await server.wait_closed()


async def test_follow_rides_out_unknown_job_and_a_dropped_connection(media_root: Path) -> None:
    """`follow` subscribes to a job no server knows yet (accepted a moment later, as on
    another replica), and after its connection drops reconnects and subscribes again."""
    spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp(time=1))
    key = f"follow-{uuid.uuid4().hex}"
    async with (
        service(media_root) as svc,
        relay(svc.ws_url) as (relayed_ws_url, drop),
        Client(relayed_ws_url, svc.http_url) as follower,
        Client(svc.ws_url, svc.http_url) as submitter,
    ):
        # The id the server derives (keyed, with the pool's key: tenancy.keyed_job_id).
        secret = derive(load_signing_key(svc.settings), "job-id")
        job_id = keyed_job_id(key, spec, ANONYMOUS_TENANT, secret)
        following = asyncio.create_task(follower.follow(job_id, timeout=60))
        await asyncio.sleep(0.5)
        assert not following.done()  # unknown_job so far: still trying
        assert drop() == 1  # the follower's connection drops under it
        await asyncio.sleep(0.3)
        accepted = await submitter.submit(spec, idempotency_key=key)
        assert accepted.job_id == job_id
        outcome = await following
        assert isinstance(outcome, CompletedEvent), outcome


async def test_follow_believes_unknown_job_after_the_grace_period(media_root: Path) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        with pytest.raises(ClientError) as caught:
            await client.follow(UNKNOWN_JOB, timeout=10, unknown_grace_s=0.5)
        assert caught.value.error.code is ErrorCode.UNKNOWN_JOB
