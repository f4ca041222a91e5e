"""Run one FFmpeg/ffprobe process: stream its output, bound its time, stop it cleanly.

The process gets its own process group (session), so a timeout or a cancel reaches everything
it started, and dies with this process (pdeathsig.py). Its stderr is always drained, because
a full pipe would block it, into a bounded tail kept for error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from ffpool import logs
from ffpool.ffmpeg import pdeathsig
from ffpool.ffmpeg.progress import LineSplitter

log = logs.get(__name__)

READ_CHUNK: Final = 64 * 1024
TAIL_LINES: Final = 64
TAIL_BYTES: Final = 16 * 1024
PIPE_EOF_WAIT_S: Final = 1.0
# Stop tasks that outlive a second cancellation; referenced here so they are not collected.
_STOPPING: set[asyncio.Task[None]] = set()


class StderrTail:
    """The last lines of a stream, bounded in lines and bytes."""

    def __init__(self, max_lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> None:
        self._lines: deque[str] = deque()
        self._bytes = 0
        self._max_lines = max_lines
        self._max_bytes = max_bytes

    def add(self, line: str) -> None:
        line = line[: self._max_bytes - 1]
        self._lines.append(line)
        self._bytes += len(line) + 1
        while len(self._lines) > self._max_lines or self._bytes > self._max_bytes:
            self._bytes -= len(self._lines.popleft()) + 1

    def text(self, last: int | None = None) -> str:
        lines = list(self._lines)
        return "\n".join(lines[-last:] if last else lines)


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    """The process's exit status; negative: killed by that signal."""
    stderr_tail: str
    timed_out: bool
    elapsed_s: float


async def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    grace_s: float,
    on_stdout: Callable[[bytes], None] | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
) -> RunResult:
    """Run `argv` to its end or until `timeout_s` (then the group is killed). On cancellation
    the group gets SIGTERM, SIGKILL after `grace_s`, is reaped, and CancelledError re-raised."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *pdeathsig.wrap(argv),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    tail = StderrTail()
    assert proc.stdout is not None
    assert proc.stderr is not None
    tasks = [
        asyncio.create_task(_pump(proc.stdout, on_stdout or _discard)),
        asyncio.create_task(_pump_lines(proc.stderr, tail, on_stderr_line)),
        asyncio.create_task(_wait(proc)),
    ]
    timed_out = False
    try:
        async with asyncio.timeout(timeout_s):
            await _all_or_first_error(tasks)
    except TimeoutError:
        timed_out = True
        log.warning("process timed out, killing its group", pid=proc.pid, timeout_s=timeout_s)
        await _stop_shielded(proc, 0.0, tasks)
    except BaseException:
        # Cancelled (graceful stop), or a callback failed (no reason to wait).
        await _stop_shielded(proc, grace_s if _cancelling() else 0.0, tasks)
        raise
    exit_code = proc.returncode if proc.returncode is not None else -1
    return RunResult(exit_code, tail.text(), timed_out, time.monotonic() - started)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _discard(_: bytes) -> None:
    return None


async def _wait(proc: asyncio.subprocess.Process) -> None:
    await proc.wait()


async def _all_or_first_error(tasks: list[asyncio.Task[None]]) -> None:
    # Unlike gather, a cancelled asyncio.wait leaves the tasks running: the pumps must keep
    # draining while a cancelled FFmpeg finishes in its grace period.
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        if (error := task.exception()) is not None:
            raise error


async def _pump(stream: asyncio.StreamReader, sink: Callable[[bytes], None]) -> None:
    while chunk := await stream.read(READ_CHUNK):
        sink(chunk)


async def _pump_lines(
    stream: asyncio.StreamReader, tail: StderrTail, on_line: Callable[[str], None] | None
) -> None:
    splitter = LineSplitter()

    def sink(chunk: bytes) -> None:
        for line in splitter.feed(chunk):
            tail.add(line)
            if on_line is not None:
                on_line(line)

    await _pump(stream, sink)
    for line in splitter.flush():
        tail.add(line)


async def _stop_shielded(
    proc: asyncio.subprocess.Process, grace_s: float, tasks: list[asyncio.Task[None]]
) -> None:
    """Stop and reap the process even if the caller is cancelled (again) meanwhile."""
    stopper = asyncio.create_task(_stop(proc, grace_s, tasks))
    _STOPPING.add(stopper)
    stopper.add_done_callback(_STOPPING.discard)
    await asyncio.shield(stopper)


async def _stop(
    proc: asyncio.subprocess.Process, grace_s: float, tasks: list[asyncio.Task[None]]
) -> None:
    # The pumps keep draining during the grace period: FFmpeg still writes while it finishes.
    if grace_s > 0 and _signal_group(proc, signal.SIGTERM):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace_s)
    _signal_group(proc, signal.SIGKILL)
    await proc.wait()
    # What is still in the pipes is read to EOF (briefly: a stray holder of the pipe must not
    # hang us), for the stderr tail.
    await asyncio.wait(tasks, timeout=PIPE_EOF_WAIT_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> bool:
    """Signal the whole group while its leader lives. After the leader is reaped its pid
    (the group id) may be reused by another process group, so it is never signalled then."""
    if proc.returncode is not None:
        return False
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True
