"""The HTTP side's test harness: a small fake backend and helpers. Fixtures are in
tests/integration/http_fixtures.py (`pytest_plugins = ["tests.integration.http_fixtures"]`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from ffpool.auth.gate import Authenticator
from ffpool.auth.keys import load_signing_key
from ffpool.backends.admission import Admission, TenantLimits
from ffpool.backends.base import BackendStats, Health, Submission, Subscription, UnknownJob
from ffpool.domain.events import JobRecord, JobState
from ffpool.domain.jobs import Job
from ffpool.domain.listing import JobSummary, newest
from ffpool.server.http import make_http_app
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage

VERSION = "9.8.7"
SCHEMA = {"title": "ffpool protocol", "oneOf": [{"type": "object"}]}
UPLOAD_LIMIT = 100_000

Client = TestClient[web.Request, web.Application]


class FakeBackend:
    name = "memory"

    def __init__(self) -> None:
        self.admission = Admission(TenantLimits.from_settings(Settings()))
        self.records: dict[str, JobRecord] = {}
        self.dead: list[JobRecord] = []
        self.healthy: Health | Exception = Health.HEALTHY
        self.stats_value = BackendStats(
            total_jobs=0, active_jobs=0, queued_jobs=0, max_concurrent=4, backend="memory"
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, job: Job) -> Submission:
        record = JobRecord.queued(job)
        self.records[job.id] = record
        return Submission(record=record)

    async def cancel(self, job_id: str) -> JobRecord:
        raise UnknownJob(job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        raise NotImplementedError

    async def stats(self) -> BackendStats:
        return self.stats_value

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        return [r for r in self.dead if tenant in (None, r.tenant)][:limit]

    async def jobs(
        self, tenant: str | None, limit: int = 100, states: frozenset[JobState] | None = None
    ) -> list[JobSummary]:
        return newest(self.records.values(), tenant, limit, states)

    async def active_jobs(self, tenant: str) -> int:
        return sum(1 for r in self.records.values() if r.tenant == tenant)

    def tenant_of(self, job_id: str) -> str | None:
        record = self.records.get(job_id)
        return None if record is None else record.tenant

    async def health(self) -> Health:
        if isinstance(self.healthy, Exception):
            raise self.healthy
        return self.healthy


class Ready:
    def __init__(self) -> None:
        self.value = True

    async def __call__(self) -> bool:
        return self.value


def app_for(
    backend: FakeBackend | None,
    storage: LocalStorage,
    ready: Ready,
    auth: Authenticator | None = None,
    **overrides: Any,
) -> web.Application:
    settings = Settings(media_root=storage.root, max_upload_bytes=UPLOAD_LIMIT, **overrides)
    return make_http_app(
        settings=settings,
        backend=backend,
        storage=storage,
        version=VERSION,
        schema=SCHEMA,
        ready=ready,
        auth=auth or Authenticator(settings, load_signing_key(settings)),
    )


async def get_json(client: Client, path: str, status: int) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()
