"""Local container images for the test node: no registry is reachable, so nothing is pulled.

The node's sandbox ("pause") image is built here from `cluster/pause/main.go` into a one-file
OCI archive that `ctr images import` understands; `oci_archive()` writes such an archive from a
few files, which is all a static binary needs. Built artefacts are cached under
`$FFPOOL_CACHE/pause/<source hash>/` (default `~/.cache/ffpool`), so a warm run only imports.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAUSE_SRC = ROOT / "cluster" / "pause"
# Pause runs as the "nobody"-like uid registry.k8s.io/pause uses, so a pod whose securityContext
# sets no runAsUser still gets a non-root sandbox.
PAUSE_USER = "65535:65535"


def cache_dir() -> Path:
    return Path(os.environ.get("FFPOOL_CACHE") or Path.home() / ".cache" / "ffpool")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def oci_archive(
    dest: Path, ref: str, files: dict[str, tuple[bytes, int]], config: dict[str, Any]
) -> None:
    """Write an OCI image archive holding one uncompressed layer with `files` (path → data,
    mode), named `ref` (`io.containerd.image.name` is the annotation ctr's importer keeps as the
    full image name, so no --base-name is needed). Deterministic: same input, same digests."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name, (data, mode) in sorted(files.items()):
            _add(layer, name.lstrip("/"), data, mode)
    layer_bytes = layer_buf.getvalue()
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer_bytes)]},
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _digest(layer_bytes),
                "size": len(layer_bytes),
            }
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": _digest(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref.rpartition(":")[2],
                },
            }
        ],
    }
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        for blob in (layer_bytes, config_bytes, manifest_bytes):
            _add(tar, "blobs/sha256/" + _digest(blob).removeprefix("sha256:"), blob)
    tmp.replace(dest)


def _source_hash(src: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(src.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(src).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def go_build(src: Path, dest: Path) -> None:
    """A static binary from a dependency-free Go module (Go on PATH, as cluster/build.sh needs)."""
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise RuntimeError(f"building {src.name} needs Go on PATH (cluster/build.sh needs it too)")
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
        "GOCACHE": str(cache_dir() / "go" / "build"),
    }
    subprocess.run(
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(dest), "."],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def pause_image() -> tuple[Path, str]:
    """(OCI archive, image reference) of the sandbox image; built once per source version."""
    tag = _source_hash(PAUSE_SRC)
    ref = f"localhost/ffpool-pause:{tag}"
    out = cache_dir() / "pause" / tag
    archive = out / "pause.tar"
    if archive.exists():
        return archive, ref
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        binary = Path(tmp) / "pause"
        go_build(PAUSE_SRC, binary)
        config = {"Entrypoint": ["/pause"], "User": PAUSE_USER}
        oci_archive(archive, ref, {"pause": (binary.read_bytes(), 0o755)}, config)
    return archive, ref
