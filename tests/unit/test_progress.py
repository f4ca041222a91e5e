"""The -progress parser and the stderr Duration scanner, on output recorded from FFmpeg 5.1."""

from __future__ import annotations

import pytest

from ffpool.ffmpeg.process import StderrTail
from ffpool.ffmpeg.progress import (
    LineSplitter,
    ProgressTracker,
    parse_duration_line,
    parse_out_time_us,
    parse_speed,
)

JOB = "0123456789abcdef0123456789abcdef"


def block(frame: int, out_time_us: str, speed: str, end: bool = False) -> str:
    """One -progress block as FFmpeg 5.1 writes it (keys in its order)."""
    return (
        f"frame={frame}\nfps=0.00\nstream_0_0_q=28.0\nbitrate=N/A\ntotal_size=48\n"
        f"out_time_us={out_time_us}\nout_time_ms={out_time_us}\nout_time=00:00:00.000000\n"
        f"dup_frames=0\ndrop_frames=0\nspeed={speed}\nprogress={'end' if end else 'continue'}\n"
    )


# `ffmpeg -progress pipe:1 -stats_period 0.25 -i 6s.mp4 -c:v libx264 -preset veryslow ...`
RECORDED = (
    block(1, "0", "   0x")
    + block(75, "78", "0.000291x")
    + block(89, "560078", "0.958x")
    + block(108, "1320078", "1.55x")
    + block(125, "2000078", "1.79x")
    + block(141, "2640078", "1.91x")
    + block(150, "5880078", "2.29x", end=True)
).encode()

STDERR = """\
ffmpeg stats and -progress period set to 0.25.
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/fx/v6.mp4':
  Metadata:
    major_brand     : isom
    title           : x
                    : Duration: 99:00:00.00, start: 0
    encoder         : Lavf59.27.100
  Duration: 00:00:06.00, start: 0.000000, bitrate: 725 kb/s
  Stream #0:0[0x1](und): Video: h264 (Constrained Baseline), yuv420p, 320x240, 25 fps
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))
Output #0, mp4, to '/tmp/fx/o6.mp4':
  Duration: 00:01:00.00, start: 0.000000, bitrate: 725 kb/s
"""


def tracker(**kwargs: float | bool | None) -> ProgressTracker:
    t = ProgressTracker(JOB, **kwargs)  # type: ignore[arg-type]
    for line in STDERR.splitlines():
        t.stderr_line(line)
    return t


def test_recorded_run_in_one_chunk() -> None:
    t = tracker()
    assert t.input_duration_s == 6.0
    events = t.feed(RECORDED)
    assert [e.percent for e in events] == [0.0, 0.0, 9.33, 22.0, 33.33, 44.0, 98.0]
    assert [e.out_time_s for e in events][-1] == 5.88
    assert [e.speed for e in events] == [0.0, 0.000291, 0.958, 1.55, 1.79, 1.91, 2.29]
    assert [e.frame for e in events] == [1, 75, 89, 108, 125, 141, 150]
    assert events[0].eta_s is None  # speed 0: no estimate
    assert events[2].eta_s == pytest.approx((6 - 0.560078) / 0.958, abs=0.01)
    assert all(e.job_id == JOB for e in events)
    final = t.completed()
    assert (final.percent, final.out_time_s, final.eta_s) == (100.0, 6.0, 0.0)


@pytest.mark.parametrize("size", [1, 3, 7, 64])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    whole = [e.model_dump(exclude={"at"}) for e in tracker().feed(RECORDED)]
    t = tracker()
    pieces = [RECORDED[i : i + size] for i in range(0, len(RECORDED), size)]
    events = [e.model_dump(exclude={"at"}) for piece in pieces for e in t.feed(piece)]
    assert events == whole


def test_percent_is_clamped_and_monotonic() -> None:
    t = tracker()
    events = t.feed((block(1, "7000000", "1x") + block(2, "3000000", "1x")).encode())
    assert [e.percent for e in events] == [100.0, 100.0]
    assert [e.out_time_s for e in events] == [7.0, 7.0]


def test_unknown_duration_gives_no_percent() -> None:
    t = ProgressTracker(JOB)
    t.stderr_line("Input #0, h264, from 'file:/x.h264':")
    t.stderr_line("  Duration: N/A, bitrate: N/A")
    (event,) = t.feed(block(5, "1000000", "2x").encode())
    assert (event.percent, event.out_time_s, event.speed, event.eta_s) == (None, 1.0, 2.0, None)
    assert t.completed().percent == 100.0


