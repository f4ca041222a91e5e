"""The HTTP side (port 8081): health and probes, job status, uploads, downloads, schema, and
browser tickets. /metrics and the all-tenant /dead-letters are on the ops port (server/ops.py).

Every route but the probes and the web page (server/web.py) needs a token (server/http_auth.py);
job routes see the backend through the caller's tenant only, so another tenant's job answers
like an unknown one. A worker-only process still serves health and probes; the job routes and
the page exist only where there is a backend to answer them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel

from ffpool import logs, names
from ffpool.auth.gate import Authenticator
from ffpool.auth.policy import ANONYMOUS_WARNING
from ffpool.backends import tenancy
from ffpool.backends.base import BackendError, BackendStats, Health, JobBackend, ServiceBackend
from ffpool.domain.events import FailureCode
from ffpool.domain.listing import BadQuery, JobList, parse_query
from ffpool.domain.protocol import ErrorCode
from ffpool.server.bucket_uploads import EmptyUpload, UploadStreams, save_to_bucket
from ffpool.server.cors import cors_middleware
from ffpool.server.http_auth import CALLER, SIGNED_LINK, auth_middleware, ticket_handler
from ffpool.server.ops import dead_letters_response
from ffpool.server.output_links import OutputLinks
from ffpool.server.package_route import PackageRoute
from ffpool.server.web import add_web_routes
from ffpool.settings import Settings
from ffpool.storage.media import Storage, StorageError, content_type
from ffpool.storage.objects import ObjectErrorKind, ObjectStore, ObjectStoreError

log = logs.get(__name__)

BACKEND_TIMEOUT_SECONDS: Final = 5.0
UPLOAD_CHUNK_BYTES: Final = 256 * 1024
_JOB_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
_STATUS_FOR: Final = {
    FailureCode.INPUT_TOO_LARGE: 413,
    FailureCode.QUOTA_EXCEEDED: 507,
    FailureCode.INPUT_REJECTED: 400,
}

Ready = Callable[[], Awaitable[bool]]


class HealthBody(BaseModel):
    status: Health
    version: str
    stats: BackendStats
    anonymous: bool = False
    warning: str | None = None


class ProbeBody(BaseModel):
    status: str


class UploadBody(BaseModel):
    upload_id: str
    size: int


class ErrorBody(BaseModel):
    error: str
    message: str


def _json(body: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=body.model_dump_json(), status=status)


def _error(status: int, error: str, message: str) -> web.Response:
    return _json(ErrorBody(error=error, message=message), status)


class _Handlers:
    def __init__(
        self,
        settings: Settings,
        backend: JobBackend | None,
        service: ServiceBackend | None,
        storage: Storage,
        auth: Authenticator,
        version: str,
        schema: dict[str, Any],
        ready: Ready,
        objects: ObjectStore | None = None,
    ) -> None:
        self.settings = settings
        self.objects = objects
        self.streams = UploadStreams.from_settings(settings)
        self.links = OutputLinks(auth, objects)
        self.backend = backend
        self.service = service
        self.storage = storage
        self.auth = auth
        self.serves_clients = backend is not None
        self.version = version
        self.schema = schema
        self.ready = ready

    async def _backend_status(self) -> tuple[Health, BackendStats]:
        """Health and stats; a backend that errors or hangs counts as unhealthy."""
        fallback = BackendStats(
            total_jobs=0,
            active_jobs=0,
            queued_jobs=0,
            max_concurrent=self.settings.max_concurrent_jobs,
            backend=self.settings.backend.value,
        )
        if self.service is None:
            return Health.HEALTHY, fallback
        try:
            async with asyncio.timeout(BACKEND_TIMEOUT_SECONDS):
                return await self.service.health(), await self.service.stats()
        except (BackendError, OSError, TimeoutError) as exc:
            log.warning("backend health check failed", error=type(exc).__name__)
            return Health.UNHEALTHY, fallback

    async def health(self, _: web.Request) -> web.Response:
        status, stats = await self._backend_status()
        # A worker-only process serves no clients: its anonymity is nobody's concern.
        anonymous = self.auth.anonymous and self.serves_clients
        body = HealthBody(
            status=status,
            version=self.version,
            stats=stats,
            anonymous=anonymous,
            warning=ANONYMOUS_WARNING if anonymous else None,
        )
        text = body.model_dump_json(exclude_none=True)  # `warning` only when there is one
        return web.json_response(text=text, status=200 if status is Health.HEALTHY else 503)

    async def livez(self, _: web.Request) -> web.Response:
        return _json(ProbeBody(status="alive"))

    async def readyz(self, _: web.Request) -> web.Response:
        healthy, _stats = await self._backend_status()
        ready = healthy is Health.HEALTHY and await self.ready()
        return _json(ProbeBody(status="ready" if ready else "not ready"), 200 if ready else 503)

    async def schema_json(self, _: web.Request) -> web.Response:
        return web.json_response(self.schema)

    def _scoped(self, request: web.Request) -> JobBackend:
        assert self.backend is not None
        return tenancy.scoped(self.backend, request[CALLER].tenant)

    async def job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        scoped = self._scoped(request)
        record = await scoped.get(job_id) if _JOB_ID_RE.fullmatch(job_id) else None
        if record is None:
            return _error(404, "unknown_job", "no job with this id")
        return _json(await self.links.record(record))

    async def jobs(self, request: web.Request) -> web.Response:
        """The caller's jobs, newest first (docs/protocol.md, "HTTP")."""
        try:
            query = request.query
            limit, states = parse_query(query.getall("limit", []), query.getall("state", []))
        except BadQuery as exc:
            return _error(400, "invalid_query", str(exc))
        tenant = request[CALLER].tenant
        return _json(JobList(jobs=await self._scoped(request).jobs(tenant, limit, states)))

    async def output(self, request: web.Request) -> web.StreamResponse:
        job_id, name = request.match_info["job_id"], request.match_info["name"]
        # A signed link names its job and file; a token must own the job (another tenant's
        # job answers exactly like a missing file).
        if not request.get(SIGNED_LINK, False) and (
            not _JOB_ID_RE.fullmatch(job_id) or await self._scoped(request).get(job_id) is None
        ):
            return _error(404, "not_found", "no such output")
        return await self.serve(
            job_id, name, {"Content-Disposition": f'attachment; filename="{name}"'}
        )

    async def serve(self, job_id: str, name: str, extra: dict[str, str]) -> web.StreamResponse:
        if self.objects is not None and (url := await self._presigned(job_id, name)):
            # In object storage: a fresh presigned link, so the bytes never pass through here.
            return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
        try:
            path = await asyncio.to_thread(self.storage.output_path, job_id, name)
        except StorageError:
            return _error(404, "not_found", "no such output")
        headers = {"Content-Type": content_type(name), "X-Content-Type-Options": "nosniff"}
        return web.FileResponse(path, headers={**headers, **extra})

    async def _presigned(self, job_id: str, name: str) -> str | None:
        """Where the job's output `name` is in object storage (tenant already checked)."""
        assert self.backend is not None
        record = await self.backend.get(job_id) if _JOB_ID_RE.fullmatch(job_id) else None
        return None if record is None else await self.links.redirect(record, name)

    async def _save(self, request: web.Request, limit: int) -> tuple[str, int]:
        chunks = request.content.iter_chunked(UPLOAD_CHUNK_BYTES)
        tenant = request[CALLER].tenant
        if self.objects is not None:
            return await save_to_bucket(self.objects, self.settings, chunks, limit, tenant=tenant)
        return await self.storage.save_upload(
            chunks, limit, tenant=tenant, declared_bytes=request.content_length
        )

    async def upload(self, request: web.Request) -> web.Response:
        limit = self.settings.max_upload_bytes
        if request.content_length is not None and request.content_length > limit:
            return _error(413, FailureCode.INPUT_TOO_LARGE, f"uploads are limited to {limit} bytes")
        if self.objects is None:
            return await self._receive(request, limit)
        # Each bucket upload holds parts in memory: bounded per tenant and process, refused
        # beyond (server/bucket_uploads.py), never queued.
        tenant = request[CALLER].tenant
        if (refusal := self.streams.acquire(tenant)) is not None:
            log.info("upload refused: too many in progress", tenant=tenant)
            return _error(429, ErrorCode.RATE_LIMITED, refusal)
        try:
            return await self._receive(request, limit)
        finally:
            self.streams.release(tenant)

    async def _receive(self, request: web.Request, limit: int) -> web.Response:
        seconds = self.settings.max_upload_seconds
        try:
            # The whole body, not each read: a client trickling bytes must not hold it open.
            async with asyncio.timeout(seconds):
                upload_id, size = await self._save(request, limit)
        except StorageError as exc:
            return _error(_STATUS_FOR.get(exc.code, 400), exc.code, f"upload {exc.message}")
        except EmptyUpload:
            return _error(400, FailureCode.INPUT_REJECTED, "upload refused: empty upload")
        except ObjectStoreError as exc:
            return _bucket_error(exc, limit)
        except TimeoutError:
            log.info("upload timed out", limit_s=seconds)
            return _error(408, FailureCode.TIMEOUT, f"uploads must complete within {seconds} s")
        log.info("upload stored", upload_id=upload_id, size=size)
        return _json(UploadBody(upload_id=upload_id, size=size), 201)

    async def dead_letters(self, request: web.Request) -> web.Response:
        """The caller's tenant's dead letters; every tenant's are on the ops port."""
        return await dead_letters_response(request, self._scoped(request))


