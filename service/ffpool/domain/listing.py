"""A caller's jobs at a glance (`GET /jobs`, docs/protocol.md): a few fields per job.

A list of full records could be megabytes (each up to MAX_RECORD_BYTES, bounds.py), so a row
holds what a table shows; `GET /jobs/{id}` has the rest.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from ffpool.domain.events import FailureCode, JobRecord, JobState
from ffpool.domain.jobs import JobId, Priority

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
_ASCII_NUMBER: Final = re.compile(r"[0-9]{1,9}")

StateFilter = frozenset[JobState] | None


class JobSummary(BaseModel):
    """One job's row: what it is, where it stands, and why it failed if it did."""

    model_config = ConfigDict(frozen=True)

    job_id: JobId
    state: JobState
    operation: str
    priority: Priority = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    percent: float | None = None
    """Progress of a running job if known; 100 once completed."""
    attempt: int = 1
    failure_code: FailureCode | None = None

    @classmethod
    def of(cls, record: JobRecord) -> JobSummary:
        percent = record.progress.percent if record.progress is not None else None
        return cls(
            job_id=record.job_id,
            state=record.state,
            operation=record.operation,
            priority=record.priority,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            percent=100.0 if record.state is JobState.COMPLETED else percent,
            attempt=record.attempt,
            failure_code=record.failure.code if record.failure is not None else None,
        )


class JobList(BaseModel):
    """`GET /jobs`'s body."""

    jobs: list[JobSummary]


def newest(
    records: Iterable[JobRecord], tenant: str | None, limit: int, states: StateFilter = None
) -> list[JobSummary]:
    """The newest `limit` records (by creation), of `tenant` if given (a record whose tenant
    is not known is nobody's: never listed for a tenant), in `states` if given."""
    chosen = (
        r
        for r in records
        if (tenant is None or r.tenant == tenant) and (states is None or r.state in states)
    )
    found = heapq.nlargest(max(limit, 0), chosen, key=lambda r: (r.created_at, r.job_id))
    return [JobSummary.of(r) for r in found]


class BadQuery(ValueError):
    """A `GET /jobs` query the server refuses, in words."""


def parse_limit(texts: Sequence[str]) -> int:
    """`?limit=N`: the values given (none → DEFAULT_LIMIT); one, of ASCII digits only (`²` and
    `١٢` are digits to str.isdigit, not numbers here), from 1 to MAX_LIMIT. Raises BadQuery.
    /jobs and /dead-letters share it, so both refuse what either refuses (docs/protocol.md)."""
    if not texts:
        return DEFAULT_LIMIT
    if len(texts) > 1:
        raise BadQuery(f"limit may be given once, not {len(texts)} times")
    text = texts[0].strip()
    if not _ASCII_NUMBER.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {texts[0]!r}")
    return int(text)


def parse_query(limits: Sequence[str], states: Sequence[str]) -> tuple[int, StateFilter]:
    """`?limit=N` (parse_limit) and `?state=queued,running`; a repeated `state`
    (`?state=queued&state=failed`) adds its states, as one comma list would."""
    return parse_limit(limits), parse_states(",".join(s for s in states if s.strip()) or None)


def parse_states(text: str | None) -> StateFilter:
    """`queued,running` → those states; None or empty → every state. Raises BadQuery."""
    if text is None or not text.strip():
        return None
    allowed = [s.value for s in JobState]
    states: set[JobState] = set()
    for word in (w.strip() for w in text.split(",")):
        if word not in allowed:
            raise BadQuery(f"state {word!r} is not one of {', '.join(allowed)}")
        states.add(JobState(word))
    return frozenset(states)
