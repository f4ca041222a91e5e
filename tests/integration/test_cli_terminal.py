"""`ffpool submit` and `watch` in a real terminal: a tmux session of the test's own (fixed size,
a plain bash) types the commands and presses Ctrl-C as a user would; what the screen shows is
read with `capture-pane`, and what happened to the job is asked of the service itself (memory
backend, real FFmpeg, ephemeral ports, run in the test's loop)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final, TypeVar, cast

import pytest

from ffpool.app import Running
from ffpool.domain.events import JobState
from tests.conftest import make_clip
from tests.integration.cli_user import (
    cli_env,
    ffpool_command,
    job_state,
    server_flags,
    server_that_never_reads,
    tmux_command,
    until_finished,
)
from tests.integration.service import service
from tests.polling import eventually

pytestmark = [pytest.mark.ffmpeg, pytest.mark.timeout(300)]

T = TypeVar("T")
WIDTH, HEIGHT = 160, 40
PERCENT_RE: Final = re.compile(r"(\d{1,3}\.\d)%")
EXIT_RE: Final = re.compile(r"^EXIT=(\d+)\s*$", re.MULTILINE)
ACCEPTED_RE: Final = re.compile(r"job ([0-9a-f]{32}) accepted")
DETACHED_RE: Final = re.compile(r"^([0-9a-f]{32})$", re.MULTILINE)
# A slow encode of a 10 s clip on one thread: seconds of progress to watch and to interrupt.
SLOW: Final = ("transcode", "--preset", "veryslow", "--crf", "18")


class Terminal:
    """One tmux server (its own socket) with one session running bash in `cwd`."""

    def __init__(self, socket: Path, cwd: Path) -> None:
        self.socket = socket
        self.cwd = cwd

    async def tmux(self, *argv: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            tmux_command(),
            "-S",
            str(self.socket),
            *argv,
            cwd=self.cwd,
            env=cli_env(self.cwd) | {"PS1": "$ "},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    async def type(self, line: str) -> None:
        await self.tmux("send-keys", "-t", "cli", "-l", line)
        await self.tmux("send-keys", "-t", "cli", "Enter")

    async def ctrl_c(self) -> None:
        await self.tmux("send-keys", "-t", "cli", "C-c")

    async def screen(self) -> str:
        return await self.tmux("capture-pane", "-p", "-J", "-t", "cli", "-S", "-500")

    async def shows(self, text: str) -> str | None:
        screen = await self.screen()
        return screen if text in screen else None

    async def percent(self) -> float:
        """The bar's percent now (the last one on the screen), 0 before it appears."""
        found = PERCENT_RE.findall(await self.screen())
        return float(found[-1]) if found else 0.0

    async def until(self, check: Callable[[], Awaitable[T | None]], what: str, timeout: float) -> T:
        """`eventually`, failing with what the screen showed."""
        try:
            settled = cast(Callable[[], Awaitable[T]], check)
            return await eventually(settled, timeout=timeout, what=what, interval=0.2)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; the screen:\n{await self.screen()}") from None

    async def ended(self) -> str | None:
        """The screen, once the typed command has ended (its `EXIT=<code>` line shows)."""
        screen = await self.screen()
        return screen if EXIT_RE.search(screen) else None


@contextlib.asynccontextmanager
async def terminal(cwd: Path) -> AsyncIterator[Terminal]:
    term = Terminal(cwd / "tmux.sock", cwd)
    shell = "bash --norc --noprofile"
    await term.tmux("new-session", "-d", "-s", "cli", "-x", str(WIDTH), "-y", str(HEIGHT), shell)
    try:
        yield term
    finally:
        with contextlib.suppress(AssertionError, OSError, TimeoutError):
            await term.tmux("kill-server")


@pytest.fixture(scope="module")
def long_clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(ffmpeg_bin, tmp_path_factory.mktemp("long") / "sample.mp4", seconds=10)


def command(svc: Running, *argv: str) -> str:
    """The line the user types: the command, then its exit code where the test can read it."""
    words = [ffpool_command(), *argv, *server_flags(svc)]
    return f"{shlex.join(words)}; echo EXIT=$?"


def exit_of(screen: str) -> int:
    found = EXIT_RE.findall(screen)
    assert found, screen
    return int(found[-1])


async def submitted(term: Terminal) -> str:
    screen = await term.until(lambda: term.shows("accepted"), "job accepted", 60)
    found = ACCEPTED_RE.search(screen)
    assert found is not None, screen
    return found.group(1)


