"""Mapping a finished FFmpeg run to a job outcome (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AnyUrl

from ffpool.domain.events import FailureCode
from ffpool.ffmpeg.outcome import classify, output_url, size_failure, useful_tail
from ffpool.ffmpeg.process import RunResult

ROOT = Path("/srv/media")
JOB = "0123456789abcdef0123456789abcdef"


def result(code: int, tail: str = "", timed_out: bool = False) -> RunResult:
    return RunResult(exit_code=code, stderr_tail=tail, timed_out=timed_out, elapsed_s=1.0)


def test_success_only_from_exit_code_zero() -> None:
    assert classify(result(0, "progress=end\nConversion failed!"), 60, ROOT) is None
    failure = classify(result(255, "Exiting normally, received signal 15."), 60, ROOT)
    assert failure is not None
    assert failure.code is FailureCode.FFMPEG_ERROR


def test_timeout_wins_over_the_exit_code() -> None:
    failure = classify(result(-9, timed_out=True), 1.5, ROOT)
    assert failure is not None
    assert (failure.code, failure.message) == (
        FailureCode.TIMEOUT,
        "FFmpeg ran longer than the job timeout of 1.5 s",
    )


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (
            "file:/srv/media/clips/a.mp4: Invalid data found when processing input",
            FailureCode.INVALID_MEDIA,
        ),
        ("[hls @ 0x5] Format not on whitelist 'mov,mp4'", FailureCode.INVALID_MEDIA),
        ("Stream map '0:a:0' matches no streams.", FailureCode.INVALID_MEDIA),
        ("[mov,mp4 @ 0x1] moov atom not found", FailureCode.INVALID_MEDIA),
        ("Error while opening encoder for output stream #0:0", FailureCode.FFMPEG_ERROR),
    ],
)
def test_input_problems_are_invalid_media(line: str, code: FailureCode) -> None:
    failure = classify(result(1, f"Input #0\n{line}"), 60, ROOT)
    assert failure is not None
    assert failure.code is code


def test_killed_by_a_signal() -> None:
    failure = classify(result(-11), 60, ROOT)
    assert failure is not None
    assert failure.message == "FFmpeg was killed by signal 11"


def test_useful_tail_is_the_end_without_server_paths() -> None:
    stderr = "\n".join(f"line {i} /srv/media/jobs/x" for i in range(100))
    tail = useful_tail(stderr, ROOT)
    assert tail.splitlines()[0] == "line 80 $MEDIA_ROOT/jobs/x"
    assert len(tail.splitlines()) == 20
    assert len(useful_tail("x" * 10_000, ROOT)) == 4096


def test_size_failures() -> None:
    assert size_failure("output.mp4", 10, 100) is None
    missing = size_failure("thumbnail.jpg", None, 100)
    assert missing is not None
    assert missing.code is FailureCode.FFMPEG_ERROR
    empty = size_failure("thumbnail.jpg", 0, 100)
    assert empty is not None
    assert empty.code is FailureCode.FFMPEG_ERROR
    cut = size_failure("output.mp4", 100, 100)
    assert cut is not None
    assert cut.code is FailureCode.OUTPUT_TOO_LARGE


def test_output_url() -> None:
    assert output_url(JOB, "a.mp4", None) == f"/jobs/{JOB}/outputs/a.mp4"
    base = AnyUrl("https://cdn.example.com/ffpool")
    assert (
        output_url(JOB, "a.mp4", base) == f"https://cdn.example.com/ffpool/jobs/{JOB}/outputs/a.mp4"
    )
