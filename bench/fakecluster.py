"""The Kubernetes side of the autoscaling benchmark, outside pytest: KMock with the test suite's
fixes (tests/kmock_ext.ApiServer) serving the API on 127.0.0.1, and the real operator in its own
thread and loop. Mirrors tests/operator_harness/fixtures.py (`kube_api`, `operator`), whose
bodies are pytest fixtures and cannot be called from a script."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import yaml

from ffpool import names
from ffpool_operator import cluster, main
from ffpool_operator.kube import Kube
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import CRD_RESOURCE

OPERATOR_START_SECONDS = 30.0


def _register(api: Any) -> None:
    with warnings.catch_warnings():  # KMock 0.8 uses importlib.resources.read_binary
        warnings.simplefilter("ignore", DeprecationWarning)
        api.resources.load_bundled()
    api.resources[CRD_RESOURCE] = kmock.ResourceInfo(
        kind=names.CRD_KIND, singular=names.CRD_SINGULAR, namespaced=True,
        shortnames={names.CRD_SHORT_NAME}, subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )  # fmt: skip


def _kubeconfig(url: str, path: Path) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "u", "user": {"token": "bench-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))


@contextlib.asynccontextmanager
async def api_server(workdir: Path) -> AsyncIterator[tuple[Any, Kube]]:
    """KMock on an ephemeral 127.0.0.1 port, $KUBECONFIG pointing at it, and a client."""
    async with ApiServer() as api, kmock.Server(api):
        _register(api)
        path = workdir / "kubeconfig"
        _kubeconfig(str(api.url), path)
        os.environ["KUBECONFIG"] = str(path)  # read by cluster.load() (operator and client)
        kube = Kube(cluster.load())
        try:
            yield api, kube
        finally:
            await kube.close()


@contextlib.asynccontextmanager
async def operator_running() -> AsyncIterator[None]:
    """The real operator (all handlers) in its own thread and event loop, stopped on exit."""
    ready, stop = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main.operator((), stop_flag=stop, ready_flag=ready))
        except BaseException as exc:  # reported after the run, not as a thread warning
            if not stop.is_set():
                failures.append(exc)

    thread = threading.Thread(target=run, name="kopf", daemon=True)
    thread.start()
    try:
        if not await asyncio.to_thread(ready.wait, OPERATOR_START_SECONDS):
            raise RuntimeError(f"operator not ready within {OPERATOR_START_SECONDS} s")
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, OPERATOR_START_SECONDS)
    if failures:
        raise RuntimeError(f"operator failed: {failures[0]!r}")
