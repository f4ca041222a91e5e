"""A run cancelled while it takes the job's run lock gives the lock back (commit.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from ffpool.ffmpeg import commit
from ffpool.ffmpeg.commit import RunScope, run_scope


async def test_a_run_cancelled_while_taking_the_lock_gives_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel lands while the thread takes the lock (a lost connection stops a run that
    just started): the lock and the scratch directory must not stay held by this process."""
    inside, go_on = threading.Event(), threading.Event()
    real = commit._try_enter

    def slow(scope: RunScope) -> int | None:
        inside.set()
        go_on.wait(5)
        return real(scope)

    monkeypatch.setattr(commit, "_try_enter", slow)

    async def one_run() -> None:
        async with run_scope(tmp_path):
            raise AssertionError("the run was cancelled before it held the lock")

    first = asyncio.create_task(one_run())
    assert await asyncio.to_thread(inside.wait, 5)
    first.cancel()
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    monkeypatch.setattr(commit, "_try_enter", real)
    async with asyncio.timeout(5), run_scope(tmp_path) as scope:  # the next run gets the lock
        assert scope.scratch.is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(commit.SCRATCH_PREFIX)] == []
