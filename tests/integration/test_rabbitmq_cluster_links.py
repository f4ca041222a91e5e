"""Servers and workers connect to a cluster, not a node (docs/rabbitmq.md, "Broker clusters"):
`ffpool server` and `ffpool worker` processes given the three nodes of the loopback cluster
(tests/rabbit_cluster.py) in RABBITMQ_ADDRESSES move to a surviving node when theirs is killed.

Each connection starts at a random address, so the node to kill is the one the server's named
connections actually use (the management API's /api/connections). A worker pinned to another
node (its only address) runs a long job while that node is SIGKILLed: the processes that had
connections on it reconnect to a survivor (the time is printed: `pytest -s`), the long job's
outcome still reaches the client, and a job submitted afterwards completes. The killed node is
restarted at the end, whatever happens.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest

from tests.conftest import make_clip
from tests.integration.rabbit_procs import Proc, client, procs, service_env
from tests.polling import eventually
from tests.rabbit_cluster import Node, RabbitCluster

pytest_plugins = ["tests.integration.rabbit_cluster_fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.ffmpeg, pytest.mark.timeout(300)]

PROBE = {"input": {"kind": "path", "path": "clips/sample.mp4"}, "operation": {"op": "probe"}}
# Several seconds of x264 `slow` on two cores: still running when the node dies.
LONG = {
    "input": {"kind": "path", "path": "clips/long.mp4"},
    "operation": {"op": "transcode", "preset": "slow", "audio_codec": "none"},
}
RETRIED = re.compile(r"broker node unreachable|Connection attempt|Reconnect attempt failed")
CONNECTED = re.compile(r"broker node connected.*\bnode='?([^'\s]+)")
# A node loss should cost about a second (transport.py, RECONNECT_FIRST_S); this bound leaves
# room for a busy 2-core machine.
RECONNECT_BOUND_S = 15.0


def address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def nodes_of(proc: Proc) -> list[str]:
    """Every node the process's connections reached, in order (its log)."""
    return [m.group(1) for line in proc.lines if (m := CONNECTED.search(line))]


def env(prefix: str, root: Path, name: str, url: str, addresses: str) -> dict[str, str]:
    return service_env(
        prefix,
        root,
        name,
        url,
        rabbitmq_addresses=addresses,
        queue_type="quorum",
        max_concurrent_jobs=1,
    )


async def delete_topology(url: str, prefix: str) -> None:
    conn = await aio_pika.connect(url, timeout=5)
    async with conn:
        channel = await conn.channel()
        for band in ("", ".p4", ".p7"):
            await channel.queue_delete(f"{prefix}.queue{band}", timeout=10)
        await channel.queue_delete(f"{prefix}.dlq", timeout=10)
        for exchange in ("jobs", "events", "control"):
            await channel.exchange_delete(f"{prefix}.{exchange}", timeout=10)


def reconnected(procs_on_dead: list[Proc], before: dict[int, int], dead: str) -> bool:
    """Each process has as many connections on a survivor as it had on the dead node (none
    for a process whose connections all started elsewhere)."""
    for proc in procs_on_dead:
        after = nodes_of(proc)[before[id(proc)] :]
        lost = nodes_of(proc)[: before[id(proc)]].count(dead)
        if sum(1 for node in after if node != dead) < lost:
            return False
    return True


async def test_a_server_and_a_worker_move_to_a_surviving_node(
    rabbit_cluster: RabbitCluster, media_root: Path, ffmpeg_bin: str
) -> None:
    make_clip(ffmpeg_bin, media_root / "clips" / "long.mp4", seconds=12, size="640x480")
    one = rabbit_cluster.nodes[0]
    everyone = ",".join(address(node.amqp_url) for node in rabbit_cluster.nodes)
    prefix = f"fftest.cl.{uuid.uuid4().hex[:8]}"
    victim: Node | None = None
    try:
        async with (
            procs(("server", env(prefix, media_root, "cl-server", one.amqp_url, everyone))) as (
                server,
            ),
            client(server) as cl,
        ):
            victim = await node_of(rabbit_cluster, "ffpool-server:cl-server")
            other = next(n for n in rabbit_cluster.nodes if n != victim)
            pinned = env(prefix, media_root, "cl-worker-2", other.amqp_url, address(other.amqp_url))
            async with procs(("worker", pinned)) as (survivor,):
                long_id = await cl.submit(LONG)
                await running(cl, long_id)  # on the only worker, pinned to a survivor
                await survive_with(rabbit_cluster, victim, [server, survivor], cl, long_id)
    finally:
        if victim is not None and rabbit_cluster.pid_of(victim.name) is None:
            took = await rabbit_cluster.restart(victim.name)
            print(f"\nnode {victim.name} restarted in {took:.1f} s")
        await delete_topology(next(iter(up(rabbit_cluster))).amqp_url, prefix)


