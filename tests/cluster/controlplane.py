"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler, built from source by cluster/build.sh (docs/cluster.md).

The API server runs with the authorizers and admission a real cluster has (Node and RBAC, Pod
Security, ServiceAccount, NodeRestriction), signs ServiceAccount tokens, and serves a certificate
of our own CA that names every address a client uses: 127.0.0.1 from the host, the node bridge's
gateway from pods, and the `kubernetes` Service's ClusterIP. Identities are static tokens (admin
in system:masters, one per node in system:nodes) so no client certificates are needed.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster import pki
from tests.cluster.ports import free_port
from tests.cluster.processes import stop_group
from tests.polling import poll_until

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "cluster" / "build.sh"
# Addresses outside every private range (RFC 2544's benchmarking block), on a bridge the node
# makes on this machine: pods at .18.0.x, the host (and the API server, for pods) at 198.18.0.1;
# Service ClusterIPs from 198.19.0.0/24 (docs/cluster.md, "Addresses").
HOST_GATEWAY = "198.18.0.1"
SERVICE_RANGE = "198.19.0.0/24"
KUBERNETES_SERVICE_IP = "198.19.0.1"
ADMIN_USER = "ffpool-admin"


def build_binaries(timeout: float = 3600) -> Path:
    """The directory with the pinned binaries, building them on first use (docs/cluster.md)."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cluster/build.sh failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace: float = 10) -> None:
        stop_group(self.popen, grace)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")


@dataclass
class ControlPlane:
    bin_dir: Path
    workdir: Path
    api_port: int
    tokens: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def env(self) -> dict[str, str]:
        """An environment in which `kubectl` and `helm` talk to this cluster as its admin."""
        path = f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "KUBECONFIG": str(self.admin_kubeconfig), "PATH": path}

    def kubeconfig(self, name: str, token: str, server: str | None = None) -> Path:
        path = self.workdir / f"{name}.kubeconfig"
        path.write_text(
            kubeconfig_text(server or self.server, self.ca_file, token, name), encoding="utf-8"
        )
        path.chmod(0o600)
        return path

    def kubeconfig_for_node(self, node_name: str) -> Path:
        return self.kubeconfig(f"node-{node_name}", self.tokens[f"node:{node_name}"])

    def run(
        self, tool: str, *args: str, input_text: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl`, `helm` (any binary of bin_dir) as this cluster's admin."""
        return subprocess.run(
            [str(self.bin_dir / tool), *args],
            env=self.env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> str:
        """Its output; with check=False a failure's error text instead of raising."""
        done = self.run("kubectl", *args, input_text=input_text, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout if done.returncode == 0 else done.stderr

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    @classmethod
    def start(cls, workdir: Path, nodes: tuple[str, ...] = ("ffpool-node",)) -> ControlPlane:
        bin_dir = build_binaries()
        workdir.mkdir(parents=True, exist_ok=True)
        pki.make(workdir / "pki", [HOST_GATEWAY, KUBERNETES_SERVICE_IP])
        tokens = {"admin": secrets.token_hex(16)}
        tokens.update({f"node:{n}": secrets.token_hex(16) for n in nodes})
        rows = [f'{tokens["admin"]},{ADMIN_USER},admin,"system:masters"']
        rows += [f'{tokens[f"node:{n}"]},system:node:{n},node-{n},"system:nodes"' for n in nodes]
        (workdir / "tokens.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        plane = cls(bin_dir, workdir, free_port(), tokens)
        try:
            plane._boot()
        except BaseException:
            plane.stop()
            raise
        return plane

    def _spawn(self, name: str, flags: dict[str, str]) -> Process:
        """Start bin_dir/name with `--key=value` flags, in its own process group, logging to
        workdir/name.log."""
        argv = [str(self.bin_dir / name), *(f"--{k}={v}" for k, v in flags.items())]
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.workdir,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _boot(self) -> None:
        pki_dir = self.workdir / "pki"
        etcd_url, peer_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        etcd = self._spawn(
            "etcd",
            {
                "data-dir": str(self.workdir / "etcd"),
                "listen-client-urls": etcd_url,
                "advertise-client-urls": etcd_url,
                "listen-peer-urls": peer_url,
                "initial-advertise-peer-urls": peer_url,
                "initial-cluster": f"default={peer_url}",
                # Tests only: durability across power loss is not what is under test.
                "unsafe-no-fsync": "true",
                "log-level": "warn",
            },
        )
        self._wait_http(etcd, f"{etcd_url}/health", 60)
        apiserver = self._spawn(
            "kube-apiserver",
            {
                "etcd-servers": etcd_url,
                # All addresses: pods reach the API server on the node bridge's gateway.
                "bind-address": "0.0.0.0",
                "secure-port": str(self.api_port),
                "advertise-address": HOST_GATEWAY,
                "tls-cert-file": str(pki_dir / "apiserver.crt"),
                "tls-private-key-file": str(pki_dir / "apiserver.key"),
                "client-ca-file": str(pki_dir / "ca.crt"),
                "kubelet-client-certificate": str(pki_dir / "apiserver-kubelet-client.crt"),
                "kubelet-client-key": str(pki_dir / "apiserver-kubelet-client.key"),
                # Logs and exec reach the kubelet at its node IP: a host name would be looked up
                # in the machine's DNS, and nothing of the test may leave the machine.
                "kubelet-preferred-address-types": "InternalIP",
                "token-auth-file": str(self.workdir / "tokens.csv"),
                "authorization-mode": "Node,RBAC",
                # On top of the defaults (NamespaceLifecycle, ServiceAccount, PodSecurity, ...).
                "enable-admission-plugins": "NodeRestriction",
                "service-cluster-ip-range": SERVICE_RANGE,
                "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
                "service-account-key-file": str(pki_dir / "sa.pub"),
                "service-account-signing-key-file": str(pki_dir / "sa.key"),
                "allow-privileged": "false",
                "profiling": "false",
            },
        )
        self._wait_http(apiserver, f"{self.server}/readyz", 120, self.tokens["admin"])
        admin = str(self.kubeconfig("admin", self.tokens["admin"]))
        common = {
            "kubeconfig": admin,
            "authentication-kubeconfig": admin,
            "authorization-kubeconfig": admin,
            "leader-elect": "false",
            "bind-address": "127.0.0.1",
        }
        cm_port, sched_port = free_port(), free_port()
        manager = self._spawn(
            "kube-controller-manager",
            {
                **common,
                "secure-port": str(cm_port),
                "use-service-account-credentials": "true",
                "service-account-private-key-file": str(pki_dir / "sa.key"),
                "root-ca-file": str(pki_dir / "ca.crt"),
                "cluster-signing-cert-file": str(pki_dir / "ca.crt"),
                "cluster-signing-key-file": str(pki_dir / "ca.key"),
            },
        )
        scheduler = self._spawn("kube-scheduler", {**common, "secure-port": str(sched_port)})
        self._wait_http(manager, f"https://127.0.0.1:{cm_port}/healthz", 60)
        self._wait_http(scheduler, f"https://127.0.0.1:{sched_port}/healthz", 60)
        accounts = ("get", "serviceaccounts", "-n", "default", "-o", "name")
        poll_until(
            lambda: "serviceaccount/default" in self.kubectl(*accounts, check=False),
            timeout=60,
            what="the default ServiceAccount (serviceaccount controller)",
        )

    def _wait_http(self, process: Process, url: str, timeout: float, token: str = "") -> None:
        context = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        if url.startswith("https://127.0.0.1") and not token:
            # The controller-manager's and scheduler's own self-signed serving certificates.
            context = ssl._create_unverified_context()

        def ready() -> bool:
            process.check_alive()
            request = urllib.request.Request(url)
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        poll_until(ready, timeout=timeout, what=f"{process.name} at {url}")


def kubeconfig_text(server: str, ca_file: Path, token: str, user: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: ffpool\n  cluster:\n    server: {server}\n"
        f"    certificate-authority: {ca_file}\n"
        f"users:\n- name: {user}\n  user:\n    token: {token}\n"
        f"contexts:\n- name: ffpool\n  context:\n    cluster: ffpool\n    user: {user}\n"
        "current-context: ffpool\n"
    )
