"""Each server's bounded LRU of job records, folded from the events exchange (no database).

Events reach a server from several publishers (the submitting server's `queued`, a worker's
`running`/`progress`/terminal events) whose relative order is not guaranteed, so a state event
that would move a record backwards (an older attempt, or `queued` after `running` of the same
attempt) is ignored. `apply` keeps terminal records terminal.
"""

from __future__ import annotations

from collections import OrderedDict

from ffpool.backends.retention import RetainedBytes
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    JobEvent,
    JobRecord,
    JobState,
    StateEvent,
    apply,
)
from ffpool.domain.jobs import Job

UNKNOWN_OPERATION = "unknown"
_RANK = {JobState.QUEUED: 0, JobState.RUNNING: 1}


def fold(record: JobRecord | None, event: JobEvent) -> JobRecord | None:
    """The record after `event`; None when the job is unknown and the event cannot found it."""
    if record is None:
        if isinstance(event, StateEvent):
            return JobRecord(
                job_id=event.job_id,
                state=event.state,
                operation=event.operation,
                priority=event.priority,
                created_at=event.at,
                started_at=event.at if event.state is JobState.RUNNING else None,
                attempt=event.attempt,
                worker=event.worker,
                tenant=event.tenant,
            )
        if event.type == "progress":
            return None
        # A terminal event for a job this server never heard of: keep the outcome anyway,
        # whose tenant is not known here (the record is nobody's until it is learned).
        seed = JobRecord(
            job_id=event.job_id,
            state=JobState.QUEUED,
            operation=UNKNOWN_OPERATION,
            created_at=event.at,
        )
        return apply(seed, event)
    if isinstance(event, StateEvent) and not record.state.terminal and _stale(record, event):
        return record
    return apply(record, event)


def queued_event(job: Job) -> StateEvent:
    """The submitting server's `queued`, naming the tenant for every server's cache. Dated at
    the job's creation, before any worker can have started it: never taken for a hand-back."""
    return StateEvent.of(job, JobState.QUEUED, at=job.created_at)


def _stale(record: JobRecord, event: StateEvent) -> bool:
    old = (record.attempt, _RANK.get(record.state, 2))
    new = (event.attempt, _RANK.get(event.state, 2))
    if new >= old:
        return False
    # Same attempt, `queued` after `running`: a worker handing the job back (drain) says so
    # after it started it; the submitting server's `queued` predates the start.
    handed_back = event.attempt == record.attempt and event.state is JobState.QUEUED
    return not (handed_back and record.started_at is not None and event.at > record.started_at)


class RecordCache:
    """At most `capacity` records, each cut to MAX_RECORD_BYTES, all within MAX_RETAINED_BYTES
    (`retained`); the least recently touched is forgotten first."""

    def __init__(self, capacity: int, retained: RetainedBytes | None = None) -> None:
        self._capacity = capacity
        self._retained = retained if retained is not None else RetainedBytes.from_settings()
        self._records: OrderedDict[str, JobRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, job_id: str) -> JobRecord | None:
        record = self._records.get(job_id)
        if record is not None:
            self._records.move_to_end(job_id)
            self._retained.touch(job_id)
        return record

    def put(self, record: JobRecord) -> None:
        current = self._records.get(record.job_id)
        if current is not None and current.state.terminal and not record.state.terminal:
            return
        self._records[record.job_id] = self._retained.charge(record)
        self._records.move_to_end(record.job_id)
        while len(self._records) > self._capacity or self._retained.over:
            oldest, _ = self._records.popitem(last=False)
            self._retained.discard(oldest)

    def fold(self, event: JobEvent) -> JobRecord | None:
        """Fold an event in; returns the new record (None if the job stays unknown)."""
        record = fold(self._records.get(event.job_id), event)
        if record is not None:
            self.put(record)
        return record

    def count(self, state: JobState) -> int:
        return sum(1 for r in self._records.values() if r.state is state)

    def records(self) -> list[JobRecord]:
        """Every record held, without touching any (a listing is not a use)."""
        return list(self._records.values())


def from_files(
    job_id: str,
    accepted: Job | None,
    completed: CompletedEvent | None,
    failed: FailedEvent | None,
    cancelled: bool,
) -> JobRecord | None:
    """A job's record from its files under MEDIA_ROOT/jobs/<id>/ (markers.py), for a server
    that has no record and no live server to ask. The completed record is the commit, so it
    wins over a cancel that raced it; a job with only its accepted record is `queued` as far
    as the files know (its live events follow on the events exchange). None: no trace."""
    outcome: CompletedEvent | FailedEvent | CancelledEvent | None = completed or failed
    if outcome is None and cancelled:
        outcome = CancelledEvent(job_id=job_id)
    if accepted is not None:
        seed = JobRecord.queued(accepted)
        return seed if outcome is None else apply(seed, outcome)
    if outcome is None:
        return None
    return fold(None, outcome)


def learn(held: JobRecord, learned: JobRecord) -> JobRecord:
    """What a held record lacks, from another one of the same job: its tenant, and the job's
    own fields when the held record was seeded from an outcome alone (a fast worker's outcome
    can reach this server before the submitting server's record does)."""
    update: dict[str, object] = {}
    if held.tenant is None and learned.tenant is not None:
        update["tenant"] = learned.tenant
    if held.operation == UNKNOWN_OPERATION and learned.operation != UNKNOWN_OPERATION:
        update.update(
            operation=learned.operation, priority=learned.priority, created_at=learned.created_at
        )
    return held.model_copy(update=update) if update else held
