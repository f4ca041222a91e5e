"""chunks/plan.py: keyframes parsed from ffprobe's JSON, and cut points planned on them."""

from __future__ import annotations

import json

import pytest

from ffpool.chunks.plan import (
    MAX_KEYFRAMES_JSON_BYTES,
    ChunkPlan,
    Keyframe,
    input_name,
    output_name,
    parse_keyframes,
    plan_chunks,
)


def every(seconds: float, duration: float, fps: int = 25) -> list[Keyframe]:
    """A keyframe every `seconds`, packets counted at `fps`."""
    count = int(duration / seconds) + 1
    return [
        Keyframe(packet=round(i * seconds * fps), time_s=i * seconds)
        for i in range(count)
        if i * seconds < duration
    ]


def starts(plan: ChunkPlan) -> list[float]:
    return [round(cut.start_s, 6) for cut in plan.cuts]


def check_tiles(plan: ChunkPlan) -> None:
    """Cuts follow each other without gaps and cover the duration exactly."""
    assert [cut.index for cut in plan.cuts] == list(range(plan.count))
    assert plan.cuts[0].start_s == 0
    assert plan.cuts[0].packet == 0
    for before, after in zip(plan.cuts, plan.cuts[1:], strict=False):
        assert before.start_s + before.duration_s == pytest.approx(after.start_s)
        assert after.packet > before.packet
    assert sum(cut.duration_s for cut in plan.cuts) == pytest.approx(plan.duration_s)


def test_cuts_about_chunk_seconds_apart_on_keyframes() -> None:
    keys = every(2.0, 60.0)
    plan = plan_chunks(keys, 60.0, 10.0, 256)
    assert starts(plan) == [0, 10, 20, 30, 40, 50]
    assert [cut.packet for cut in plan.cuts] == [0, 250, 500, 750, 1000, 1250]
    check_tiles(plan)


def test_cut_on_the_keyframe_nearest_the_target() -> None:
    keys = every(3.0, 30.0)  # 0, 3, 6, ..., 27
    plan = plan_chunks(keys, 30.0, 7.0, 256)
    # 7 → 6, 13 → 12, 19 → 18, 25 → 24; the tail (6 s) is not tiny
    assert starts(plan) == [0, 6, 12, 18, 24]
    check_tiles(plan)


def test_max_chunks_lengthens_chunks() -> None:
    keys = every(1.0, 100.0)
    plan = plan_chunks(keys, 100.0, 2.0, 4)
    assert plan.count == 4
    assert starts(plan) == [0, 25, 50, 75]
    check_tiles(plan)


def test_never_more_than_max_chunks() -> None:
    keys = every(0.5, 1000.0)
    for most in (1, 2, 3, 7, 256):
        plan = plan_chunks(keys, 1000.0, 2.0, most)
        assert plan.count <= most
        check_tiles(plan)


def test_tiny_tail_is_merged() -> None:
    keys = every(1.0, 21.0)
    plan = plan_chunks(keys, 21.0, 10.0, 256)
    # a cut at 20 would leave a 1 s tail: it joins the chunk before
    assert starts(plan) == [0, 10]
    assert plan.cuts[-1].duration_s == pytest.approx(11.0)
    check_tiles(plan)


def test_single_chunk_when_nothing_to_split() -> None:
    short = plan_chunks(every(1.0, 8.0), 8.0, 10.0, 256)
    assert starts(short) == [0]
    assert short.cuts[0].duration_s == 8.0
    one_keyframe = plan_chunks([Keyframe(packet=0, time_s=0.0)], 100.0, 10.0, 256)
    assert one_keyframe.count == 1
    assert one_keyframe.cuts[0].duration_s == 100.0
    no_keyframes = plan_chunks([], 100.0, 10.0, 256)
    assert no_keyframes.count == 1
    unknown = plan_chunks(every(1.0, 10.0), 0.0, 2.0, 256)
    assert unknown.count == 1
    assert unknown.duration_s == 0


def test_unsorted_and_duplicate_keyframes() -> None:
    keys = every(2.0, 40.0)
    shuffled = [*reversed(keys), *keys[3:7]]
    assert plan_chunks(shuffled, 40.0, 10.0, 256) == plan_chunks(keys, 40.0, 10.0, 256)


