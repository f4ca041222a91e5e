"""Sample FFmpegPool specs and identities for operator tests."""

from __future__ import annotations

from typing import Any

from ffpool_operator.spec.pool import PoolRef, PoolSpec

POOL = PoolRef(name="demo", namespace="media", uid="0b7c-uid")


def spec_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": "ghcr.io/example/ffpool:1.0",
        "rabbitmq": {"secretName": "rmq"},
        "storage": {"claimName": "media"},
        "auth": {"tokensSecret": "ffpool-tokens"},
    }
    return {**base, **overrides}


def spec(**overrides: Any) -> PoolSpec:
    return PoolSpec.model_validate(spec_dict(**overrides))
