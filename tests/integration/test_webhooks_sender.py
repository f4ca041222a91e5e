"""One POST against a real local server: signed headers, the SSRF guard on every attempt
(names resolved at connect time), redirects not followed, 410 and slow receivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from ffpool.domain.events import JobState, StateEvent
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.webhooks import signing
from ffpool.webhooks.model import WebhookDelivery
from ffpool.webhooks.schedule import Verdict
from ffpool.webhooks.secret_store import Secrets
from ffpool.webhooks.sender import Sender

SECRET = signing.new_secret()


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append({"headers": dict(request.headers), "body": await request.read()})
        match request.path:
            case "/gone":
                return web.Response(status=410)
            case "/redirect":
                raise web.HTTPFound("/ok")
            case "/slow":
                await asyncio.sleep(2)
        return web.Response(status=200, body=b"x" * 100_000)

    app = web.Application()
    app.router.add_post("/{name}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1]), seen
    await runner.cleanup()


def _delivery(url: str) -> WebhookDelivery:
    job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), tenant="acme")
    return WebhookDelivery.of(job, StateEvent.of(job, JobState.QUEUED), url)


async def _send(url: str, **settings: Any) -> Verdict:
    sender = Sender(Settings(**settings), Secrets({}, SECRET))
    try:
        return await sender(_delivery(url))
    finally:
        await sender.close()


async def test_a_signed_post(server: tuple[int, list[dict[str, Any]]]) -> None:
    port, seen = server
    url = f"http://127.0.0.1:{port}/ok"
    assert await _send(url, webhook_allow_private=True) is Verdict.DELIVERED
    (request,) = seen
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    signing.verify(SECRET, headers, request["body"], now=time.time())


@pytest.mark.parametrize(
    ("path", "verdict"),
    [("gone", Verdict.GONE), ("redirect", Verdict.RETRY), ("slow", Verdict.RETRY)],
)
async def test_answers(
    server: tuple[int, list[dict[str, Any]]], path: str, verdict: Verdict
) -> None:
    port, seen = server
    url = f"http://127.0.0.1:{port}/{path}"
    settings = {"webhook_allow_private": True, "webhook_timeout_seconds": 0.5}
    assert await _send(url, **settings) is verdict
    assert [r for r in seen if r["body"]]  # the redirect's target was never requested
    assert len(seen) == 1


async def test_a_name_resolving_to_loopback_is_refused_at_connect(
    server: tuple[int, list[dict[str, Any]]],
) -> None:
    port, seen = server
    assert await _send(f"http://localhost:{port}/ok") is Verdict.REFUSED
    assert seen == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/", "http://127.0.0.1:9/x"])
async def test_refused_literals_are_never_connected(url: str) -> None:
    assert await _send(url, webhook_allow_private=url.startswith("http://169")) is Verdict.REFUSED


async def test_a_tenant_without_a_secret_is_retried_not_sent() -> None:
    sender = Sender(Settings(webhook_allow_private=True), Secrets({}, None))
    try:
        assert await sender(_delivery("http://127.0.0.1:9/x")) is Verdict.RETRY
    finally:
        await sender.close()
