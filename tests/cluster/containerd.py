"""The test node's container runtime: Debian's containerd (1.6) with its CRI plugin, started from
a config of our own whose every directory (root, state, sockets, runc's state, the pods'
network namespaces) lies under one work directory, so nothing of the machine's own containerd
setup is used or touched and a crashed run's leftovers can be found by that directory's path.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.processes import stop_group
from tests.polling import poll_until

NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin keeps its images and pods in

CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
# No btrfs/zfs/devmapper/aufs here; their probes only add noise to the log.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # Pod network namespaces are bind-mounted under the state dir, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  # The kernel has no AppArmor; SELinux is off.
  disable_apparmor = true
  enable_selinux = false
  # The kubelet asks for oom_score_adj -998 (sandboxes) and lower for critical pods; lowering
  # it needs CAP_SYS_RESOURCE, and without it runc init dies with "can't get final child's PID
  # from pipe". Clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  # `kubectl exec/logs` go through this loopback stream server.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # The kubelet uses the cgroupfs driver: the host needs no systemd.
        SystemdCgroup = false
        # runc's container state under our work dir, so cleanup can `runc list` exactly ours.
        Root = "{runc_root}"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    # No registry is reachable; images come from `import_image` only.
    config_path = ""
"""


@dataclass
class Containerd:
    workdir: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def runc_root(self) -> Path:
        return self.workdir / "runc"

    @property
    def log(self) -> Path:
        return self.workdir / "containerd.log"

    def write_config(self, sandbox_image: str, cni_bin_dir: Path, cni_conf_dir: Path) -> Path:
        config = self.workdir / "config.toml"
        config.write_text(
            CONFIG.format(
                root=self.workdir / "root",
                state=self.workdir / "state",
                socket=self.socket,
                runc_root=self.runc_root,
                sandbox_image=sandbox_image,
                cni_bin_dir=cni_bin_dir,
                cni_conf_dir=cni_conf_dir,
            ),
            encoding="utf-8",
        )
        return config

    def start(self, config: Path, timeout: float = 60) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                ["containerd", "--config", str(config), "--log-level", "info"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

        def serving() -> bool:
            self.check_alive()
            return self.ctr("version", check=False).returncode == 0

        poll_until(serving, timeout=timeout, what=f"containerd at {self.socket}")

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"containerd exited with {self.popen.returncode}:\n{tail}")

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {done.stderr.strip()}")
        return done

    def import_image(self, archive: Path) -> list[str]:
        """Import (and unpack, for the CRI's snapshotter) an OCI or docker archive, e.g. from
        `podman save`; return the image names it held."""
        done = self.ctr("images", "import", str(archive))
        # ctr prints "unpacking <name> (sha256:...)...done" for each image.
        return re.findall(r"^unpacking (\S+) \(", done.stdout, re.MULTILINE)

    def images(self) -> dict[str, str]:
        """Image name → manifest digest. (The CRI plugin adds a "sha256:<config digest>" entry
        per image, left out here.)"""
        rows = [line.split() for line in self.ctr("images", "list").stdout.splitlines()[1:]]
        return {row[0]: row[2] for row in rows if len(row) > 2 and not row[0].startswith("sha256:")}

    def stop(self, grace: float = 10) -> None:
        """Stop every task (container) of ours, then containerd itself. Tasks first: a shim
        outlives containerd, and a container outlives its shim."""
        if self.popen is None or self.popen.poll() is not None:
            return
        for task in self.ctr("tasks", "list", "--quiet", check=False).stdout.split():
            self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False)
            self.ctr("tasks", "delete", "--force", task, check=False, timeout=30)
        stop_group(self.popen, grace)
