"""What a worker process knows of its jobs: the runs in progress, and the ids it remembers.

Shared by the worker pool (which runs the jobs) and the control queue (whose cancel
broadcasts stop them), so that neither needs the other.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

from ffpool import logs
from ffpool.backends.rabbitmq.job_run import Run, Stop
from ffpool.domain.events import CompletedEvent

log = logs.get(__name__)
REMEMBERED_IDS = 10_000  # cancelled/completed job ids each worker keeps (bounded)
_V = TypeVar("_V")


def _remember(ids: OrderedDict[str, _V], job_id: str, value: _V) -> None:
    ids[job_id] = value
    ids.move_to_end(job_id)
    while len(ids) > REMEMBERED_IDS:
        ids.popitem(last=False)


class RunLedger:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._completed: OrderedDict[str, CompletedEvent] = OrderedDict()

    def cancel(self, job_id: str) -> None:
        """A cancel broadcast: stop the job if it runs here, skip it if it arrives later."""
        _remember(self._cancelled, job_id, None)
        run = self.runs.get(job_id)
        if run is not None:
            log.info("cancelling running job", job_id=job_id)
            run.request_stop(Stop.CLIENT)

    def cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    def completed(self, job_id: str) -> CompletedEvent | None:
        return self._completed.get(job_id)

    def remember_completed(self, event: CompletedEvent) -> None:
        _remember(self._completed, event.job_id, event)
