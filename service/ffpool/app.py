"""Composition: build the backend for a role, run the WebSocket and HTTP servers, stop cleanly.

`serve` = servers + workers in one process, `server` = WebSocket/HTTP only, `worker` = workers
with a small health HTTP side for Kubernetes probes. Every role also serves the ops port
(/metrics, all tenants' /dead-letters), which the Ingress never routes (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from websockets.asyncio.server import Server

from ffpool import __version__, logs, names
from ffpool.auth.gate import Authenticator
from ffpool.auth.keys import SigningKeyError, load_signing_key
from ffpool.auth.policy import ANONYMOUS_WARNING, startup_refusal
from ffpool.auth.store import TokensFileError
from ffpool.auth.tenants import TenantsFile
from ffpool.backends.base import NO_NOTIFIER, JobBackend, JobNotifier, ServiceBackend
from ffpool.chunks.executor import ParallelExecutor
from ffpool.chunks.subjobs import SubJobs
from ffpool.domain.protocol import json_schema
from ffpool.ffmpeg.executor import Executor
from ffpool.metrics import Metrics
from ffpool.server.http import make_http_app
from ffpool.server.job_checks import JobChecks
from ffpool.server.ops import make_ops_app
from ffpool.server.output_links import OutputLinks
from ffpool.server.storage_setup import load_tenants, open_objects
from ffpool.server.web import tell_bound_ports
from ffpool.server.ws import start_ws_server
from ffpool.settings import BackendKind, Settings
from ffpool.storage.housekeeping import sweep_uploads_forever
from ffpool.storage.media import LocalStorage, Storage
from ffpool.storage.objects import ObjectStore
from ffpool.webhooks import runtime as webhooks
from ffpool.webhooks.runtime import Webhooks

log = logs.get(__name__)


class Role(enum.StrEnum):
    SERVE = "serve"
    SERVER = "server"
    WORKER = "worker"


@dataclass(frozen=True)
class Backends:
    """A role's backend: `service` for the process (lifecycle, probes, ops port), `jobs` for
    clients; a worker-only process has no `jobs` and serves no clients."""

    service: ServiceBackend
    jobs: JobBackend | None
    subjobs: SubJobs | None = None
    """What a worker's chunked jobs need (docs/chunks.md); None: this role runs no jobs."""


def build_backend(
    settings: Settings,
    role: Role,
    metrics: Metrics,
    executor: Executor,
    storage: Storage,
    objects: ObjectStore | None = None,
    notifier: JobNotifier = NO_NOTIFIER,
) -> Backends:
    """With STORAGE=s3, `objects` keeps the RabbitMQ backend's job records in the bucket."""
    if settings.backend is BackendKind.MEMORY:
        if role is not Role.SERVE:
            raise SystemExit(f"`ffpool {role}` needs BACKEND=rabbitmq: memory jobs are in-process")
        from ffpool.backends.memory import MemoryBackend

        memory = MemoryBackend(settings, executor, metrics, storage.remove_job, notifier)
        return Backends(memory, memory, memory.subjobs())
    from ffpool.backends import rabbitmq

    match role:
        case Role.SERVE:
            node = rabbitmq.build_node(settings, metrics, executor, objects, notifier)
            return Backends(node, node, node.subjobs())
        case Role.SERVER:
            server = rabbitmq.build_server(settings, metrics, objects, notifier)
            return Backends(server, server)
        case Role.WORKER:
            worker = rabbitmq.build_worker(settings, metrics, executor, objects, notifier)
            return Backends(worker, None, worker.subjobs())


@dataclass
class Running:
    """A started service: its backend and the ports it actually bound (port 0 → ephemeral)."""

    settings: Settings
    backend: ServiceBackend
    ws_port: int | None
    http_port: int
    ops_port: int
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when shutdown starts: /readyz answers 503 so no new traffic is routed here."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}{names.WS_PATH}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"


async def _authenticator(settings: Settings, role: Role) -> Authenticator:
    """The secure default first: a process serving clients off loopback needs tokens."""
    serves_clients = role is not Role.WORKER
    if serves_clients and (refusal := startup_refusal(settings)) is not None:
        raise SystemExit(refusal)
    try:
        auth = Authenticator(settings, await asyncio.to_thread(load_signing_key, settings))
        await auth.start()
    except (SigningKeyError, TokensFileError) as exc:
        raise SystemExit(str(exc)) from None
    if serves_clients and auth.anonymous:
        log.warning(ANONYMOUS_WARNING.upper(), host=settings.host, anonymous=True)
    return auth


async def _site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@dataclass(frozen=True)
class Edge:
    """What the process holds besides its backend: the tenants file and, with STORAGE=s3,
    the object store (docs/storage.md)."""

    tenants: TenantsFile
    objects: ObjectStore | None
    metrics: Metrics = field(default_factory=Metrics)
    webhooks: Webhooks = field(default_factory=lambda: Webhooks(NO_NOTIFIER))


