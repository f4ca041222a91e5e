"""`ffpool status`, `jobs`, `download` and `dead-letters`: what the server knows."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    """No command yet."""