def test_keyframes_going_back_in_time_are_no_cut_points() -> None:
    keys = [
        Keyframe(packet=0, time_s=0.0),
        Keyframe(packet=100, time_s=10.0),
        Keyframe(packet=150, time_s=4.0),  # out of order: a discontinuity
        Keyframe(packet=200, time_s=20.0),
    ]
    plan = plan_chunks(keys, 30.0, 10.0, 256)
    assert [cut.packet for cut in plan.cuts] == [0, 100, 200]


def test_times_count_from_the_first_keyframe() -> None:
    keys = [Keyframe(packet=i * 50, time_s=1.4 + i * 2.0) for i in range(15)]
    plan = plan_chunks(keys, 30.0, 10.0, 256)
    assert starts(plan) == [0, 10, 20]
    assert [cut.packet for cut in plan.cuts] == [0, 250, 500]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_chunks([], 10.0, 0.0, 4)
    with pytest.raises(ValueError, match="max_chunks"):
        plan_chunks([], 10.0, 2.0, 0)


def packets_json(packets: list[dict[str, str]]) -> str:
    return json.dumps({"packets": packets})


def test_parse_keyframes_counts_every_packet() -> None:
    text = packets_json(
        [
            {"pts_time": "0.000000", "flags": "K_"},
            {"pts_time": "0.120000", "flags": "__"},
            {"flags": "__"},  # no time: still a packet
            {"pts_time": "N/A", "flags": "K_"},  # a keyframe without a time: no cut point
            {"pts_time": "1.480000", "flags": "K__"},
            {"pts_time": "2.000000", "flags": "_D"},
        ]
    )
    assert parse_keyframes(text) == [
        Keyframe(packet=0, time_s=0.0),
        Keyframe(packet=4, time_s=1.48),
    ]


def test_parse_keyframes_compact_ffprobe_output() -> None:
    text = (
        '{\n    "packets": [\n        { "pts_time": "0.000000", "flags": "K_" },\n'
        '        { "pts_time": "0.040000", "flags": "__" }\n    ]\n}\n'
    )
    assert parse_keyframes(text) == [Keyframe(packet=0, time_s=0.0)]
    assert parse_keyframes("{}") == []


def test_parse_keyframes_refuses_garbage_and_huge_input() -> None:
    with pytest.raises(ValueError, match="not ffprobe"):
        parse_keyframes("[1, 2]")
    with pytest.raises(ValueError, match="not ffprobe"):
        parse_keyframes('{"packets": "many"}')
    with pytest.raises(ValueError, match="too large"):
        parse_keyframes(" " * (MAX_KEYFRAMES_JSON_BYTES + 1))


def test_names() -> None:
    assert input_name(3) == "in-0003.mkv"
    assert output_name(3) == "out-0003.mkv"
    assert output_name(12, 2) == "out-0012-r2.mkv"
    for bad in (-1, 10_000):
        with pytest.raises(ValueError, match="chunk index"):
            input_name(bad)
    with pytest.raises(ValueError, match="rung"):
        output_name(0, -1)


def test_an_open_gop_keyframe_is_no_cut_point() -> None:
    """Leading frames shown before a keyframe (decoded after it) belong to the GOP before:
    a stream copy cut there would lose them."""
    packets = [
        {"pts_time": "0.00", "flags": "K_"},
        {"pts_time": "0.12", "flags": "__"},
        {"pts_time": "0.04", "flags": "__"},
        {"pts_time": "0.08", "flags": "__"},
        # an open GOP: its keyframe at 0.28 is followed by frames shown at 0.20 and 0.24
        {"pts_time": "0.28", "flags": "K_"},
        {"pts_time": "0.20", "flags": "__"},
        {"pts_time": "0.24", "flags": "__"},
        # a closed one
        {"pts_time": "0.32", "flags": "K_"},
        {"pts_time": "0.40", "flags": "__"},
        {"pts_time": "0.36", "flags": "__"},
    ]
    found = parse_keyframes(json.dumps({"packets": packets}))
    assert [(k.packet, k.time_s) for k in found] == [(0, 0.0), (7, 0.32)]
