"""The byte budget of retained job records, shared by both record stores (no I/O).

Both the memory backend's records and each RabbitMQ server's RecordCache charge every record
here at its bounded size (domain/bounds.py), so MAX_RETAINED_BYTES holds however many records
there are; the least recently used are the ones to forget first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from ffpool.domain import bounds
from ffpool.domain.events import JobRecord
from ffpool.settings import Settings


class RetainedBytes:
    """Serialized sizes of retained records by job id, least recently used first."""

    def __init__(self, max_bytes: int, max_record_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_record_bytes = max_record_bytes
        self.total = 0
        self._sizes: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RetainedBytes:
        """MAX_RETAINED_BYTES and MAX_RECORD_BYTES of `settings` (or their defaults)."""
        if settings is None:
            fields = Settings.model_fields
            return cls(fields["max_retained_bytes"].default, fields["max_record_bytes"].default)
        return cls(settings.max_retained_bytes, settings.max_record_bytes)

    def __len__(self) -> int:
        return len(self._sizes)

    def charge(self, record: JobRecord) -> JobRecord:
        """Count `record` (cut to MAX_RECORD_BYTES first) as most recently used; returns what
        to keep. Replaces the charge of an earlier version of the same record."""
        bounded, size = bounds.bound_record(record, self.max_record_bytes)
        self.total += size - self._sizes.get(record.job_id, 0)
        self._sizes[record.job_id] = size
        self._sizes.move_to_end(record.job_id)
        return bounded

    def touch(self, job_id: str) -> None:
        if job_id in self._sizes:
            self._sizes.move_to_end(job_id)

    def discard(self, job_id: str) -> None:
        self.total -= self._sizes.pop(job_id, 0)

    @property
    def over(self) -> bool:
        return self.total > self.max_bytes

    def least_recent(self) -> Iterator[str]:
        """Job ids, least recently used first (a snapshot: safe to discard while iterating)."""
        return iter(list(self._sizes))
