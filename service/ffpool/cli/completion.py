"""`ffpool completion bash|zsh|fish`: the shell's completion script."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    """No command yet."""