def test_na_values_keep_the_previous_time() -> None:
    t = tracker()
    events = t.feed((block(1, "3000000", "1x") + block(2, "N/A", "N/A")).encode())
    assert [(e.out_time_s, e.percent, e.speed) for e in events] == [
        (3.0, 50.0, 1.0),
        (3.0, 50.0, None),
    ]


def test_trim_expected_duration_is_capped_by_the_input() -> None:
    t = tracker(expected_duration_s=10.0, input_seek_s=2.0)
    assert t.expected_duration_s == 4.0  # 6 s input, from 2 s on
    assert tracker(expected_duration_s=1.0, input_seek_s=2.0).expected_duration_s == 1.0
    assert tracker(expected_duration_s=None, input_seek_s=7.0).expected_duration_s is None
    assert ProgressTracker(JOB, expected_duration_s=3.0).expected_duration_s == 3.0


def test_thumbnail_has_no_percent_until_done() -> None:
    t = tracker(track_percent=False)
    (event,) = t.feed(block(1, "40000", "3x").encode())
    assert event.percent is None
    assert t.completed().percent == 100.0


def test_only_the_first_inputs_duration_counts() -> None:
    t = ProgressTracker(JOB)
    t.stderr_line("  Duration: 00:10:00.00, start: 0.000000")  # before any input: ignored
    assert t.input_duration_s is None
    for line in STDERR.splitlines():
        t.stderr_line(line)
    assert t.input_duration_s == 6.0


@pytest.mark.parametrize(
    ("text", "speed"),
    [
        ("1.5x", 1.5),
        ("   1x", 1.0),
        ("0.000291x", 0.000291),
        ("N/A", None),
        ("", None),
        ("inf", None),
        ("-1x", None),
        ("nanx", None),
    ],
)
def test_parse_speed(text: str, speed: float | None) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("5880078", 5.880078), ("N/A", None), ("-9223372036854775807", 0.0)],
)
def test_parse_out_time_us(text: str, seconds: float | None) -> None:
    assert parse_out_time_us(text) == seconds


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("  Duration: 00:00:06.00, start: 0.000000, bitrate: 725 kb/s", (True, 6.0)),
        ("  Duration: 01:02:03.50, start: 0.000000", (True, 3723.5)),
        ("  Duration: N/A, start: 0.000000, bitrate: N/A", (True, None)),
        ("    title           : Duration: 00:00:01.00", (False, None)),
        ("                    : Duration: 00:00:01.00", (False, None)),
        ("Duration: 00:00:01.00", (False, None)),
    ],
)
def test_parse_duration_line(line: str, parsed: tuple[bool, float | None]) -> None:
    assert parse_duration_line(line) == parsed


def test_line_splitter_handles_crlf_and_partial_lines() -> None:
    s = LineSplitter()
    assert s.feed(b"a=1\r\nb=") == ["a=1"]
    assert s.feed(b"2\rc=3\n") == ["b=2", "c=3"]
    assert s.feed(b"tail") == []
    assert s.flush() == ["tail"]
    assert s.flush() == []


def test_line_splitter_drops_oversized_lines() -> None:
    s = LineSplitter(max_line=8)
    assert s.feed(b"x" * 20) == []
    assert s.feed(b"yy\nok\n") == ["ok"]
    assert s.feed(b"0123456789\nfine\n") == ["fine"]


def test_stderr_tail_is_bounded_in_lines_and_bytes() -> None:
    tail = StderrTail(max_lines=3, max_bytes=100)
    for i in range(10):
        tail.add(f"line {i}")
    assert tail.text() == "line 7\nline 8\nline 9"
    assert tail.text(last=1) == "line 9"
    tail.add("z" * 500)
    assert tail.text() == "z" * 99


def test_heartbeat_repeats_the_last_state_newly_stamped() -> None:
    assert ProgressTracker(JOB).heartbeat().percent is None  # nothing known yet
    t = tracker()
    first = t.heartbeat()
    assert (first.percent, first.out_time_s) == (0.0, 0.0)
    (event,) = t.feed(block(9, "3000000", "1.5x").encode())
    again = t.heartbeat()
    assert again.model_dump(exclude={"at"}) == event.model_dump(exclude={"at"})
    assert again.at >= event.at
