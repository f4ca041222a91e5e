"""A real S3-compatible server for tests and benches: versitygw (built by scripts/s3-server.sh)
on 127.0.0.1, storing objects in a temporary directory. Fixtures are in
tests/integration/s3_fixtures.py.

The server can be stopped and started again on the same port and data (a bucket outage
mid-job), and can hold non-admin users that may not touch root's buckets (permission denied).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ffpool.settings import Settings, StorageKind
from tests.polling import poll_until

VERSITYGW_VERSION = "v1.8.0"
REGION = "us-east-1"
START_TIMEOUT_S = 30.0


def versitygw_binary() -> Path | None:
    """VERSITYGW, else scripts/s3-server.sh's cached build, else `versitygw` on PATH."""
    explicit = os.environ.get("VERSITYGW")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    cache = Path(os.environ.get("FFPOOL_CACHE") or Path.home() / ".cache" / "ffpool")
    built = cache / "s3" / f"versitygw-{VERSITYGW_VERSION}" / "bin" / "versitygw"
    if built.is_file():
        return built
    found = shutil.which("versitygw")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def unique_bucket(prefix: str = "t") -> str:
    """A fresh bucket name (S3 names: 3-63 lowercase letters, digits and hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class S3Server:
    """One versitygw process (posix backend) with a root user; `start()` waits until it
    answers, `stop()` ends it, and `start()` again serves the same data on the same port."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        access_key: str = "ffpoolroot",
        secret_key: str = "ffpool-root-secret-0123456789",
        port: int | None = None,
    ) -> None:
        self.binary = binary
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.port = port or free_port()
        self.data_dir = workdir / "data"
        self.iam_dir = workdir / "iam"
        self.log_path = workdir / "versitygw.log"
        for d in (self.data_dir, self.iam_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (no-op when it runs) and wait until it accepts connections."""
        if self.running:
            return
        argv = [
            str(self.binary),
            "--access",
            self.access_key,
            "--secret",
            self.secret_key,
            "--region",
            self.region,
            "--port",
            f"127.0.0.1:{self.port}",
            "--iam-dir",
            str(self.iam_dir),
            "--quiet",
            "posix",
            str(self.data_dir),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        poll_until(self._ready, timeout=START_TIMEOUT_S, what="versitygw accepting connections")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"versitygw exited with {self.process.returncode}:\n{log}")
        return _listening(self.port)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 10 s); the data stays."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        poll_until(lambda: not _listening(self.port), timeout=10, what="versitygw port closed")

    def env(self) -> dict[str, str]:
        """The service's settings variables for this server (add S3_BUCKET and the rest)."""
        return {
            "STORAGE": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
            "S3_REGION": self.region,
            "S3_PATH_STYLE": "true",
        }

    def fields(self, **overrides: Any) -> dict[str, Any]:
        """ffpool Settings fields for this server; `overrides` are more fields (s3_bucket=...)."""
        fields: dict[str, Any] = {
            "storage": StorageKind.S3,
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_region": self.region,
            "s3_path_style": True,
        }
        return fields | overrides

    def settings(self, **overrides: Any) -> Settings:
        return Settings(**self.fields(**overrides))

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A plain boto3 S3 client (root's by default) for set-up and assertions."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket owned by root (a fresh name by default); its name."""
        bucket = name or unique_bucket()
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def admin(self, *command: str) -> subprocess.CompletedProcess[bytes]:
        """`versitygw admin <command>` as root against this server."""
        return subprocess.run(
            [
                str(self.binary),
                "admin",
                "--access",
                self.access_key,
                "--secret",
                self.secret_key,
                "--region",
                self.region,
                "--endpoint-url",
                self.endpoint_url,
                *command,
            ],
            check=False,
            capture_output=True,
            timeout=30,
        )

    def add_user(self, access_key: str, secret_key: str) -> None:
        """A non-admin user: it authenticates, but root's buckets are not its to touch. A
        user that exists already gets `secret_key` (tests of one session may share one)."""
        user = ("--access", access_key, "--secret", secret_key, "--role", "user")
        made = self.admin("create-user", *user)
        if made.returncode != 0 and b"XAdminUserExists" in made.stderr:
            made = self.admin("update-user", *user)
        if made.returncode != 0:
            raise RuntimeError(f"versitygw admin: {made.stderr.decode(errors='replace')}")
