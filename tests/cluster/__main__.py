"""`make cluster`: the test suite's real cluster, by hand, until interrupted (docs/cluster.md).

Prints `export KUBECONFIG=...` and `export PATH=...` as lines of their own once the API server
answers (and, with the node, once it is Ready), so `eval "$(... | grep ^export)"` works too."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.cluster.controlplane import ControlPlane


def main() -> int:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__)
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--no-node", action="store_true", help="control plane only, no kubelet")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ffpool-cluster-"))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    plane = ControlPlane.start(workdir / "control-plane")
    node = None
    try:
        print(f"export KUBECONFIG={plane.admin_kubeconfig}", flush=True)
        print(f"export PATH={plane.bin_dir}:$PATH", flush=True)
        if not args.no_node:
            from tests.cluster.conftest import EXAMPLE_SERVICE_IMAGE, SERVICE_IMAGE, build_images
            from tests.cluster.node import Node

            node = Node.start(plane, workdir / "node", build_images())
            node.containerd.ctr("images", "tag", "--force", SERVICE_IMAGE, EXAMPLE_SERVICE_IMAGE)
            print(f"# node {node.name} is Ready; pods reach the host at {node.gateway}", flush=True)
        print("# running until interrupted (Ctrl-C)", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        if node is not None:
            node.stop()
        plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
