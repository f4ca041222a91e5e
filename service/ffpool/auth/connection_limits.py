"""Open WebSocket connections per tenant (TENANT_MAX_CONNECTIONS), per server process."""

from __future__ import annotations

from collections import Counter


class ConnectionLimits:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def acquire(self, tenant: str) -> bool:
        """Count one more connection for the tenant, unless it is at its limit."""
        if self.open[tenant] >= self.limit:
            return False
        self.open[tenant] += 1
        return True

    def release(self, tenant: str) -> None:
        self.open[tenant] -= 1
        if self.open[tenant] <= 0:
            del self.open[tenant]
