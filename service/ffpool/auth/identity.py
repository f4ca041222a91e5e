"""Who is calling: the identity every request and connection carries once authenticated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ffpool.domain.jobs import ANONYMOUS_TENANT, TenantName


class Caller(BaseModel):
    """An authenticated caller. `anonymous` callers (no token, anonymous access on) all share
    the anonymous tenant; a token never maps to it (the tokens file refuses that name)."""

    model_config = ConfigDict(frozen=True)

    tenant: TenantName
    anonymous: bool = False


ANONYMOUS = Caller(tenant=ANONYMOUS_TENANT, anonymous=True)


def caller_for(tenant: str) -> Caller:
    return ANONYMOUS if tenant == ANONYMOUS_TENANT else Caller(tenant=tenant)
