"""A process's webhooks, assembled: the notifier the backend is given, and (in a process that
serves clients) the dispatcher sending the deliveries (docs/webhooks.md)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ffpool import logs
from ffpool.auth import tenants as tenants_file
from ffpool.backends.base import NO_NOTIFIER, JobNotifier
from ffpool.settings import BackendKind, Settings
from ffpool.webhooks import policy
from ffpool.webhooks.dispatcher import Dispatcher, WebhookMetrics
from ffpool.webhooks.local import LocalQueue
from ffpool.webhooks.notifier import WebhookNotifier
from ffpool.webhooks.rabbit import RabbitQueue
from ffpool.webhooks.secret_store import Secrets
from ffpool.webhooks.sender import Sender
from ffpool.webhooks.signing import SecretError

log = logs.get(__name__)


class WebhooksConfigError(Exception):
    """WEBHOOK_SECRET_FILE, a tenant's secret or a default URL cannot be used (the message
    holds no secret)."""


@dataclass
class Webhooks:
    notifier: JobNotifier
    queue: LocalQueue | RabbitQueue | None = None
    sender: Sender | None = None

    async def start(self) -> None:
        if isinstance(self.queue, RabbitQueue):
            await self.queue.start()

    async def stop(self) -> None:
        if isinstance(self.queue, RabbitQueue):
            await self.queue.stop()
        elif self.queue is not None and self.queue.dispatcher is not None:
            await self.queue.dispatcher.stop()
        if self.sender is not None:
            await self.sender.close()


async def build(
    settings: Settings,
    tenants: tenants_file.TenantsFile,
    *,
    consume: bool,
    metrics: WebhookMetrics | None = None,
) -> Webhooks:
    """No secret configured anywhere: nothing can be signed, so nothing is ever sent, and the
    notifier is the no-op one (a pool without webhooks pays nothing per job). `tenants` is
    the TENANTS_FILE the process loaded at start (one read, shared with its other parts)."""
    if not policy.enabled(settings, tenants):
        return Webhooks(NO_NOTIFIER)
    try:
        secrets = await asyncio.to_thread(Secrets.load, tenants, settings.webhook_secret_file)
    except SecretError as exc:
        raise WebhooksConfigError(str(exc)) from None
    if (problem := _default_url_problem(settings, tenants)) is not None:
        raise WebhooksConfigError(problem)
    queue: LocalQueue | RabbitQueue = (
        RabbitQueue(settings) if settings.backend is BackendKind.RABBITMQ else LocalQueue(metrics)
    )
    sender = Sender(settings, secrets) if consume else None
    if sender is not None:
        queue.dispatcher = Dispatcher(settings, sender, queue.settle, metrics=metrics)
    log.info("webhooks enabled", sending=consume, default_url=settings.webhook_url is not None)
    return Webhooks(WebhookNotifier(settings, tenants, queue.put), queue, sender)


def _default_url_problem(settings: Settings, tenants: tenants_file.TenantsFile) -> str | None:
    """A default callback the guard refuses would give up every job's webhooks: refused at
    start instead (the message names the setting, not the URL, which may hold a token)."""
    defaults = [("WEBHOOK_URL", settings.webhook_url)] + [
        (f"tenant {name} callback_url", None if t.callback_url is None else str(t.callback_url))
        for name, t in tenants.tenants.items()
    ]
    for where, url in defaults:
        if url is not None and (problem := policy.url_problem(settings, url)) is not None:
            return f"{where}: {problem}"
    return None
