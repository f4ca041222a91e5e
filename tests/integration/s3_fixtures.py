"""Fixtures for tests against the real S3 server (tests/integration/s3_harness.py), used like
the other fixture modules here:

    pytest_plugins = ["tests.integration.s3_fixtures"]

never imported directly: a module imported before pytest registers it as a plugin cannot have
its asserts rewritten, which pytest (with filterwarnings=error) reports as a collection error.

`s3_server` fails when CI=true and versitygw is not built (scripts/s3-server.sh builds it)
and skips on a developer machine without it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.integration.s3_harness import S3Server, versitygw_binary


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One versitygw for the session; a test that stops it (an outage) needs not restart it:
    `s3_bucket` does."""
    binary = versitygw_binary()
    require(binary is not None, "versitygw is not built: run scripts/s3-server.sh")
    assert binary is not None
    server = S3Server(binary, tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket owned by the server's root user."""
    s3_server.start()
    return s3_server.make_bucket()
