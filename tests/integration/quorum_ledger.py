"""The ledger of the quorum-queue fault test on the three-node cluster (no tests here; used by
tests/integration/test_rabbit_quorum_ledger.py): what each client saw of each job, the submits
the service refused, the node kills, and the figures drawn from them (pure).

Times are `time.monotonic()` seconds, all taken in the test's one process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.integration.faults import Planned


@dataclass
class Line:
    """One planned job: its accepted submit (if any) and what its client saw afterwards."""

    planned: Planned
    job_id: str | None = None
    sent_at: float | None = None
    """When the submit that was accepted was sent."""
    accepted_at: float | None = None
    completed_at: float | None = None
    """When its client saw `completed`."""
    outcomes: list[str] = field(default_factory=list)
    server_states: list[str] = field(default_factory=list)
    outputs_ok: bool | None = None


@dataclass(frozen=True)
class Refusal:
    """A submit that was not accepted: an error reply, a dead server or a timeout."""

    key: str
    at: float
    """When the client gave up on it (the reply, or the failure)."""
    reason: str
    server: str = ""
    detail: str = ""


@dataclass
class Kill:
    node: str
    at: float
    depth: int | None = None
    """Jobs waiting in the band's queue just before."""
    restart_s: float | None = None
    """How long the restart took, until the node ran in the cluster again (None: not yet)."""
    new_leader: str | None = None
    elected_s: float | None = None
    """Seconds from the kill until the queue had a new leader (quorum queues)."""


@dataclass(frozen=True)
class Recovery:
    """How the service came back after one kill; seconds after it (None: not seen)."""

    node: str
    depth: int | None
    refused_at: tuple[float, ...]
    """The refusals until the next kill (or the end), seconds after this kill."""
    accepted: int
    """Submits accepted in the window (by the servers whose node was up)."""
    first_accepted: float | None
    """The first accepted submit that was sent after the kill."""
    submits_ok: float | None
    """The first accepted submit sent after the window's last refusal: submits succeed again
    (None: the burst ended first)."""
    next_completed: float | None
    """The first `completed` any client saw after the kill."""
    new_job_completed: float | None
    """The first `completed` of a job submitted after the kill."""
    restart_s: float | None
    new_leader: str | None
    elected_s: float | None


def accepted(lines: Iterable[Line]) -> list[Line]:
    return [line for line in lines if line.job_id is not None]


def recoveries(lines: list[Line], refusals: list[Refusal], kills: list[Kill]) -> list[Recovery]:
    """Per kill, over the window up to the next kill: refusals and recovery times."""
    out = []
    for n, kill in enumerate(kills):
        end = kills[n + 1].at if n + 1 < len(kills) else float("inf")
        refused = sorted(r.at for r in refusals if kill.at <= r.at < end)
        calm_from = max(refused, default=kill.at)
        sent = [(x.sent_at, x.accepted_at) for x in lines if x.sent_at and x.accepted_at]
        done = [x.completed_at for x in lines if x.completed_at is not None]
        new = [
            x.completed_at for x in lines if x.completed_at and x.sent_at and x.sent_at >= kill.at
        ]
        out.append(
            Recovery(
                node=kill.node,
                depth=kill.depth,
                refused_at=tuple(t - kill.at for t in refused),
                accepted=sum(1 for _, t in sent if kill.at <= t < end),
                first_accepted=_after(kill.at, [t for s, t in sent if s >= kill.at]),
                submits_ok=_after(kill.at, [t for s, t in sent if s >= calm_from]),
                next_completed=_after(kill.at, [t for t in done if t >= kill.at]),
                new_job_completed=_after(kill.at, new),
                restart_s=kill.restart_s,
                new_leader=kill.new_leader,
                elected_s=kill.elected_s,
            )
        )
    return out


def _after(t0: float, times: list[float]) -> float | None:
    return min(times) - t0 if times else None


def problems(
    lines: list[Line], runs: list[str], overlaps: list[str], dead_letters: set[str]
) -> list[str]:
    """Everything the ledger disproves for the accepted jobs; empty when all held. Every
    server must say `completed` too (`stale_views`): one that missed the outcome's event while
    it reconnected reads it from the job's files (feed.py)."""
    out: list[str] = []
    ran = Counter(runs)
    for x in accepted(lines):
        if x.outcomes != ["completed"]:
            out.append(f"{x.planned.key} ({x.job_id}): client saw {x.outcomes}, wanted [completed]")
        if not x.server_states or any(s != "completed" for s in x.server_states):
            out.append(f"{x.job_id}: not every server says completed: {x.server_states}")
        if x.outcomes == ["completed"] and not x.outputs_ok:
            out.append(f"{x.job_id}: completed, but its outputs are missing")
        if ran[x.job_id or ""] == 0:
            out.append(f"{x.job_id}: completed without an FFmpeg run")
    out += [f"{job_id}: two FFmpeg runs at once" for job_id in sorted(set(overlaps))]
    out += [f"{job_id}: dead-lettered" for job_id in sorted(dead_letters)]
    return out


def stale_views(lines: list[Line]) -> list[str]:
    """Completed jobs some server still reports otherwise (GET /jobs/ID)."""
    return [
        f"{x.job_id}: servers say {x.server_states}"
        for x in accepted(lines)
        if any(state != "completed" for state in x.server_states)
    ]


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _offsets(times: tuple[float, ...]) -> str:
    return ", ".join(f"+{t:.1f}" for t in times) + " s" if times else "none"


def report(lines: list[Line], refusals: list[Refusal], kills: list[Kill], runs: list[str]) -> str:
    """The figures, one block: printed (pytest -s) and put in the assertion messages."""
    ok = accepted(lines)
    ran = Counter(runs)
    reruns = sum(1 for x in ok if ran[x.job_id or ""] > 1)
    reasons = Counter(f"{r.reason} ({r.server})" for r in refusals)
    out = [
        f"jobs submitted {len(lines)}, accepted {len(ok)}, never accepted {len(lines) - len(ok)}; "
        f"completed once {sum(1 for x in ok if x.outcomes == ['completed'])}; "
        f"FFmpeg runs {len(runs)} ({reruns} jobs ran again after a lost delivery)",
        f"refused submits {len(refusals)}: "
        + (", ".join(f"{n} x {why}" for why, n in reasons.most_common()) or "none"),
        f"server views (GET /jobs/ID on each server) not `completed` at the end: "
        f"{len(stale_views(lines))}",
    ]
    for r in recoveries(lines, refusals, kills):
        elected = f"new leader {r.new_leader} after {_s(r.elected_s)}; " if r.new_leader else ""
        out.append(
            f"kill -9 {r.node} ({r.depth} jobs waiting in its queue): {elected}"
            f"refusals at {_offsets(r.refused_at)}; "
            f"{r.accepted} accepted until the next kill or the end; first submit sent after the "
            f"kill accepted {_s(r.first_accepted)}, after the last refusal "
            f"{_s(r.submits_ok)}; next completed {_s(r.next_completed)}; first job submitted "
            f"after the kill completed {_s(r.new_job_completed)}; restart {_s(r.restart_s)}"
        )
    return "\n".join(out)
