"""Whether the pool's tokens Secret lets the server pods start (pure). The server pods mount it
as a volume, so without it (or without the key the tokens file is read from) they wait in
ContainerCreating: the pool is not ready, and the reason must say why."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ffpool_operator.spec.security import AuthSpec

HINT = 'create it from `ffpool token create` lines (docs/kubernetes.md, "Secure by default")'


class AuthProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    message: str


def tokens_problem(auth: AuthSpec, secret: dict[str, Any] | None) -> AuthProblem | None:
    """`secret` is the tokens Secret as read (None when absent); None when all is well."""
    name = auth.tokens_secret
    if name is None:
        return None
    if secret is None:
        return AuthProblem(
            reason="TokensSecretMissing",
            message=f"tokens secret {name} not found: server pods wait for it; {HINT}",
        )
    if auth.tokens_key not in (secret.get("data") or {}):
        return AuthProblem(
            reason="TokensKeyMissing",
            message=f"tokens secret {name} has no key {auth.tokens_key!r}: server pods cannot"
            f" read the tokens file; {HINT}",
        )
    return None
