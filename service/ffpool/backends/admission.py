"""Per-tenant admission: the limits a tenant's submissions are held to, and the per-process
token buckets of the submit rate. Pure decisions over pydantic models; `Admission` only keeps
the buckets and reads the clock.

The rate is per server process (per replica): replicas share no state on the hot path, so a
tenant spread over N replicas by the load balancer may submit up to N times the rate. The
active-job limit is pool-wide (each backend counts from what every server sees).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from ffpool.domain.events import JobRecord
from ffpool.settings import Settings

# The bucket holds this many seconds' worth of submits: a client resubmitting a small batch
# after a reconnect is not refused, a steady flood is.
BURST_SECONDS = 2.0
# Tenants come from the tokens file, so there are few; the bound only keeps memory finite
# should names ever come from elsewhere. Full buckets are the ones dropped (nothing is lost).
MAX_BUCKETS = 10_000


class TenantLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_active_jobs: int
    submits_per_second: float
    burst: float

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantLimits:
        rate = settings.tenant_submits_per_second
        return cls(
            max_active_jobs=settings.tenant_max_active_jobs,
            submits_per_second=rate,
            burst=max(1.0, rate * BURST_SECONDS),
        )


class Bucket(BaseModel):
    model_config = ConfigDict(frozen=True)

    tokens: float
    at: float


def refill(bucket: Bucket | None, limits: TenantLimits, now: float) -> Bucket:
    if bucket is None:
        return Bucket(tokens=limits.burst, at=now)
    elapsed = max(0.0, now - bucket.at)
    tokens = min(limits.burst, bucket.tokens + elapsed * limits.submits_per_second)
    return Bucket(tokens=tokens, at=now)


def take(bucket: Bucket | None, limits: TenantLimits, now: float) -> tuple[Bucket, float]:
    """The bucket after one submit, and 0.0 if it was admitted, else the seconds until it
    would be (the bucket is then left as it was, refilled)."""
    full = refill(bucket, limits, now)
    if full.tokens >= 1.0:
        return full.model_copy(update={"tokens": full.tokens - 1.0}), 0.0
    return full, (1.0 - full.tokens) / limits.submits_per_second


class Admission:
    """One process's submit-rate buckets, one per tenant."""

    def __init__(self, limits: TenantLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def take(self, tenant: str) -> float:
        """0.0: admitted (a token spent); else how many seconds until a submit would be."""
        now = self._clock()
        bucket, wait_s = take(self._buckets.get(tenant), self.limits, now)
        self._buckets[tenant] = bucket
        if len(self._buckets) > MAX_BUCKETS:
            self._forget_full(now)
        return wait_s

    def _forget_full(self, now: float) -> None:
        for tenant, bucket in list(self._buckets.items()):
            if refill(bucket, self.limits, now).tokens >= self.limits.burst:
                del self._buckets[tenant]


class ActiveIndex:
    """Which jobs of each tenant are queued or running, as this server saw their records:
    O(1) per change, so counting does not scan every retained record on each submit. An id
    whose record was forgotten unseen (an evicted cache entry) stays until `prune`."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, set[str]] = {}

    def track(self, record: JobRecord) -> None:
        if record.tenant is None:
            return
        ids = self._by_tenant.setdefault(record.tenant, set())
        if record.state.terminal:
            ids.discard(record.job_id)
        else:
            ids.add(record.job_id)
        if not ids:
            del self._by_tenant[record.tenant]

    def count(self, tenant: str) -> int:
        return len(self._by_tenant.get(tenant, ()))

    def ids(self, tenant: str) -> list[str]:
        return list(self._by_tenant.get(tenant, ()))

    def prune(self, tenant: str, current: Callable[[str], JobRecord | None]) -> None:
        """Drop the tenant's ids whose record is gone or finished (`current` reads it)."""
        for job_id in self.ids(tenant):
            record = current(job_id)
            if record is None or record.state.terminal or record.tenant != tenant:
                self._by_tenant[tenant].discard(job_id)
        if not self._by_tenant.get(tenant, True):
            del self._by_tenant[tenant]
