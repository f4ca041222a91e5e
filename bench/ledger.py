"""What happened to each job of a burst, folded from the events workers publish (no I/O).

A job counts as *interrupted* when a run of it was started and did not finish: it was started
(`running`) more than once, or went back to `queued` after it was running (a SIGTERM hand-back
republishes it with the same attempt number, so the attempt counter alone cannot tell).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ffpool.domain.events import CompletedEvent, FailedEvent, JobEvent, JobState, StateEvent


@dataclass
class JobTrack:
    runs: list[str] = field(default_factory=list)
    """The worker slot of each start."""
    requeued: int = 0
    finished_at: float | None = None
    failed: bool = False


@dataclass
class Ledger:
    expected: set[str]
    jobs: dict[str, JobTrack] = field(default_factory=dict)

    def ingest(self, event: JobEvent, at: float) -> None:
        if event.job_id not in self.expected:
            return  # another run's job on a shared exchange: not ours
        track = self.jobs.setdefault(event.job_id, JobTrack())
        if isinstance(event, StateEvent) and event.state is JobState.RUNNING:
            track.runs.append(event.worker or "?")
        elif isinstance(event, StateEvent) and event.state is JobState.QUEUED and track.runs:
            track.requeued += 1
        elif isinstance(event, CompletedEvent | FailedEvent) and track.finished_at is None:
            track.finished_at = at
            track.failed = isinstance(event, FailedEvent)

    @property
    def finished(self) -> int:
        return sum(1 for t in self.jobs.values() if t.finished_at is not None)

    @property
    def failed(self) -> int:
        return sum(1 for t in self.jobs.values() if t.failed)

    @property
    def done(self) -> bool:
        return self.finished >= len(self.expected)

    @property
    def last_finished(self) -> float | None:
        times = [t.finished_at for t in self.jobs.values() if t.finished_at is not None]
        return max(times) if times else None

    @property
    def interrupted(self) -> list[str]:
        return sorted(job for job, t in self.jobs.items() if len(t.runs) > 1 or t.requeued > 0)
