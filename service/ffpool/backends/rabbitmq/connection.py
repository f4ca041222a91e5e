"""Robust, named broker connections and the topology declaration.

Publishing and consuming use separate connections: a memory or disk alarm blocks a connection
that publishes, and a worker's acks must not wait behind it.
https://www.rabbitmq.com/docs/connection-blocked
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.connection import make_url

from ffpool import logs, names
from ffpool.backends.base import BackendBusy, BackendUnavailable
from ffpool.backends.rabbitmq.transport import CoalescingConnection
from ffpool.broker_addresses import BrokerAddress, cluster, url_address
from ffpool.topology import Topology

log = logs.get(__name__)

# An alarm-blocked connection is known within this time (aiormq's `ready()` waits on it).
BLOCKED_PROBE_S = 0.05
# How often a queue declare retries while the broker-closed channel reopens.
REOPEN_POLL_S = 0.05
# Per-server queues (events, dead-letter watch, control) are bounded: a stalled server drops
# its oldest events rather than growing the broker's memory.
SERVER_QUEUE_MAX_LENGTH = 100_000
# A per-server events queue outlives a broker restart, and the broker deletes it once its
# server has been gone this long.
SERVER_QUEUE_EXPIRES_MS = 10 * 60 * 1000
EVENTS_EXCHANGE_TYPE = aio_pika.ExchangeType.TOPIC
CONTROL_EXCHANGE_TYPE = aio_pika.ExchangeType.TOPIC


# Start-up retries while the broker is unreachable: exponential back-off, capped, jittered
# (a fleet of workers started together must not hammer a broker that is coming up).
CONNECT_BACKOFF_BASE_S = 0.5
CONNECT_BACKOFF_CAP_S = 30.0


def backoff_s(failures: int, jitter: float) -> float:
    """The wait after the `failures`-th failed attempt (1, 2, …); `jitter` in [0, 1) spreads
    it over the upper half of the step, so it never collapses to zero."""
    step = min(CONNECT_BACKOFF_CAP_S, CONNECT_BACKOFF_BASE_S * 2.0 ** min(failures - 1, 30))
    return step * (0.5 + jitter / 2)


class LinkState(enum.Enum):
    READY = "ready"
    BLOCKED = "blocked"
    DOWN = "down"


# A cluster's other nodes, as callers pass them to `connect`.
Addresses = Sequence[BrokerAddress]


async def connect(
    url: str, name: str, timeout: float, addresses: Addresses = ()
) -> AbstractRobustConnection:
    """A connection that reconnects by itself and restores its channels, queues, bindings
    and consumers; `name` shows in the management API's connection list. `addresses`: the
    cluster's other nodes (RABBITMQ_ADDRESSES) besides the URL's host: the first attempt starts
    at a random one, every reconnect at the node that last worked (transport.py)."""
    # aio_pika.connect_robust spelled out: it would copy keywords of ours into the URL.
    conn = CoalescingConnection(
        make_url(url),
        client_properties={"connection_name": name},
        addresses=cluster(url_address(url), tuple(addresses)),
        connect_timeout=timeout,
    )
    await conn.connect(timeout=timeout)
    return conn


def cluster_mode(conn: AbstractRobustConnection, topo: Topology) -> bool:
    """Whether this process may land on another broker node at its next reconnect (several
    addresses, or quorum queues, which are only worth it on a cluster): then a per-server
    queue must be exclusive, not durable (docs/rabbitmq.md, "Broker clusters")."""
    rotation = getattr(conn, "rotation", None)
    return topo.quorum or (rotation is not None and len(rotation.addresses) > 1)


async def open_channel(
    conn: AbstractRobustConnection,
    timeout: float,
    *,
    publisher_confirms: bool = True,
    on_return_raises: bool = False,
) -> AbstractChannel:
    """`conn.channel()` with a timeout (it waits on the broker, which may not answer)."""
    async with asyncio.timeout(timeout):
        return await conn.channel(
            publisher_confirms=publisher_confirms, on_return_raises=on_return_raises
        )


def link_state_now(conn: AbstractRobustConnection | None) -> LinkState:
    if conn is None or conn.is_closed or not conn.connected.is_set():
        return LinkState.DOWN
    transport = conn.transport
    if transport is None or transport.connection.is_closed:
        return LinkState.DOWN
    return LinkState.READY


async def link_state(conn: AbstractRobustConnection | None) -> LinkState:
    state = link_state_now(conn)
    if state is not LinkState.READY or conn is None or conn.transport is None:
        return state
    try:
        async with asyncio.timeout(BLOCKED_PROBE_S):
            await conn.transport.connection.ready()
    except TimeoutError:
        return LinkState.BLOCKED
    return LinkState.READY


async def ensure_ready(conn: AbstractRobustConnection | None, wait_s: float) -> None:
    """Return when `conn` can publish; BackendBusy at once on an alarm, BackendUnavailable
    after `wait_s` of the broker being unreachable (the robust connection keeps retrying)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        state = await link_state(conn)
        if state is LinkState.READY:
            return
        if state is LinkState.BLOCKED:
            raise BackendBusy("the broker is refusing publishes (memory or disk alarm)")
        if loop.time() >= deadline:
            raise BackendUnavailable("the message broker is unreachable")
        await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))


