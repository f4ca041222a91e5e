"""Webhooks end to end with the memory backend and real FFmpeg: a real receiver on 127.0.0.1
gets every state change of a job, signed, in order; also after being down for a while."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ffpool.app import Running
from ffpool.client.outcomes import ClientError
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, PathInput, ProbeOp, ThumbnailOp
from ffpool.webhooks import signing
from tests.integration.service import service
from tests.integration.webhook_receiver import Receiver
from tests.polling import eventually

EVERY_STATE = ["job.queued", "job.running", "job.completed"]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "webhook-secret"
    path.write_text(signing.new_secret() + "\n")
    return path


@pytest.fixture
async def receiver(secret_file: Path) -> AsyncIterator[Receiver]:
    rec = Receiver(secret_file.read_text().strip())
    await rec.start()
    yield rec
    await rec.stop()


@asynccontextmanager
async def hooked(media_root: Path, secret_file: Path, **overrides: Any) -> AsyncIterator[Running]:
    settings = {"webhook_secret_file": secret_file, "webhook_allow_private": True}
    async with service(media_root, **(settings | overrides)) as svc:
        yield svc


async def test_every_state_change_arrives_signed_and_in_order(
    media_root: Path, secret_file: Path, receiver: Receiver
) -> None:
    async with hooked(media_root, secret_file) as svc, Client(svc.ws_url, svc.http_url) as client:
        spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp(time=1))
        job_id = (await client.submit(spec, callback=receiver.url)).job_id
        outcome = await client.wait(job_id)
        assert isinstance(outcome, CompletedEvent)
        await eventually(lambda: len(receiver.types(job_id)) == 3, timeout=10, what="3 events")
    assert receiver.types(job_id) == EVERY_STATE
    assert receiver.bad == []
    assert receiver.duplicates == 0
    completed = receiver.received[-1].body["data"]
    # The full terminal event the client got: its outputs too.
    assert completed["outputs"][0]["name"] == outcome.outputs[0].name


async def test_a_receiver_down_for_a_while_still_gets_every_event_in_order(
    media_root: Path, secret_file: Path, receiver: Receiver
) -> None:
    await receiver.stop()
    receiver.fail_next = 2  # and, once back, two failed answers before it takes them
    async with hooked(media_root, secret_file) as svc, Client(svc.ws_url, svc.http_url) as client:
        spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ProbeOp())
        jobs = [(await client.submit(spec, callback=receiver.url)).job_id for _ in range(2)]
        for job_id in jobs:
            await client.wait(job_id)
        await receiver.start()
        await eventually(
            lambda: all(len(receiver.types(j)) == 3 for j in jobs), timeout=30, what="all events"
        )
    assert [receiver.types(j) for j in jobs] == [EVERY_STATE, EVERY_STATE]
    assert receiver.bad == []
    assert receiver.requests >= 8


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [("http://169.254.169.254/latest/", True), ("http://127.0.0.1:9/hook", False)],
)
async def test_refused_callbacks_are_refused_at_submit(
    media_root: Path, secret_file: Path, url: str, allow_private: bool
) -> None:
    async with (
        hooked(media_root, secret_file, webhook_allow_private=allow_private) as svc,
        Client(svc.ws_url, svc.http_url) as client,
    ):
        spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ProbeOp())
        with pytest.raises(ClientError, match="refused"):
            await client.submit(spec, callback=url)


async def test_no_secret_no_callback(media_root: Path) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ProbeOp())
        with pytest.raises(ClientError, match="no webhook secret"):
            await client.submit(spec, callback="https://hooks.example.com/")
