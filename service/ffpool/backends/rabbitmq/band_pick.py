"""Pure decisions of a worker slot over priority bands (band_slots.py): which of the deliveries
a waiting slot received it keeps, and how one it does not keep is given back uncounted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ffpool import names
from ffpool.backends.rabbitmq import attempts
from ffpool.topology import Band

M = TypeVar("M")


def pick(received: Sequence[tuple[int, M]]) -> tuple[M | None, list[tuple[int, M]]]:
    """(the delivery to run, the ones to give back) of `received`, (rank, delivery) pairs in
    arrival order, rank 0 the highest band: the first of the highest band is kept, every other
    is given back, in arrival order."""
    if not received:
        return None, []
    best = min(range(len(received)), key=lambda i: (received[i][0], i))
    return received[best][1], [r for i, r in enumerate(received) if i != best]


def give_back_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headers of a delivery's uncounted copy: its header attempt unchanged and no
    `x-delivery-count` (the broker starts again at 0 on the copy). The count is not folded in:
    it counts returns that never ran, and a delivery given back never started a run; the runs
    that did are in the job's started marker, which the copy's next delivery reads
    (attempts.quorum_attempt)."""
    out = {k: v for k, v in (headers or {}).items() if k != names.HEADER_DELIVERY_COUNT}
    out[names.HEADER_ATTEMPT] = attempts.header_attempt(headers)
    return out


def give_back_priority(priority: int | None, band: Band) -> int:
    """The priority a copy is published with: the delivery's when it lies in the band it came
    from, else the band's lowest, so that the copy goes back to that same band."""
    if priority is not None and band.lowest <= priority <= band.highest:
        return priority
    return band.lowest
