"""The three-node RabbitMQ cluster (tests/rabbit_cluster.py) as a session fixture, used like the
other fixture modules here:

    pytest_plugins = ["tests.integration.rabbit_cluster_fixtures"]

One cluster per session (three nodes are heavy on two cores). A cluster found running (started
by hand with scripts/rabbitmq-cluster.sh) is used and left running; otherwise the fixture starts
a fresh one (stale data from an earlier run removed first) and stops and removes it at the end.
Fails when CI=true and RabbitMQ is not installed; skips on a developer machine without it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.rabbit_cluster import RabbitCluster, default_dir


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    require(RabbitCluster.available(), "rabbitmq-server, rabbitmqctl or curl not found")
    cluster = RabbitCluster(default_dir())
    found_running = cluster.running()
    if not found_running:
        cluster.stop(purge=True)
    try:
        seconds = cluster.start()
        verb = "found running" if found_running else "started"
        print(f"\nrabbit cluster {verb} in {seconds:.1f} s: {', '.join(cluster.amqp_urls())}")
        yield cluster
    finally:
        if not found_running:
            cluster.stop(purge=True)
