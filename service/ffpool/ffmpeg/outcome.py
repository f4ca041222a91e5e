"""How a finished FFmpeg run maps to a job outcome: pure, no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import AnyUrl

from ffpool.domain.events import FailedEvent, FailureCode
from ffpool.ffmpeg import limits
from ffpool.ffmpeg.process import RunResult

USEFUL_TAIL_LINES: Final = 20
USEFUL_TAIL_CHARS: Final = 4096
MEDIA_ROOT_PLACEHOLDER: Final = "$MEDIA_ROOT"

# FFmpeg's messages when the input, not FFmpeg, is the problem (libavformat/libavutil wording).
_INVALID_MEDIA: Final = (
    ("Format not on whitelist", "the input's format is not accepted (a playlist or script?)"),
    ("Protocol not on whitelist", "the input refers to other files or URLs"),
    ("Invalid data found when processing input", "the input is not a readable media file"),
    ("moov atom not found", "the input is truncated or not a readable media file"),
    ("matches no streams", "the input has no stream of the needed kind (video/audio)"),
    ("does not contain any stream", "the input has no stream of the needed kind"),
    ("Could not find codec parameters", "the input's streams cannot be decoded"),
)


class JobFailure(Exception):
    """A job that ends as `failed`, with what the client should see."""

    def __init__(self, code: FailureCode, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stderr_tail = stderr_tail

    def event(self, job_id: str) -> FailedEvent:
        return FailedEvent(
            job_id=job_id, code=self.code, message=self.message, stderr_tail=self.stderr_tail
        )


def useful_tail(stderr_tail: str, media_root: Path) -> str:
    """The last lines (where FFmpeg says what went wrong), without the server's paths."""
    lines = stderr_tail.splitlines()[-USEFUL_TAIL_LINES:]
    text = "\n".join(lines)[-USEFUL_TAIL_CHARS:]
    return text.replace(str(media_root), MEDIA_ROOT_PLACEHOLDER)


def classify(result: RunResult, timeout_s: float, media_root: Path) -> JobFailure | None:
    """None when FFmpeg succeeded: only its exit code says so, never `progress=end`."""
    tail = useful_tail(result.stderr_tail, media_root)
    if result.timed_out:
        return JobFailure(
            FailureCode.TIMEOUT, f"FFmpeg ran longer than the job timeout of {timeout_s:g} s", tail
        )
    if result.exit_code == 0:
        return None
    # A limit, not FFmpeg or the input, stopped the run: the same run would stop again, so it
    # fails for good like any other `failed` (never retried: docs/security.md).
    if (limit := limits.limit_failure(result.exit_code, result.stderr_tail)) is not None:
        return JobFailure(FailureCode.RESOURCE_LIMIT, limit, tail)
    if limits.PIXEL_LIMIT_NEEDLE in result.stderr_tail:
        # A frame the input's probe did not see (a resolution change mid-stream).
        return JobFailure(
            FailureCode.INPUT_REJECTED, "the input has a frame over MAX_INPUT_PIXELS", tail
        )
    if result.exit_code < 0:
        return JobFailure(
            FailureCode.FFMPEG_ERROR, f"FFmpeg was killed by signal {-result.exit_code}", tail
        )
    for needle, message in _INVALID_MEDIA:
        if needle in result.stderr_tail:
            return JobFailure(FailureCode.INVALID_MEDIA, message, tail)
    return JobFailure(
        FailureCode.FFMPEG_ERROR, f"FFmpeg failed (exit code {result.exit_code})", tail
    )


def size_failure(name: str, size: int | None, max_bytes: int) -> JobFailure | None:
    """`-fs` stops writing at the limit and FFmpeg still exits 0: a file at the limit is cut."""
    if size is None or size == 0:
        return JobFailure(
            FailureCode.FFMPEG_ERROR,
            f"FFmpeg wrote no {name} (is the requested time past the end of the input?)",
        )
    if size >= max_bytes:
        return JobFailure(
            FailureCode.OUTPUT_TOO_LARGE, f"{name} reached the output limit of {max_bytes} bytes"
        )
    return None


def output_url(job_id: str, name: str, public_http_url: AnyUrl | None) -> str:
    path = f"/jobs/{job_id}/outputs/{name}"
    if public_http_url is None:
        return path
    return str(public_http_url).rstrip("/") + path
