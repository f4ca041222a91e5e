"""A real node for the test cluster: the real kubelet, with Debian's containerd as its CRI
runtime, runc for the containers and CNI's bridge plugin for the pod network (docs/cluster.md,
"The node").

`Node.start(plane, workdir, archives)` cleans up what a crashed earlier run left, makes the
bridge, starts containerd on a containerd root that already holds the pause image and the given
image archives (tests/cluster/imagestore.py), starts the kubelet and waits for the Node to be
Ready; `node.stop()` removes everything it made. Pods reach the host at `node.gateway`
(198.18.0.1), and the API server through the `kubernetes` Service as in any cluster.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.cluster import imagestore, network, teardown
from tests.cluster.containerd import Containerd
from tests.cluster.controlplane import ControlPlane
from tests.cluster.images import pause_image
from tests.cluster.ports import free_port
from tests.cluster.processes import stop_group
from tests.polling import poll_until

NAME = "ffpool-node"


def kubelet_config(
    containerd: Containerd, ca_file: Path, root: Path, ports: tuple[int, int]
) -> dict[str, Any]:
    port, healthz_port = ports
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": containerd.endpoint,
        "imageServiceEndpoint": containerd.endpoint,
        # The API server reaches the kubelet (logs, exec) at the node's InternalIP.
        "address": network.GATEWAY,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            # The API server's kubelet client certificate is signed by the cluster CA.
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        # For hosts with cgroup v1 ("hybrid") and no systemd: cgroupfs, and v1 allowed
        # (kubelet >= 1.35 refuses v1 unless told otherwise).
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        # No QoS cgroup tree and no node-allocatable enforcement: the kubelet then leaves the
        # machine's cgroup hierarchy as it found it, apart from the containers' own cgroups.
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        # Pods are never evicted for a full-ish disk or memory, and images never collected:
        # the images are imported, not pulled, so a collected image would be gone for good.
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        # No cluster DNS exists; pods get an empty resolv.conf rather than the host's resolver.
        "resolvConf": "",
        "podLogsDir": str(root / "pod-logs"),
        "volumePluginDir": str(root / "volume-plugins"),
        # Without CAP_SYS_RESOURCE neither may be raised/lowered; the defaults (1000000 files,
        # oom_score_adj -999) only produce errors in the log.
        "maxOpenFiles": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "oomScoreAdj": 0,
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        # Quick status reports so that Ready/NotReady transitions show up fast in tests.
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
    }


@dataclass
class Node:
    plane: ControlPlane
    workdir: Path
    name: str = NAME
    containerd: Containerd = field(init=False)
    kubelet: subprocess.Popen[bytes] | None = None
    archives: list[Path] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0
    lock: teardown.Lock | None = None

    @property
    def gateway(self) -> str:
        """The host's address as pods see it (RabbitMQ, the API server, anything on 0.0.0.0)."""
        return network.GATEWAY

    pod_ip_gateway = gateway

    @property
    def kubelet_log(self) -> Path:
        return self.workdir / "kubelet.log"

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.containerd = Containerd(self.workdir / "containerd")

    @classmethod
    def start(
        cls,
        plane: ControlPlane,
        workdir: Path,
        images: list[Path] | tuple[Path, ...] = (),
        *,
        name: str = NAME,
        timeout: float = 120,
        lock_timeout: float = 900,
    ) -> Node:
        """Start the node and wait until it is Ready; `images` are image archives (OCI or
        docker, e.g. `scripts/images.sh --save DIR`'s) to import. Waits up to `lock_timeout`
        for another test node on this machine to stop first."""
        node = cls(plane, workdir, name)
        node.lock = teardown.Lock()
        node.lock.acquire(lock_timeout)
        began = time.monotonic()  # the time to start, not the wait for another node
        try:
            previous = node.lock.previous()
            if previous is not None:  # a node whose process died without stop()
                teardown.clean(previous)
            teardown.clean(node.workdir)  # a reused work dir, or fixed-name leftovers
            node.lock.write(node.workdir)
            node.archives = list(images)
            node._boot(timeout)
        except BaseException:
            node.stop()
            raise
        node.startup_seconds = time.monotonic() - began
        return node

    def _boot(self, timeout: float) -> None:
        for sub in ("containerd", "cni", "kubelet"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        pause_archive, pause_ref = pause_image()
        network.create_bridge()
        cluster_ip = self.plane.kubectl(
            "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
        ).strip()
        api_port = urlsplit(self.plane.server).port or 443
        network.route_to_host(cluster_ip, 443, api_port)
        cni = (network.CNI_BIN_DIR, self.workdir / "cni" / "net.d")
        network.write_cni_config(cni[1], self.workdir / "cni" / "ipam")
        root = self.containerd.workdir / "root"
        self.images = imagestore.clone_root(root, [pause_archive, *self.archives], pause_ref, cni)
        self.containerd.start(self.containerd.write_config(pause_ref, *cni))
        present = self.containerd.images()
        missing = set(self.images) - set(present)
        if missing:
            raise RuntimeError(f"images missing from the cloned containerd root: {missing}")
        # Names given to the images since the last boot (`ctr images tag`), given again.
        by_digest = {digest: name for name, digest in present.items()}
        for name, digest in self.aliases.items():
            if name not in present and digest in by_digest:
                self.containerd.ctr("images", "tag", by_digest[digest], name)
        self._start_kubelet()
        poll_until(self.ready, timeout=timeout, what=f"Node {self.name} Ready")

    def _start_kubelet(self) -> None:
        root = self.workdir / "kubelet"
        config = root / "config.json"
        settings = kubelet_config(
            self.containerd, self.plane.ca_file, root, (free_port(), free_port())
        )
        # JSON is YAML: the kubelet reads its config file with a YAML parser.
        config.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        argv = [
            str(self.plane.bin_dir / "kubelet"),
            "--config",
            str(config),
            "--kubeconfig",
            str(self.plane.kubeconfig_for_node(self.name)),
            "--hostname-override",
            self.name,
            "--node-ip",
            network.GATEWAY,
            "--root-dir",
            str(root),
            "--cert-dir",
            str(root / "pki"),
            "--v",
            "1",
        ]
        with self.kubelet_log.open("ab") as out:
            self.kubelet = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=root,
            )

    def import_image(self, archive: Path) -> list[str]:
        """Import one more image archive into the running node; return its image names."""
        names = self.containerd.import_image(archive)
        self.images += names
        return names

    def check_alive(self) -> None:
        self.containerd.check_alive()
        if self.kubelet is not None and self.kubelet.poll() is not None:
            tail = self.kubelet_log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"kubelet exited with {self.kubelet.returncode}:\n{tail}")

    def ready(self) -> bool:
        self.check_alive()
        status = self.plane.kubectl(
            "get",
            "node",
            self.name,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return status.strip() == "True"

    def kill(self) -> None:
        """SIGKILL the kubelet and containerd as a crash would: shims and containers live on.
        The images' names are remembered first, so that `restart()` can name them again."""
        if self.containerd.popen is not None and self.containerd.popen.poll() is None:
            self.aliases = self.containerd.images()
        for process in (self.kubelet, self.containerd.popen):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def restart(self, timeout: float = 120) -> None:
        """Clean up whatever is left (as after a crash) and boot again in the same work dir;
        the kubelet then starts the pods bound to this Node anew."""
        self.kill()
        teardown.clean(self.workdir)
        began = time.monotonic()
        self._boot(timeout)
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the kubelet, every container and containerd; remove the mounts, the bridge, our
        iptables rules and the bulky state (images, snapshots), keeping configs and logs."""
        stop_group(self.kubelet, 15)
        self.containerd.stop()
        teardown.clean(self.workdir)
        if self.lock is not None:
            self.lock.release()
            self.lock = None
