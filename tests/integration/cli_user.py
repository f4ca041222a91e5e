"""Run `ffpool submit/watch/cancel` as a user would, in the user's working directory, against a
service the test runs in its own loop: as a subprocess (exit code, stdout, stderr; test_cli_jobs.py)
or in a real terminal (tmux; test_cli_terminal.py). The command sees no ffpool configuration of
this machine's user."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

import aiohttp

from ffpool.app import Running
from ffpool.domain.events import JobState
from tests.conftest import require
from tests.polling import eventually

# The console script installed beside this interpreter (pyproject's [project.scripts]).
FFPOOL: Final = Path(sys.executable).parent / "ffpool"


def ffpool_command() -> str:
    require(FFPOOL.exists(), f"no ffpool command at {FFPOOL} (pip install -e .)")
    return str(FFPOOL)


def tmux_command() -> str:
    found = shutil.which("tmux")
    require(found is not None, "tmux is not installed (scripts/setup.sh installs it)")
    assert found is not None
    return found


def cli_env(home: Path) -> dict[str, str]:
    """This process's environment without the user's ffpool settings; HOME and the config
    directory are the test's (no config file there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFPOOL_")}
    return env | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1"}


def server_flags(svc: Running) -> list[str]:
    """The server's WebSocket and HTTP side as given (its ports are ephemeral here)."""
    return ["--server", svc.ws_url, "--http", svc.http_url]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def run_cli(
    *argv: str, cwd: Path, timeout: float = 90.0, env: dict[str, str] | None = None
) -> Result:
    """`ffpool ARGV...` in `cwd`, to its end (the service keeps running in this loop); the
    environment is `cli_env(cwd)` unless given."""
    proc = await asyncio.create_subprocess_exec(
        ffpool_command(),
        *argv,
        cwd=cwd,
        env=cli_env(cwd) if env is None else env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def job_state(svc: Running, job_id: str) -> JobState | None:
    """The job's state as the server tells it (`GET /jobs/{id}`), None if it does not know it."""
    limits = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=limits) as http,
        http.get(f"{svc.http_url}/jobs/{job_id}") as resp,
    ):
        if resp.status == 404:
            return None
        resp.raise_for_status()
        return JobState((await resp.json())["state"])


async def until_finished(svc: Running, job_id: str, timeout: float) -> JobState:
    """The job's final state, once it has one."""

    async def finished() -> JobState | None:
        now = await job_state(svc, job_id)
        return now if now is not None and now.terminal else None

    return await eventually(
        cast(Callable[[], Awaitable[JobState]], finished), timeout=timeout, what="job finished"
    )


@dataclass
class Stalling:
    """An HTTP endpoint that accepts connections and never reads a byte: an upload stalls."""

    url: str
    held: list[asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def server_that_never_reads() -> AsyncIterator[Stalling]:
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield Stalling(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", held)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


class Cuttable:
    """A TCP forwarder to a local port whose open connections can be cut (a dropped network,
    a restarted proxy) while new ones are still served."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def cuttable(target_port: int) -> AsyncIterator[Cuttable]:
    proxy = Cuttable(target_port)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        proxy.cut()
        server.close()
        await server.wait_closed()
