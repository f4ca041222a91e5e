"""Drift repair on the real cluster (docs/operator.md, "Drift and ownership"): a steady pool is
never re-applied for nothing (the real API server defaults and normalises fields KMock does
not), a deleted worker Deployment comes back, an edited image goes back while a label someone
else added stays. The example pool (the `pool` fixture) is shared: each test leaves it Ready."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ffpool import names
from ffpool_operator.decisions import drift
from tests.cluster.controlplane import ControlPlane
from tests.cluster.pool import POOL, POOL_NS, condition, generation, get, wait_ready
from tests.polling import poll_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
SERVER = f"{POOL}-{names.COMPONENT_SERVER}"
WORKER = f"{POOL}-{names.COMPONENT_WORKER}"
SERVER_PDB = f"{POOL}-{names.COMPONENT_SERVER}-pdb"
REPAIR_WAIT = 6 * drift.REPAIR_SECONDS  # a pass, plus kubectl's and the API server's time


def events(plane: ControlPlane, reason: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(plane, "events").get("items") or []
    return [e for e in items if e.get("reason") == reason]


def deployment(plane: ControlPlane, name: str) -> dict[str, Any]:
    return get(plane, "deployment", name)


def image(plane: ControlPlane, name: str) -> str:
    spec = deployment(plane, name).get("spec") or {}
    return str(spec["template"]["spec"]["containers"][0]["image"]) if spec else ""


def budget_generation(plane: ControlPlane) -> int:
    """Bumped by spec changes only (the disruption controller writes its status)."""
    body = get(plane, "poddisruptionbudget", SERVER_PDB)
    return int(body.get("metadata", {}).get("generation") or 0)


def test_a_steady_pool_is_not_repaired(control_plane: ControlPlane, pool: Any) -> None:
    wait_ready(control_plane)
    poll_until(
        lambda: condition(control_plane, drift.WORKLOADS_READY) == "True",
        timeout=REPAIR_WAIT,
        what="WorkloadsReady",
    )
    # The servers' PodDisruptionBudget (on by default) as policy/v1 took it, selecting them.
    budget = get(control_plane, "poddisruptionbudget", SERVER_PDB)
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["maxUnavailable"] == 1
    server_pods = deployment(control_plane, SERVER)["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == server_pods
    assert get(control_plane, "poddisruptionbudget", f"{POOL}-worker-pdb") == {}  # off
    before = {name: generation(control_plane, name) for name in (SERVER, WORKER)}
    budget_before = budget_generation(control_plane)
    # Asserting that nothing happens needs a window: three repair passes must find nothing to
    # apply (a false drift would bump the generation or post DriftRepaired at the first).
    time.sleep(3 * drift.REPAIR_SECONDS)
    assert {name: generation(control_plane, name) for name in (SERVER, WORKER)} == before
    assert budget_generation(control_plane) == budget_before
    assert events(control_plane, "DriftRepaired") == []
    assert events(control_plane, "Recreated") == []


def test_a_deleted_worker_deployment_comes_back(control_plane: ControlPlane, pool: Any) -> None:
    wait_ready(control_plane)
    old_uid = deployment(control_plane, WORKER)["metadata"]["uid"]
    control_plane.kubectl("delete", "deployment", WORKER, "-n", POOL_NS, "--wait=true")
    back = poll_until(
        lambda: (
            deployment(control_plane, WORKER).get("metadata", {}).get("uid") not in (None, old_uid)
        ),
        timeout=REPAIR_WAIT,
        what="worker Deployment recreated",
    )
    assert back
    poll_until(lambda: events(control_plane, "Recreated"), timeout=30, what="Recreated event")
    poll_until(
        lambda: condition(control_plane, drift.WORKLOADS_READY) == "True",
        timeout=REPAIR_WAIT,
        what="WorkloadsReady back",
    )
    wait_ready(control_plane)


@pytest.mark.parametrize("name", [SERVER, WORKER])
def test_an_edited_image_goes_back_and_a_label_stays(
    control_plane: ControlPlane, pool: Any, name: str
) -> None:
    wait_ready(control_plane)
    original = image(control_plane, name)
    ns = ("-n", POOL_NS)
    control_plane.kubectl("label", "deployment", name, "team=video", *ns)
    container = name.rsplit("-", 1)[1]
    control_plane.kubectl("set", "image", f"deployment/{name}", f"{container}=evil:1", *ns)
    poll_until(
        lambda: image(control_plane, name) == original,
        timeout=REPAIR_WAIT,
        what=f"{name} image reverted",
    )
    assert deployment(control_plane, name)["metadata"]["labels"]["team"] == "video"
    repaired = [e for e in events(control_plane, "DriftRepaired") if name in e["message"]]
    assert repaired
    control_plane.kubectl("label", "deployment", name, "team-", *ns)
    wait_ready(control_plane)
