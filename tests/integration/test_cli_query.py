"""`ffpool status`, `jobs`, `download` and `dead-letters` as a user runs them: the installed
script in a subprocess against the real service (memory backend, real FFmpeg), judged by exit
code and output; through the server's HTTP port and through an Ingress-like proxy (one port, a
path prefix), the WebSocket found from the one URL either way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from ffpool.app import Running
from ffpool.auth.tokens import file_line, new_token
from ffpool.cli.errors import ExitCode
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent, FailedEvent
from ffpool.domain.jobs import JobSpec, PathInput, ThumbnailOp
from tests.integration.cli_query_harness import (
    PREFIX,
    ffpool,
    free_port,
    proxy_app,
    serving,
    user_env,
)
from tests.integration.service import service

pytestmark = pytest.mark.ffmpeg

UNKNOWN_JOB = "f" * 32
THUMBNAIL = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp(time=1))
MISSING = JobSpec(input=PathInput(path="clips/missing.mp4"), operation=ThumbnailOp(time=1))


@dataclass(frozen=True)
class Pool:
    svc: Running
    url: str  # the server's HTTP port: the one URL a user gives
    acme: str  # tokens of two tenants
    globex: str
    done: str  # acme's completed job, then its failed one
    failed: str


@pytest.fixture
async def pool(media_root: Path, tmp_path: Path) -> AsyncIterator[Pool]:
    acme, globex = new_token(), new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{file_line('acme', acme)}\n{file_line('globex', globex)}\n")
    ports = {"ws_port": free_port(), "http_port": free_port()}
    async with service(media_root, auth_tokens_file=tokens, **ports) as svc:
        url = f"http://127.0.0.1:{svc.http_port}"
        async with Client.connect_to(url, token=acme) as client:
            done = (await client.submit(THUMBNAIL)).job_id
            assert isinstance(await client.wait(done, timeout=60), CompletedEvent)
            failed = (await client.submit(MISSING)).job_id
            assert isinstance(await client.wait(failed, timeout=60), FailedEvent)
        yield Pool(svc, url, acme, globex, done, failed)


def env_for(tmp_path: Path, token: str | None) -> dict[str, str]:
    extra = {"FFPOOL_TOKEN": token} if token is not None else {}
    return user_env(tmp_path / "home", **extra)


async def test_jobs_lists_the_callers_jobs(pool: Pool, tmp_path: Path) -> None:
    env = env_for(tmp_path, pool.acme)
    listed = await ffpool("jobs", "--json", "--server", pool.url, env=env)
    assert listed.code == ExitCode.OK, listed.err
    rows = json.loads(listed.out)
    assert [r["job_id"] for r in rows] == [pool.failed, pool.done]  # newest first
    assert rows[0]["failure_code"] == "input_not_found"
    assert rows[1]["percent"] == 100.0
    failed = await ffpool("jobs", "--state", "failed", "--json", "--server", pool.url, env=env)
    assert [r["job_id"] for r in json.loads(failed.out)] == [pool.failed]
    table = await ffpool("jobs", "--server", pool.url, env=env)
    assert table.code == ExitCode.OK, table.err
    assert pool.done in table.out
    assert pool.failed in table.out
    assert "completed" in table.out
    assert "thumbnail" in table.out
    other = await ffpool("jobs", "--json", "--server", pool.url, env=env_for(tmp_path, pool.globex))
    assert json.loads(other.out) == []  # another tenant sees none of them


async def test_status_in_words_and_json(pool: Pool, tmp_path: Path) -> None:
    env = env_for(tmp_path, pool.acme)
    shown = await ffpool("status", pool.done, "--server", pool.url, env=env)
    assert shown.code == ExitCode.OK, shown.err
    assert "completed" in shown.out
    assert "thumbnail.jpg" in shown.out
    record = json.loads(
        (await ffpool("status", pool.failed, "--json", "--server", pool.url, env=env)).out
    )
    assert record["state"] == "failed"
    assert record["failure"]["code"] == "input_not_found"
    for job_id, token in ((UNKNOWN_JOB, pool.acme), (pool.done, pool.globex)):
        missing = await ffpool("status", job_id, "--server", pool.url, env=env_for(tmp_path, token))
        assert missing.code == ExitCode.NOT_FOUND, missing.err
        assert len(missing.err.strip().splitlines()) == 1, missing.err
        assert missing.out == ""


async def test_download_saves_a_completed_jobs_outputs(pool: Pool, tmp_path: Path) -> None:
    env = env_for(tmp_path, pool.acme)
    out = tmp_path / "out"
    saved = await ffpool(
        "download", pool.done, "--output-dir", str(out), "--json", "--server", pool.url, env=env
    )
    assert saved.code == ExitCode.OK, saved.err
    (path,) = json.loads(saved.out)["saved"]
    assert Path(path).name == f"{pool.done[:8]}.thumbnail.jpg"
    assert Path(path).read_bytes()[:2] == b"\xff\xd8"
    exact = tmp_path / "exact" / "shot.jpg"
    again = await ffpool("download", pool.done, "-o", str(exact), "--server", pool.url, env=env)
    assert again.code == ExitCode.OK, again.err
    assert exact.read_bytes()[:2] == b"\xff\xd8"
    assert [p.name for p in exact.parent.iterdir()] == ["shot.jpg"]  # no temporary left
    refused = await ffpool("download", pool.failed, "--server", pool.url, env=env)
    assert refused.code == ExitCode.JOB_FAILED
    assert "failed" in refused.err
    assert "Traceback" not in refused.err


async def test_dead_letters_are_the_callers_failed_jobs(pool: Pool, tmp_path: Path) -> None:
    env = env_for(tmp_path, pool.acme)
    listed = await ffpool("dead-letters", "--json", "--server", pool.url, env=env)
    assert listed.code == ExitCode.OK, listed.err
    (record,) = json.loads(listed.out)
    assert record["job_id"] == pool.failed
    assert record["failure"]["code"] == "input_not_found"
    table = await ffpool("dead-letters", "--server", pool.url, env=env)
    assert pool.failed in table.out
    assert "input_not_found" in table.out
    other = await ffpool(
        "dead-letters", "--json", "--server", pool.url, env=env_for(tmp_path, pool.globex)
    )
    assert json.loads(other.out) == []


async def test_through_an_ingress_with_a_path_prefix(pool: Pool, tmp_path: Path) -> None:
    svc = pool.svc
    assert svc.ws_port is not None
    async with serving(proxy_app(svc.ws_port, svc.http_port)) as port:
        base = f"http://127.0.0.1:{port}{PREFIX}"
        # The library: the WebSocket is found under the prefix, on the proxy's port.
        async with Client.connect_to(base, token=pool.acme) as client:
            assert client.ws_url == f"ws://127.0.0.1:{port}{PREFIX}/ws"
            await client.ping()
            job_id = (await client.submit(THUMBNAIL)).job_id
            outcome = await client.wait(job_id, timeout=60)
            assert isinstance(outcome, CompletedEvent), outcome
            saved = await client.save(outcome.outputs[0], tmp_path / "via-proxy.jpg")
            assert saved.read_bytes()[:2] == b"\xff\xd8"
        env = env_for(tmp_path, pool.acme) | {"FFPOOL_SERVER": base}  # the URL from the env
        listed = await ffpool("jobs", "--json", env=env)
        assert listed.code == ExitCode.OK, listed.err
        assert [r["job_id"] for r in json.loads(listed.out)][:1] == [job_id]
        fetched = await ffpool("download", job_id, "-o", str(tmp_path / "cli.jpg"), env=env)
        assert fetched.code == ExitCode.OK, fetched.err
        assert (tmp_path / "cli.jpg").read_bytes()[:2] == b"\xff\xd8"


async def test_config_file_and_its_permissions(pool: Pool, tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = home / ".config" / "ffpool" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'server = "{pool.url}"\ntoken = "{pool.acme}"\n')
    config.chmod(0o600)
    env = user_env(home)
    listed = await ffpool("jobs", "--json", env=env)
    assert listed.code == ExitCode.OK, listed.err
    assert len(json.loads(listed.out)) == 2
    # The flag and the environment come first: globex's token sees no job.
    assert json.loads((await ffpool("jobs", "--json", "--token", pool.globex, env=env)).out) == []
    env_token = env | {"FFPOOL_TOKEN": pool.globex}
    assert json.loads((await ffpool("jobs", "--json", env=env_token)).out) == []
    config.chmod(0o644)
    refused = await ffpool("jobs", env=env)
    assert refused.code == ExitCode.USAGE, refused.err
    assert "chmod 600" in refused.err
    assert "Traceback" not in refused.err


async def test_not_an_ffpool_server_and_no_token(pool: Pool, tmp_path: Path) -> None:
    async def nothing(_: web.Request) -> web.Response:
        return web.Response(status=404, text="404: Not Found")

    other = web.Application()
    other.router.add_get("/{tail:.*}", nothing)
    env = env_for(tmp_path, pool.acme)
    async with serving(other) as port:
        run = await ffpool("jobs", "--server", f"http://127.0.0.1:{port}", env=env)
    assert run.code == ExitCode.UNREACHABLE
    assert "not an ffpool server" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert "Traceback" not in run.err
    anonymous = await ffpool("jobs", "--server", pool.url, env=env_for(tmp_path, None))
    assert anonymous.code == ExitCode.AUTH
    assert "not authorized" in anonymous.err
    assert "Traceback" not in anonymous.err
