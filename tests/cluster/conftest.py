"""The real cluster for the `cluster` tests (docs/cluster.md), one per test session: the control
plane, a node running the project's images with the real kubelet and containerd, a broker user
the pods can reach, and an Ingress controller stand-in.

Under CI=true a binary or image that cannot be built, or a cluster that does not start, fails the
tests that need it; elsewhere they skip with the reason."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.broker import BrokerUser, create_user, remove_topology
from tests.cluster.controlplane import ROOT, ControlPlane
from tests.cluster.images import cache_dir
from tests.cluster.ingress import IngressController
from tests.cluster.node import Node
from tests.cluster.pool import (
    OPERATOR_NS,
    POOL,
    POOL_NS,
    RELEASE,
    get,
    helm,
    media_volume,
    restricted_namespace,
    tokens_secret,
)
from tests.conftest import broker_reachable, require

# The lifecycle's last steps delete the pool and uninstall the chart that every test here
# shares (package-scoped fixtures), so they run after every other test of this package.
LAST = (
    "test_deleting_the_pool_collects_its_children_and_keeps_its_queues",
    "test_helm_uninstall_keeps_the_crd",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [n for n, item in enumerate(items) if item.path.parent == here]
    if not mine:
        return
    block = items[mine[0] : mine[-1] + 1]  # this package's tests are collected together
    last = [item for item in block if item.name in LAST]
    block = [item for item in block if item.name not in LAST] + last
    items[mine[0] : mine[-1] + 1] = block


# The names the project's manifests use for its images (examples/ffmpegpool.yaml, the chart's
# default repository), given to the locally built images on the node: manifests apply unchanged
# and `IfNotPresent` finds them without a registry.
SERVICE_IMAGE = "localhost/ffpool:dev"
OPERATOR_IMAGE = "localhost/ffpool-operator:dev"
EXAMPLE_SERVICE_IMAGE = "ghcr.io/ffpool/ffpool:0.1.0"
EXAMPLE_QUEUES = ("ffmpeg_job_queue", "ffmpeg_job_dlq")
EXAMPLE_EXCHANGES = ("ffmpeg_jobs", "ffmpeg_job_events", "ffmpeg_job_control")
CLUSTER_ERRORS = (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError)


@pytest.fixture(scope="package")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        plane = ControlPlane.start(tmp_path_factory.mktemp("control-plane"))
    except CLUSTER_ERRORS as exc:
        require(False, f"the real control plane did not start: {exc}")
        raise
    try:
        yield plane
    finally:
        plane.stop()


def build_images() -> list[Path]:
    """Both images from `scripts/images.sh`, saved for containerd (rewritten only on change)."""
    archives = cache_dir() / "images" / "archives"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "images.sh"), "--save", str(archives)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/images.sh failed:\n{done.stderr[-3000:]}")
    return [archives / "ffpool.tar", archives / "ffpool-operator.tar"]


@pytest.fixture(scope="package")
def image_archives() -> list[Path]:
    try:
        return build_images()
    except RuntimeError as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="package")
def node(
    control_plane: ControlPlane,
    image_archives: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Node]:
    try:
        started = Node.start(control_plane, tmp_path_factory.mktemp("node"), image_archives)
    except CLUSTER_ERRORS as exc:
        require(False, f"the node did not start: {exc}")
        raise
    try:
        started.containerd.ctr("images", "tag", "--force", SERVICE_IMAGE, EXAMPLE_SERVICE_IMAGE)
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="package")
def broker_user(node: Node) -> Iterator[BrokerUser]:
    require(broker_reachable(), "RabbitMQ on 127.0.0.1:5672 (make setup starts it)")
    user = create_user(node.gateway)
    try:
        yield user
    finally:
        user.delete()


@pytest.fixture(scope="package")
def ingress_controller(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IngressController]:
    controller = IngressController(control_plane, tmp_path_factory.mktemp("ingress")).start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="package")
def operator(control_plane: ControlPlane, node: Node) -> Iterator[str]:
    """The chart installed the way the README says, from the image `make images` built, into a
    namespace that enforces the restricted Pod Security level; yields the operator's
    ServiceAccount name."""
    restricted_namespace(control_plane, OPERATOR_NS)
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    chart = str(ROOT / "charts" / "ffpool-operator")
    values = [f"image.repository={repository}", f"image.tag={tag}", "image.pullPolicy=Never"]
    sets = [arg for value in values for arg in ("--set", value)]
    helm(control_plane, "install", RELEASE, chart, "-n", OPERATOR_NS, *sets, "--wait")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    [deployment] = get(control_plane, "deployment", "-l", selector, namespace=OPERATOR_NS)["items"]
    try:
        yield deployment["spec"]["template"]["spec"]["serviceAccountName"]
    finally:
        control_plane.kubectl("delete", "namespace", POOL_NS, "--timeout=120s", check=False)
        if get(control_plane, "deployment", "-l", selector, namespace=OPERATOR_NS)["items"]:
            helm(control_plane, "uninstall", RELEASE, "-n", OPERATOR_NS, check=False)


@pytest.fixture(scope="package")
def pool_token(control_plane: ControlPlane, operator: str) -> str:
    """The example pool's tokens Secret, created before the pool; the token its clients send."""
    restricted_namespace(control_plane, POOL_NS)
    return tokens_secret(control_plane)


@pytest.fixture(scope="package")
def pool(
    control_plane: ControlPlane,
    operator: str,
    broker_user: BrokerUser,
    pool_token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """examples/ffmpegpool.yaml applied unchanged, next to a Secret for the local broker and the
    tokens Secret; yields the directory behind the pool's media volume."""
    media = tmp_path_factory.mktemp("media-volume")
    media_volume(control_plane, media, "ffpool-media")
    secret = broker_user.secret_manifest("ffpool-rabbitmq", POOL_NS)
    control_plane.kubectl("apply", "-f", "-", input_text=secret)
    control_plane.kubectl("apply", "-n", POOL_NS, "-f", str(ROOT / "examples" / "ffmpegpool.yaml"))
    try:
        yield media
    finally:
        control_plane.kubectl("delete", "ffp", POOL, "-n", POOL_NS, "--timeout=60s", check=False)
        # The example's names are the defaults other tests use on the same broker, and its
        # deletionPolicy Retain keeps them: remove them once the pool is gone.
        remove_topology(EXAMPLE_QUEUES, EXAMPLE_EXCHANGES)
