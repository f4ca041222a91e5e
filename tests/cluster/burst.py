"""A burst of real FFmpeg jobs submitted the way users do: the clips uploaded and the jobs
submitted through the pool's Ingress with the project's WebSocket client, every event of every
job recorded in a ledger (bench/ledger.py) to prove each ran once, start to finish."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bench.ledger import Ledger
from ffpool import names
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, Preset, TranscodeOp, UploadInput


@dataclass
class BurstResult:
    ledger: Ledger
    long_jobs: set[str]
    completed: dict[str, int]
    """How many `completed` events each job's client saw."""
    long_done_at: float
    downloaded: list[Path]
    """One output of each kind of job, downloaded through the Ingress."""


async def _follow(
    client: Client, job_id: str, ledger: Ledger, completed: dict[str, list[CompletedEvent]]
) -> float:
    async for event in client.events(job_id, timeout=480):
        ledger.ingest(event, time.monotonic())
        if isinstance(event, CompletedEvent):
            completed.setdefault(job_id, []).append(event)
    return time.monotonic()


async def burst(
    ingress_url: str,
    token: str,
    short_clip: Path,
    long_clip: Path,
    short: int,
    long: int,
    out_dir: Path,
) -> BurstResult:
    """`short` quick transcodes, then `long` slow ones (submitted last, so they run while the
    other workers go idle and the pool scales down around them); every request carries `token`
    (the pool's tokens Secret holds its hash)."""
    ws_url = ingress_url.replace("http://", "ws://") + names.WS_PATH
    async with Client(ws_url, http_url=ingress_url, timeout=60, token=token) as client:
        quick = UploadInput(upload_id=await client.upload(short_clip))
        slow = UploadInput(upload_id=await client.upload(long_clip))
        specs = [JobSpec(input=quick, operation=TranscodeOp(preset=Preset.VERYFAST))] * short
        specs += [JobSpec(input=slow, operation=TranscodeOp(preset=Preset.SLOW))] * long
        ids = [(await client.submit(spec)).job_id for spec in specs]
        ledger, completed = Ledger(expected=set(ids)), {}
        finished = await asyncio.gather(*(_follow(client, i, ledger, completed) for i in ids))
        downloaded = []
        for job in (ids[0], ids[-1]):
            if job in completed:
                (out_dir / job).mkdir(parents=True)
                output = completed[job][0].outputs[0]
                downloaded.append(await client.download(output, out_dir / job))
    return BurstResult(
        ledger=ledger,
        long_jobs=set(ids[short:]),
        completed={job: len(events) for job, events in completed.items()},
        long_done_at=max(finished[short:], default=0.0),
        downloaded=downloaded,
    )
