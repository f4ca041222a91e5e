"""Fixtures: use with `pytest_plugins = ["tests.operator_harness.fixtures"]` and import
helpers from tests.operator_harness.helpers (not from here: pytest must import this first)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ffpool_operator.kube import access
from ffpool_operator.kube.client import Kube
from tests.conftest import broker_reachable, require
from tests.operator_harness.cluster import register_resources, running_operator, write_kubeconfig
from tests.operator_harness.helpers import Broker


@pytest.fixture
def kube_api(kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    register_resources(kmock)
    path = write_kubeconfig(str(kmock.url), tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return kmock


@pytest.fixture
async def kube(kube_api: Any) -> AsyncIterator[Kube]:
    client = Kube(access.load())
    yield client
    await client.close()


@pytest.fixture
async def operator(kube_api: Any) -> AsyncIterator[None]:
    """The real operator (all handlers) in its own thread and event loop."""
    async with running_operator():
        yield


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    require(broker_reachable() and broker_reachable(port=15672), "RabbitMQ + management API")
    b = Broker(f"t{uuid.uuid4().hex[:10]}")
    yield b
    await b.cleanup()
