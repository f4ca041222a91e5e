"""The operator process: `ffpool operator` (wired by the CLI to `main`) or
`kopf run -m ffpool_operator.flows.handlers`.

One replica with a `Recreate` Deployment strategy: kopf peering is switched off (standalone), so
two replicas would both act (docs/operator.md)."""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Sequence

import kopf
import prometheus_client

from ffpool import logs


def _load_handlers() -> None:
    import ffpool_operator.flows.handlers  # noqa: F401 - registers the handlers with kopf


async def operator(
    namespaces: Sequence[str] = (),
    *,
    liveness: str | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run the operator in the current loop until stop_flag is set (tests run it in a thread)."""
    _load_handlers()
    await kopf.operator(
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness,
        standalone=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        settings=kopf.OperatorSettings(),
        memo=kopf.Memo(),
    )


def run(
    namespaces: Sequence[str] = (),
    *,
    liveness: str | None = "http://0.0.0.0:8080/healthz",
    metrics_port: int | None = 9090,
    log_level: str = "INFO",
) -> None:
    """Blocking entry point for `ffpool operator`."""
    logs.configure(log_level)
    if metrics_port:
        prometheus_client.start_http_server(metrics_port)
    asyncio.run(operator(namespaces, liveness=liveness))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ffpool operator", description=__doc__)
    parser.add_argument("-n", "--namespace", action="append", default=[], help="watch only these")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    parser.add_argument("--metrics-port", type=int, default=9090)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    run(
        args.namespace,
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
