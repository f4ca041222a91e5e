"""The broker's consumer timeout, and what it means for long jobs.

RabbitMQ closes a channel whose delivery stays unacked longer than `consumer_timeout` (30 min
by default since 3.8.17) and requeues the delivery: an FFmpeg job longer than that would run
twice. The management API does not expose the setting (it is node configuration), so it is
known from `RABBITMQ_CONSUMER_TIMEOUT_MS` when the operator of the broker sets it, and
otherwise from the broker version's default (read from `/api/overview`). See docs/rabbitmq.md.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ffpool import logs
from ffpool.backends.rabbitmq.attempts import CONSUMER_TIMEOUT_MARGIN_S

log = logs.get(__name__)
MANAGEMENT_PORT = 15672
DEFAULT_TIMEOUT_MS = 30 * 60 * 1000


class TimeoutPolicy(enum.StrEnum):
    CLAMP = "clamp"  # warn, and stop a job before the broker would (it fails with `timeout`)
    REFUSE = "refuse"  # refuse to start workers whose job timeout exceeds the broker's


class BrokerLimitSettings(BaseSettings):
    """RabbitMQ-only knobs, kept beside the backend that reads them."""

    model_config = SettingsConfigDict(env_prefix="RABBITMQ_", env_file=".env", extra="ignore")

    management_url: SecretStr | None = None
    """Defaults to http://USER:PASS@HOST:15672/ of RABBITMQ_URL."""
    consumer_timeout_ms: Annotated[int, Field(ge=0)] | None = None
    """The broker's `consumer_timeout` when it is not the version default; 0 = disabled."""
    consumer_timeout_policy: TimeoutPolicy = TimeoutPolicy.CLAMP


class Overview(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rabbitmq_version: str = ""
    product_version: str = ""


@dataclass(frozen=True)
class BrokerLimits:
    version: str | None
    consumer_timeout_ms: int | None
    source: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def management_url_from_amqp(amqp_url: str) -> str:
    parts = urlsplit(amqp_url)
    user = quote(unquote(parts.username or "guest"), safe="")
    password = quote(unquote(parts.password or "guest"), safe="")
    return f"http://{user}:{password}@{parts.hostname or 'localhost'}:{MANAGEMENT_PORT}/"


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def default_consumer_timeout_ms(version: str | None) -> int | None:
    """The default by version: none before 3.8.15, 15 min in 3.8.15-16, then 30 min."""
    if not version:
        return DEFAULT_TIMEOUT_MS
    parsed = parse_version(version)
    if parsed < (3, 8, 15):
        return None
    if parsed < (3, 8, 17):
        return 15 * 60 * 1000
    return DEFAULT_TIMEOUT_MS


def resolve(version: str | None, configured_ms: int | None) -> BrokerLimits:
    if configured_ms is not None:
        return BrokerLimits(version, configured_ms or None, "RABBITMQ_CONSUMER_TIMEOUT_MS")
    source = f"RabbitMQ {version} default" if version else "assumed default (version unknown)"
    return BrokerLimits(version, default_consumer_timeout_ms(version), source)


def check_job_timeout(job_timeout_s: float, limits: BrokerLimits) -> Verdict:
    limit_ms = limits.consumer_timeout_ms
    if limit_ms is None or job_timeout_s + CONSUMER_TIMEOUT_MARGIN_S <= limit_ms / 1000:
        return Verdict(True, "job timeout fits the broker's consumer timeout")
    return Verdict(
        False,
        f"JOB_TIMEOUT_SECONDS={job_timeout_s:g} exceeds the broker's consumer_timeout "
        f"({limit_ms / 1000:g} s, {limits.source}) minus a {CONSUMER_TIMEOUT_MARGIN_S:g} s margin:"
        " a longer job would have its channel closed and run twice. Raise consumer_timeout in"
        " rabbitmq.conf and set RABBITMQ_CONSUMER_TIMEOUT_MS (docs/rabbitmq.md)",
    )


async def fetch_version(management_url: str, timeout: float) -> str | None:
    """The broker version from `/api/overview`, or None when the API cannot be reached."""
    parts = urlsplit(management_url)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or MANAGEMENT_PORT}"
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(f"{base}/api/overview", headers=headers) as resp,
        ):
            resp.raise_for_status()
            overview = Overview.model_validate(await resp.json())
    except (aiohttp.ClientError, TimeoutError, ValidationError, ValueError) as exc:
        log.warning("RabbitMQ management API unreachable", error=type(exc).__name__)
        return None
    return overview.rabbitmq_version or overview.product_version or None


async def detect(amqp_url: str, job_timeout_s: float, timeout: float) -> BrokerLimits:
    """Detect the broker's limits and log what they mean for this worker's job timeout."""
    conf = BrokerLimitSettings()
    mgmt = conf.management_url.get_secret_value() if conf.management_url else None
    version = await fetch_version(mgmt or management_url_from_amqp(amqp_url), timeout)
    limits = resolve(version, conf.consumer_timeout_ms)
    verdict = check_job_timeout(job_timeout_s, limits)
    if not verdict.ok:
        if conf.consumer_timeout_policy is TimeoutPolicy.REFUSE:
            raise SystemExit(verdict.message)
        log.warning(
            "job timeout above the broker's consumer timeout: jobs are stopped before that "
            "limit and fail as timeout",
            reason=verdict.message,
        )
    log.info(
        "RabbitMQ limits",
        version=limits.version,
        consumer_timeout_ms=limits.consumer_timeout_ms,
        source=limits.source,
    )
    return limits
