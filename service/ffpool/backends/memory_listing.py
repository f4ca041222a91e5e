"""What the memory backend lists (backends/memory.py): its dead letters and its jobs, from the
records it holds. Chunk jobs' records are kept apart (memory_subjobs.ChunkBook): never listed."""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque

from ffpool.domain.events import JobRecord, JobState
from ffpool.domain.listing import JobSummary, newest


class MemoryListings:
    """Mixed into MemoryBackend, which fills these two."""

    _records: OrderedDict[str, JobRecord]
    _dead: deque[str]

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        found = (self._records.get(job_id) for job_id in reversed(self._dead))
        mine = (r for r in found if r is not None and tenant in (None, r.tenant))
        return list(itertools.islice(mine, limit))

    async def jobs(
        self, tenant: str | None, limit: int = 100, states: frozenset[JobState] | None = None
    ) -> list[JobSummary]:
        return newest(self._records.values(), tenant, limit, states)
