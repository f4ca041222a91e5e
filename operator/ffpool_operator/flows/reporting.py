"""How every flow reports on a pool: its conditions (one list the flows share, runtime.py), an
Event per condition change, and the status patch."""

from __future__ import annotations

import time
from typing import Any

from ffpool_operator.decisions import conditions
from ffpool_operator.flows import reconcile_io
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.kube import events
from ffpool_operator.spec.pool import Condition, PoolRef


def known_conditions(runtime: Runtime, pool: PoolRef, status: Any) -> list[Condition]:
    """The conditions as the flows last wrote them; the object's status before any did."""
    return runtime.adopt_conditions(pool, reconcile_io.parse_status(status))


async def report(
    runtime: Runtime, pool: PoolRef, written: list[Condition], extra: dict[str, Any]
) -> None:
    """Also posts an Event per condition change (events.py): every condition passes here."""
    before = runtime.state(pool).conditions or []
    runtime.state(pool).conditions = written
    events.post(pool, events.changes(before, written), time.monotonic())
    status = {"conditions": conditions.dump(written), **extra}
    await reconcile_io.write_status(runtime.kube, pool, status)


async def report_failure(
    runtime: Runtime,
    pool: PoolRef,
    status: Any,
    generation: int | None,
    reason: str,
    message: str,
) -> None:
    """`Ready` false for `reason`, the other conditions as they were."""
    written = conditions.set_condition(
        known_conditions(runtime, pool, status),
        conditions.READY,
        False,
        reason,
        message,
        generation=generation,
    )
    await report(runtime, pool, written, {})
