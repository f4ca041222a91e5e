"""The autoscaling benchmark's figures and their side-by-side table (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GOAL_FIRST_UP_SECONDS = 6.0


@dataclass(frozen=True)
class Result:
    name: str
    first_up: float | None
    """Seconds from the burst to the first replica increase (None: never)."""
    full_up: float | None
    peak: int
    drain: float
    ws_drain: float
    ws_tail: float
    tail_how: str
    end: float
    interrupted: int
    failed: int
    finished: int
    crashed: int
    victim_costs: tuple[int, ...]
    """The pod-deletion-cost of each pod removed by a scale-down (-1000: marked idle)."""
    timeline: tuple[tuple[float, int], ...]

    @property
    def ws_total(self) -> float:
        return self.ws_drain + self.ws_tail

    @classmethod
    def build(
        cls,
        *,
        t0: float,
        drain_at: float,
        end: float,
        replica_log: list[tuple[float, int]],
        **kw: Any,
    ) -> Result:
        """From absolute (monotonic) times: everything becomes seconds after the burst."""
        timeline = tuple((round(t - t0, 2), n) for t, n in replica_log)
        before = [n for t, n in timeline if t <= 0]
        base = before[-1] if before else 0
        after = [(t, n) for t, n in timeline if t > 0]
        peak = max((n for _, n in after), default=base)
        first_up = next((t for t, n in after if n > base), None)
        full_up = next((t for t, n in after if n == peak), None) if peak > base else None
        return cls(
            first_up=first_up,
            full_up=full_up,
            peak=peak,
            drain=drain_at - t0,
            end=end - t0,
            timeline=timeline,
            **kw,
        )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def one_line(r: Result) -> str:
    steps = ", ".join(f"{n}@{t:.1f}s" for t, n in r.timeline)
    return (
        f"[{r.name}] first scale-up {_s(r.first_up)} s, drain {r.drain:.1f} s, "
        f"worker-s {r.ws_total:.0f} (tail {r.tail_how}), interrupted {r.interrupted}; "
        f"replicas: {steps}; scale-down victims' deletion costs: {list(r.victim_costs)}"
    )


ROWS: list[tuple[str, Callable[[Result], str]]] = [
    ("first scale-up after burst (s)", lambda r: _s(r.first_up)),
    ("reached peak replicas (s)", lambda r: _s(r.full_up)),
    ("peak replicas", lambda r: str(r.peak)),
    ("drain: last job done (s)", lambda r: f"{r.drain:.1f}"),
    ("jobs completed / failed", lambda r: f"{r.finished - r.failed} / {r.failed}"),
    ("jobs interrupted by scale-down", lambda r: str(r.interrupted)),
    ("worker-s until drain (measured)", lambda r: f"{r.ws_drain:.0f}"),
    ("worker-s idle tail after drain", lambda r: f"{r.ws_tail:.0f} ({r.tail_how})"),
    ("worker-s total", lambda r: f"{r.ws_total:.0f}"),
    ("back at min replicas (s)", lambda r: f"{r.end:.1f}"),
    ("workers crashed", lambda r: str(r.crashed)),
]


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or a == 0 else f"{b / a:.2f}x"


def table(scenario: Any, results: list[Result]) -> str:
    width = max(18, *(len(r.name) + 2 for r in results))
    head = f"{'':34}" + "".join(f"{r.name:>{width}}" for r in results)
    lines = [f"scenario: {scenario}", head, "-" * len(head)]
    lines += [f"{label:34}" + "".join(f"{fmt(r):>{width}}" for r in results) for label, fmt in ROWS]
    ours, others = results[0], results[1:]
    for other in others:
        lines.append(
            f"{other.name} / ours: first scale-up {_ratio(ours.first_up, other.first_up)}, "
            f"drain {_ratio(ours.drain, other.drain)}, "
            f"worker-s total {_ratio(ours.ws_total, other.ws_total)}, "
            f"worker-s until drain {_ratio(ours.ws_drain, other.ws_drain)}"
        )
    lines.append(_goals(ours, others))
    return "\n".join(lines)


def _goals(ours: Result, others: list[Result]) -> str:
    up = ours.first_up is not None and ours.first_up <= GOAL_FIRST_UP_SECONDS
    fewer = all(ours.ws_total < o.ws_total for o in others)
    marks = {True: "met", False: "NOT met"}
    return (
        f"goals: first scale-up <= {GOAL_FIRST_UP_SECONDS:g} s: {marks[up]}; "
        f"zero interrupted: {marks[ours.interrupted == 0]}; "
        f"fewer worker-s than every KEDA run: {marks[fewer]}"
    )
