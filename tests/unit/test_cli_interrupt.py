"""Ctrl-C while following a job (cli/interrupt.py), against a stand-in client: one press
cancels, two in quick succession leave the job running, and SIGINT is counted, not raised."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from ffpool.cli import interrupt
from ffpool.cli.interrupt import Interrupts, follow_job, interrupts
from ffpool.domain.events import CancelledEvent, CompletedEvent
from tests.polling import eventually

JOB = "a" * 32


class StandIn:
    """Follows a job that ends when told, or when cancelled (if `obeys`)."""

    def __init__(self, obeys: bool = True) -> None:
        self.outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.cancels: list[str] = []
        self.obeys = obeys

    async def follow(self, job_id: str, on_event: Any, **options: Any) -> Any:
        self.options = options
        return await self.outcome

    async def cancel(self, job_id: str) -> None:
        self.cancels.append(job_id)
        if self.obeys:
            self.outcome.set_result(CancelledEvent(job_id=job_id))


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interrupt, "LEAVE_WINDOW_S", 0.1)
    monkeypatch.setattr(interrupt, "CANCEL_WAIT_S", 0.3)


async def following(client: StandIn, keys: Interrupts) -> tuple[asyncio.Task[Any], list[str]]:
    said: list[str] = []
    task = asyncio.create_task(follow_job(client, JOB, keys, print, said.append))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # it is following now
    return task, said


async def test_without_ctrl_c_the_outcome_is_the_jobs() -> None:
    client, keys = StandIn(), Interrupts()
    task, said = await following(client, keys)
    client.outcome.set_result(CompletedEvent(job_id=JOB, processing_time_s=1.0))
    done = await task
    assert isinstance(done.outcome, CompletedEvent)
    assert not done.interrupted
    assert (said, client.cancels) == ([], [])


async def test_a_lost_connection_is_told_and_bounded() -> None:
    client, keys = StandIn(), Interrupts()
    task, said = await following(client, keys)
    await eventually(lambda: hasattr(client, "options"), timeout=5, what="the follow")
    assert client.options["reconnect_for"] == interrupt.RECONNECT_FOR_S
    client.options["on_reconnecting"](ConnectionRefusedError())
    assert said == ["connection lost; reconnecting…"]
    client.outcome.set_result(CompletedEvent(job_id=JOB, processing_time_s=1.0))
    await task


async def test_one_ctrl_c_cancels_after_the_window() -> None:
    client, keys = StandIn(), Interrupts()
    task, said = await following(client, keys)
    keys.press()
    done = await task
    assert isinstance(done.outcome, CancelledEvent)
    assert done.interrupted
    assert client.cancels == [JOB]
    assert said == [f"cancelling job {JOB} (Ctrl-C again to leave it running)"]


async def test_two_quick_presses_leave_the_job_running() -> None:
    client, keys = StandIn(), Interrupts()
    task, said = await following(client, keys)
    keys.press()
    keys.press()
    done = await task
    assert done.outcome is None
    assert done.interrupted
    assert client.cancels == []  # nothing was asked of the server
    assert said[-1] == f"left running: ffpool watch {JOB}"


async def test_a_cancel_without_an_outcome_is_waited_for_a_bounded_time() -> None:
    client, keys = StandIn(obeys=False), Interrupts()
    task, said = await following(client, keys)
    keys.press()
    done = await asyncio.wait_for(task, 5)
    assert done.outcome is None
    assert client.cancels == [JOB]
    assert said[-1].startswith("no outcome within")


async def test_a_press_after_the_cancel_stops_waiting() -> None:
    client, keys = StandIn(obeys=False), Interrupts()
    task, said = await following(client, keys)
    keys.press()
    await eventually(lambda: client.cancels, timeout=5, what="the cancel sent after the window")
    keys.press()
    done = await asyncio.wait_for(task, 5)
    assert (done.outcome, client.cancels) == (None, [JOB])
    assert said[-1].startswith("not waiting for the cancel")


async def test_sigint_is_counted_not_raised() -> None:
    with interrupts() as keys:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(keys.first_of(asyncio.Future(), presses=1), 5)
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(keys.first_of(asyncio.Future(), presses=2), 5)
    assert keys.presses == 2
