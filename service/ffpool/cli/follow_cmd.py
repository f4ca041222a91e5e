"""`ffpool watch` and `ffpool cancel`: follow a job live, or ask to stop it."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    """No command yet."""
