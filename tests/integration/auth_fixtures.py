"""Fixtures for the auth edge's tests: `pytest_plugins = ["tests.integration.auth_fixtures"]`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`logs.configure()` binds the test's captured stderr process-wide: put it back after."""
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        yield
    finally:
        structlog.reset_defaults()
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
