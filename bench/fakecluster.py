"""The Kubernetes side of the autoscaling benchmark, outside pytest: KMock with the test suite's
fixes (tests/kmock_ext.ApiServer) serving the API on 127.0.0.1, and the real operator in its own
thread and loop, from the same tests/operator_harness/cluster.py the operator tests use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock

from ffpool_operator.kube import access
from ffpool_operator.kube.client import Kube
from tests.kmock_ext import ApiServer
from tests.operator_harness.cluster import register_resources, running_operator, write_kubeconfig

OPERATOR_START_SECONDS = 30.0


@contextlib.asynccontextmanager
async def api_server(workdir: Path) -> AsyncIterator[tuple[Any, Kube]]:
    """KMock on an ephemeral 127.0.0.1 port, $KUBECONFIG pointing at it, and a client."""
    async with ApiServer() as api, kmock.Server(api):
        register_resources(api)
        path = write_kubeconfig(str(api.url), workdir / "kubeconfig", token="bench-token")
        os.environ["KUBECONFIG"] = str(path)  # read by access.load() (operator and client)
        kube = Kube(access.load())
        try:
            yield api, kube
        finally:
            await kube.close()


def operator_running() -> contextlib.AbstractAsyncContextManager[None]:
    """The real operator (all handlers) in its own thread and event loop, stopped on exit."""
    return running_operator(OPERATOR_START_SECONDS)
