"""`GET /jobs` over real HTTP: the caller's jobs, newest first, `limit` and `state`, refused in
words when the query is bad (the CLI's `ffpool jobs`: tests/integration/test_cli_query.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ffpool.domain.events import JobRecord, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from tests.integration.http_harness import Client, FakeBackend, get_json

pytest_plugins = ["tests.integration.http_fixtures"]


def put(backend: FakeBackend, n: int, tenant: str = "anonymous", **update: object) -> str:
    job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), tenant=tenant)
    record = JobRecord.queued(job)
    moved = record.created_at + timedelta(seconds=n)
    backend.records[job.id] = record.model_copy(update={"created_at": moved, **update})
    return job.id


async def test_the_callers_jobs_newest_first(client: Client, backend: FakeBackend) -> None:
    old, new = put(backend, 1), put(backend, 2, state=JobState.RUNNING)
    put(backend, 3, tenant="other")
    body = await get_json(client, "/jobs", 200)
    assert [row["job_id"] for row in body["jobs"]] == [new, old]
    assert set(body["jobs"][0]) >= {"job_id", "state", "operation", "created_at", "percent"}
    assert "tenant" not in body["jobs"][0]
    body = await get_json(client, "/jobs?limit=1", 200)
    assert [row["job_id"] for row in body["jobs"]] == [new]
    body = await get_json(client, "/jobs?state=queued,completed", 200)
    assert [row["job_id"] for row in body["jobs"]] == [old]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=0", "limit must be a whole number from 1 to 1000"),
        ("limit=lots", "not 'lots'"),
        ("limit=1001", "1 to 1000"),
        ("state=done", "state 'done' is not one of"),
        ("limit=%C2%B2", "limit must be a whole number"),
        ("limit=%D9%A1%D9%A2", "limit must be a whole number"),
        ("limit=1&limit=2", "limit may be given once"),
        ("state=queued&state=done", "state 'done' is not one of"),
    ],
)
async def test_bad_queries_are_400_in_words(client: Client, query: str, words: str) -> None:
    body = await get_json(client, f"/jobs?{query}", 400)
    assert body["error"] == "invalid_query"
    assert words in body["message"]


async def test_a_repeated_state_adds_its_states(client: Client, backend: FakeBackend) -> None:
    old, new = put(backend, 1), put(backend, 2, state=JobState.COMPLETED)
    put(backend, 3, state=JobState.RUNNING)
    body = await get_json(client, "/jobs?state=queued&state=completed", 200)
    assert [row["job_id"] for row in body["jobs"]] == [new, old]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=%C2%B2", "limit=-3"])
async def test_dead_letters_read_limit_as_jobs_does(client: Client, query: str) -> None:
    body = await get_json(client, f"/dead-letters?{query}", 400)
    assert body["error"] == "invalid_query"
    assert "limit must be a whole number from 1 to 1000" in body["message"]
