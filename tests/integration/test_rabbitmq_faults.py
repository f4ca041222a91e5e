"""Fault injection, bounded: separate `ffpool server` (2) and `ffpool worker` (3) processes on a
throwaway broker node, real FFmpeg, a seeded mix of a few hundred jobs, while workers are
killed (SIGKILL, SIGTERM), a server is killed under its subscribed clients, and the broker is
restarted. The ledger then checks that every accepted job ended exactly once as its client saw
it (and as every server says), completed outputs exist and are valid media, no job's FFmpeg ran
twice at once, no FFmpeg outlived its worker, and the DLQ holds exactly the poison jobs.

FAULT_SEED and FAULT_JOBS pick another mix or size (the defaults run in the `make test` budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from websockets.exceptions import WebSocketException

from ffpool.client.session import Client, ClientError
from tests.conftest import make_clip
from tests.integration import faults
from tests.integration.faults import Entry, Findings, Planned
from tests.integration.rabbit_harness import need_broker
from tests.integration.rabbit_procs import (
    Proc,
    ThrowawayBroker,
    free_port,
    service_env,
)
from tests.polling import eventually

# The run takes about 2 minutes on an idle 2-core machine; the limit leaves room for a loaded one.
pytestmark = [
    pytest.mark.faults,
    pytest.mark.rabbitmq,
    pytest.mark.ffmpeg,
    pytest.mark.timeout(480),
]

SEED = int(os.environ.get("FAULT_SEED", "7"))
JOBS = int(os.environ.get("FAULT_JOBS", "300"))
POISON, CANCEL, EARLY = 8, 8, 16
CLIENTS = 12
FOLLOW_S = 90.0
RUN_LIMIT_S = 400.0  # under the test's timeout, so a stuck run prints its tasks


class Cluster:
    """The processes; servers keep their ports across restarts, so clients' URLs stay valid."""

    def __init__(self, broker: ThrowawayBroker, media: Path, shim: Path, ffprobe: str) -> None:
        self.broker = broker
        self.media = media
        extra = {
            "ffmpeg_path": shim,
            "ffprobe_path": ffprobe,
            "max_attempts": 50,
            "drain_seconds": 2,
            "max_concurrent_jobs": 2,
        }
        self.ports = {name: (free_port(), free_port()) for name in ("s1", "s2")}
        self.envs = {
            name: service_env("fault", media, name, broker.url, **extra)
            for name in ("s1", "s2", "w1", "w2", "w3")
        }
        for name, (ws, http) in self.ports.items():
            self.envs[name].update(WS_PORT=str(ws), HTTP_PORT=str(http))
        self.procs: dict[str, Proc] = {}
        self.history: list[tuple[str, Proc]] = []
        self.survivors: list[int] = []
        self.ffmpeg_at_kills: list[int] = []  # how many FFmpeg each SIGKILLed worker had

    def url(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.ports[name][0]}/ws"

    def http(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name][1]}"

    async def start(self, name: str) -> None:
        role = "server" if name.startswith("s") else "worker"
        proc = Proc(role, self.envs[name])
        self.history.append((name, proc))
        self.procs[name] = await proc.start(timeout=60)

    def log_of(self, job_ids: set[str]) -> list[str]:
        """Every process's log lines (restarted ones too) that name one of these jobs."""
        return [
            f"{name}: {line}"
            for name, proc in self.history
            for line in proc.lines
            if any(j in line for j in job_ids)
        ]

    async def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a process; after a SIGKILL, the FFmpeg it ran must die too."""
        proc = self.procs[name]
        assert proc.proc is not None
        ffmpeg = faults.children(proc.proc.pid)
        for _ in range(50):  # a worker is killed mid-run, so the check below is not vacuous
            if ffmpeg or name.startswith("s"):
                break
            await asyncio.sleep(0.1)
            ffmpeg = faults.children(proc.proc.pid)
        proc.signal(sig)
        await proc.wait(30)
        if sig is signal.SIGKILL:
            self.ffmpeg_at_kills.append(len(ffmpeg))
            await asyncio.sleep(2.0)
            self.survivors += [pid for pid in ffmpeg if faults.alive(pid)]

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.procs.values()), return_exceptions=True)


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    need_broker()
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    assert ffmpeg is not None
    assert ffprobe is not None
    broker = ThrowawayBroker(tmp_path / "broker")
    broker.root.mkdir()
    await broker.start()
    media = tmp_path / "media"
    (media / "clips").mkdir(parents=True)
    make_clip(ffmpeg, media / "clips/sample.mp4", seconds=3, size="160x120")
    (media / faults.POISON_PATH).write_text("not a video\n" * 100)
    shim = faults.write_shim(tmp_path / "ledger", ffmpeg)
    nodes = Cluster(broker, media, shim, ffprobe)
    try:
        yield nodes
    finally:
        await nodes.stop_all()
        await broker.stop()


async def submit(urls: list[str], p: Planned, first: int) -> tuple[str, bool]:
    """Accepted (job id, duplicate), resubmitting with the same key through any refusal or a
    dead server: the key makes the retry safe."""
    for attempt in range(200):
        url = urls[(first + attempt) % len(urls)]
        try:
            async with Client(url, timeout=10) as client:
                acc = await client.submit(p.spec, p.priority, p.key)
                return acc.job_id, acc.duplicate
        except (ClientError, OSError, TimeoutError, WebSocketException):
            await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
    raise AssertionError(f"{p.key} never accepted")


async def follow(urls: list[str], entry: Entry, first: int) -> None:
    assert entry.job_id is not None
    order = urls[first:] + urls[:first]
    entry.outcomes.append(await faults.follow_outcome(order, entry.job_id, FOLLOW_S))


async def run_client(urls: list[str], work: asyncio.Queue[Entry], n: int, done: list[int]) -> None:
    while not work.empty():
        entry = work.get_nowait()
        entry.job_id, _duplicate = await submit(urls, entry.planned, n)
        if entry.planned.resubmit_elsewhere:  # the same key through the other server
            again, dup = await submit(urls, entry.planned, n + 1)
            assert (again, dup) == (entry.job_id, True), entry.planned.key
        await follow(urls, entry, n)
        done[0] += 1


async def faults_by_progress(nodes: Cluster, done: list[int], total: int) -> None:
    schedule = [
        (0.15, lambda: restart(nodes, "w1", signal.SIGKILL)),
        (0.30, lambda: restart(nodes, "s2", signal.SIGKILL)),
        (0.45, lambda: restart(nodes, "w2", signal.SIGTERM)),
        (0.60, lambda: restart_broker(nodes)),
        (0.75, lambda: restart(nodes, "w3", signal.SIGKILL)),
    ]
    for share, action in schedule:
        await eventually(
            lambda: done[0] >= share * total,  # noqa: B023 (awaited before `share` changes)
            timeout=RUN_LIMIT_S,
            what=f"{share:.0%} of the jobs done",
            interval=0.1,
        )
        await action()


async def restart(nodes: Cluster, name: str, sig: signal.Signals) -> None:
    await nodes.kill(name, sig)
    await nodes.start(name)


async def restart_broker(nodes: Cluster) -> None:
    await nodes.broker.stop()
    await nodes.broker.start()


async def server_views(nodes: Cluster, entries: list[Entry]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for e in entries:
            for name in ("s1", "s2"):
                async with http.get(f"{nodes.http(name)}/jobs/{e.job_id}") as resp:
                    body = await resp.json()
                    e.server_states.append(str(body.get("state", body)))
                    if name == "s1" and body.get("state") == "completed":
                        e.outputs_ok = await outputs_ok(nodes.media, body["result"]["outputs"])


async def outputs_ok(media: Path, outputs: list[dict[str, object]]) -> bool:
    for out in outputs:
        job_id = str(out["url"]).split("/")[2]  # /jobs/<id>/outputs/<name>
        path = media / "jobs" / job_id / str(out["name"])
        if not path.is_file() or path.stat().st_size != out["size"]:
            return False
        probe = await asyncio.create_subprocess_exec(
            "ffprobe",
            "-v",
            "error",
            "-show_format",
            str(path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if await probe.wait() != 0:
            return False
    return True


async def dead_letter_ids(nodes: Cluster) -> set[str]:
    url = f"{nodes.http('s1')}/dead-letters?limit=1000"
    limit = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=limit) as http, http.get(url) as resp:
        body = await resp.json()
    return {str(r["job_id"]) for r in body["dead_letters"]}


async def early_phase(nodes: Cluster, entries: list[Entry]) -> list[asyncio.Task[None]]:
    """Before any worker: jobs accepted by s1, which is then killed under its subscribed
    clients; s2 answers their resubmits (duplicates) and cancels the queued ones."""
    s1, s2 = nodes.url("s1"), nodes.url("s2")
    for e in entries:
        e.job_id, duplicate = await submit([s1], e.planned, 0)
        assert not duplicate
    followers = [asyncio.create_task(follow([s1, s2], e, 0)) for e in entries]
    await asyncio.sleep(1.0)  # subscribed on s1
    await nodes.kill("s1")
    for e in entries:
        again, duplicate = await submit([s2], e.planned, 0)
        assert (again, duplicate) == (e.job_id, True), e.planned.key
        if e.planned.kind == "cancel":
            async with Client(s2, timeout=10) as client:
                await client.cancel(e.job_id)
    await nodes.start("s1")
    return followers


async def test_exactly_once_effects_under_faults(tmp_path: Path) -> None:
    planned = faults.plan(SEED, JOBS - POISON - CANCEL, POISON, CANCEL)
    entries = [Entry(p) for p in planned]
    early = [e for e in entries if e.planned.kind == "cancel"]
    early += [e for e in entries if e.planned.kind == "ok"][:EARLY]
    rest = [e for e in entries if e not in early]
    main = asyncio.current_task()
    assert main is not None
    guard = asyncio.create_task(faults.watchdog(RUN_LIMIT_S, main))
    async with cluster(tmp_path) as nodes:
        await asyncio.gather(nodes.start("s1"), nodes.start("s2"))
        followers = await early_phase(nodes, early)
        await asyncio.gather(*(nodes.start(w) for w in ("w1", "w2", "w3")))
        work: asyncio.Queue[Entry] = asyncio.Queue()
        for e in rest:
            work.put_nowait(e)
        done = [0]
        urls = [nodes.url("s1"), nodes.url("s2")]
        chaos = asyncio.create_task(faults_by_progress(nodes, done, len(rest)))
        await asyncio.gather(*(run_client(urls, work, n, done) for n in range(CLIENTS)))
        await asyncio.gather(*followers)
        await chaos
        await server_views(nodes, entries)
        found = Findings(
            overlaps=_lines(tmp_path / "ledger" / "overlaps"),
            survivors=nodes.survivors + faults.processes_mentioning(str(nodes.media)),
            dead_letters=await dead_letter_ids(nodes),
            leftovers=[str(p) for p in (nodes.media / "jobs").glob("*/.run-*")],
        )
        runs = _lines(tmp_path / "ledger" / "runs")
    guard.cancel()
    print(
        f"seed {SEED}: {len(entries)} jobs, {len(runs)} FFmpeg runs of {len(set(runs))} jobs,"
        f" FFmpeg processes at each SIGKILL {nodes.ffmpeg_at_kills}"
    )
    problems = faults.problems(entries, found)
    if problems:
        print(
            "\n".join(
                nodes.log_of(
                    {
                        e.job_id
                        for e in entries
                        if e.job_id and any(e.job_id in p or e.planned.key in p for p in problems)
                    }
                )
            )
        )
    assert problems == []
    assert sum(nodes.ffmpeg_at_kills) > 0, "no SIGKILL caught a worker running FFmpeg"
    assert len(runs) >= JOBS - POISON - CANCEL  # FFmpeg really ran (once per job, or more)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
