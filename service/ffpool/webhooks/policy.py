"""Whether a job's callback can be accepted at submit time, and where a job's deliveries go:
pure functions (docs/webhooks.md)."""

from __future__ import annotations

from yarl import URL

from ffpool.auth.tenants import TenantSettings, TenantsFile
from ffpool.domain.jobs import Job
from ffpool.ffmpeg import url_guard
from ffpool.settings import Settings

NO_SECRET = "no webhook secret is configured for this tenant"  # noqa: S105 - a message


def target(settings: Settings, tenant: TenantSettings, job: Job) -> str | None:
    """The job's callback, else its tenant's, else the pool's WEBHOOK_URL; None: none, or no
    secret to sign with (a job naming a callback was refused at submit in that case)."""
    if not has_secret(settings, tenant):
        return None
    for url in (job.spec.callback, tenant.callback_url):
        if url is not None:
            return str(url)
    return settings.webhook_url


def has_secret(settings: Settings, tenant: TenantSettings) -> bool:
    return tenant.webhook_secret is not None or settings.webhook_secret_file is not None


def enabled(settings: Settings, tenants: TenantsFile) -> bool:
    """Whether any webhook can be signed at all: without a secret nothing is ever sent, and the
    notifier is then the no-op one (no cost per job)."""
    return settings.webhook_secret_file is not None or any(
        t.webhook_secret is not None for t in tenants.tenants.values()
    )


def address_policy(settings: Settings) -> url_guard.AddressPolicy:
    """URL inputs' guard with WEBHOOK_ALLOW_PRIVATE (cloud metadata is refused regardless)."""
    return url_guard.policy(settings.webhook_allow_private)


def url_problem(settings: Settings, url: str) -> str | None:
    """Static checks of a callback URL: scheme, no credentials, no refused literal address.
    A name is checked again on every delivery, on the addresses it resolves to."""
    try:
        parsed = URL(url)
    except ValueError:
        return "the callback is not a URL"
    problem = url_guard.url_problem(parsed, address_policy(settings))
    if problem is None:
        return None
    if problem.endswith("address"):
        return f"callback URL refused: {problem}"
    return problem.replace("URLs", "callback URLs", 1)


def callback_problem(settings: Settings, tenant: TenantSettings, url: str | None) -> str | None:
    """Why a job naming callback `url` cannot be accepted, in words for the client; None when
    it can. A job naming none is always accepted: the tenant's or pool's default is the
    operator's configuration (a default without a secret sends nothing, see `target`)."""
    if url is None:
        return None
    problem = url_problem(settings, url)
    if problem is not None:
        return problem
    return None if has_secret(settings, tenant) else NO_SECRET
