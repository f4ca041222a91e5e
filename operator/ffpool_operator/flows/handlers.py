"""kopf handlers, thin: each parses kopf's kwargs into a PoolRef and calls a flow.

Three layers, each in its own modules: these handlers; the flows they call (reconcile.py,
autoscale.py, delete.py, repair.py, topology_watch.py), which say what happened in conditions
and Events (reporting.py); and the I/O the flows do (reconcile_io.py, autoscale_io.py, and the
kube/ and broker/ packages), which calls the pure decisions/ and manifests/.

Run with `kopf run -m ffpool_operator.flows.handlers` (or `ffpool_operator.main.run()`).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ffpool import names
from ffpool_operator.decisions import drift
from ffpool_operator.flows import topology_watch
from ffpool_operator.flows.autoscale import autoscale_once
from ffpool_operator.flows.delete import run_delete
from ffpool_operator.flows.pause import pause
from ffpool_operator.flows.reconcile import run_reconcile
from ffpool_operator.flows.repair import repair_once
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.kube import access
from ffpool_operator.kube.client import Kube
from ffpool_operator.spec.pool import PoolRef

RESOURCE = (names.API_GROUP, names.API_VERSION, names.CRD_PLURAL)


def configure(settings: kopf.OperatorSettings) -> None:
    prefix = names.API_GROUP
    settings.persistence.finalizer = f"{prefix}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO  # scaling decisions are INFO events (kopf.info)
    # Failures and condition changes post their own Events, once each (events.py); kopf's posting
    # of every log line would repeat each retry as a `Logging` event (docs/operator.md, "Events").
    settings.posting.loggers = False
    settings.peering.standalone = True  # one replica, Recreate (docs/operator.md)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    memo.runtime = Runtime(kube=Kube(access.load()))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo.runtime.close()


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    return access.connection_info(access.load())


def _pool(name: str | None, namespace: str | None, uid: str | None) -> PoolRef:
    return PoolRef(name=name or "", namespace=namespace or "", uid=uid or "")


# Registered before the reconcile, so that an update runs it first and the reconcile's status
# already names the jobs a renamed queue holds.
@kopf.on.update(*RESOURCE, field="spec")
async def rename_queue(
    old: Any, new: Any, name: str, namespace: str | None, uid: str, memo: Any, **_: Any
) -> None:
    await topology_watch.on_spec_change(memo.runtime, _pool(name, namespace, uid), old, new)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def reconcile(
    spec: Any,
    status: Any,
    meta: Any,
    name: str,
    namespace: str | None,
    uid: str,
    memo: Any,
    retry: int,
    **_: Any,
) -> None:
    pool = _pool(name, namespace, uid)
    await run_reconcile(memo.runtime, pool, spec, status, meta.get("generation"), retry)


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)
async def autoscale(
    stopped: Any,
    spec: Any,
    status: Any,
    body: Any,
    meta: Any,
    name: str,
    namespace: str | None,
    uid: str,
    memo: Any,
    **_: Any,
) -> None:
    pool = _pool(name, namespace, uid)
    while not stopped:
        interval = await autoscale_once(memo.runtime, pool, spec, status, body)
        await pause(stopped, spec, interval, meta=meta)  # the pause annotations too


# kopf never overlaps two runs of one pool's timer: one repair per pool at a time, however
# many children changed meanwhile (docs/operator.md, "Drift and ownership").
@kopf.timer(*RESOURCE, interval=drift.REPAIR_SECONDS, initial_delay=drift.REPAIR_SECONDS)
async def repair(
    spec: Any,
    status: Any,
    meta: Any,
    name: str,
    namespace: str | None,
    uid: str,
    memo: Any,
    **_: Any,
) -> None:
    pool = _pool(name, namespace, uid)
    await repair_once(memo.runtime, pool, spec, status, meta.get("generation"))


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)
async def topology_drift(
    stopped: Any,
    spec: Any,
    status: Any,
    name: str,
    namespace: str | None,
    uid: str,
    memo: Any,
    **_: Any,
) -> None:
    """Its own daemon, not a step of the autoscaling poll: see topology_watch."""
    pool = _pool(name, namespace, uid)
    while not stopped:
        interval = await topology_watch.drift_once(memo.runtime, pool, spec, status)
        await pause(stopped, spec, interval)


@kopf.on.delete(*RESOURCE)
async def delete(
    spec: Any,
    body: Any,
    name: str,
    namespace: str | None,
    uid: str,
    runtime: Any,
    memo: Any,
    **_: Any,
) -> None:
    pool = _pool(name, namespace, uid)
    await run_delete(memo.runtime, pool, spec, body, runtime.total_seconds())
