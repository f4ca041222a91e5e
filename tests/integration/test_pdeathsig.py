"""FFmpeg dies with its worker: a real FFmpeg started through the runner by a process that is
then killed with SIGKILL (no clean-up code runs) does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ffpool.ffmpeg import pdeathsig
from tests.integration.faults import alive, children
from tests.polling import eventually

# A parent that runs an endless FFmpeg through ffpool's runner, with a thread running (as a
# worker has: the marker file thread), and waits to be killed.
PARENT = """
import asyncio, threading, time
from ffpool.ffmpeg.process import run
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
asyncio.run(run(["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc=size=64x64",
                 "-f", "null", "-"], timeout_s=600, grace_s=1))
"""


def _execd_ffmpeg(cmdline: str) -> bool:
    return "ffmpeg" in cmdline and not cmdline.startswith(sys.executable)


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone meanwhile
        return ""


async def test_ffmpeg_dies_when_its_worker_is_killed() -> None:
    assert pdeathsig.trampoline(), "setpriv --pdeathsig is needed on the test machine"
    parent = subprocess.Popen([sys.executable, "-c", PARENT], env=os.environ.copy())
    try:
        # Exec'd FFmpeg only: a child caught between fork and exec still shows the parent's
        # command line (this script, which names ffmpeg), maybe a short-lived one.
        ffmpeg = await eventually(
            lambda: [p for p in children(parent.pid) if _execd_ffmpeg(command(p))],
            timeout=20,
            what="FFmpeg started",
        )
        pid = ffmpeg[0]
        assert os.getpgid(pid) != os.getpgid(parent.pid)  # its own session, as before
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        await eventually(lambda: not alive(pid), timeout=5, what=f"FFmpeg {pid} gone")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_wrap_puts_the_trampoline_first() -> None:
    prefix = ("setpriv", "--pdeathsig", "KILL", "--")
    assert pdeathsig.wrap(["ffmpeg", "-i", "x"], prefix) == [*prefix, "ffmpeg", "-i", "x"]
    assert pdeathsig.wrap(["ffmpeg"], ()) == ["ffmpeg"]
