"""Fixtures for the HTTP side's tests: use with
`pytest_plugins = ["tests.integration.http_fixtures"]`; helpers are in http_harness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ffpool.metrics import Metrics
from ffpool.server.ops import make_ops_app
from ffpool.storage.media import LocalStorage
from tests.integration.http_harness import Client, FakeBackend, Ready, app_for


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def ready() -> Ready:
    return Ready()


@pytest.fixture
async def client(
    backend: FakeBackend, storage: LocalStorage, ready: Ready
) -> AsyncIterator[Client]:
    app = app_for(backend, storage, ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def ops_client(backend: FakeBackend, metrics: Metrics) -> AsyncIterator[Client]:
    """The ops port's app (/metrics, every tenant's /dead-letters)."""
    async with TestClient(TestServer(make_ops_app(backend, metrics), host="127.0.0.1")) as client:
        yield client
