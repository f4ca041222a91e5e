"""Broker credentials from the pool's Secret, parsed at the boundary (pure)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from ffpool_operator.spec.pool import RabbitMQSpec


class MissingSecret(ValueError):
    """The Secret or one of its keys is missing or undecodable."""


class BrokerCredentials(BaseModel):
    model_config = ConfigDict(frozen=True)

    management_url: str
    username: str
    password: SecretStr
    amqp_url: SecretStr | None = None
    """For the exact-depth probe; without it the management API's (lagging) counts are used."""

    @property
    def amqp_port(self) -> int | None:
        """The broker's port, for the pods' NetworkPolicy; None when unknown."""
        if self.amqp_url is None:
            return None
        try:
            url = urlsplit(self.amqp_url.get_secret_value())
            return url.port or {"amqp": 5672, "amqps": 5671}.get(url.scheme)
        except ValueError:  # a malformed port: the pods will fail on it anyway
            return None

    def cache_key(self) -> tuple[str, str, str]:
        return (self.management_url, self.username, self.password.get_secret_value())


def _decode(data: dict[str, Any], key: str, secret: str) -> str:
    raw = data.get(key)
    if not isinstance(raw, str):
        raise MissingSecret(f"secret {secret} has no key {key!r}")
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise MissingSecret(f"secret {secret} key {key!r} is not valid base64 text") from exc


def from_secret(secret: dict[str, Any] | None, spec: RabbitMQSpec) -> BrokerCredentials:
    if secret is None:
        raise MissingSecret(f"secret {spec.secret_name} not found")
    data = secret.get("data") or {}
    return BrokerCredentials(
        management_url=_decode(data, spec.management_url_key, spec.secret_name),
        username=_decode(data, spec.username_key, spec.secret_name),
        password=SecretStr(_decode(data, spec.password_key, spec.secret_name)),
        amqp_url=SecretStr(_decode(data, spec.amqp_url_key, spec.secret_name))
        if spec.amqp_url_key in data
        else None,
    )
