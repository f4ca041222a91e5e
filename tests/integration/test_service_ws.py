"""End to end over real WebSocket connections, memory backend, real FFmpeg."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import aiohttp

from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, PathInput, ThumbnailOp, TranscodeOp
from tests.conftest import make_clip
from tests.integration.service import conn, service, submit

SLOW = {"op": "transcode", "preset": "veryslow", "height": 480, "crf": 18}


def ffprobe_json(ffprobe: str, path: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


async def test_transcode_with_progress_and_download(
    media_root: Path, ffprobe_bin: str, tmp_path: Path
) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=TranscodeOp(height=144))
        accepted = await client.submit(spec)
        events: list[object] = []
        outcome = await client.wait(accepted.job_id, on_event=events.append)
        assert isinstance(outcome, CompletedEvent), outcome
        percents = [e.percent for e in events if getattr(e, "type", "") == "progress"]
        assert percents, "no progress events"
        assert all(p is not None for p in percents)
        assert percents == sorted(percents)  # type: ignore[type-var]
        assert percents[-1] == 100.0
        [output] = outcome.outputs
        assert outcome.metadata is not None
        assert outcome.metadata.duration is not None
        local = await client.download(output, tmp_path / "out")
        info = ffprobe_json(ffprobe_bin, local)
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["height"]) == ("h264", 144)
        assert local.stat().st_size == output.size


async def test_thumbnail_and_health_counts(media_root: Path) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp(time=1))
        outcome = await client.wait((await client.submit(spec)).job_id)
        assert isinstance(outcome, CompletedEvent)
        assert outcome.outputs[0].content_type == "image/jpeg"
        async with aiohttp.ClientSession() as http, http.get(f"{svc.http_url}/health") as resp:
            body = await resp.json()
        assert body["status"] == "healthy"
        assert body["stats"] == {
            "total_jobs": 1,
            "active_jobs": 0,
            "queued_jobs": 0,
            "max_concurrent": 2,
            "backend": "memory",
            "dead_letters": 0,
        }


async def test_cancel_running_and_queued(media_root: Path) -> None:
    async with service(media_root, max_concurrent_jobs=1) as svc, conn(svc) as c:
        await c.send(submit(SLOW, request_id="a"))
        running_id = (await c.expect("accepted")).job_id
        await c.send(submit(SLOW, request_id="b"))
        queued_id = (await c.expect("accepted")).job_id
        assert (await c.expect("progress")).job_id == running_id
        await c.send({"type": "cancel", "job_id": queued_id})
        await c.send({"type": "cancel", "job_id": running_id})
        seen = {}
        while len(seen) < 2:
            msg = await c.recv()
            if msg.type == "cancelled":
                seen[msg.job_id] = msg
        assert set(seen) == {running_id, queued_id}
        # Nothing but bookkeeping (the run lock, whose quota): no output, no run scratch directory.
        bookkeeping = {".ffpool-run.lock", ".ffpool-tenant"}
        leftovers = [p for p in (media_root / "jobs").glob("*/*") if p.name not in bookkeeping]
        assert leftovers == [], leftovers


async def test_timeout_fails_the_job(media_root: Path) -> None:
    async with service(media_root, job_timeout_seconds=1.0) as svc, conn(svc) as c:
        await c.send(submit(SLOW))
        job_id = (await c.expect("accepted")).job_id
        final = (await c.until_terminal(job_id))[-1]
        assert final.type == "failed"
        assert final.code == "timeout"


async def test_priority_order(media_root: Path) -> None:
    async with service(media_root, max_concurrent_jobs=1) as svc, conn(svc) as c:
        await c.send(submit(SLOW, priority=0))
        blocker = (await c.expect("accepted")).job_id
        ids = {}
        for prio in (1, 9, 5):
            await c.send(submit({"op": "thumbnail"}, priority=prio))
            ids[(await c.expect("accepted")).job_id] = prio
        started: list[str] = []
        done = 0
        while done < 4:
            msg = await c.recv()
            if msg.type == "state" and msg.state == "running":
                started.append(msg.job_id)
            done += msg.type == "completed"
        assert started[0] == blocker
        assert [ids[j] for j in started[1:]] == [9, 5, 1]


async def test_idempotent_resubmission(media_root: Path) -> None:
    async with service(media_root) as svc, conn(svc) as c:
        await c.send(submit({"op": "thumbnail"}, idempotency_key="clip-1-thumb"))
        first = await c.expect("accepted")
        await c.until_terminal(first.job_id)
        await c.send(submit({"op": "thumbnail"}, idempotency_key="clip-1-thumb"))
        again = await c.expect("accepted")
        assert (again.type, again.job_id, again.duplicate) == ("accepted", first.job_id, True)
        snapshot, final = await c.recv(), await c.recv()
        assert (snapshot.type, snapshot.state, final.type) == ("state", "completed", "completed")
        assert len(list((media_root / "jobs").iterdir())) == 1


async def test_subscribe_after_reconnect(media_root: Path, ffmpeg_bin: str) -> None:
    make_clip(ffmpeg_bin, media_root / "clips" / "long.mp4", seconds=6)
    async with service(media_root) as svc:
        async with conn(svc) as first:
            await first.send(submit({"op": "transcode", "preset": "slow"}, path="clips/long.mp4"))
            job_id = (await first.expect("accepted")).job_id
            await first.expect("progress")
        async with conn(svc) as second:
            await second.send({"type": "subscribe", "job_id": job_id})
            events = await second.until_terminal(job_id)
        assert events[0].type == "state"
        assert events[0].state == "running"
        assert events[-1].type == "completed"
        assert any(e.type == "progress" for e in events)


async def test_many_clients_do_not_disturb_each_other(media_root: Path) -> None:
    async with service(media_root, max_concurrent_jobs=2) as svc:

        async def one(i: int) -> str:
            async with conn(svc) as c:
                await c.send("{not json" if i % 2 else submit({"op": "probe"}))
                first = await c.recv()
                if first.type == "error":
                    return "error"
                return str((await c.until_terminal(first.job_id))[-1].type)

        results = await asyncio.gather(*(one(i) for i in range(8)))
        assert sorted(results) == ["completed"] * 4 + ["error"] * 4


async def test_readiness_goes_down_when_shutdown_starts(media_root: Path) -> None:
    async with service(media_root) as svc, aiohttp.ClientSession() as http:
        async with http.get(f"{svc.http_url}/readyz") as resp:
            assert resp.status == 200
        svc.stopping.set()
        async with http.get(f"{svc.http_url}/readyz") as resp:
            assert resp.status == 503
        async with http.get(f"{svc.http_url}/livez") as resp:
            assert resp.status == 200
