"""containerd roots with the node's images already imported, cached between runs.

Importing the service image (~560 MB) into a fresh containerd takes 15-20 s (copy into the
content store, then unpack into overlayfs snapshots); a node starts in 2 s without it. So the
first start with a given set of archives imports them once into a "golden" root under
`$FFPOOL_CACHE/node/images-<key>/`, and every node clones that root into its work directory:
hard links for the immutable parts (content blobs, unpacked layers: overlayfs only reads lower
layers, and containerd never rewrites a blob), real copies of the bolt databases, which
containerd writes in place. The key covers the archives (path, size, mtime: scripts/images.sh
rewrites an archive only when its image changed), the pause image and the containerd version.
The two roots used last are kept. Callers hold the node lock (tests.cluster.teardown.Lock).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from tests.cluster import teardown
from tests.cluster.containerd import Containerd
from tests.cluster.images import cache_dir

KEEP = 2  # golden roots kept, the most recently used (about 1.5 GB each with both images)


def _key(archives: list[Path], sandbox_image: str) -> str:
    version = subprocess.run(
        ["containerd", "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    parts = [version.strip(), sandbox_image]
    for archive in archives:
        stat = archive.resolve().stat()
        parts.append(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _build(golden: Path, archives: list[Path], sandbox_image: str, cni: tuple[Path, Path]) -> None:
    """Import the archives into a containerd of its own and keep its root as `golden`."""
    build = golden.parent / "build"
    teardown.kill_processes(build)
    teardown.unmount_all(build)
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    containerd = Containerd(build)
    try:
        containerd.start(containerd.write_config(sandbox_image, *cni))
        names = [name for archive in archives for name in containerd.import_image(archive)]
    finally:
        containerd.stop()
    teardown.unmount_all(build)
    (build / "root" / "ffpool-images.json").write_text(json.dumps(names), encoding="utf-8")
    (build / "root").rename(golden)
    shutil.rmtree(build, ignore_errors=True)


def clone_root(
    root: Path, archives: list[Path], sandbox_image: str, cni: tuple[Path, Path]
) -> list[str]:
    """Fill the (absent) containerd root `root` with the archives' images; return their names."""
    store = cache_dir() / "node"
    golden = store / f"images-{_key(archives, sandbox_image)}"
    if not (golden / "ffpool-images.json").exists():
        shutil.rmtree(golden, ignore_errors=True)
        _build(golden, archives, sandbox_image, cni)
    golden.touch()  # its mtime says when it was last used
    # The test suite and the benchmarks start nodes with different sets of archives: keep the
    # two used last, so that neither rebuilds its root each time the other ran.
    roots = sorted(store.glob("images-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in roots[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(golden), str(root)], check=True, timeout=300)
    for db in golden.rglob("*.db"):
        clone = root / db.relative_to(golden)
        clone.unlink()
        shutil.copy2(db, clone)
    return list(json.loads((golden / "ffpool-images.json").read_text(encoding="utf-8")))