async def progress_above(term: Terminal, floor: float) -> float:
    async def above() -> float | None:
        now = await term.percent()
        return now if now > floor else None

    return await term.until(above, f"progress above {floor}%", 90)


async def test_submit_shows_moving_progress_and_the_saved_file(
    media_root: Path, long_clip: Path, tmp_path: Path
) -> None:
    async with service(media_root, ffmpeg_threads=1) as svc, terminal(tmp_path) as term:
        await term.type(command(svc, "submit", *SLOW, "--file", str(long_clip)))
        first = await progress_above(term, 0.0)
        await progress_above(term, first)  # the bar moves
        await term.until(term.ended, "the command ended", 40)
        screen = await term.screen()
    assert exit_of(screen) == 0, screen
    assert "saved sample.transcode.mp4" in screen, screen
    assert (tmp_path / "sample.transcode.mp4").stat().st_size > 0
    assert "Traceback" not in screen


async def test_ctrl_c_cancels_the_job(media_root: Path, long_clip: Path, tmp_path: Path) -> None:
    async with service(media_root, ffmpeg_threads=1) as svc, terminal(tmp_path) as term:
        await term.type(command(svc, "submit", *SLOW, "--file", str(long_clip)))
        job_id = await submitted(term)
        await progress_above(term, 0.0)
        await term.ctrl_c()
        await term.until(lambda: term.shows("Ctrl-C again to leave it"), "cancelling", 10)
        await term.until(term.ended, "the command ended", 60)
        screen = await term.screen()
        assert await job_state(svc, job_id) is JobState.CANCELLED
    assert f"cancelling job {job_id}" in screen
    assert f"cancelled job {job_id}" in screen
    assert exit_of(screen) == 130, screen
    assert "Traceback" not in screen
    assert not (tmp_path / "sample.transcode.mp4").exists()


async def test_double_ctrl_c_leaves_the_job_running(
    media_root: Path, long_clip: Path, tmp_path: Path
) -> None:
    async with service(media_root, ffmpeg_threads=1) as svc, terminal(tmp_path) as term:
        await term.type(command(svc, "submit", *SLOW, "--file", str(long_clip)))
        job_id = await submitted(term)
        await progress_above(term, 0.0)
        await term.ctrl_c()
        await term.ctrl_c()
        await term.until(term.ended, "the command ended", 30)
        screen = await term.screen()
        assert await job_state(svc, job_id) is JobState.RUNNING  # the user left; the job did not
        done = await until_finished(svc, job_id, timeout=180)
    assert done is JobState.COMPLETED
    assert f"left running: ffpool watch {job_id}" in screen
    assert exit_of(screen) == 130, screen
    assert "Traceback" not in screen


async def test_watch_shows_progress_and_ctrl_c_cancels(
    media_root: Path, long_clip: Path, tmp_path: Path
) -> None:
    async with service(media_root, ffmpeg_threads=1) as svc, terminal(tmp_path) as term:
        await term.type(command(svc, "submit", *SLOW, "--file", str(long_clip), "--detach"))
        await term.until(term.ended, "submitted", 60)
        job_id = DETACHED_RE.findall(await term.screen())[-1]
        await term.type(command(svc, "watch", job_id))
        await progress_above(term, 0.0)
        await term.ctrl_c()
        await term.until(lambda: term.shows("EXIT=130"), "the watch ended", 60)
        screen = await term.screen()
        assert await job_state(svc, job_id) is JobState.CANCELLED
    assert f"cancelled job {job_id}" in screen
    assert "Traceback" not in screen


async def test_ctrl_c_during_the_upload_just_stops(media_root: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(64 * 1024 * 1024))  # more than the socket buffers hold
    async with (
        service(media_root) as svc,
        server_that_never_reads() as stalled,
        terminal(tmp_path) as term,
    ):
        argv = [ffpool_command(), "submit", "probe", "--file", str(big)]
        flags = ["--server", svc.ws_url, "--http", stalled.url]  # the upload goes nowhere
        await term.type(f"{shlex.join([*argv, *flags])}; echo EXIT=$?")

        async def uploading() -> bool:
            return bool(stalled.held)

        await term.until(uploading, "the upload started", 30)
        await term.ctrl_c()
        screen = await term.until(term.ended, "the command ended", 30)
        assert (await svc.backend.stats()).total_jobs == 0
    assert "stopped: the job was not submitted" in screen
    assert exit_of(screen) == 130
    assert "Traceback" not in screen
