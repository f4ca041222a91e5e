"""What a broker failure means for the pool (pure): its condition reason, the TopologyReady
status it implies, and how long to wait before the next attempt.

Every such failure leaves the pool unable to take jobs (no topology, or no broker the pods can
use), so `Ready` is False for all of them; all may recover without a spec change (a Secret or
the broker's users fixed, a vhost created, the broker back), so all are retried, with back-off
so that a pool waiting for a person does not hammer the broker."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ffpool_operator.decisions.broker_model import (
    BrokerAuthFailed,
    BrokerBadAnswer,
    BrokerNotFound,
    BrokerRejected,
    BrokerUnavailable,
)
from ffpool_operator.spec.credentials import MissingSecret

RETRY_BASE_SECONDS = 10.0
RETRY_MAX_SECONDS = 300.0

# Most specific first: BrokerBadAnswer is a BrokerUnavailable.
_KINDS: tuple[tuple[type[Exception], str, bool | None], ...] = (
    (MissingSecret, "SecretInvalid", None),
    (BrokerAuthFailed, "BrokerAuthFailed", False),
    (BrokerNotFound, "VhostNotFound", False),
    (BrokerBadAnswer, "UnexpectedAnswer", None),
    (BrokerUnavailable, "BrokerUnavailable", None),
    (BrokerRejected, "BrokerRejected", False),
)


class BrokerProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    message: str
    topology: bool | None
    """TopologyReady: False when the broker answered that it will not (auth, vhost, a rejected
    request), Unknown when it could not be asked or its answer was unusable."""


def classify(exc: Exception) -> BrokerProblem:
    for kind, reason, topology in _KINDS:
        if isinstance(exc, kind):
            return BrokerProblem(reason=reason, message=str(exc), topology=topology)
    return BrokerProblem(
        reason="BrokerError", message=f"{type(exc).__name__}: {exc}", topology=None
    )


def pods_secret_problem(secret: str, key: str, has_amqp_url: bool) -> BrokerProblem | None:
    """The operator itself can work without the AMQP URL (it then reads counts from the
    management API alone), but the server and worker pods read it by `secretKeyRef` and cannot
    start without it: the pool is not ready."""
    if has_amqp_url:
        return None
    message = (
        f"secret {secret} has no key {key!r}: server and worker pods cannot start"
        " (they read the AMQP URL from it)"
    )
    return BrokerProblem(reason="SecretIncomplete", message=message, topology=None)


def retry_delay(retry: int) -> float:
    """Exponential back-off from kopf's retry count (0 on the first failure), capped."""
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * float(2 ** max(0, min(retry, 10))))
