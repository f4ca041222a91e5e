"""Process helpers for the multi-process RabbitMQ tests (no tests here): `ffpool server` /
`ffpool worker` subprocesses, a throwaway broker node, and a small protocol client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ffpool.domain.protocol import server_adapter
from tests.conftest import require
from tests.polling import eventually

FFPOOL = str(Path(sys.executable).with_name("ffpool"))
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
HTTP_PORT = re.compile(r"\bhttp_port=(\d+)")
WS_PORT = re.compile(r"\bws_port=(\d+|None)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """One `ffpool` process; its stderr is collected, its ports read from the ready line."""

    def __init__(self, role: str, env: dict[str, str]) -> None:
        self.role = role
        self.env = env
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.ws_port: int | None = None
        self.http_port: int | None = None
        self._ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> Proc:
        self.proc = await asyncio.create_subprocess_exec(
            FFPOOL,
            self.role,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            pytest.fail(f"{self.role} did not start:\n" + "\n".join(self.lines[-30:]))
        return self

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "service ready" in line:
                http, ws = HTTP_PORT.search(line), WS_PORT.search(line)
                self.http_port = int(http.group(1)) if http else None
                self.ws_port = int(ws.group(1)) if ws and ws.group(1) != "None" else None
                self._ready.set()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=2)
        return code

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await self.wait(20)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.wait(5)


def service_env(
    prefix: str, media_root: Path, instance: str, url: str, **extra: Any
) -> dict[str, str]:
    env = {
        "BACKEND": "rabbitmq",
        "RABBITMQ_URL": url,
        "HOST": "127.0.0.1",
        "WS_PORT": "0",
        "HTTP_PORT": "0",
        "OPS_PORT": "0",
        "MEDIA_ROOT": str(media_root),
        "INSTANCE_NAME": instance,
        "MAX_CONCURRENT_JOBS": "2",
        "DRAIN_SECONDS": "0",
        "CANCEL_GRACE_SECONDS": "1",
        "BROKER_TIMEOUT_SECONDS": "5",
        "JOB_TIMEOUT_SECONDS": "600",
        "LOG_LEVEL": "INFO",
        "JOB_EXCHANGE": f"{prefix}.jobs",
        "JOB_QUEUE": f"{prefix}.queue",
        "DLQ_QUEUE": f"{prefix}.dlq",
        "EVENTS_EXCHANGE": f"{prefix}.events",
        "CONTROL_EXCHANGE": f"{prefix}.control",
    }
    env.update({k.upper(): str(v) for k, v in extra.items()})
    return env


@contextlib.asynccontextmanager
async def procs(*specs: tuple[str, dict[str, str]]) -> AsyncIterator[list[Proc]]:
    started: list[Proc] = []
    try:
        for role, env in specs:
            started.append(await Proc(role, env).start())
        yield started
    finally:
        await asyncio.gather(*(p.stop() for p in started), return_exceptions=True)


class Client:
    """A raw protocol v1 client over one WebSocket; messages are kept per job, so waiting for
    one job never drops another's."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.by_job: dict[str, list[Any]] = {}
        self.cursor: dict[str, int] = {}
        self.replies: list[Any] = []
        self._new = asyncio.Condition()

    async def read_forever(self) -> None:
        async for raw in self.ws:
            msg = server_adapter.validate_json(raw)
            async with self._new:
                job_id = getattr(msg, "job_id", None)
                if msg.type in ("accepted", "error") or job_id is None:
                    self.replies.append(msg)
                else:
                    self.by_job.setdefault(job_id, []).append(msg)
                self._new.notify_all()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def request(self, message: dict[str, Any]) -> Any:
        """Send a request and return its reply (`accepted` or `error`), matched by request id."""
        request_id = uuid.uuid4().hex
        await self.send({**message, "request_id": request_id})
        async with asyncio.timeout(30), self._new:
            await self._new.wait_for(lambda: any(m.request_id == request_id for m in self.replies))
            found = next(m for m in self.replies if m.request_id == request_id)
            self.replies.remove(found)
        return found

    async def submit(self, job: dict[str, Any], **extra: Any) -> str:
        await self.send({"type": "submit", "job": job, **extra})
        async with asyncio.timeout(30), self._new:
            await self._new.wait_for(lambda: bool(self.replies))
            msg = self.replies.pop(0)
        assert msg.type == "accepted", msg
        return str(msg.job_id)

    async def until(self, job_id: str, types: set[str], timeout: float = 90.0) -> list[Any]:
        """This job's messages since the last call, up to and including one of `types`."""

        def found() -> bool:
            msgs = self.by_job.get(job_id, [])
            return any(m.type in types for m in msgs[self.cursor.get(job_id, 0) :])

        async with asyncio.timeout(timeout), self._new:
            await self._new.wait_for(found)
            msgs = self.by_job[job_id]
            start = self.cursor.get(job_id, 0)
            end = next(i for i in range(start, len(msgs)) if msgs[i].type in types) + 1
            self.cursor[job_id] = end
            return msgs[start:end]


@contextlib.asynccontextmanager
async def client(proc: Proc, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    async with connect(
        proc.ws_url, additional_headers=headers, open_timeout=10, close_timeout=2
    ) as ws:
        cl = Client(ws)
        reader = asyncio.create_task(cl.read_forever())
        try:
            yield cl
        finally:
            reader.cancel()
            await asyncio.wait({reader}, timeout=2)


class ThrowawayBroker:
    """A second RabbitMQ node on its own ports and data directory, so the shared broker is
    never restarted. Started and stopped by this test only, by its own process id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"ffthrow{self.port}@localhost"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.root / "enabled_plugins").write_text("[].\n")
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
        }

    async def start(self, timeout: float = 60.0) -> None:
        server = RABBIT_BIN / "rabbitmq-server"
        require(server.exists() and shutil.which("erl") is not None, "rabbitmq-server not found")
        log = (self.root / "server.out").open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            str(server), env=self._env(), stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        proc = self.proc

        async def listening() -> bool:
            assert proc.returncode is None, "the throwaway RabbitMQ node exited (see server.out)"
            return await _port_open(self.port)

        try:
            await eventually(
                listening,
                timeout=timeout,
                interval=0.2,
                what="the throwaway RabbitMQ node listening (see server.out)",
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # the script stops the node cleanly on TERM
        try:
            async with asyncio.timeout(timeout):
                await self.proc.wait()
        except TimeoutError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
