"""The real images, built once per session by scripts/images.sh, and containers run from them
with the restrictions Kubernetes gives the pods (read-only root, no capabilities, no new
privileges). Containers share the host's network, on free loopback ports, so host-side clients
and fakes reach them directly."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import require
from tests.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "images.sh"
TAG = os.environ.get("IMAGE_TAG", "dev")
SERVICE = f"localhost/ffpool:{TAG}"
OPERATOR = f"localhost/ffpool-operator:{TAG}"
# The uid:gid both Dockerfiles switch to, and the charts' runAsUser.
APP_UID = 10001
# A cold build (debootstrap, apt, pip) takes minutes; a warm one seconds.
BUILD_TIMEOUT = 1200
# Within what a process without CAP_SYS_RESOURCE may set (the engine's defaults are not).
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
RESTRICTED = (
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "host",
    *ULIMITS,
)


def _docker_usable() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def engine_argv() -> list[str]:
    """The engine scripts/images.sh builds with (same choice, same override), as an argv."""
    chosen = os.environ.get("IMAGE_ENGINE") or ("docker" if _docker_usable() else "podman")
    if chosen == "docker":
        return ["docker"]
    require(shutil.which("podman") is not None, "podman (or a Docker daemon) to build images")
    # crun refuses a hybrid cgroup v1 layout (scripts/images.sh).
    runtime = os.environ.get("PODMAN_RUNTIME", "runc")
    return ["podman", "--runtime", runtime, "--cgroup-manager", "cgroupfs"]


@dataclass(frozen=True)
class Images:
    engine: list[str]
    output: str
    """What scripts/images.sh printed (its `images:` lines)."""

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.engine, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def inspect(self, ref: str, template: str, kind: str = "image") -> str:
        done = self.run(kind, "inspect", "--format", template, ref)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def reported_size(self, ref: str) -> int:
        found = re.search(rf"^images: size {re.escape(ref)} (\d+) bytes", self.output, re.M)
        assert found, f"no size reported for {ref}:\n{self.output}"
        return int(found.group(1))


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="session")
def images() -> Images:
    engine = engine_argv()
    if engine[0] == "podman" and not os.environ.get("PYTHON_IMAGE"):
        require(shutil.which("debootstrap") is not None, "debootstrap, for the podman base image")
    built = run_script()
    if built.returncode != 0:  # a broken build is a failure wherever it happens, never a skip
        pytest.fail(f"scripts/images.sh failed ({built.returncode}):\n{built.stdout}{built.stderr}")
    return Images(engine, built.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def container(images: Images, *args: str) -> Iterator[str]:
    """`run -d` with the restricted flags; the container is removed on exit, whatever happened."""
    name = f"ffpool-images-test-{uuid.uuid4().hex[:8]}"
    started = images.run("run", "-d", "--name", name, *RESTRICTED, *args)
    try:
        assert started.returncode == 0, started.stderr
        yield name
    finally:
        images.run("rm", "-f", name)


def logs(images: Images, name: str) -> str:
    done = images.run("logs", name)
    return (done.stdout + done.stderr)[-4000:]


async def wait_http(images: Images, name: str, url: str, timeout: float = 60) -> str:
    """The body of the first 200 from `url`, polled until the deadline; fails at once (with the
    container's logs) if the container stops."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

        async def body() -> tuple[str] | None:  # a tuple: an empty body is an answer too
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return (await response.text(),)
            state = images.inspect(name, "{{.State.Status}}", kind="container")
            assert state == "running", f"{name} is {state}:\n{logs(images, name)}"
            return None

        try:
            (text,) = await eventually(body, timeout=timeout, interval=0.2, what=f"{url} 200")
        except TimeoutError as late:
            raise AssertionError(f"{late}:\n{logs(images, name)}") from None
        return text


def process_status(images: Images, name: str) -> dict[str, str]:
    """/proc/<pid>/status of the container's main process, read on the host: what the kernel
    says about it, not what the image claims."""
    pid = images.inspect(name, "{{.State.Pid}}", kind="container")
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def assert_restricted(status: dict[str, str]) -> None:
    """Runs as APP_UID:APP_UID (real, effective, saved, fs), no capabilities, no new privileges."""
    assert status["Uid"].split() == [str(APP_UID)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(APP_UID)] * 4, status["Gid"]
    assert int(status["CapEff"], 16) == 0, status["CapEff"]
    assert int(status["CapPrm"], 16) == 0, status["CapPrm"]
    assert status["NoNewPrivs"] == "1"