async def survive_with(
    cluster: RabbitCluster, victim: Node, running_: list[Proc], cl: Any, long_id: str
) -> None:
    """Start a second worker (all addresses), then kill `victim` (survive_a_node)."""
    server, survivor = running_
    everyone = ",".join(address(node.amqp_url) for node in cluster.nodes)
    other = address(survivor.env["RABBITMQ_URL"])
    worker_env = {**survivor.env, "INSTANCE_NAME": "cl-worker-1", "RABBITMQ_ADDRESSES": everyone}
    async with procs(("worker", worker_env)) as (worker,):
        placed = {p.env["INSTANCE_NAME"]: nodes_of(p) for p in (server, worker, survivor)}
        print(f"\nconnections' nodes: {placed}; killing {victim.name}")
        assert address(victim.amqp_url) in nodes_of(server), placed
        assert set(nodes_of(survivor)) == {other}, placed
        await survive_a_node(cluster, victim.name, [server, worker], cl, long_id)


def up(cluster: RabbitCluster) -> list[Node]:
    return [n for n in cluster.nodes if cluster.pid_of(n.name) is not None]


async def node_of(cluster: RabbitCluster, name: str) -> Node:
    """The node holding the (first listed) broker connection named `name`: the management
    API lists a connection a moment after it opens."""

    async def found() -> Node | None:
        listed = await cluster.api("connections", cluster.nodes[0]) or []
        for conn in listed:
            if conn.get("client_properties", {}).get("connection_name") == name:
                return cluster.node(str(conn["node"]))
        return None

    node: Node = await eventually(found, timeout=15, what=f"the connection {name}")
    return node


async def running(cl: Any, job_id: str) -> None:
    while not any(m.type == "state" and m.state == "running" for m in cl.by_job.get(job_id, [])):
        await cl.until(job_id, {"state"}, timeout=60)


def done(cl: Any, job_id: str) -> bool:
    return any(m.type in ("completed", "failed") for m in cl.by_job.get(job_id, []))


async def survive_a_node(
    cluster: RabbitCluster, name: str, on_it: list[Proc], cl: Any, long_id: str
) -> None:
    dead = address(cluster.node(name).amqp_url)
    before = {id(proc): len(nodes_of(proc)) for proc in on_it}
    leader = await cluster.leader_of(on_it[0].env["JOB_QUEUE"])
    print(f"\njob queue led by {leader}; killing {name}")
    assert not done(cl, long_id), "the long job ended before the node was killed"
    began = time.monotonic()
    await cluster.kill(name)
    await eventually(
        lambda: reconnected(on_it, before, dead),
        timeout=RECONNECT_BOUND_S,
        what="the server and the worker on a surviving node",
    )
    took = time.monotonic() - began
    moved = {proc.env["INSTANCE_NAME"]: nodes_of(proc)[before[id(proc)] :] for proc in on_it}
    print(f"node {name} killed: reconnected in {took:.2f} s to {moved}")
    for proc in on_it:
        tried = [line for line in proc.lines if RETRIED.search(line)]
        print(f"{proc.env['INSTANCE_NAME']}: {len(tried)} failed attempts", *tried[-3:], sep="\n  ")
    # The long job's worker was on a surviving node: its outcome reaches the client, by the
    # server's events queue (declared again on the survivor) or the job's files.
    outcome = (await cl.until(long_id, {"completed", "failed"}, timeout=90))[-1]
    assert outcome.type == "completed", outcome
    after_id = await cl.submit(PROBE)
    assert (await cl.until(after_id, {"completed", "failed"}, timeout=60))[-1].type == "completed"
    resynced = any("outcome read from the job's files" in line for line in on_it[0].lines)
    print(f"long job's outcome {'read from its files' if resynced else 'heard as an event'}")
