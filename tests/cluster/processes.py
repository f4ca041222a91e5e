"""Stopping what the cluster tests start: each long-running process has its own process group,
so a stop reaches its children too (shims, nginx workers, FFmpeg)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(
    popen: subprocess.Popen[bytes] | None, grace: float = 10, sig: int = signal.SIGTERM
) -> None:
    """`sig` to the process group, SIGKILL after `grace` seconds; nothing if already gone."""
    if popen is None or popen.poll() is not None:
        return
    os.killpg(popen.pid, sig)
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(10)
