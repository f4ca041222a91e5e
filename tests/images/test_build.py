"""scripts/images.sh itself: sizes reported and bounded, a warm rebuild that reuses every layer,
and archives for containerd written only when their image changed."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest

from tests.images.conftest import OPERATOR, SERVICE, Images, run_script

pytestmark = [pytest.mark.images, pytest.mark.timeout(1500)]

# Measured with the podman path's Debian base (docs/kubernetes.md, "Building the images"), with
# headroom for Debian's and PyPI's drift; a regression to the unfiltered base (+160 MB of GPU
# drivers, +~100 MB of docs and apt lists) or an accidental build tool in a final stage fails.
MB = 1_000_000
SIZE_BOUNDS = {SERVICE: 650 * MB, OPERATOR: 400 * MB}
ARCHIVES = {"ffpool": SERVICE, "ffpool-operator": OPERATOR}


def test_sizes_are_reported_and_bounded(images: Images) -> None:
    for ref, bound in SIZE_BOUNDS.items():
        reported = images.reported_size(ref)
        assert reported == int(images.inspect(ref, "{{.Size}}"))
        assert 50 * MB < reported < bound, f"{ref}: {reported / MB:.0f} MB"


def test_warm_rebuild_reuses_every_layer(images: Images) -> None:
    before = {ref: images.inspect(ref, "{{.Id}}") for ref in SIZE_BOUNDS}
    started = time.monotonic()
    again = run_script()
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    # Same IDs: every step came from the layer cache (a rebuilt layer would change them).
    assert {ref: images.inspect(ref, "{{.Id}}") for ref in SIZE_BOUNDS} == before
    assert elapsed < 60, f"warm rebuild took {elapsed:.0f} s:\n{again.stdout}"


def test_save_writes_archives_only_when_the_image_changed(images: Images, tmp_path: Path) -> None:
    first = run_script("--save", str(tmp_path))
    assert first.returncode == 0, first.stdout + first.stderr
    written = {}
    for name, ref in ARCHIVES.items():
        archive = tmp_path / f"{name}.tar"
        # docker-archive: what `ctr -n k8s.io images import` takes, tagged with the image's name.
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            assert member is not None
            [manifest] = json.load(member)
        assert manifest["RepoTags"] == [ref]
        sidecar = (tmp_path / f"{name}.tar.id").read_text().strip()
        assert sidecar == images.inspect(ref, "{{.Id}}")
        written[archive] = archive.stat().st_mtime_ns

    # Without a build in between: images another edit of the tree rebuilt would be rewritten.
    second = run_script("--save", str(tmp_path), "--no-build")
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("is current") == len(ARCHIVES), second.stdout
    assert {archive: archive.stat().st_mtime_ns for archive in written} == written

    (tmp_path / "ffpool.tar.id").write_text("an image that is gone\n")
    third = run_script("--save", str(tmp_path), "--no-build")
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"saved {tmp_path / 'ffpool.tar'}" in third.stdout
    assert (tmp_path / "ffpool.tar").stat().st_mtime_ns != written[tmp_path / "ffpool.tar"]
