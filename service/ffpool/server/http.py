"""The HTTP side (port 8081): health and probes, metrics, job status, uploads, downloads, schema.

A worker-only process (no JobBackend here) still serves health, probes and metrics; the job
routes exist only where there is a backend to answer them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel

from ffpool import logs, names
from ffpool.backends.base import BackendError, BackendStats, Health, JobBackend
from ffpool.jobs.events import FailureCode, JobRecord
from ffpool.metrics import CONTENT_TYPE, Metrics
from ffpool.settings import Settings
from ffpool.storage import Storage, StorageError, content_type

log = logs.get(__name__)

BACKEND_TIMEOUT_SECONDS: Final = 5.0
UPLOAD_CHUNK_BYTES: Final = 256 * 1024
MAX_DEAD_LETTERS: Final = 1000
_JOB_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
_STATUS_FOR: Final = {
    FailureCode.INPUT_TOO_LARGE: 413,
    FailureCode.INPUT_REJECTED: 400,
}

Ready = Callable[[], Awaitable[bool]]


class HealthBody(BaseModel):
    status: Health
    version: str
    stats: BackendStats


class ProbeBody(BaseModel):
    status: str


class UploadBody(BaseModel):
    upload_id: str
    size: int


class DeadLettersBody(BaseModel):
    dead_letters: list[JobRecord]


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
        storage: Storage,
        metrics: Metrics,
        version: str,
        schema: dict[str, Any],
        ready: Ready | None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.storage = storage
        self.metrics = metrics
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
        if self.backend is None:
            return Health.HEALTHY, fallback
        try:
            async with asyncio.timeout(BACKEND_TIMEOUT_SECONDS):
                return await self.backend.health(), await self.backend.stats()
        except (BackendError, OSError, TimeoutError) as exc:
            log.warning("backend health check failed", error=type(exc).__name__)
            return Health.UNHEALTHY, fallback

    async def health(self, _: web.Request) -> web.Response:
        status, stats = await self._backend_status()
        body = HealthBody(status=status, version=self.version, stats=stats)
        return _json(body, 200 if status is Health.HEALTHY else 503)

    async def livez(self, _: web.Request) -> web.Response:
        return _json(ProbeBody(status="alive"))

    async def readyz(self, _: web.Request) -> web.Response:
        healthy, _stats = await self._backend_status()
        ready = healthy is Health.HEALTHY and (self.ready is None or await self.ready())
        return _json(ProbeBody(status="ready" if ready else "not ready"), 200 if ready else 503)

    async def metrics_text(self, _: web.Request) -> web.Response:
        body = await self.metrics.render(self.backend)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def schema_json(self, _: web.Request) -> web.Response:
        return web.json_response(self.schema)

    async def job(self, request: web.Request) -> web.Response:
        assert self.backend is not None
        job_id = request.match_info["job_id"]
        record = await self.backend.get(job_id) if _JOB_ID_RE.fullmatch(job_id) else None
        if record is None:
            return _error(404, "unknown_job", "no job with this id")
        return _json(record)

    async def output(self, request: web.Request) -> web.StreamResponse:
        job_id, name = request.match_info["job_id"], request.match_info["name"]
        try:
            path = await asyncio.to_thread(self.storage.output_path, job_id, name)
        except StorageError:
            return _error(404, "not_found", "no such output")
        headers = {
            "Content-Type": content_type(name),
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
        }
        return web.FileResponse(path, headers=headers)

    async def upload(self, request: web.Request) -> web.Response:
        limit = self.settings.max_upload_bytes
        if request.content_length is not None and request.content_length > limit:
            return _error(413, FailureCode.INPUT_TOO_LARGE, f"uploads are limited to {limit} bytes")
        chunks = request.content.iter_chunked(UPLOAD_CHUNK_BYTES)
        seconds = self.settings.max_upload_seconds
        try:
            # The whole body, not each read: a client trickling bytes must not hold it open.
            async with asyncio.timeout(seconds):
                upload_id, size = await self.storage.save_upload(chunks, limit)
        except StorageError as exc:
            return _error(_STATUS_FOR.get(exc.code, 400), exc.code, f"upload {exc.message}")
        except TimeoutError:
            log.info("upload timed out", limit_s=seconds)
            return _error(408, FailureCode.TIMEOUT, f"uploads must complete within {seconds} s")
        log.info("upload stored", upload_id=upload_id, size=size)
        return _json(UploadBody(upload_id=upload_id, size=size), 201)

    async def dead_letters(self, request: web.Request) -> web.Response:
        assert self.backend is not None
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, "invalid_limit", "limit must be an integer")
        limit = min(max(limit, 1), MAX_DEAD_LETTERS)
        return _json(DeadLettersBody(dead_letters=await self.backend.dead_letters(limit)))


def make_http_app(
    *,
    settings: Settings,
    backend: JobBackend | None,
    storage: Storage,
    metrics: Metrics,
    version: str,
    schema: dict[str, Any],
    ready: Ready | None = None,
    job_routes: bool = True,
) -> web.Application:
    """With `job_routes=False` (a worker-only process) the backend still answers health,
    readiness and metrics, but clients are not served jobs, uploads or downloads here."""
    h = _Handlers(settings, backend, storage, metrics, version, schema, ready)
    app = web.Application()
    app.router.add_get(names.HEALTH_PATH, h.health)
    app.router.add_get(names.LIVE_PATH, h.livez)
    app.router.add_get(names.READY_PATH, h.readyz)
    app.router.add_get(names.METRICS_PATH, h.metrics_text)
    app.router.add_get(names.SCHEMA_PATH, h.schema_json)
    if backend is not None and job_routes:
        app.router.add_get(names.JOB_PATH, h.job)
        app.router.add_get(names.OUTPUT_PATH, h.output)
        app.router.add_post(names.UPLOADS_PATH, h.upload)
        app.router.add_get(names.DEAD_LETTERS_PATH, h.dead_letters)
    return app