def _bucket_error(exc: ObjectStoreError, limit: int) -> web.Response:
    if exc.kind is ObjectErrorKind.TOO_LARGE:
        return _error(413, FailureCode.INPUT_TOO_LARGE, f"uploads are limited to {limit} bytes")
    log.warning("upload not stored", kind=exc.kind.value, error=exc.message)
    return _error(
        503, FailureCode.STORAGE_ERROR, f"the object storage cannot take uploads: {exc.message}"
    )


def make_http_app(
    *,
    settings: Settings,
    backend: JobBackend | None,
    storage: Storage,
    version: str,
    schema: dict[str, Any],
    ready: Ready,
    auth: Authenticator,
    service: ServiceBackend | None = None,
    objects: ObjectStore | None = None,
) -> web.Application:
    """`service` (default: `backend`) answers health and readiness. Without `backend` (a
    worker-only process) clients are not served jobs, uploads or downloads here. `auth` is the
    one the WebSocket side uses too. With `objects` (STORAGE=s3) uploads go to the bucket and
    outputs in object storage are answered with a redirect to a presigned link."""
    h = _Handlers(
        settings, backend, service or backend, storage, auth, version, schema, ready, objects
    )
    app = web.Application(
        middlewares=[cors_middleware(settings.allowed_origins), auth_middleware(auth)]
    )
    app.router.add_get(names.HEALTH_PATH, h.health)
    app.router.add_get(names.LIVE_PATH, h.livez)
    app.router.add_get(names.READY_PATH, h.readyz)
    app.router.add_get(names.SCHEMA_PATH, h.schema_json)
    if backend is not None:
        app.router.add_get(names.JOBS_PATH, h.jobs)
        app.router.add_get(names.JOB_PATH, h.job)
        app.router.add_get(names.OUTPUT_PATH, h.output)
        package = PackageRoute(auth, h.links, backend.get, h.serve)
        app.router.add_get(names.PACKAGE_PATH, package.handle)
        app.router.add_post(names.UPLOADS_PATH, h.upload)
        app.router.add_get(names.DEAD_LETTERS_PATH, h.dead_letters)
        app.router.add_post(names.AUTH_TICKET_PATH, ticket_handler(auth))
        add_web_routes(app, settings, auth_required=not auth.anonymous)
    return app
