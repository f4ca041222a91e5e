"""Servers and workers connect to a cluster, not a node (docs/rabbitmq.md, "Broker clusters"):
`ffpool server` and `ffpool worker` processes given the three nodes of the loopback cluster
(tests/rabbit_cluster.py) in RABBITMQ_ADDRESSES move to a surviving node when theirs is killed.

The server and one worker start on node 1 (their RABBITMQ_URL's host), another worker on
node 2 runs a long job while node 1 is SIGKILLed: the processes on node 1 reconnect to a
survivor (the time is printed: `pytest -s`), the long job's outcome still reaches the client,
and a job submitted afterwards completes. Node 1 is restarted at the end, whatever happens.
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
from tests.rabbit_cluster import RabbitCluster

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
    """Each process has as many connections on a survivor as it had on the dead node."""
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
    one, two, _ = rabbit_cluster.nodes
    everyone = ",".join(address(node.amqp_url) for node in rabbit_cluster.nodes)
    dead = address(one.amqp_url)
    prefix = f"fftest.cl.{uuid.uuid4().hex[:8]}"
    try:
        async with (
            procs(
                ("server", env(prefix, media_root, "cl-server", one.amqp_url, everyone)),
                ("worker", env(prefix, media_root, "cl-worker-2", two.amqp_url, everyone)),
            ) as (server, survivor),
            client(server) as cl,
        ):
            long_id = await cl.submit(LONG)
            await running(cl, long_id)  # on the only worker, on node 2
            async with procs(
                ("worker", env(prefix, media_root, "cl-worker-1", one.amqp_url, everyone))
            ) as (worker,):
                assert set(nodes_of(server)) == {dead}, nodes_of(server)
                assert set(nodes_of(worker)) == {dead}, nodes_of(worker)
                assert set(nodes_of(survivor)) == {address(two.amqp_url)}
                await survive_a_node(rabbit_cluster, one.name, [server, worker], cl, long_id)
    finally:
        if rabbit_cluster.pid_of(one.name) is None:
            print(f"\nnode {one.name} restarted in {await rabbit_cluster.restart(one.name):.1f} s")
        await delete_topology(two.amqp_url, prefix)


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
