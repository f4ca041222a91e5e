"""URL inputs against a real local HTTP server: limits, redirects and the SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from ffpool.domain.events import FailureCode
from ffpool.domain.jobs import UrlInput
from ffpool.ffmpeg.inputs import (
    DOWNLOAD_FAILED_MESSAGE,
    REFUSED_MESSAGE,
    InputError,
    fetch_url,
    materialize,
)
from ffpool.ffmpeg.url_guard import IPAddress, check_address, policy
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage

JOB_ID = "0123456789abcdef0123456789abcdef"
BODY = os.urandom(200_000)


def make_app(served: dict[str, bytes], never: asyncio.Event) -> web.Application:
    async def clip_handler(_: web.Request) -> web.Response:
        return web.Response(body=served["clip"], content_type="video/mp4")

    async def blob(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(20):
            await response.write(BODY[:50_000])
        await response.write_eof()
        return response

    async def slow(_: web.Request) -> web.Response:
        await never.wait()
        return web.Response(body=b"late")

    async def redirect(request: web.Request) -> web.Response:
        response = web.HTTPFound(request.query["to"])
        response.force_close()  # so the next hop opens (and resolves) a new connection
        raise response

    async def loop(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def missing(_: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/clip.mp4", clip_handler)
    app.router.add_get("/blob", blob)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/missing", missing)
    return app


@pytest.fixture
def served() -> dict[str, bytes]:
    """What /clip.mp4 serves: random bytes unless a test puts a real clip in."""
    return {"clip": BODY}


@pytest.fixture
async def server(served: dict[str, bytes]) -> AsyncIterator[str]:
    never = asyncio.Event()
    async with TestServer(make_app(served, never), host="127.0.0.1") as srv:
        yield f"http://127.0.0.1:{srv.port}"
        never.set()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"media_root": tmp_path / "media", "url_fetch_timeout_seconds": 5}
    values.update(overrides)
    return Settings.model_validate(values)


def logged(logs: list[dict[str, Any]], event: str) -> object:
    """The `reason` of the last log entry `event` (never at ERROR: a client's bad URL)."""
    entries = [e for e in logs if e["event"] == event]
    assert entries, logs
    assert all(e["log_level"] != "error" for e in logs)
    return entries[-1]["reason"]


def only_127_0_0_1(ip: IPAddress) -> str | None:
    """An allowed host (127.0.0.1) and forbidden ones (everything else) on one machine."""
    return None if ip == ipaddress.ip_address("127.0.0.1") else check_address(ip)


async def fetch(url: str, tmp_path: Path, **overrides: object) -> Path:
    dest = tmp_path / "download"
    return await fetch_url(
        url, dest, settings(tmp_path, **overrides), address_policy=only_127_0_0_1
    )


async def expect_failure(code: FailureCode, url: str, tmp_path: Path, **kw: object) -> str:
    with pytest.raises(InputError) as info:
        await fetch(url, tmp_path, **kw)
    assert info.value.code is code, info.value.message
    assert not list(tmp_path.glob("download*")), "a partial download was left behind"
    return info.value.message


async def test_clip_fetched_when_private_allowed(
    served: dict[str, bytes], server: str, storage: LocalStorage, tmp_path: Path, sample_clip: Path
) -> None:
    served["clip"] = sample_clip.read_bytes()
    job_input = UrlInput.model_validate({"url": f"{server}/clip.mp4"})
    scratch = storage.job_dir(JOB_ID) / ".run-0123"
    scratch.mkdir()
    path = await materialize(
        job_input, JOB_ID, storage, settings(tmp_path, url_allow_private=True), into=scratch
    )
    assert path == scratch / ".input"  # the run's: removed with it
    assert path.read_bytes() == sample_clip.read_bytes()
    assert os.listdir(path.parent) == [".input"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_refused_by_default(
    server: str, storage: LocalStorage, tmp_path: Path, host: str
) -> None:
    """127.0.0.1 is caught as a literal, `localhost` when its name resolves at connect time."""
    url = server.replace("127.0.0.1", host) + "/clip.mp4"
    with pytest.raises(InputError) as info:
        await materialize(
            UrlInput.model_validate({"url": url}),
            JOB_ID,
            storage,
            settings(tmp_path),
            into=tmp_path,
        )
    assert info.value.code is FailureCode.INPUT_REJECTED
    # A literal address is the client's own; what a name resolves to stays in the server log.
    expected = "loopback address" if host == "127.0.0.1" else REFUSED_MESSAGE
    assert expected in info.value.message


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/clip.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/clip.mp4",
        "ftp://127.0.0.1/clip.mp4",
        "http://user:secret@127.0.0.1:{port}/clip.mp4",
    ],
)
async def test_redirect_to_forbidden_target_refused(
    server: str, tmp_path: Path, target: str
) -> None:
    port = server.rsplit(":", 1)[1]
    await fetch(f"{server}/clip.mp4", tmp_path)  # the first host itself is allowed
    os.unlink(tmp_path / "download")
    url = f"{server}/redirect?to={target.format(port=port)}"
    message = await expect_failure(FailureCode.INPUT_REJECTED, url, tmp_path)
    assert "secret" not in message


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.170.2/v2/credentials",
        "http://169.254.170.23/v1/credentials",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fd00:ec2::23]/",
        "http://[fd20:ce::254]/computeMetadata/v1/",
    ],
)
async def test_credential_endpoints_refused_with_private_allowed(
    server: str, tmp_path: Path, target: str
) -> None:
    url = f"{server}/redirect?to={target}"
    with pytest.raises(InputError) as info:
        await fetch_url(url, tmp_path / "download", settings(tmp_path), address_policy=policy(True))
    assert info.value.code is FailureCode.INPUT_REJECTED
    assert "metadata" in info.value.message  # the client's own literal: nothing to hide