async def declare_topology(channel: AbstractChannel, topo: Topology, timeout: float) -> None:
    """Declare the shared topology (idempotent; same names and arguments as the operator):
    the job exchange, every band's queue bound with its routing key (one band, the job queue,
    for a classic topology), the DLQ, the events and control exchanges."""
    jobs = await channel.declare_exchange(
        topo.job_exchange, aio_pika.ExchangeType.DIRECT, durable=True, timeout=timeout
    )
    for band in topo.bands():
        queue = await declare_queue(channel, band.queue, topo.queue_arguments(), timeout)
        await queue.bind(jobs, routing_key=band.routing_key, timeout=timeout)
    dlq = await declare_queue(channel, topo.dlq_queue, topo.dlq_arguments(), timeout)
    await dlq.bind(jobs, routing_key=topo.dlq_queue, timeout=timeout)
    await events_exchange(channel, topo, timeout)
    await control_exchange(channel, topo, timeout)


async def declare_queue(
    channel: AbstractChannel, name: str, arguments: dict[str, Any], timeout: float
) -> AbstractQueue:
    """Declare a durable queue; if it already exists with other arguments (the operator
    changed e.g. QUEUE_MAX_LENGTH, and it owns the arguments and reports the difference as a
    condition), use it as it is: a PRECONDITION_FAILED must not crash-loop the service."""
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments, timeout=timeout)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        log.warning(
            "queue exists with other arguments: using it as it is",
            queue=name,
            wanted=arguments,
            conflict=str(exc),
        )
    # The broker closed the channel; a robust channel reopens itself in a task of its own
    # (a plain one is reopened here): retry the passive declare until it is back.
    async with asyncio.timeout(timeout):
        while True:
            if channel.is_closed and not isinstance(channel, AbstractRobustChannel):
                await channel.reopen()
            try:
                return await channel.declare_queue(name, passive=True, timeout=timeout)
            except aiormq.exceptions.ChannelInvalidStateError:
                await asyncio.sleep(REOPEN_POLL_S)


async def events_exchange(
    channel: AbstractChannel, topo: Topology, timeout: float
) -> AbstractExchange:
    return await channel.declare_exchange(
        topo.events_exchange, EVENTS_EXCHANGE_TYPE, durable=True, timeout=timeout
    )


async def control_exchange(
    channel: AbstractChannel, topo: Topology, timeout: float
) -> AbstractExchange:
    return await channel.declare_exchange(
        topo.control_exchange, CONTROL_EXCHANGE_TYPE, durable=True, timeout=timeout
    )


def server_queue_arguments(*, expires: bool = False) -> dict[str, Any]:
    args: dict[str, Any] = {"x-max-length": SERVER_QUEUE_MAX_LENGTH}
    if expires:
        args["x-expires"] = SERVER_QUEUE_EXPIRES_MS
    return args


def watch_queue(cluster: bool, *, quorum: bool) -> dict[str, Any]:
    """How the dead-letter watch is declared. In quorum mode a durable quorum queue with the
    idle expiry: dead letters wait for their server across its reconnect or a node's loss
    (only the watch writes an expired job's failed marker and webhook). Else as the events
    queue: durable on one broker, exclusive on a cluster of classic queues."""
    arguments = server_queue_arguments(expires=True)
    if quorum:
        arguments["x-queue-type"] = names.QUEUE_TYPE_QUORUM
        return {"durable": True, "exclusive": False, "arguments": arguments}
    return {"durable": not cluster, "exclusive": cluster, "arguments": arguments}


async def close_quietly(conn: AbstractRobustConnection | None, timeout: float) -> None:
    if conn is None or conn.is_closed:
        return
    try:
        async with asyncio.timeout(timeout):
            await conn.close()
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        log.warning("closing a broker connection failed", error=type(exc).__name__)
