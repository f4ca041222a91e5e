"""Turns a job's state change into a webhook delivery and hands it on (docs/webhooks.md).

The backends call it where the change happens (through `JobNotifier` of
ffpool/backends/base.py); where the delivery goes next, an in-process queue or the RabbitMQ
webhook queue, is the `sink` it is built with.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from ffpool.auth.tenants import TenantsFile, settings_for
from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, StateEvent
from ffpool.domain.jobs import Job
from ffpool.settings import Settings
from ffpool.webhooks import policy
from ffpool.webhooks.model import WebhookDelivery

Sink = Callable[[WebhookDelivery], Awaitable[None]]
# Live jobs with webhooks remembered for a later event that names only the job (a server's
# cancel of a queued job); the oldest are forgotten first.
REMEMBERED_JOBS: Final = 10_000


class WebhookNotifier:
    def __init__(self, settings: Settings, tenants: TenantsFile, sink: Sink) -> None:
        self._settings = settings
        self._tenants = tenants
        self._sink = sink
        self._defaults = settings.webhook_url is not None or any(
            t.callback_url is not None for t in tenants.tenants.values()
        )
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def wants(self, job: Job) -> bool:
        if job.chunk is not None:  # a chunk job is internal: its parent's webhooks tell
            return False
        return job.spec.callback is not None or self._defaults

    async def notify(
        self, job: Job, event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent
    ) -> None:
        if not self.wants(job):
            return
        url = policy.target(self._settings, settings_for(self._tenants, job.tenant), job)
        if url is None:
            return
        if isinstance(event, StateEvent) and not event.state.terminal:
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
            while len(self._jobs) > REMEMBERED_JOBS:
                self._jobs.popitem(last=False)
        else:
            self._jobs.pop(job.id, None)
        await self._sink(WebhookDelivery.of(job, event, url))

    def known(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)
