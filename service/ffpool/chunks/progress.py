"""A chunked job's progress, folded from its chunks' progress and outcomes: pure, no I/O.

Every chunk reports its own encoded media time; the parent's is their sum over the whole
input's duration. The join after the last chunk is short (a stream copy), so the chunks count
for the first JOIN_SHARE-complement of the bar and the join for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ffpool.domain.events import ProgressEvent

JOIN_SHARE: Final = 0.02


class ChunkProgress:
    def __init__(self, parent_id: str, durations: Mapping[str, float], total_s: float) -> None:
        """`durations`: each chunk job's id and its media duration."""
        self._parent = parent_id
        self._durations = dict(durations)
        self._total = max(total_s, sum(self._durations.values()), 1e-6)
        self._encoded: dict[str, float] = dict.fromkeys(self._durations, 0.0)

    def update(self, event: ProgressEvent) -> bool:
        """A chunk's sample; True when the parent's progress moved."""
        limit = self._durations.get(event.job_id)
        if limit is None:
            return False
        value = min(max(event.out_time_s, 0.0), limit)
        if value <= self._encoded[event.job_id]:
            return False
        self._encoded[event.job_id] = value
        return True

    def done(self, chunk_id: str) -> bool:
        """A chunk finished: all of its media counts."""
        if chunk_id not in self._durations:
            return False
        return self.update(
            ProgressEvent(job_id=chunk_id, out_time_s=self._durations[chunk_id], percent=100.0)
        )

    @property
    def encoded_s(self) -> float:
        return sum(self._encoded.values())

    def event(self, elapsed_s: float) -> ProgressEvent:
        """The parent's progress now, `elapsed_s` after its chunks were queued."""
        share = self.encoded_s / self._total
        speed = self.encoded_s / elapsed_s if elapsed_s > 0 else None
        eta = elapsed_s * (1 - share) / share if share > 0 else None
        return ProgressEvent(
            job_id=self._parent,
            percent=round(100 * share * (1 - JOIN_SHARE), 2),
            out_time_s=round(self.encoded_s, 3),
            speed=round(speed, 3) if speed else None,
            eta_s=round(eta, 1) if eta is not None else None,
        )
