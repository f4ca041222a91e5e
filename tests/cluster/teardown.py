"""Removing everything a test node made, also after a run that crashed or was killed.

A node's processes, containers and mounts are found from its work directory's path (every path
of containerd, runc and the kubelet lies under it); the few things the kubelet, libcni and the
shims put elsewhere are found from the container IDs recorded under it. `Lock` keeps one node per
machine (the bridge and chains have fixed names) and records the running node's work directory,
so the next `Node.start` can clean up after a run that never reached its `stop()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.cluster import network
from tests.cluster.containerd import NAMESPACE
from tests.cluster.images import cache_dir

# Bulky or mount-bearing state, removed by clean(); configs and logs stay for post-mortems.
STATE_DIRS = (
    "containerd/root",
    "containerd/state",
    "containerd/runc",
    "kubelet/pods",
    "kubelet/plugins",
    "kubelet/pod-resources",
    "cni/ipam",
)
# Chains the kubelet makes for other components (kubelet_network_linux.go); the test node is
# the only kubelet on its host. (table, chain, built-in chains jumping to it, IPv4 only)
KUBELET_CHAINS = (
    ("mangle", "KUBE-IPTABLES-HINT", (), False),
    ("filter", "KUBE-FIREWALL", ("INPUT", "OUTPUT"), True),
    *((table, "KUBE-KUBELET-CANARY", (), False) for table in ("mangle", "nat", "filter")),
)
# Paths the kubelet uses whatever its --root-dir: the device-plugin socket and the
# /var/log/containers symlinks (into our pod logs dir).
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
CONTAINER_LOGS = Path("/var/log/containers")
SHIM_SOCKETS = Path("/run/containerd/s")  # containerd 1.6 puts shim sockets here, fixed


class Lock:
    """One test node per machine: an flock held while the node runs (released by the kernel
    when its holder dies) plus a record of the node's work directory."""

    def __init__(self) -> None:
        directory = cache_dir() / "node"
        directory.mkdir(parents=True, exist_ok=True)
        self.record = directory / "active.json"
        self.fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = self.record.read_text(encoding="utf-8") if self.record.exists() else ""
                    os.close(self.fd)
                    raise TimeoutError(f"another test node runs here: {holder}") from None
                time.sleep(0.5)

    def previous(self) -> Path | None:
        """The work dir of a node whose holder died without stop() (read with the lock held)."""
        if not self.record.exists():
            return None
        return Path(json.loads(self.record.read_text(encoding="utf-8"))["workdir"])

    def write(self, workdir: Path) -> None:
        state = {"workdir": str(workdir), "pid": os.getpid()}
        self.record.write_text(json.dumps(state), encoding="utf-8")

    def release(self) -> None:
        self.record.unlink(missing_ok=True)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def processes_under(workdir: Path) -> list[int]:
    """PIDs whose command line names a path under workdir: the kubelet, containerd, shims."""
    needle = str(workdir).encode() + b"/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def kill_processes(workdir: Path, timeout: float = 10) -> None:
    for pid in processes_under(workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while processes_under(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)


def container_ids(workdir: Path) -> set[str]:
    """IDs of every container and pod sandbox the node under workdir still knows of."""
    ids: set[str] = set()
    for sub in (
        "containerd/runc/" + NAMESPACE,
        "containerd/state/io.containerd.runtime.v2.task/" + NAMESPACE,
        "containerd/root/io.containerd.grpc.v1.cri/sandboxes",
    ):
        with contextlib.suppress(OSError):
            ids.update(p.name for p in (workdir / sub).iterdir())
    # libcni's cache files of our network are named "<network>-<sandbox id>-<interface>".
    for path in network.cni_cache_files():
        ids.add(path.name.removeprefix(network.NETWORK + "-").rpartition("-")[0])
    return ids


def delete_containers(workdir: Path) -> None:
    """`runc delete --force` each container left in our runc state dir: kills its processes
    and removes its cgroups, which a killed shim would otherwise leave behind."""
    root = workdir / "containerd" / "runc" / NAMESPACE
    if not root.is_dir():
        return
    listed = subprocess.run(
        ["runc", "--root", str(root), "list", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for container in listed.stdout.split():
        subprocess.run(
            ["runc", "--root", str(root), "delete", "--force", container],
            capture_output=True,
            timeout=60,
            check=False,
        )


def mounts_under(workdir: Path) -> set[str]:
    prefix = str(workdir) + "/"
    points = set()
    for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
        # The 5th field is the mount point, with spaces and the like as octal escapes.
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(prefix):
            points.add(point)
    return points


def unmount_all(workdir: Path) -> None:
    # Deepest first; lazily, so a mount still busy for an instant cannot stop the cleanup.
    for point in sorted(mounts_under(workdir), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30, check=False)


def remove_host_leftovers(workdir: Path, ids: set[str]) -> None:
    """What lives outside workdir: libcni cache files, shim sockets, container cgroups, the
    kubelet's device-plugin socket and log symlinks; directories only once empty."""
    socket = workdir / "containerd" / "containerd.sock"
    for cid in ids:
        network.forget_attachment(cid)
        digest = hashlib.sha256(f"{socket}/{NAMESPACE}/{cid}".encode()).hexdigest()
        (SHIM_SOCKETS / digest).unlink(missing_ok=True)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (hierarchy / NAMESPACE / cid).rmdir()
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        with contextlib.suppress(OSError):
            (hierarchy / NAMESPACE).rmdir()
    if CONTAINER_LOGS.is_dir():
        for link in CONTAINER_LOGS.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(str(workdir) + "/"):
                link.unlink()
    for name in ("kubelet.sock", "kubelet_internal_checkpoint"):
        (DEVICE_PLUGINS / name).unlink(missing_ok=True)
    for directory in (
        CONTAINER_LOGS,
        DEVICE_PLUGINS,
        DEVICE_PLUGINS.parent,
        SHIM_SOCKETS,
        SHIM_SOCKETS.parent,
    ):
        with contextlib.suppress(OSError):
            directory.rmdir()


def remove_kubelet_chains() -> None:
    for table, chain, parents, ipv4_only in KUBELET_CHAINS:
        for tool in ("iptables",) if ipv4_only else ("iptables", "ip6tables"):
            for parent in parents:
                while (
                    network.run(
                        tool, "-w", "5", "-t", table, "-D", parent, "-j", chain, check=False
                    ).returncode
                    == 0
                ):
                    pass
            network.run(tool, "-w", "5", "-t", table, "-F", chain, check=False)
            network.run(tool, "-w", "5", "-t", table, "-X", chain, check=False)


def clean(workdir: Path) -> None:
    """Leave nothing running, mounted or attached that the node under `workdir` made."""
    ids = container_ids(workdir)
    kill_processes(workdir)
    delete_containers(workdir)
    unmount_all(workdir)
    remove_host_leftovers(workdir, ids)
    network.cleanup()
    remove_kubelet_chains()
    for sub in STATE_DIRS:
        shutil.rmtree(workdir / sub, ignore_errors=True)


def leftovers(workdir: Path, ids: set[str]) -> list[str]:
    """What the node under workdir (whose containers had `ids`) left; empty after clean()."""
    found = [f"process {pid}" for pid in processes_under(workdir)]
    found += [f"mount {point}" for point in mounts_under(workdir)]
    found += [f"libcni cache {path}" for path in network.cni_cache_files()]
    if Path(f"/sys/class/net/{network.BRIDGE}").exists():
        found.append(f"bridge {network.BRIDGE}")
    chains = [(table, chain) for table, chain, _ in network.CHAINS]
    chains += [(table, chain) for table, chain, _, _ in KUBELET_CHAINS]
    for table, chain in chains:
        if (
            network.run("iptables", "-w", "5", "-t", table, "-S", chain, check=False).returncode
            == 0
        ):
            found.append(f"iptables chain {table}/{chain}")
    socket = workdir / "containerd" / "containerd.sock"
    for cid in ids:
        digest = hashlib.sha256(f"{socket}/{NAMESPACE}/{cid}".encode()).hexdigest()
        paths = [SHIM_SOCKETS / digest, network.CNI_CACHE / f"cni-loopback-{cid}-lo"]
        paths += [h / NAMESPACE / cid for h in Path("/sys/fs/cgroup").iterdir()]
        found += [f"path {path}" for path in paths if path.exists()]
    if CONTAINER_LOGS.is_dir():
        found += [
            f"log link {link}"
            for link in CONTAINER_LOGS.iterdir()
            if link.is_symlink() and os.readlink(link).startswith(str(workdir) + "/")
        ]
    if (DEVICE_PLUGINS / "kubelet.sock").exists():
        found.append(f"path {DEVICE_PLUGINS / 'kubelet.sock'}")
    return found


def clean_stale(lock_timeout: float = 0) -> Path | None:
    """Clean up after a node whose process died without stop(); return its work dir. For
    `Node.start` and by hand (`python -m tests.cluster.teardown`)."""
    lock = Lock()
    lock.acquire(lock_timeout)
    try:
        previous = lock.previous()
        if previous is not None:
            clean(previous)
        network.cleanup()
        remove_kubelet_chains()
        return previous
    finally:
        lock.release()


if __name__ == "__main__":
    print(f"cleaned up after: {clean_stale() or 'nothing to clean'}")
