"""The marker files' thread: results and errors reach each caller, many calls at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ffpool.backends.rabbitmq.markers import FileThread


async def test_calls_run_off_the_loop_and_return_their_results() -> None:
    files = FileThread()
    loop_thread = threading.get_ident()
    idents = await asyncio.gather(*(files.run(threading.get_ident) for _ in range(50)))
    assert loop_thread not in idents
    assert await asyncio.gather(*(files.run(lambda i=i: i * 2) for i in range(20))) == [
        i * 2 for i in range(20)
    ]


async def test_an_error_reaches_its_caller_only() -> None:
    files = FileThread()

    def boom() -> int:
        raise OSError("disk gone")

    results = await asyncio.gather(files.run(boom), files.run(lambda: 7), return_exceptions=True)
    assert isinstance(results[0], OSError)
    assert results[1] == 7
    with pytest.raises(OSError, match="disk gone"):
        await files.run(boom)
