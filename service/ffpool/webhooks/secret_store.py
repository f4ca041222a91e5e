"""The signing secrets, read once at start: per tenant (TENANTS_FILE `webhook_secret`), else
the pool's WEBHOOK_SECRET_FILE (docs/webhooks.md). Never logged."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ffpool.auth.tenants import TenantsFile
from ffpool.webhooks.signing import SecretError, secret_key

MAX_SECRET_FILE_BYTES: Final = 4096


class Secrets:
    def __init__(self, tenants: dict[str, str], default: str | None) -> None:
        self._tenants = tenants
        self._default = default

    def for_tenant(self, tenant: str) -> str | None:
        return self._tenants.get(tenant, self._default)

    @classmethod
    def load(cls, tenants: TenantsFile, secret_file: Path | None) -> Secrets:
        """Blocking: reads WEBHOOK_SECRET_FILE; SecretError names what is wrong, not the
        secret."""
        own: dict[str, str] = {}
        for name, tenant in tenants.tenants.items():
            if tenant.webhook_secret is not None:
                own[name] = _checked(tenant.webhook_secret.get_secret_value(), f"tenant {name}")
        return cls(own, None if secret_file is None else _read(secret_file))


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretError(f"cannot read WEBHOOK_SECRET_FILE {path}: {exc.strerror}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretError(f"WEBHOOK_SECRET_FILE {path} is not a webhook secret (too large)")
    try:
        text = data.decode().strip()
    except UnicodeDecodeError:
        raise SecretError(f"WEBHOOK_SECRET_FILE {path} is not UTF-8") from None
    return _checked(text, f"WEBHOOK_SECRET_FILE {path}")


def _checked(secret: str, where: str) -> str:
    try:
        secret_key(secret)
    except SecretError as exc:
        raise SecretError(f"{where}: {exc}") from None
    return secret.strip()
