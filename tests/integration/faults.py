"""Helpers of the fault-injection test (no tests here): the seeded job plan, the FFmpeg shim
that detects twin runs, process inspection, and the ledger's checks (pure, unit-tested)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from websockets.exceptions import WebSocketException

from ffpool.client.session import Client
from ffpool.domain.jobs import (
    JobSpec,
    PathInput,
    Preset,
    ThumbnailOp,
    TranscodeOp,
    TrimMode,
    TrimOp,
)

Kind = Literal["ok", "poison", "cancel"]
EXPECTED: dict[str, str] = {"ok": "completed", "poison": "failed", "cancel": "cancelled"}
POISON_PATH = "clips/poison.mp4"

# Every FFmpeg run of a job takes an exclusive lock on the job's ledger file and keeps it (the
# fd survives `exec`) until FFmpeg exits or dies; a second run of the same job that starts
# while the first still runs cannot take it and says so. `exec` keeps the process id and the
# parent-death signal the worker set (pdeathsig.py).
SHIM = """#!/bin/bash
if [[ "$*" =~ jobs/([0-9a-f]{{32}})/ ]]; then
  id="${{BASH_REMATCH[1]}}"
  exec 9>>"{ledger}/$id.lock"
  flock -n 9 || echo "$id" >> "{ledger}/overlaps"
  echo "$id" >> "{ledger}/runs"
fi
exec {ffmpeg} "$@"
"""


@dataclass(frozen=True)
class Planned:
    key: str
    kind: Kind
    spec: JobSpec
    priority: int
    resubmit_elsewhere: bool


def plan(seed: int, ok: int, poison: int, cancel: int) -> list[Planned]:
    """A reproducible mix: cheap real FFmpeg jobs, poison inputs, and jobs to cancel."""
    rng = random.Random(seed)
    jobs = [_ok(rng, seed, n) for n in range(ok)]
    bad = JobSpec(input=PathInput(path=POISON_PATH), operation=ThumbnailOp())
    jobs += [Planned(f"s{seed}-poison-{n}", "poison", bad, 5, False) for n in range(poison)]
    slow = TranscodeOp(preset=Preset.ULTRAFAST, height=64)
    jobs += [Planned(f"s{seed}-cancel-{n}", "cancel", _spec(slow), 0, False) for n in range(cancel)]
    rng.shuffle(jobs)
    return jobs


def _spec(op: ThumbnailOp | TranscodeOp | TrimOp) -> JobSpec:
    return JobSpec(input=PathInput(path="clips/sample.mp4"), operation=op)


def _ok(rng: random.Random, seed: int, n: int) -> Planned:
    pick = rng.random()
    op: ThumbnailOp | TranscodeOp | TrimOp
    if pick < 0.6:
        op = ThumbnailOp(time=round(rng.uniform(0, 2.5), 2), width=rng.choice([64, 96, 128]))
    elif pick < 0.8:
        op = TrimOp(start=round(rng.uniform(0, 1.5), 2), duration=1.0, mode=TrimMode.COPY)
    else:
        op = TranscodeOp(preset=Preset.ULTRAFAST, height=64, crf=rng.choice([30, 35, 40]))
    return Planned(f"s{seed}-ok-{n}", "ok", _spec(op), 5, rng.random() < 0.2)


def write_shim(ledger: Path, ffmpeg: str) -> Path:
    ledger.mkdir(parents=True, exist_ok=True)
    shim = ledger / "ffmpeg-shim"
    shim.write_text(SHIM.format(ledger=ledger, ffmpeg=ffmpeg))
    shim.chmod(0o755)
    return shim


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return found


def alive(pid: int) -> bool:
    """Running or stopped, not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline and alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids


@dataclass
class Entry:
    """What the job's client saw, and what the service says afterwards."""

    planned: Planned
    job_id: str | None = None
    outcomes: list[str] = field(default_factory=list)
    server_states: list[str] = field(default_factory=list)
    outputs_ok: bool | None = None  # completed: every output there with its size, and valid


@dataclass
class Findings:
    overlaps: list[str]
    survivors: list[int]  # FFmpeg processes that outlived their killed worker
    dead_letters: set[str]
    leftovers: list[str]  # run scratch directories left behind


def problems(entries: list[Entry], found: Findings) -> list[str]:
    """Everything the ledger disproves; empty when every guarantee held."""
    out: list[str] = []
    for e in entries:
        want = EXPECTED[e.planned.kind]
        if e.job_id is None:
            out.append(f"{e.planned.key}: never accepted")
            continue
        if e.outcomes != [want]:
            out.append(f"{e.planned.key} ({e.job_id}): client saw {e.outcomes}, wanted [{want}]")
        if any(state != want for state in e.server_states):
            out.append(f"{e.job_id}: servers say {e.server_states}, client saw {want}")
        if want == "completed" and not e.outputs_ok:
            out.append(f"{e.job_id}: completed, but its outputs are missing or invalid")
    poison = {e.job_id for e in entries if e.planned.kind == "poison"}
    if found.dead_letters != poison:
        extra, missing = found.dead_letters - poison, poison - found.dead_letters
        out.append(f"DLQ: unexpected {sorted(extra)}, missing {sorted(missing)}")
    out += [f"{job_id}: two FFmpeg runs at once" for job_id in sorted(set(found.overlaps))]
    out += [f"FFmpeg {pid} outlived its worker" for pid in found.survivors]
    out += [f"run scratch left behind: {path}" for path in found.leftovers]
    return out


async def watchdog(after_s: float, main: asyncio.Task[None]) -> None:
    """Where every task waits, then cancel the run: a stuck run fails with its stacks."""
    await asyncio.sleep(after_s)
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=12, file=sys.stderr)
    main.cancel(f"the run took over {after_s:.0f} s")


async def follow_outcome(order: list[str], job_id: str, timeout: float) -> str:
    """The outcome a client following `job_id` sees, asking the servers of `order` in turn while
    one is down; "no outcome in time" or "no server answered" when there is none to see."""
    for attempt in range(50):
        async with contextlib.AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(
                    Client(order[attempt % len(order)], timeout=10)
                )
            except (OSError, TimeoutError, WebSocketException):  # its server is down: the next
                await asyncio.sleep(0.5)
                continue
            try:
                outcome = await client.follow(job_id, timeout=timeout, ws_urls=order)
            except TimeoutError:  # no outcome reached the client in time: the ledger says so
                return "no outcome in time"
            return str(outcome.type)
    return "no server answered"
