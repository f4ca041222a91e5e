"""Status conditions, pure: set one condition, keeping its transition time while the status
does not change (the Kubernetes API conventions)."""

from __future__ import annotations

import datetime

from ffpool_operator.spec.pool import Condition, ConditionStatus

READY = "Ready"
TOPOLOGY_READY = "TopologyReady"
METRICS_AVAILABLE = "MetricsAvailable"
SCALING = "Scaling"


def now_iso(now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(tz=datetime.UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool | None,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    now: str | None = None,
) -> list[Condition]:
    value = {
        True: ConditionStatus.TRUE,
        False: ConditionStatus.FALSE,
        None: ConditionStatus.UNKNOWN,
    }[status]
    old = next((c for c in conditions if c.type == type_), None)
    changed_at = old.last_transition_time if old and old.status == value else now or now_iso()
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message[:1000],
        last_transition_time=changed_at,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]


def dump(conditions: list[Condition]) -> list[dict[str, object]]:
    return [c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in conditions]
