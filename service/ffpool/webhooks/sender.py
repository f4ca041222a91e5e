"""One POST of one delivery, signed, through the SSRF guard (docs/webhooks.md).

Every attempt checks the URL again and connects only to addresses the guard allows: the
resolver is the guarded one of URL inputs (`ffpool.ffmpeg.url_guard`), called at every new
connection, with WEBHOOK_ALLOW_PRIVATE in place of URL_ALLOW_PRIVATE. Redirects are not
followed (a redirect is a failed attempt). No secret or signature is ever logged.
"""

from __future__ import annotations

import time
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ffpool import logs
from ffpool.ffmpeg import url_guard
from ffpool.settings import Settings
from ffpool.webhooks import policy
from ffpool.webhooks.model import WebhookDelivery
from ffpool.webhooks.schedule import Verdict, verdict
from ffpool.webhooks.secret_store import Secrets
from ffpool.webhooks.signing import headers as signed_headers

log = logs.get(__name__)
# Of a receiver's answer only this much is read (its status is what counts).
MAX_RESPONSE_BYTES: Final = 4096
USER_AGENT: Final = "ffpool-webhooks"


class Sender:
    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        *,
        address_policy: url_guard.AddressPolicy | None = None,
        upstream: AbstractResolver | None = None,
    ) -> None:
        self._secrets = secrets
        self._policy = address_policy or policy.address_policy(settings)
        self._timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds)
        self._limit = settings.webhook_concurrency
        self._upstream = upstream
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = url_guard.GuardedResolver(self._upstream or DefaultResolver(), self._policy)
            connector = aiohttp.TCPConnector(
                resolver=resolver, use_dns_cache=False, limit=self._limit
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, delivery: WebhookDelivery) -> Verdict:
        url = URL(delivery.url)
        where = url_guard.masked(url)
        problem = url_guard.url_problem(url, self._policy)
        if problem is not None:
            log.warning("webhook URL refused", job_id=delivery.job_id, url=where, reason=problem)
            return Verdict.REFUSED
        secret = self._secrets.for_tenant(delivery.tenant)
        if secret is None:
            log.warning("no webhook secret for the tenant", job_id=delivery.job_id)
            return Verdict.RETRY
        body = delivery.body()
        sent_headers = {
            **signed_headers(secret, delivery.id, int(time.time()), body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            return await self._post(url, body, sent_headers, delivery)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, url_guard.AddressRefused):
                log.warning(
                    "webhook URL refused",
                    job_id=delivery.job_id,
                    url=where,
                    reason=str(exc.os_error),
                )
                return Verdict.REFUSED
            reason = type(exc).__name__
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = type(exc).__name__
        log.info("webhook attempt failed", job_id=delivery.job_id, url=where, error=reason)
        return Verdict.RETRY

    async def _post(
        self, url: URL, body: bytes, sent_headers: dict[str, str], delivery: WebhookDelivery
    ) -> Verdict:
        async with self._open().post(
            url, data=body, headers=sent_headers, allow_redirects=False
        ) as response:
            await response.content.read(MAX_RESPONSE_BYTES)
            result = verdict(response.status)
        if result is not Verdict.DELIVERED:
            log.info(
                "webhook attempt answered",
                job_id=delivery.job_id,
                webhook_id=delivery.id,
                url=url_guard.masked(url),
                status=response.status,
            )
        return result
