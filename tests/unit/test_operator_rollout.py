"""Ordered upgrades (operator/ffpool_operator/decisions/rollout.py): the workers keep their
image until the servers' rollout is complete."""

from __future__ import annotations

from typing import Any

from ffpool_operator.decisions.rollout import DeploymentView, Phase, plan, reported

OLD, NEW = "registry/ffpool:1", "registry/ffpool:2"


def deployment(
    image: str, *, generation: int = 2, replicas: int = 2, status: dict[str, Any] | None = None
) -> DeploymentView:
    live: dict[str, Any] = {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}},
    }
    if status is not None:
        live["status"] = status
    return DeploymentView.parse(live)


def done(generation: int = 2, replicas: int = 2) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }


def test_complete_needs_every_replica_updated_available_and_no_old_pod() -> None:
    assert deployment(NEW, status=done()).complete()
    assert not deployment(NEW).complete()  # no status yet: the controller has not looked
    assert not deployment(NEW, generation=3, status=done(2)).complete()  # template not seen
    assert not deployment(NEW, status=done() | {"updatedReplicas": 1}).complete()
    assert not deployment(NEW, status=done() | {"availableReplicas": 1}).complete()
    assert not deployment(NEW, status=done() | {"replicas": 3}).complete()  # an old pod left
    assert deployment(NEW, replicas=0, status={"observedGeneration": 2}).complete()


def test_workers_keep_their_image_while_the_servers_roll_out() -> None:
    rolling = deployment(NEW, status=done(1) | {"updatedReplicas": 0})
    step = plan(NEW, rolling, deployment(OLD, status=done()))
    assert step.worker_image == OLD
    assert step.phase is Phase.SERVERS_ROLLING_OUT
    assert plan(NEW, None, deployment(OLD)).worker_image == OLD


def test_workers_get_the_image_once_the_servers_are_done() -> None:
    step = plan(NEW, deployment(NEW, status=done()), deployment(OLD, status=done()))
    assert step.worker_image == NEW
    assert step.phase is Phase.WORKERS_ROLLING_OUT


def test_the_workers_rollout_ends_when_no_old_pod_is_left() -> None:
    servers = deployment(NEW, status=done())
    old_left = deployment(NEW, status=done() | {"replicas": 3, "updatedReplicas": 2})
    assert plan(NEW, servers, old_left, upgrading=True).phase is Phase.WORKERS_ROLLING_OUT
    scaling_up = deployment(NEW, replicas=4, status=done() | {"replicas": 4, "updatedReplicas": 4})
    assert plan(NEW, servers, scaling_up, upgrading=True).phase is Phase.ROLLED_OUT
    done_now = deployment(NEW, status=done())
    assert plan(NEW, servers, done_now, upgrading=True).phase is Phase.ROLLED_OUT


def test_a_template_change_without_a_new_image_is_no_upgrade() -> None:
    """An env or resources change rolls the workers' pods too: not reported as an upgrade."""
    servers = deployment(NEW, status=done())
    old_left = deployment(NEW, status=done() | {"replicas": 3, "updatedReplicas": 2})
    assert plan(NEW, servers, old_left, upgrading=False).phase is Phase.ROLLED_OUT


def test_a_new_pool_gets_its_image_at_once() -> None:
    step = plan(NEW, deployment(NEW), None)
    assert (step.worker_image, step.phase) == (NEW, Phase.ROLLED_OUT)


def test_the_condition_appears_only_with_an_upgrade() -> None:
    servers = deployment(NEW, status=done())
    steady = plan(NEW, servers, deployment(NEW, status=done()))
    assert not reported(steady, has_condition=False)
    assert reported(steady, has_condition=True)  # cleared once
    assert reported(plan(NEW, servers, deployment(OLD)), has_condition=False)
