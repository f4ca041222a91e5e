"""The pool spec's per-tenant settings file and its webhook defaults. Both hold secrets, so both
reach the pods as read-only Secret volumes, never as env values (docs/kubernetes.md,
"Webhooks and tenants")."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ffpool_operator.spec.camel import Camel
from ffpool_operator.spec.security import SecretKeyRef

# An http(s) URL without white space or commas; the service's SSRF guard checks where it points.
CallbackUrl = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s,]+$")]


class WebhooksSpec(Camel):
    """Pool defaults for webhooks: a job's own callback URL, then its tenant's (tenants file),
    then `url`; the signing secret is the tenant's, else the one in `secretRef`."""

    url: CallbackUrl | None = None
    """Default callback URL (WEBHOOK_URL)."""
    secret_ref: SecretKeyRef | None = None
    """The default signing secret (`whsec_<base64>`), mounted into the servers, which deliver
    the webhooks (WEBHOOK_SECRET_FILE)."""


class TenantsSpec(Camel):
    """The tenants file (TOML: per-tenant buckets, output location, callback URL and webhook
    secret), mounted into servers and workers (TENANTS_FILE)."""

    secret_ref: SecretKeyRef
