"""Whether a RabbitMQ policy other than the pool's changes what its queues do (pure).

RabbitMQ applies one user policy per queue (the highest priority wins, so a site policy with
the pool policy's priority or more replaces it) plus at most one operator policy, and shows the
merge as the queue's `effective_policy_definition`. How that combines with the queue's own
arguments is fixed per key (docs/rabbitmq.md, "Policies that override the pool"): for the
limits the lower value wins, for overflow and dead-lettering the queue's argument wins. So a
key overrides the pool when it is a limit below the pool's (or one the pool does not set), or
a behaviour key the queue has no argument for."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.spec.pool import Condition

# https://www.rabbitmq.com/docs/maxlength ("the minimum of the two values"), /docs/ttl (same).
# Quorum queues: `delivery-limit` is the minimum too (checked on the broker: a policy's lower
# limit dead-letters sooner), `dead-letter-strategy` the queue's argument.
LOWER_WINS = frozenset(
    {"message-ttl", "max-length", "max-length-bytes", "expires", "delivery-limit"}
)
ARGUMENT_WINS = frozenset(
    {"overflow", "dead-letter-exchange", "dead-letter-routing-key", "dead-letter-strategy"}
)
REASON = "PolicyOverrides"


class Override(BaseModel):
    model_config = ConfigDict(frozen=True)

    queue: str
    policies: tuple[str, ...]
    fields: dict[str, tuple[Any, Any]]
    """Policy key → (the pool's value or None, the value in force)."""

    def describe(self) -> str:
        changes = ", ".join(
            f"{key} {ours if ours is not None else 'unset'} → {theirs}"
            for key, (ours, theirs) in sorted(self.fields.items())
        )
        return f"queue {self.queue}: policy {' and '.join(self.policies)} sets {changes}"


def _overrides(key: str, value: Any, arguments: dict[str, Any]) -> bool:
    ours = arguments.get(f"x-{key}")
    if key in LOWER_WINS:
        return ours is None or (isinstance(value, int) and isinstance(ours, int) and value < ours)
    return key in ARGUMENT_WINS and ours is None


def find(info: QueueInfo, own_policy: str) -> Override | None:
    """The override on one queue as RabbitMQ reports it, None when only the pool's policy (or
    none) applies or nothing the pool relies on changes."""
    foreign = tuple(p for p in (info.policy, info.operator_policy) if p and p != own_policy)
    if not foreign:
        return None
    fields = {
        key: (info.arguments.get(f"x-{key}"), value)
        for key, value in info.effective_policy_definition.items()
        if _overrides(key, value, info.arguments)
    }
    return Override(queue=info.name, policies=foreign, fields=fields) if fields else None


HINT = (
    ". Jobs still flow, but not with the spec's limits: remove that policy or narrow its pattern"
    " so it no longer matches the pool's queues (docs/rabbitmq.md)."
)


def condition(
    conds: list[Condition], overrides: list[Override], generation: int | None
) -> list[Condition]:
    """`TopologyReady=False`, reason `PolicyOverrides`, over a topology otherwise declared:
    the condition must not say True while the queue does not keep the spec's TTL or length.
    `Ready` is left alone (the pool still takes jobs)."""
    if not overrides:
        return conds
    text = "; ".join(o.describe() for o in overrides) + HINT
    return conditions.set_condition(
        conds, conditions.TOPOLOGY_READY, False, REASON, text, generation=generation
    )
