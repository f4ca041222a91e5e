"""Periodic clean-up of what clients leave behind on disk: uploads past their retention; and
the recount of every tenant's disk usage that corrects the quota tally (quota.py).

Job directories are removed with their job records (the backend's retention); uploads are not
tied to a job (one upload may feed many jobs), so they expire by age alone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from ffpool import logs
from ffpool.settings import Settings
from ffpool.storage.media import Storage

log = logs.get(__name__)

# A sweep is one directory scan: every second is cheap for tests' short retentions, and five
# minutes keeps the overshoot small next to the default one-day retention.
MIN_PERIOD_SECONDS: Final = 1.0
MAX_PERIOD_SECONDS: Final = 300.0


def sweep_period(retention_s: float) -> float:
    """How often to sweep: a quarter of the retention, clamped to [1 s, 300 s]."""
    return min(max(retention_s / 4, MIN_PERIOD_SECONDS), MAX_PERIOD_SECONDS)


async def sweep_uploads_once(storage: Storage, settings: Settings) -> list[str]:
    """Remove expired uploads now, then count what every tenant keeps; a failing scan is
    logged and retried on the next sweep."""
    retention = settings.upload_retention_seconds
    try:
        removed = await asyncio.to_thread(storage.remove_stale_uploads, retention, time.time())
        await asyncio.to_thread(storage.recount_usage)
    except OSError as exc:
        log.warning("upload sweep failed", error=type(exc).__name__)
        return []
    if removed:
        log.info("expired uploads removed", count=len(removed), retention_s=retention)
    return removed


async def sweep_uploads_forever(storage: Storage, settings: Settings) -> None:
    """Sweep uploads every `sweep_period(UPLOAD_RETENTION_SECONDS)` until cancelled."""
    period = sweep_period(settings.upload_retention_seconds)
    while True:
        await sweep_uploads_once(storage, settings)
        await asyncio.sleep(period)
