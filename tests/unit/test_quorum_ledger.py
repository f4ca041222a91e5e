"""The cluster fault ledger's checks and recovery figures (tests/integration/quorum_ledger.py)."""

from __future__ import annotations

import pytest

from tests.integration.faults import plan
from tests.integration.quorum_ledger import (
    Kill,
    Line,
    Refusal,
    problems,
    recoveries,
    report,
    stale_views,
)


def _lines(times: list[tuple[float, float]]) -> list[Line]:
    """Accepted and completed jobs, one per (sent_at, completed_at)."""
    out = []
    for n, (p, (sent, done)) in enumerate(zip(plan(1, len(times), 0, 0), times, strict=True)):
        out.append(
            Line(
                p,
                job_id=f"{n:032x}",
                sent_at=sent,
                accepted_at=sent + 0.01,
                completed_at=done,
                outcomes=["completed"],
                server_states=["completed"] * 2,
                outputs_ok=True,
            )
        )
    return out


def test_a_clean_run_has_no_problems() -> None:
    lines = _lines([(0, 1), (1, 2)])
    assert problems(lines, [str(x.job_id) for x in lines], [], set()) == []


def test_twin_runs_lost_outcomes_and_dead_letters_are_problems() -> None:
    lines = _lines([(0, 1), (1, 2), (2, 3)])
    lines[1].outcomes = ["completed", "completed"]
    lines[2].server_states = ["queued", "running"]
    runs = [str(lines[0].job_id), str(lines[1].job_id)]  # the third never ran
    found = problems(lines, runs, [str(lines[0].job_id)], {str(lines[0].job_id)})
    assert len(found) == 5
    assert any("two FFmpeg runs at once" in p for p in found)
    assert any("dead-lettered" in p for p in found)
    assert any("without an FFmpeg run" in p for p in found)
    assert stale_views(lines) == [f"{lines[2].job_id}: servers say ['queued', 'running']"]


def test_a_job_never_accepted_is_not_counted() -> None:
    lines = _lines([(0, 1)])
    lines.append(Line(plan(2, 1, 0, 0)[0]))  # refused, never accepted: no job id
    assert problems(lines, [str(lines[0].job_id)], [], set()) == []


def test_recovery_is_timed_per_kill_from_its_last_refusal() -> None:
    lines = _lines([(9, 10.5), (10.2, 14), (13, 15), (20.5, 22)])
    kills = [Kill("ffp1", 10.0, restart_s=5.0), Kill("ffp2", 20.0)]
    refusals = [Refusal("a", 10.1, "TimeoutError"), Refusal("b", 12.5, "error x")]
    first, second = recoveries(lines, refusals, kills)
    assert first.refused_at == pytest.approx((0.1, 2.5))
    assert first.first_accepted == pytest.approx(0.21)  # sent at 10.2, accepted at 10.21
    assert first.submits_ok == pytest.approx(3.01)  # sent at 13: the first after 12.5
    assert first.next_completed == 0.5
    assert first.new_job_completed == 4.0
    assert (second.refused_at, second.next_completed) == ((), 2.0)
    assert second.submits_ok == pytest.approx(0.51)
    assert "kill -9 ffp1 (None jobs waiting in its queue): refusals at +0.1, +2.5 s;" in report(
        lines, refusals, kills, []
    )


def test_recovery_waits_for_a_submit_sent_after_the_last_refusal() -> None:
    lines = _lines([(9, 10.5)])
    (only,) = recoveries(lines, [Refusal("a", 11, "TimeoutError")], [Kill("ffp1", 10.0)])
    assert (only.first_accepted, only.submits_ok) == (None, None)  # the burst ended first


def test_a_server_still_saying_running_for_a_completed_job_is_a_problem() -> None:
    lines = _lines([(0, 1)])
    lines[0].server_states = ["completed", "running"]
    (found,) = problems(lines, [str(lines[0].job_id)], [], set())
    assert "not every server says completed" in found
