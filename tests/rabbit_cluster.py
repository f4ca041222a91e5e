"""A three-node RabbitMQ cluster on loopback, for tests (no tests here).

scripts/rabbitmq-cluster.sh owns the nodes' names, ports and environment; this class drives it
(start, stop, restart a node), kills a node the hard way (SIGKILL of its beam) and asks the
management API who leads a queue. The session fixture is in
tests/integration/rabbit_cluster_fixtures.py; docs/rabbitmq.md, "A three-node cluster on one
machine (tests)", says how to start the cluster by hand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.polling import eventually

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
# Debian's /usr/sbin wrappers switch to the rabbitmq user (another Erlang cookie): the cluster's
# nodes run as the caller, so the CLI must too (scripts/rabbitmq-cluster.sh does the same).
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
START_TIMEOUT = 240.0
# By hand: aiohttp 3.14 deprecates BasicAuth. `guest` may log in from loopback only, which is
# where the cluster listens.
GUEST = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}


def default_dir() -> Path:
    """Where the nodes keep their data: the script's default (`$TMPDIR`, else /tmp), so a
    cluster started by hand (`scripts/rabbitmq-cluster.sh start`) is the one the tests find."""
    return Path(tempfile.gettempdir()) / "ffpool-rabbit-cluster"


def rabbit_tool(name: str) -> str | None:
    local = RABBIT_BIN / name
    return str(local) if local.exists() else shutil.which(name)


@dataclass(frozen=True)
class Node:
    """One node as the script prints it: `name amqp-url management-url pid=...`."""

    name: str
    amqp_url: str
    http_url: str

    @property
    def short(self) -> str:
        return self.name.partition("@")[0]


def parse_nodes(output: str) -> list[Node]:
    nodes = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and "@" in parts[0] and parts[1].startswith("amqp://"):
            nodes.append(Node(parts[0], parts[1], parts[2]))
    return nodes


class RabbitCluster:
    """The cluster of scripts/rabbitmq-cluster.sh with its data under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []

    @staticmethod
    def available() -> bool:
        needed = ("rabbitmq-server", "rabbitmqctl")
        return all(rabbit_tool(t) for t in needed) and bool(shutil.which("curl"))

    def _script(
        self, *args: str, timeout: float = START_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), *args, str(self.root)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def running(self) -> bool:
        """All three nodes answer and see each other (`status` exits 0)."""
        return self._script("status", timeout=30).returncode == 0

    def start(self) -> float:
        """Start (or just check) the cluster; the seconds it took."""
        began = time.monotonic()
        done = self._script("start")
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-cluster.sh start failed:\n{done.stdout}{done.stderr}")
        self.nodes = parse_nodes(done.stdout)
        assert len(self.nodes) == 3, done.stdout
        strays = [n.name for n in self.nodes if self.pid_of(n.name) is None]
        # kill() and restart() go by the pid files and data under root: nodes started from
        # another directory answer on the same ports but are not this cluster's.
        if strays:
            raise RuntimeError(
                f"{', '.join(strays)} answer but were not started from {self.root}: stop them "
                "(scripts/rabbitmq-cluster.sh stop DIR) or use their directory"
            )
        return time.monotonic() - began

    def stop(self, purge: bool = False) -> None:
        done = self._script("stop", *(["--purge"] if purge else []), timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-cluster.sh stop failed:\n{done.stdout}{done.stderr}")

    def amqp_urls(self) -> list[str]:
        return [node.amqp_url for node in self.nodes]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if name in (n.name, n.short))

    def pid_of(self, name: str) -> int | None:
        """The OS pid of the node's beam (its pid file), if that process still runs."""
        node = self.node(name)
        try:
            pid = int((self.root / node.short / "pid").read_text().strip())
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        # A zombie (no init reaping it in a container) is dead; a reused pid is not the node
        # (whose name is in its environment, not on its command line).
        ours = f"RABBITMQ_NODENAME={node.name}".encode() in environ
        return pid if ours and state != "Z" else None

    async def kill(self, name: str) -> None:
        """SIGKILL the node's beam (no clean shutdown) and wait until it is gone."""
        pid = self.pid_of(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: self.pid_of(name) is None, timeout=15, what=f"{name} gone")

    async def restart(self, name: str) -> float:
        """Start the killed node again with the same environment (the script starts what is
        missing; the node rejoins from its own data); the seconds until all three run."""
        began = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "bash",
            str(SCRIPT),
            "start",
            str(self.root),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(START_TIMEOUT):
            out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode(errors="replace")
        assert self.pid_of(name) is not None, f"{name} did not start"
        return time.monotonic() - began

    async def api(self, path: str, node: Node) -> Any:
        """GET a management API path from one node; None if it does not answer."""
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT, headers=GUEST) as session:
            try:
                async with session.get(f"{node.http_url}api/{path}") as resp:
                    return await resp.json() if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError):
                return None

    async def queue_info(self, queue: str, vhost: str = "/") -> dict[str, Any] | None:
        """The queue as the first answering node's management API shows it."""
        for node in self.nodes:
            if self.pid_of(node.name) is None:
                continue
            info = await self.api(f"queues/{quote(vhost, safe='')}/{quote(queue)}", node)
            if info is not None:
                return dict(info)
        return None

    async def leader_of(self, queue: str, vhost: str = "/") -> str | None:
        """The node leading a quorum queue (`leader`), or holding a classic one (`node`)."""
        info = await self.queue_info(queue, vhost)
        if info is None:
            return None
        found = info.get("leader") or info.get("node")
        return str(found) if found else None

    async def cluster_status(self, via: str | None = None) -> dict[str, Any]:
        """`rabbitmqctl cluster_status` of one node (the first running one by default)."""
        up = [n for n in self.nodes if self.pid_of(n.name) is not None]
        assert up, "no node of the cluster is running"
        node = self.node(via) if via else up[0]
        ctl = rabbit_tool("rabbitmqctl")
        assert ctl is not None
        proc = await asyncio.create_subprocess_exec(
            ctl,
            "-q",
            "-n",
            node.name,
            "cluster_status",
            "--formatter",
            "json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode(errors="replace")
        return dict(json.loads(out))
