"""The test node's pod network: a Linux bridge of our own with the host on it, CNI's `bridge`
and `host-local` plugins for the pods, and a few iptables rules in chains of our own.

Addresses come from RFC 2544's benchmarking block, never a private range: pods get
198.18.0.0/24 and reach the host at the bridge's 198.18.0.1 (where the API server and RabbitMQ
listen, as they bind 0.0.0.0); Service ClusterIPs are 198.19.0.0/24. There is no kube-proxy: the
`kubernetes` Service (and any other whose backend is on the host) is DNATed to the host by
`route_to_host`. Pods have no default route and the bridge forwards nowhere else, so all pod
traffic stays on this machine. The host is no router for the pods: the bridge's address is ours,
not the plugin's (isGateway false), so the plugin leaves the machine's ip_forward alone, and
our FORWARD rules refuse everything but pod-to-pod should something else turn it on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

BRIDGE = "ffpool0"
NETWORK = "ffpool-node"  # the CNI network's name, also in libcni's cache file names
POD_SUBNET = "198.18.0.0/24"
GATEWAY = "198.18.0.1"
SERVICE_SUBNET = "198.19.0.0/24"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
# libcni (inside containerd) keeps each attachment's result here; containerd 1.6 has no setting
# for it. Files are named "<network>-<sandbox id>-<interface>", so cleanup can tell ours apart.
CNI_CACHE = Path("/var/lib/cni/results")
# Our chains: (table, chain, the built-in chains that jump to it).
CHAINS = (
    ("filter", "FFPOOL-NODE-FORWARD", ("FORWARD",)),
    ("nat", "FFPOOL-NODE-SERVICES", ("PREROUTING", "OUTPUT")),
)


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def conflist(ipam_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                # A pod may reach itself through a Service DNAT.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY}]],
                    # No default route: only the pod subnet (on-link) and the Service range.
                    "routes": [{"dst": SERVICE_SUBNET, "gw": GATEWAY}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def write_cni_config(conf_dir: Path, ipam_dir: Path) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "10-ffpool-node.conflist"
    path.write_text(json.dumps(conflist(ipam_dir), indent=2) + "\n", encoding="utf-8")


def create_bridge() -> None:
    """The bridge with the host's address on it, before any pod exists, so the host is at
    198.18.0.1 from the start (the API server advertises that address)."""
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    _iptables("filter", "-N", "FFPOOL-NODE-FORWARD")
    # Bridged pod-to-pod traffic passes FORWARD too (br_netfilter); anything else in or out of
    # the bridge is refused, whatever the machine's ip_forward says.
    _iptables("filter", "-A", "FFPOOL-NODE-FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")
    for direction in ("-i", "-o"):
        _iptables("filter", "-A", "FFPOOL-NODE-FORWARD", direction, BRIDGE, "-j", "REJECT")
    _iptables("nat", "-N", "FFPOOL-NODE-SERVICES")
    for table, chain, parents in CHAINS:
        for parent in parents:
            _iptables(table, "-I", parent, "1", *_jump(chain))


def route_to_host(cluster_ip: str, port: int, host_port: int) -> None:
    """Send TCP for a Service's ClusterIP:port to the host's GATEWAY:host_port, from pods and
    from the host itself: kube-proxy's job, for Services whose backend runs on the host."""
    _iptables(
        "nat",
        "-A",
        "FFPOOL-NODE-SERVICES",
        "-d",
        f"{cluster_ip}/32",
        "-p",
        "tcp",
        "--dport",
        str(port),
        "-j",
        "DNAT",
        "--to-destination",
        f"{GATEWAY}:{host_port}",
    )


def cleanup() -> None:
    """Remove the bridge, our chains and libcni's cache files of our network, whichever of them
    exist: after a normal stop and after a crashed run alike."""
    for table, chain, parents in CHAINS:
        for parent in parents:
            while _iptables(table, "-D", parent, *_jump(chain), check=False).returncode == 0:
                pass
        _iptables(table, "-F", chain, check=False)
        _iptables(table, "-X", chain, check=False)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        run("ip", "link", "delete", BRIDGE, "type", "bridge")
    for path in cni_cache_files():
        path.unlink(missing_ok=True)


def cni_cache_files() -> list[Path]:
    return sorted(CNI_CACHE.glob(f"{NETWORK}-*")) if CNI_CACHE.is_dir() else []


def forget_attachment(sandbox_id: str) -> None:
    """libcni's cache files for one pod sandbox: ours, and those of the loopback network
    containerd's CRI always attaches as well (named "cni-loopback")."""
    for name in (f"{NETWORK}-{sandbox_id}-eth0", f"cni-loopback-{sandbox_id}-lo"):
        (CNI_CACHE / name).unlink(missing_ok=True)


def _jump(chain: str) -> list[str]:
    return ["-m", "comment", "--comment", "ffpool test node", "-j", chain]


def _iptables(table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # -w: wait for the xtables lock rather than fail while another tool holds it.
    return run("iptables", "-w", "5", "-t", table, *args, check=check)
