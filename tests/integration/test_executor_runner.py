"""The process runner on real (Python) child processes: output, timeout, cancel, cleanup."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from ffpool.ffmpeg.process import run
from tests.integration.faults import alive
from tests.polling import eventually

PY = sys.executable


def script(code: str) -> list[str]:
    return [PY, "-c", code]


async def test_output_exit_code_and_stderr_tail() -> None:
    chunks: list[bytes] = []
    lines: list[str] = []
    code = (
        "import sys\n"
        "sys.stdout.write('progress=continue\\n' * 3)\n"
        "for i in range(200): sys.stderr.write(f'err {i}\\n')\n"
        "sys.exit(3)\n"
    )
    result = await run(
        script(code), timeout_s=30, grace_s=1, on_stdout=chunks.append, on_stderr_line=lines.append
    )
    assert result.exit_code == 3
    assert not result.timed_out
    assert b"".join(chunks) == b"progress=continue\n" * 3
    assert len(lines) == 200
    assert result.stderr_tail.splitlines() == [f"err {i}" for i in range(136, 200)]


async def test_a_flood_of_stderr_never_blocks_the_process() -> None:
    code = "import sys\nfor _ in range(64): sys.stderr.write('x' * 65535 + '\\n')\n"
    result = await run(script(code), timeout_s=30, grace_s=1)
    assert result.exit_code == 0
    assert len(result.stderr_tail) <= 16 * 1024


async def test_timeout_kills_the_whole_process_group() -> None:
    # The child starts a grandchild in its group and prints its pid, then both sleep.
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    out: list[bytes] = []
    started = time.monotonic()
    result = await run(script(code), timeout_s=1.0, grace_s=5, on_stdout=out.append)
    assert result.timed_out
    assert result.exit_code == -9  # SIGKILL: no grace on a timeout
    assert time.monotonic() - started < 4
    grandchild = int(b"".join(out))
    await eventually(lambda: not alive(grandchild), timeout=5, what=f"process {grandchild} gone")


async def test_cancel_terminates_then_reraises() -> None:
    code = (
        "import signal, sys, time\n"
        "def bye(*_): sys.stderr.write('terminated\\n'); sys.exit(255)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    ready = asyncio.Event()
    lines: list[str] = []
    task = asyncio.create_task(
        run(
            script(code),
            timeout_s=60,
            grace_s=5,
            on_stdout=lambda _: ready.set(),
            on_stderr_line=lines.append,
        )
    )
    await asyncio.wait_for(ready.wait(), 10)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2  # it exited on SIGTERM, well within the grace
    assert lines == ["terminated"]  # stderr was still drained during the grace period


async def test_cancel_kills_after_the_grace_period() -> None:
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    out: list[bytes] = []
    task = asyncio.create_task(run(script(code), timeout_s=60, grace_s=0.5, on_stdout=out.append))
    await eventually(lambda: out, timeout=10, what="the child's pid")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0.5 <= time.monotonic() - started < 3
    assert not alive(int(b"".join(out)))


async def test_a_failing_callback_stops_the_process() -> None:
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n"
    pids: list[int] = []

    def explode(chunk: bytes) -> None:
        pids.append(int(chunk))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await run(script(code), timeout_s=60, grace_s=5, on_stdout=explode)
    assert not alive(pids[0])
