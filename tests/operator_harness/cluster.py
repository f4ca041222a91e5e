"""The Kubernetes side of operator tests and of bench/autoscale.py: KMock's resources and a
kubeconfig pointing at it, and the real operator in its own thread and event loop (kopf's
shutdown would cancel KMock's and pytest's tasks if it shared their loop).

Not kopf.testing.KopfRunner, which runs `kopf run` through click's CliRunner: that swaps
sys.stdout/stderr for the whole process while the operator runs (the test's and the
benchmark's own output would land in the runner's buffer), reconfigures logging for the rest
of the process (root level, a handler on the closed buffer, the `asyncio` logger silenced),
offers no flag for "startup handlers done" (its ready event only means its loop exists), and
its blocking exit would stall KMock, which serves from the caller's loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import yaml

from ffpool import names
from ffpool_operator import main
from tests.operator_harness.helpers import CRD_RESOURCE


def register_resources(api: Any) -> None:
    """Built-in resources plus FFmpegPool, so kopf can discover and watch it."""
    with warnings.catch_warnings():  # KMock 0.8 uses importlib.resources.read_binary
        warnings.simplefilter("ignore", DeprecationWarning)
        api.resources.load_bundled()
    api.resources[CRD_RESOURCE] = kmock.ResourceInfo(
        kind=names.CRD_KIND,
        singular=names.CRD_SINGULAR,
        namespaced=True,
        shortnames={names.CRD_SHORT_NAME},
        subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )


def write_kubeconfig(url: str, path: Path, token: str = "test-token") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def running_operator(start_seconds: float = 20.0) -> AsyncIterator[None]:
    """The real operator (all handlers), stopped on exit; its failures are raised then."""
    ready, stop = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main.operator((), stop_flag=stop, ready_flag=ready))
        except (asyncio.CancelledError, TimeoutError) as exc:
            if not stop.is_set():  # cancellation noise is expected only while stopping
                failures.append(exc)
        except BaseException as exc:  # reported to the caller, not as a thread warning
            failures.append(exc)

    thread = threading.Thread(target=run, name="kopf", daemon=True)
    thread.start()
    try:
        if not await asyncio.to_thread(ready.wait, start_seconds):
            raise RuntimeError(f"operator not ready within {start_seconds} s")
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, start_seconds)
    if failures:
        raise RuntimeError(f"operator failed: {failures!r}")
    if thread.is_alive():
        raise RuntimeError("operator did not stop")
