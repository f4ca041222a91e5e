"""Pure decisions of the RabbitMQ worker: attempts, poison, dead-letter reasons, broker limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffpool import names
from ffpool.backends.rabbitmq import attempts, broker_limits
from ffpool.backends.rabbitmq.attempts import Action, Decision, decide
from ffpool.domain.events import FailureCode, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp


def _decide(
    redelivered: bool,
    attempt: int,
    completed: bool = False,
    cancelled: bool = False,
    max_attempts: int = 3,
) -> Decision:
    return decide(
        redelivered=redelivered,
        attempt=attempt,
        max_attempts=max_attempts,
        completed=completed,
        cancelled=cancelled,
    )


@pytest.mark.parametrize(
    ("redelivered", "attempt", "expected"),
    [
        (False, 1, Decision(Action.RUN, 1)),
        (False, 3, Decision(Action.RUN, 3)),  # a hand-back of the last attempt still runs
        (False, 4, Decision(Action.POISON, 4)),
        (True, 1, Decision(Action.RETRY, 2)),  # attempt 1 died: republish as attempt 2
        (True, 2, Decision(Action.RETRY, 3)),
        (True, 3, Decision(Action.POISON, 3)),  # attempt 3 died: no fourth run
    ],
)
def test_attempt_table(redelivered: bool, attempt: int, expected: Decision) -> None:
    assert _decide(redelivered, attempt) == expected


def test_completed_and_cancelled_jobs_are_never_run_again() -> None:
    assert _decide(True, 3, completed=True).action is Action.SKIP_COMPLETED
    assert _decide(False, 1, completed=True).action is Action.SKIP_COMPLETED
    assert _decide(True, 1, cancelled=True).action is Action.SKIP_CANCELLED


@given(st.integers(1, 20), st.booleans(), st.integers(1, 100))
def test_runs_are_bounded_by_max_attempts(
    max_attempts: int, redelivered: bool, attempt: int
) -> None:
    d = _decide(redelivered, attempt, max_attempts=max_attempts)
    if d.action in (Action.RUN, Action.RETRY):
        assert d.attempt <= max_attempts
    assert d.attempt >= attempt


@pytest.mark.parametrize(
    ("headers", "attempt"),
    [
        (None, 1),
        ({}, 1),
        ({names.HEADER_ATTEMPT: 3}, 3),
        ({names.HEADER_ATTEMPT: "x"}, 1),
        ({names.HEADER_ATTEMPT: -5}, 1),
    ],
)
def test_header_attempt(headers: dict[str, object] | None, attempt: int) -> None:
    assert attempts.header_attempt(headers) == attempt


def test_dead_letter_reason_from_ffpool_headers() -> None:
    headers = attempts.failure_headers(FailureCode.INVALID_MEDIA, "moov atom not found" * 100, 2)
    failure = attempts.dead_letter_failure("a" * 32, headers)
    assert failure.code is FailureCode.INVALID_MEDIA
    assert len(failure.message) == attempts.MAX_REASON_CHARS


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (b"expired", FailureCode.EXPIRED),
        ("expired", FailureCode.EXPIRED),
        ("rejected", FailureCode.INTERNAL_ERROR),
        (None, FailureCode.INTERNAL_ERROR),
    ],
)
def test_dead_letter_reason_from_x_death(reason: object, code: FailureCode) -> None:
    headers = {"x-death": [{"reason": reason, "queue": "q", "count": 1}]} if reason else {}
    assert attempts.dead_letter_failure("a" * 32, headers).code is code


def test_dead_letter_record_keeps_the_job() -> None:
    job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), priority=3)
    record = attempts.dead_letter_record(
        job, {"x-death": [{"reason": "expired"}], names.HEADER_ATTEMPT: 2}
    )
    assert (record.state, record.operation, record.priority, record.attempt) == (
        JobState.FAILED,
        "probe",
        3,
        2,
    )


def test_parse_job_refuses_garbage() -> None:
    assert attempts.parse_job(b"{not json") is None
    assert attempts.parse_job(b'{"id": "../../etc"}') is None


@pytest.mark.parametrize(
    ("job_timeout", "consumer_ms", "limit"),
    [
        (600.0, None, 600.0),
        (600.0, 1_800_000, 600.0),
        (3600.0, 1_800_000, 1740.0),
        (3600.0, 30_000, 1.0),
    ],
)
def test_run_limit_stays_below_the_consumer_timeout(
    job_timeout: float, consumer_ms: int | None, limit: float
) -> None:
    assert attempts.run_limit(job_timeout, consumer_ms) == limit


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.8.9", None),
        ("3.8.15", 900_000),
        ("3.10.8", 1_800_000),
        ("4.0.5", 1_800_000),
        (None, 1_800_000),
    ],
)
def test_consumer_timeout_defaults_by_version(version: str | None, expected: int | None) -> None:
    assert broker_limits.default_consumer_timeout_ms(version) == expected


def test_configured_consumer_timeout_wins_and_zero_disables() -> None:
    assert broker_limits.resolve("3.10.8", 7_200_000).consumer_timeout_ms == 7_200_000
    assert broker_limits.resolve("3.10.8", 0).consumer_timeout_ms is None


def test_job_timeout_check() -> None:
    default = broker_limits.resolve("3.10.8", None)
    assert broker_limits.check_job_timeout(1200, default).ok
    verdict = broker_limits.check_job_timeout(3600, default)
    assert not verdict.ok
    assert "consumer_timeout" in verdict.message
    assert broker_limits.check_job_timeout(3600, broker_limits.resolve("3.10.8", 0)).ok


def test_management_url_from_amqp_keeps_credentials_out_of_sight() -> None:
    url = broker_limits.management_url_from_amqp("amqp://u%40x:p%2Fw@rabbit.svc:5672/vh")
    assert url == "http://u%40x:p%2Fw@rabbit.svc:15672/"


@pytest.mark.parametrize(
    ("redelivered", "headers", "keyed", "expected"),
    [
        (False, {names.HEADER_ATTEMPT: 1, names.HEADER_ORIGIN: "ffpool-server:a"}, False, False),
        (True, {names.HEADER_ATTEMPT: 1}, False, True),
        (False, {names.HEADER_ATTEMPT: 1, names.HEADER_ORIGIN: attempts.REPUBLISHED}, False, True),
        (False, {names.HEADER_ATTEMPT: 1, names.HEADER_ORIGIN: b"republished"}, False, True),
        (False, {names.HEADER_ATTEMPT: 2}, False, True),
        (False, None, True, True),
    ],
)
def test_which_deliveries_need_the_marker_check(
    redelivered: bool, headers: dict[str, object] | None, keyed: bool, expected: bool
) -> None:
    assert attempts.maybe_duplicate(redelivered, headers, keyed) is expected
