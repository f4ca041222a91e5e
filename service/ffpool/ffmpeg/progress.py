"""FFmpeg's `-progress` output and stderr, parsed incrementally: pure, no I/O.

`-progress pipe:1` writes blocks of `key=value` lines ending in `progress=continue|end` every
`-stats_period` (docs/design/ffmpeg.md). The percentage needs the input's duration:
instead of a separate ffprobe run before starting (a process spawn on the hot path) it is read
from the `Duration:` line FFmpeg itself prints to stderr while opening the input.
"""

from __future__ import annotations

import math
import re
from typing import Final

from ffpool.domain.events import ProgressEvent
from ffpool.domain.jobs import utcnow

MAX_LINE_BYTES: Final = 16 * 1024
# Only known keys are kept from a block, so a block's memory is bounded too.
_KEYS: Final = frozenset({"frame", "fps", "out_time_us", "out_time_ms", "speed"})
# "  Duration: 00:00:03.00, start: ..." — exactly two spaces: metadata lines (whose values could
# contain the same words) are indented by four.
_DURATION_RE: Final = re.compile(r"^  Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)")
_INPUT_RE: Final = re.compile(r"^Input #0, ")
_END_OF_INPUTS_RE: Final = re.compile(r"^(Output #\d|Stream mapping:)")


class LineSplitter:
    """Bytes in, complete lines out; a partial line longer than `max_line` is dropped."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._partial = b""
        self._max_line = max_line
        self._skipping = False  # inside an oversized line, up to its end

    def feed(self, chunk: bytes) -> list[str]:
        *lines, partial = re.split(rb"\r\n|\r|\n", self._partial + chunk)
        if self._skipping and lines:
            lines, self._skipping = lines[1:], False
        self._partial = partial
        if len(partial) > self._max_line:
            self._partial, self._skipping = b"", True
        return [line.decode("utf-8", "replace") for line in lines if len(line) <= self._max_line]

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [rest.decode("utf-8", "replace")] if rest else []


def parse_speed(text: str) -> float | None:
    """`1.5x`, `   1x` → 1.5, 1.0; `N/A` or garbage → None."""
    text = text.strip().removesuffix("x")
    try:
        speed = float(text)
    except ValueError:
        return None
    return speed if speed >= 0 and math.isfinite(speed) else None


def parse_out_time_us(text: str) -> float | None:
    """Microseconds (`out_time_us`, also the misnamed `out_time_ms`) → seconds; N/A → None."""
    try:
        micros = int(text.strip())
    except ValueError:
        return None
    return max(micros, 0) / 1_000_000


def parse_duration_line(line: str) -> tuple[bool, float | None]:
    """(is a Duration line, seconds or None for N/A)."""
    match = _DURATION_RE.match(line)
    if match is None:
        return False, None
    hours, minutes, seconds = match.groups()
    if hours is None:
        return True, None
    return True, int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


class ProgressTracker:
    """Feeds on FFmpeg's stdout chunks and stderr lines; yields monotonic ProgressEvents."""

    def __init__(
        self,
        job_id: str,
        *,
        expected_duration_s: float | None = None,
        input_seek_s: float = 0.0,
        track_percent: bool = True,
    ) -> None:
        self.job_id = job_id
        self.input_duration_s: float | None = None
        self._planned = expected_duration_s
        self._seek = input_seek_s
        self._track_percent = track_percent
        self._lines = LineSplitter()
        self._block: dict[str, str] = {}
        self._percent: float | None = None
        self._out_time = 0.0
        self._in_input0 = False
        self._input_done = False
        self.last: ProgressEvent | None = None

    @property
    def expected_duration_s(self) -> float | None:
        """The output's duration: the planned one, capped by what the input has left."""
        if not self._track_percent:
            return None
        rest = None
        if self.input_duration_s is not None:
            rest = self.input_duration_s - self._seek
        candidates = [d for d in (self._planned, rest) if d is not None]
        duration = min(candidates) if candidates else None
        return duration if duration is not None and duration > 0 else None

    def stderr_line(self, line: str) -> None:
        """Pick the first input's `Duration:`; ignore everything after the inputs."""
        if self._input_done:
            return
        if _END_OF_INPUTS_RE.match(line):
            self._input_done = True
        elif _INPUT_RE.match(line):
            self._in_input0 = True
        elif self._in_input0:
            is_duration, seconds = parse_duration_line(line)
            if is_duration:
                self.input_duration_s = seconds
                self._input_done = True

    def feed(self, chunk: bytes) -> list[ProgressEvent]:
        events = []
        for line in self._lines.feed(chunk):
            key, sep, value = line.partition("=")
            if not sep:
                continue
            key = key.strip()
            if key == "progress":
                events.append(self._emit())
            elif key in _KEYS:
                self._block[key] = value.strip()
        return events

    def heartbeat(self) -> ProgressEvent:
        """The last state again, newly stamped: for when FFmpeg is silent for a while."""
        if self.last is not None:
            return self.last.model_copy(update={"at": utcnow()})
        percent = 0.0 if self.expected_duration_s is not None else None
        return self._event(percent=percent, out_time=0.0, speed=None, eta=None)

    def completed(self) -> ProgressEvent:
        """The last event of a successful run: everything is done."""
        out_time = max(self._out_time, self.expected_duration_s or 0.0)
        return self._event(percent=100.0, out_time=out_time, speed=None, eta=0.0)

    def _emit(self) -> ProgressEvent:
        block, self._block = self._block, {}
        raw_time = block.get("out_time_us", block.get("out_time_ms"))
        out_time = parse_out_time_us(raw_time) if raw_time is not None else None
        if out_time is not None:
            self._out_time = max(self._out_time, out_time)
        expected = self.expected_duration_s
        if expected is not None:
            percent = min(100.0, max(0.0, self._out_time / expected * 100))
            self._percent = max(self._percent or 0.0, percent)
        speed = parse_speed(block.get("speed", "N/A"))
        eta = None
        if expected is not None and speed:
            eta = max(0.0, expected - self._out_time) / speed
        return self._event(
            percent=self._percent,
            out_time=self._out_time,
            speed=speed,
            eta=eta,
            frame=_int(block.get("frame")),
            fps=_float(block.get("fps")),
        )

    def _event(
        self,
        *,
        percent: float | None,
        out_time: float,
        speed: float | None,
        eta: float | None,
        frame: int | None = None,
        fps: float | None = None,
    ) -> ProgressEvent:
        self.last = ProgressEvent(
            job_id=self.job_id,
            percent=None if percent is None else round(percent, 2),
            out_time_s=round(out_time, 3),
            speed=speed,
            eta_s=None if eta is None else round(eta, 2),
            frame=frame if frame is not None else (self.last.frame if self.last else None),
            fps=fps,
        )
        return self.last
