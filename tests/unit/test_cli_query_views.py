"""What `status`, `jobs`, `dead-letters` and `download` say (cli/query_views.py, pure), and
the exit code of a download of a job that is not completed."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from ffpool.cli.errors import ExitCode
from ffpool.cli.query_cmd import _not_downloadable
from ffpool.cli.query_views import age, size, status_lines
from ffpool.domain.events import (
    CancelledEvent,
    FailedEvent,
    FailureCode,
    JobRecord,
    JobState,
    ProgressEvent,
)

NOW = datetime(2026, 1, 2, tzinfo=UTC)
JOB = "a" * 32


def record(state: JobState, **update: object) -> JobRecord:
    base = JobRecord(job_id=JOB, state=state, operation="transcode", created_at=NOW)
    return base.model_copy(update=update)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (59, "59s"), (60, "1m"), (7200, "2h"), (3 * 86400, "3d")]
)
def test_age(seconds: int, shown: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == shown
    assert age(NOW + timedelta(seconds=5), NOW) == "0s"  # a clock a little ahead


def test_size() -> None:
    assert [size(n) for n in (10, 2048, 5 * 2**20)] == ["10 B", "2.0 KiB", "5.0 MiB"]


def test_status_of_a_running_and_a_failed_job() -> None:
    progress = ProgressEvent(job_id=JOB, percent=42.0, out_time_s=3.5, speed=1.5, eta_s=12)
    running = status_lines(record(JobState.RUNNING, progress=progress), NOW)
    assert any("42% at 3.5s, 1.50x, about 12s left" in line for line in running)
    failure = FailedEvent(job_id=JOB, code=FailureCode.FFMPEG_ERROR, message="[x] broke")
    failed = "\n".join(status_lines(record(JobState.FAILED, failure=failure), NOW))
    assert "ffmpeg_error" in failed
    assert r"\[x] broke" in failed  # the message is escaped, not taken for markup


@pytest.mark.parametrize(
    ("state", "update", "code", "words"),
    [
        (JobState.QUEUED, {}, ExitCode.USAGE, "no outputs yet"),
        (JobState.RUNNING, {}, ExitCode.USAGE, "ffpool watch"),
        (
            JobState.FAILED,
            {"failure": FailedEvent(job_id=JOB, code=FailureCode.TIMEOUT, message="slow")},
            ExitCode.JOB_FAILED,
            "failed (timeout)",
        ),
        (
            JobState.CANCELLED,
            {"cancel": CancelledEvent(job_id=JOB)},
            ExitCode.JOB_FAILED,
            "cancelled",
        ),
    ],
)
def test_download_of_a_job_not_completed(
    state: JobState,
    update: dict[str, object],
    code: ExitCode,
    words: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(command="download")
    assert _not_downloadable(args, record(state, **update)) == code
    err = capsys.readouterr().err
    assert err.startswith("ffpool download: ")
    assert words in err


def test_what_the_server_says_is_shown_without_control_characters() -> None:
    hostile = "x\x1b]0;owned\x07\x1b[2J[red]y"
    failure = FailedEvent(
        job_id=JOB, at=NOW, code=FailureCode.FFMPEG_ERROR, message=hostile, stderr_tail=hostile
    )
    lines = status_lines(
        record(JobState.FAILED, operation=hostile, worker=hostile, failure=failure), NOW
    )
    text = "\n".join(lines)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\\x1b]0;owned\\x07" in text
    assert "\\[red]y" in text  # escaped for rich, not a style


def test_an_outcome_s_words_and_stderr_tail_are_made_safe() -> None:
    from ffpool.cli.progress import outcome_lines

    failure = FailedEvent(
        job_id=JOB,
        at=NOW,
        code=FailureCode.FFMPEG_ERROR,
        message="bad\x1b[2J",
        stderr_tail="line 1\nline 2\x1b]52;c;cGF5bG9hZA==\x07",
    )
    lines = outcome_lines(JOB, failure)
    assert lines[0].endswith("bad\\x1b[2J")
    assert lines[1] == "line 1\nline 2\\x1b]52;c;cGF5bG9hZA==\\x07"
    cancelled = CancelledEvent(job_id=JOB, at=NOW, reason="\x9b6n")
    assert outcome_lines(JOB, cancelled)[0].endswith(": \\x9b6n")