@contextlib.asynccontextmanager
async def running(settings: Settings, role: Role = Role.SERVE) -> AsyncIterator[Running]:
    """Start backend, HTTP, ops and (unless worker-only) WebSocket servers; stop them on exit."""
    auth = await _authenticator(settings, role)
    tenants = await load_tenants(settings)
    # Whatever a failed start had opened is closed again, in reverse order.
    async with contextlib.AsyncExitStack() as opened:
        objects = await open_objects(settings)
        if objects is not None:
            opened.push_async_callback(objects.close)
        hooks = await _webhooks(settings, tenants, role, metrics := Metrics())
        opened.push_async_callback(hooks.stop)
        edge = Edge(tenants, objects, metrics, hooks)
        await hooks.start()  # before the backend: it queues webhooks from the start
        async with _running(settings, role, auth, edge) as svc:
            yield svc


@contextlib.asynccontextmanager
async def _running(
    settings: Settings, role: Role, auth: Authenticator, edge: Edge
) -> AsyncIterator[Running]:
    storage = LocalStorage.from_settings(settings)
    metrics = edge.metrics
    executor = ParallelExecutor(settings, storage, objects=edge.objects, tenants=edge.tenants)
    notifier = edge.webhooks.notifier
    backends = build_backend(settings, role, metrics, executor, storage, edge.objects, notifier)
    backend, jobs = backends.service, backends.jobs
    if backends.subjobs is not None:  # the backend carrying the jobs carries their chunks
        executor.bind(backends.subjobs)
    await backend.start()
    sweeper = (
        asyncio.create_task(sweep_uploads_forever(storage, settings))
        if role is not Role.WORKER
        else None
    )
    ws: Server | None = None
    runners: list[web.AppRunner] = []
    stopping = asyncio.Event()

    async def ready() -> bool:
        return not stopping.is_set()

    try:
        http_app = make_http_app(
            settings=settings,
            backend=jobs,
            service=backend,
            storage=storage,
            version=__version__,
            schema=json_schema(),
            ready=ready,
            auth=auth,
            objects=edge.objects,
        )
        runners.append(await _site(http_app, settings.host, settings.http_port))
        ops_app = make_ops_app(backend, metrics)
        runners.append(await _site(ops_app, settings.host, settings.ops_port))
        if jobs is not None:
            checks = JobChecks(settings, edge.tenants)
            links = OutputLinks(auth, edge.objects)
            ws = await start_ws_server(jobs, settings, metrics, auth, storage, checks, links)
        http_port, ops_port = (_http_port(r) for r in runners)
        tell_bound_ports(http_app, _ws_port(ws), http_port)
        yield Running(settings, backend, _ws_port(ws), http_port, ops_port, stopping)
    finally:
        stopping.set()
        # Drain first, with clients still connected, so running jobs' results reach them.
        await backend.drain(settings.drain_seconds)
        if ws is not None:
            ws.close()
            await ws.wait_closed()
        await backend.stop()
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        for runner in runners:
            await runner.cleanup()


async def _webhooks(
    settings: Settings, tenants: TenantsFile, role: Role, metrics: Metrics
) -> Webhooks:
    """Every process queues its jobs' webhooks; those serving clients also send them."""
    consume = role is not Role.WORKER
    try:
        return await webhooks.build(settings, tenants, consume=consume, metrics=metrics)
    except webhooks.WebhooksConfigError as exc:
        raise SystemExit(str(exc)) from None


def _ws_port(ws: Server | None) -> int | None:
    return None if ws is None else int(next(iter(ws.sockets)).getsockname()[1])


def _http_port(runner: web.AppRunner) -> int:
    if not runner.addresses:
        raise RuntimeError("HTTP server has no socket")
    return int(runner.addresses[0][1])


async def serve_forever(settings: Settings, role: Role) -> None:
    """Run until SIGTERM/SIGINT; then stop taking jobs, drain, and exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def on_signal() -> None:
        # Before the service is up (a worker waiting for the broker), stop starting at once.
        stop.set()
        if starting:
            main.cancel()

    starting = True
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    log.info(
        "starting FFmpeg WebSocket Media Processing Service",
        backend=settings.backend.value,
        role=role.value,
        version=__version__,
    )
    try:
        async with running(settings, role) as svc:
            starting = False
            await _serve(svc, settings, stop)
    except asyncio.CancelledError:
        if not stop.is_set() or main.uncancel() > 0:
            raise
        log.info("stopped before the service was ready")


async def _serve(svc: Running, settings: Settings, stop: asyncio.Event) -> None:
    log.info(
        "service ready",
        ws_port=svc.ws_port,
        http_port=svc.http_port,
        ops_port=svc.ops_port,
        media_root=str(settings.media_root),
    )
    await stop.wait()
    svc.stopping.set()
    log.info("stopping: draining running jobs", drain_seconds=settings.drain_seconds)