class RebindingResolver(AbstractResolver):
    """Answers 127.0.0.1 for the first lookup and 127.0.0.2 afterwards (DNS rebinding)."""

    def __init__(self) -> None:
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups += 1
        address = "127.0.0.1" if self.lookups == 1 else "127.0.0.2"
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        return None


async def test_dns_rebinding_caught_at_connect_time(server: str, tmp_path: Path) -> None:
    port = server.rsplit(":", 1)[1]
    target = f"http://rebind.test:{port}/clip.mp4"
    resolver = RebindingResolver()
    with pytest.raises(InputError) as info, capture_logs() as logs:
        await fetch_url(
            f"http://rebind.test:{port}/redirect?to={target}",
            tmp_path / "download",
            settings(tmp_path),
            address_policy=only_127_0_0_1,
            upstream=resolver,
        )
    assert resolver.lookups == 2
    assert info.value.code is FailureCode.INPUT_REJECTED
    assert info.value.message == REFUSED_MESSAGE
    assert logged(logs, "URL input refused") == "rebind.test resolves to a loopback address"


async def test_redirects_followed_within_limit(server: str, tmp_path: Path) -> None:
    path = await fetch(f"{server}/redirect?to=/blob", tmp_path, url_max_redirects=1)
    assert path.read_bytes() == BODY


async def test_too_many_redirects(server: str, tmp_path: Path) -> None:
    with capture_logs() as logs:
        message = await expect_failure(FailureCode.DOWNLOAD_FAILED, f"{server}/loop", tmp_path)
    assert message == DOWNLOAD_FAILED_MESSAGE
    assert logged(logs, "URL input download failed") == "more than 5 redirects"


async def test_no_redirects_allowed(server: str, tmp_path: Path) -> None:
    url = f"{server}/redirect?to=/blob"
    await expect_failure(FailureCode.DOWNLOAD_FAILED, url, tmp_path, url_max_redirects=0)


@pytest.mark.parametrize("path", ["/blob", "/chunked"])
async def test_oversized_body_refused(server: str, tmp_path: Path, path: str) -> None:
    """/blob announces its size (Content-Length); /chunked does not, so bytes are counted."""
    message = await expect_failure(
        FailureCode.INPUT_TOO_LARGE, server + path, tmp_path, url_max_bytes=100_000
    )
    assert "100000" in message


async def test_chunked_body_within_limit(server: str, tmp_path: Path) -> None:
    path = await fetch(f"{server}/chunked", tmp_path, url_max_bytes=1_000_000)
    assert path.read_bytes() == BODY[:50_000] * 20


async def test_slow_server_times_out(server: str, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with capture_logs() as logs:
        message = await expect_failure(
            FailureCode.DOWNLOAD_FAILED, f"{server}/slow", tmp_path, url_fetch_timeout_seconds=0.3
        )
    assert message == DOWNLOAD_FAILED_MESSAGE
    assert logged(logs, "URL input download failed") == "timed out after 0.3 s"
    assert loop.time() - started < 5


async def test_http_error_does_not_echo_query(server: str, tmp_path: Path) -> None:
    url = f"{server}/missing?token=hunter2"
    with capture_logs() as logs:
        message = await expect_failure(FailureCode.DOWNLOAD_FAILED, url, tmp_path)
    # The remote status is the server's to know: the client learns only that it failed.
    assert message == DOWNLOAD_FAILED_MESSAGE
    assert logged(logs, "URL input download failed") == "the server answered HTTP 404"
    assert "hunter2" not in repr(logs)
    assert {"url": f"{server}/missing?***"}.items() <= logs[-1].items()


async def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s, capture_logs() as logs:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        message = await expect_failure(
            FailureCode.DOWNLOAD_FAILED, f"http://127.0.0.1:{port}/x", tmp_path
        )
    assert message == DOWNLOAD_FAILED_MESSAGE  # the same as a timeout or an HTTP error
    assert logged(logs, "URL input download failed") == "could not connect"
