"""Fixtures: use with `pytest_plugins = ["tests.operator_harness.fixtures"]` and import
helpers from tests.operator_harness.helpers (not from here: pytest must import this first)."""

from __future__ import annotations

import asyncio
import threading
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ffpool import names
from ffpool_operator import cluster, main
from ffpool_operator.kube import Kube
from tests.conftest import broker_reachable, require
from tests.operator_harness.helpers import CRD_RESOURCE, Broker


@pytest.fixture
def kube_api(kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with warnings.catch_warnings():  # KMock 0.8 uses importlib.resources.read_binary
        warnings.simplefilter("ignore", DeprecationWarning)
        kmock.resources.load_bundled()
    kmock.resources[CRD_RESOURCE] = kmock.ResourceInfo(
        kind=names.CRD_KIND, singular=names.CRD_SINGULAR, namespaced=True,
        shortnames={names.CRD_SHORT_NAME}, subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )  # fmt: skip
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "u", "user": {"token": "test-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return kmock


@pytest.fixture
async def kube(kube_api: Any) -> AsyncIterator[Kube]:
    client = Kube(cluster.load())
    yield client
    await client.close()


@pytest.fixture
async def operator(kube_api: Any) -> AsyncIterator[None]:
    """The real operator (all handlers) in its own thread and event loop."""
    ready, stop = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main.operator((), stop_flag=stop, ready_flag=ready))
        except (asyncio.CancelledError, TimeoutError) as exc:
            if not stop.is_set():  # cancellation noise is expected only while stopping
                failures.append(exc)
        except BaseException as exc:  # reported in the test, not as a thread warning
            failures.append(exc)

    thread = threading.Thread(target=run, name="kopf", daemon=True)
    thread.start()
    assert await asyncio.to_thread(ready.wait, 20), "operator did not become ready"
    yield
    stop.set()
    await asyncio.to_thread(thread.join, 20)
    assert not failures, failures
    assert not thread.is_alive(), "operator did not stop"


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    require(broker_reachable() and broker_reachable(port=15672), "RabbitMQ + management API")
    b = Broker(f"t{uuid.uuid4().hex[:10]}")
    yield b
    await b.cleanup()
