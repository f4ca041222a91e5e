"""Runs the KEDA + HPA policy (bench/keda.py) in real time against the benchmark's cluster: at
each KEDA poll and HPA sync it reads the metric, steps the policy and writes the worker
Deployment's replicas, as the HPA does through the scale subresource. It knows nothing about
which worker is busy: the ReplicaSet stand-in then removes the newest pods."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from bench import keda
from ffpool import logs
from ffpool_operator.kube.client import Kube, KubeError

log = logs.get(__name__)


class KedaDriver:
    def __init__(
        self,
        spec: keda.KedaSpec,
        metric: Callable[[], Awaitable[float | None]],
        kube: Kube,
        namespace: str,
        deployment: str,
    ) -> None:
        self.spec = spec
        self.state = keda.KedaState()
        self._metric = metric
        self._kube = kube
        self._namespace = namespace
        self._deployment = deployment
        self.next_poll = 0.0
        self.next_sync = 0.0

    def start_schedule(self, first_poll: float, first_sync: float) -> None:
        self.next_poll, self.next_sync = first_poll, first_sync

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            due = min(self.next_poll, self.next_sync)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
                return
            await self.step()

    async def step(self) -> None:
        is_sync = self.next_sync <= self.next_poll
        now = self.next_sync if is_sync else self.next_poll
        if is_sync:
            self.next_sync += self.spec.sync_s
        else:
            self.next_poll += self.spec.polling_s
        value = await self._metric()
        if value is None:
            return  # a scaler error changes nothing (no fallback configured: KEDA's default)
        before = self.state.replicas
        step = keda.hpa_sync if is_sync else keda.keda_poll
        self.state = step(self.spec, self.state, value, now)
        if self.state.replicas != before:
            body = {"spec": {"replicas": self.state.replicas}}
            try:
                await self._kube.patch("Deployment", self._namespace, self._deployment, body)
            except KubeError as exc:
                log.warning("KEDA stand-in could not scale", error=str(exc))
                self.state = self.state.model_copy(update={"replicas": before})
