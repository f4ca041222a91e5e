"""Pausing autoscaling by annotation, pure (decisions/pausing.py): parsing the two annotations,
invalid values in words, and what a paused pool does instead of what the queue asks."""

from typing import Any

import pytest

from ffpool import names
from ffpool_operator.decisions import pausing
from ffpool_operator.decisions.scaling import Decision, History
from ffpool_operator.flows.autoscale import pause_events

PAUSED, REPLICAS = names.ANNOTATION_PAUSED, names.ANNOTATION_PAUSED_REPLICAS


@pytest.mark.parametrize(
    ("annotations", "paused", "replicas"),
    [
        (None, False, None),
        ({}, False, None),
        ({"other": "x"}, False, None),
        ({PAUSED: "true"}, True, None),
        ({PAUSED: "True"}, True, None),
        ({PAUSED: "false"}, False, None),
        ({REPLICAS: "3"}, True, 3),  # pauses by itself
        ({REPLICAS: "0"}, True, 0),
        ({PAUSED: "false", REPLICAS: "2"}, True, 2),  # paused-replicas wins
        ({PAUSED: "true", REPLICAS: "1000"}, True, 1000),
    ],
)
def test_parse(annotations: dict[str, str] | None, paused: bool, replicas: int | None) -> None:
    got = pausing.parse(annotations)
    assert (got.paused, got.replicas, got.problems) == (paused, replicas, ())


@pytest.mark.parametrize(
    ("annotations", "paused", "problem"),
    [
        ({PAUSED: "yes"}, False, f'{PAUSED}: "yes" is neither "true" nor "false": ignored'),
        ({PAUSED: ""}, False, "is neither"),
        ({REPLICAS: "-1"}, False, "is not a whole number from 0 to 1000: ignored"),
        ({REPLICAS: "1001"}, False, "from 0 to 1000"),
        ({REPLICAS: "2.5"}, False, "whole number"),
        ({REPLICAS: "٣"}, False, "whole number"),  # a non-ASCII digit
        ({PAUSED: "true", REPLICAS: "many"}, True, "whole number"),  # paused, held where it is
    ],
)
def test_invalid_values_are_ignored_and_said(
    annotations: dict[str, str], paused: bool, problem: str
) -> None:
    got = pausing.parse(annotations)
    assert got.paused is paused
    assert got.replicas is None
    [said] = got.problems
    assert problem in said


def base(desired: int, current: int, **kw: Any) -> Decision:
    return Decision(
        desired=desired,
        current=current,
        reason="queue …",
        history=History(since=0.0),
        metrics_available=True,
        **kw,
    )


def test_paused_holds_where_it_is() -> None:
    d = pausing.paused_decision(pausing.parse({PAUSED: "true"}), base(9, 3), busy=0)
    assert (d.desired, d.changed, d.paused) == (3, False, True)
    assert d.reason == f"paused by annotation {PAUSED} → holding 3 workers"
    assert d.history == History(since=0.0)  # the queue's history goes on


def test_paused_replicas_sets_the_count_up_and_down() -> None:
    up = pausing.paused_decision(pausing.parse({REPLICAS: "5"}), base(0, 2), busy=0)
    assert (up.desired, up.changed) == (5, True)
    down = pausing.paused_decision(pausing.parse({REPLICAS: "1"}), base(6, 6), busy=0)
    assert down.desired == 1


def test_paused_replicas_never_removes_busy_workers() -> None:
    d = pausing.paused_decision(pausing.parse({REPLICAS: "1"}), base(6, 6), busy=4)
    assert d.desired == 4
    assert d.reason.endswith("→ 4 workers (kept: 4 busy)")
    # Once they are idle, the next poll goes down to the number asked for.
    assert pausing.paused_decision(pausing.parse({REPLICAS: "1"}), base(4, 4), busy=0).desired == 1


def test_a_pause_wins_over_the_fallback() -> None:
    fallback = base(4, 1, fallback=True)
    d = pausing.paused_decision(pausing.parse({PAUSED: "true"}), fallback, busy=0)
    assert (d.desired, d.fallback) == (1, False)


def test_events_on_pause_resume_and_invalid_values() -> None:
    paused = pause_events(False, pausing.parse({REPLICAS: "2"}))
    assert [(e.type.value, e.reason) for e in paused] == [("Normal", "AutoscalingPaused")]
    assert "held at 2" in paused[0].message
    assert pause_events(True, pausing.parse({PAUSED: "true"})) == []  # no change, no event
    resumed = pause_events(True, pausing.parse({}))
    assert [e.reason for e in resumed] == ["AutoscalingResumed"]
    invalid = pause_events(False, pausing.parse({PAUSED: "nope"}))
    assert [(e.type.value, e.reason) for e in invalid] == [("Warning", "InvalidPauseAnnotation")]
