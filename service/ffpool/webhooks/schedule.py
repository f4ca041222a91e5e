"""When to try a delivery again, and when a job's delivery waits for an earlier one: pure
(docs/webhooks.md, "Retries" and "Order")."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from ffpool.webhooks.model import TERMINAL_SEQ

# A job's `running` delivery may reach the webhook queue before its `queued` one: the worker
# can be handed the job before the accepting server has the broker's confirm and publishes
# `queued`. Such a `running` waits this long for its `queued` to arrive.
REORDER_GRACE_S: Final = 0.5


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # 2xx
    GONE = "gone"  # 410: the receiver wants no more of this delivery
    RETRY = "retry"  # another status (redirects too), a timeout, a network error
    REFUSED = "refused"  # the URL or its addresses are refused by the SSRF guard: never sent


def verdict(status: int) -> Verdict:
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    return Verdict.RETRY


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off: `first_s`, doubling, capped at `cap_s`, jittered."""

    first_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, failures: int, jitter: float) -> float:
        """The wait after the `failures`-th failed attempt (1, 2, …); `jitter` in [0, 1)
        spreads it over the upper half of the step (receivers coming back are not hit by
        every sender at once)."""
        step = min(self.cap_s, self.first_s * 2.0 ** min(failures - 1, 60))
        return step * (0.5 + jitter / 2)


def retry_delay(
    created_s: float, now_s: float, failures: int, window_s: float, backoff: Backoff, jitter: float
) -> float | None:
    """How long to wait before the next attempt; None when it would start after the
    delivery's window (WEBHOOK_RETRY_SECONDS from its creation): dead-letter it."""
    delay = backoff.delay(failures, jitter)
    if now_s + delay > created_s + window_s:
        return None
    return delay


def hold_s(
    seq: int, last_sent: int | None, received_s: float, now_s: float, grace_s: float
) -> float:
    """How long a job's next delivery (its `sequence`) waits for an earlier one that may still
    be on its way: a `running` (odd) whose attempt's `queued` (seq - 1) was not sent here
    waits until `grace_s` after it was received; anything else goes at once."""
    is_running = seq % 2 == 1 and seq < TERMINAL_SEQ
    if not is_running or (last_sent is not None and last_sent >= seq - 1):
        return 0.0
    return max(0.0, received_s + grace_s - now_s)
