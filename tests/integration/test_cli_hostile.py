"""The real `ffpool` script against a hostile fake server (an aiohttp app in the test's loop):
what it sends is never a way out of the download directory, never markup or terminal control,
and a JOB that is not a job id is refused before any request (cli/untrusted.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ffpool.cli.errors import ExitCode

JOB = "0123abcd" + "0" * 24


@dataclass
class Fake:
    """What the fake server answers (`operation`, `names`) and the requests it saw."""

    url: str = ""
    ws_port: int = 0
    operation: str = "thumbnail"
    names: list[str] = field(default_factory=lambda: ["thumbnail.jpg"])
    requests: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        at = "2026-11-29T01:00:00Z"
        outputs = [
            {"name": n, "size": 5, "content_type": "image/jpeg", "url": f"/o/{i}"}
            for i, n in enumerate(self.names)
        ]
        result = {"job_id": JOB, "at": at, "type": "completed", "outputs": outputs}
        return {
            "job_id": JOB,
            "state": "completed",
            "operation": self.operation,
            "created_at": at,
            "finished_at": at,
            "result": result | {"processing_time_s": 1.0},
        }


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    state = Fake()

    @web.middleware
    async def seen(request: web.Request, handler: Any) -> web.StreamResponse:
        state.requests.append(request.path)
        return await handler(request)

    async def config(request: web.Request) -> web.Response:
        http_port = int(state.url.rpartition(":")[2])
        ports = {"ws_port": state.ws_port, "http_port": http_port}
        return web.json_response(ports | {"ws_path": "/ws"})

    async def job(request: web.Request) -> web.Response:
        return web.json_response(state.record())

    async def output(request: web.Request) -> web.Response:
        return web.Response(body=b"JPEG!")

    app = web.Application(middlewares=[seen])
    app.router.add_get("/ui/config.json", config)
    app.router.add_get("/jobs/{id}", job)
    app.router.add_get("/o/{i}", output)
    runner = web.AppRunner(app)
    await runner.setup()
    sites = [web.TCPSite(runner, "127.0.0.1", 0) for _ in range(2)]
    for site in sites:
        await site.start()
    ports = [int(address[1]) for address in runner.addresses]
    state.url = f"http://127.0.0.1:{ports[0]}"
    state.ws_port = ports[1]  # the other port: its /ws answers 404
    try:
        yield state
    finally:
        await runner.cleanup()


async def ffpool(*argv: str, cwd: Path) -> tuple[int, str]:
    """The real command line in `cwd`: its exit code and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFPOOL_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from ffpool.cli import main; main()",
        *argv,
        cwd=cwd,
        env=env | {"HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / ".config"), "COLUMNS": "200"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("operation", "names"),
    [
        ("x/../../escaped", ["a.jpg"]),
        ("thumbnail", ["master.m3u8", "../../escaped.ts"]),
        ("thumbnail", ["a.j/../../../escaped"]),
    ],
)
async def test_a_server_cannot_name_a_file_outside_the_download_directory(
    fake: Fake, tmp_path: Path, operation: str, names: list[str]
) -> None:
    fake.operation, fake.names = operation, names
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    code, err = await ffpool("download", JOB, "--server", fake.url, "--output-dir", "d", cwd=work)
    assert code == ExitCode.UNREACHABLE, err
    assert err.startswith("ffpool download: the server sent an unsafe output name: ")
    assert err.count("\n") == 1
    assert files(tmp_path) == []


async def test_download_o_with_a_slash_is_a_directory_and_names_are_not_markup(
    fake: Fake, tmp_path: Path
) -> None:
    code, err = await ffpool("download", JOB, "--server", fake.url, "-o", "newdir/", cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert (tmp_path / "newdir" / "0123abcd.thumbnail.jpg").read_bytes() == b"JPEG!"
    code, err = await ffpool(
        "download", JOB, "-o", "shot[red].jpg", "--server", fake.url, cwd=tmp_path
    )
    assert code == ExitCode.OK, err
    assert "saved shot[red].jpg (5 B)" in err
    code, err = await ffpool(
        "download", JOB, "--output-dir", "x[/]", "--server", fake.url, cwd=tmp_path
    )
    assert code == ExitCode.OK, err
    assert "saved x[/]/0123abcd.thumbnail.jpg (5 B)" in err


@pytest.mark.parametrize("command", ["status", "download", "watch", "cancel"])
@pytest.mark.parametrize("job", ["abc", "..", "0123abcd" + "0" * 23 + "g"])
async def test_a_bad_job_id_is_a_usage_error_and_sends_nothing(
    fake: Fake, tmp_path: Path, command: str, job: str
) -> None:
    code, err = await ffpool(command, job, "--server", fake.url, cwd=tmp_path)
    assert code == ExitCode.USAGE, err
    assert f"not a job id: {job!r} (32 hex digits, as `ffpool jobs` shows)" in err
    assert fake.requests == []


async def test_an_upper_case_job_id_is_the_same_job(fake: Fake, tmp_path: Path) -> None:
    code, err = await ffpool("status", JOB.upper(), "--server", fake.url, cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert fake.requests[-1] == f"/jobs/{JOB}"


async def test_a_refused_websocket_names_the_url_tried_without_its_password(
    fake: Fake, tmp_path: Path
) -> None:
    server = fake.url.replace("http://", "http://user:s3cret@")
    code, err = await ffpool("watch", JOB, "--server", server, cwd=tmp_path)
    assert code == ExitCode.UNREACHABLE, err
    assert "s3cret" not in err
    assert f":{fake.ws_port}/ws" in err, err
