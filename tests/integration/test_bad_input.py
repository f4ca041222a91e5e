"""Hostile and broken input: each gets a clear `error` or `failed`, the service stays healthy,
other clients are unaffected and nothing is written outside MEDIA_ROOT."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.service import Conn, conn, service, submit

FILTERISH = [
    "movie=/etc/passwd",
    "concat:/etc/passwd|/etc/hosts",
    "subfile:,start,0,end,0,:/etc/passwd",
    "file:/etc/passwd",
    "-i",
    "-filter_complex",
    "[0:v]drawtext=textfile=/etc/passwd",
    "pipe:0",
    "a.mp4;rm -rf /",
    "$(id)",
    "lavfi",
]

# (message, expected error code)
REFUSED: list[tuple[Any, str]] = [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('"just a string"', "invalid_message"),
    ({"type": "explode"}, "unknown_type"),
    ({"type": {"a": 1}}, "unknown_type"),
    ({"type": ["submit"]}, "unknown_type"),
    ("[" * 30000 + "]" * 30000, "invalid_json"),
    ('{"type":"ping","request_id":"\\ud800"}', "invalid_message"),
    ('{"type":"submit","request_id":"\\ud800","job":{}}', "invalid_job"),
    (submit({"op": "thumbnail"}, priority=True), "invalid_job"),
    (submit({"op": "thumbnail"}, priority="5"), "invalid_job"),
    (submit({"op": "trim", "duration": 1e-300}), "invalid_job"),
    (submit({"op": "thumbnail", "width": "320"}), "invalid_job"),
    ({"no_type": 1}, "unknown_type"),
    ({"type": "submit"}, "invalid_job"),
    ({"type": "submit", "job": {"input": {"kind": "path", "path": "a.mp4"}}}, "invalid_job"),
    ({"type": "cancel"}, "invalid_message"),
    ({"type": "subscribe", "job_id": "../../etc"}, "invalid_message"),
    ({"type": "subscribe", "job_id": "0" * 32}, "unknown_job"),
    ({"type": "cancel", "job_id": "f" * 32}, "unknown_job"),
    (submit({"op": "thumbnail", "width": 10**9}), "invalid_job"),
    (submit({"op": "thumbnail", "time": -1}), "invalid_job"),
    (submit({"op": "trim", "duration": 0}), "invalid_job"),
    (submit({"op": "trim", "duration": 1e300}), "invalid_job"),
    (
        '{"type":"submit","job":{"input":{"kind":"path","path":"a.mp4"},'
        '"operation":{"op":"thumbnail","time":NaN}}}',
        "invalid_job",
    ),
    (submit({"op": "transcode", "fps": 100000}), "invalid_job"),
    (submit({"op": "transcode", "crf": -5}), "invalid_job"),
    (submit({"op": "transcode", "container": "webm", "video_codec": "h264"}), "invalid_job"),
    (submit({"op": "transcode", "extra_args": ["-f", "lavfi"]}), "invalid_job"),
    (submit({"op": "thumbnail"}, priority=1000), "invalid_job"),
    (submit({"op": "thumbnail"}, path="/etc/passwd"), "invalid_job"),
    (submit({"op": "thumbnail"}, idempotency_key="-x;$(id)"), "invalid_job"),
    (
        {
            "type": "submit",
            "job": {"input": {"kind": "upload", "upload_id": "../x"}, "operation": {"op": "probe"}},
        },
        "invalid_job",
    ),
    (
        {
            "type": "submit",
            "job": {
                "input": {"kind": "url", "url": "file:///etc/passwd"},
                "operation": {"op": "probe"},
            },
        },
        "invalid_job",
    ),
    (
        {
            "type": "submit",
            "job": {"input": {"kind": "url", "url": "gopher://x/"}, "operation": {"op": "probe"}},
        },
        "invalid_job",
    ),
]
# "lavfi" is a legal file name: as a path it is just a missing file (see FAILING).
REFUSED += [(submit({"op": "thumbnail"}, path=t), "invalid_job") for t in FILTERISH if t != "lavfi"]
for field in ("container", "video_codec", "audio_codec", "preset"):
    REFUSED += [(submit({"op": "transcode", field: t}), "invalid_job") for t in FILTERISH[:4]]
REFUSED += [(submit({"op": "thumbnail", "format": t}), "invalid_job") for t in FILTERISH[:4]]
REFUSED += [(submit({"op": "trim", "duration": 1, "mode": t}), "invalid_job") for t in FILTERISH]

# Valid messages whose jobs must fail cleanly when they run: (input, expected failure code).
FAILING: list[tuple[dict[str, str], str]] = [
    ({"kind": "path", "path": "../outside.mp4"}, "input_rejected"),
    ({"kind": "path", "path": "clips/../../outside.mp4"}, "input_rejected"),
    ({"kind": "path", "path": "clips/escape.mp4"}, "input_rejected"),
    ({"kind": "path", "path": "clips/missing.mp4"}, "input_not_found"),
    ({"kind": "path", "path": "lavfi"}, "input_not_found"),
    ({"kind": "path", "path": "clips/notmedia.mp4"}, "invalid_media"),
    ({"kind": "path", "path": "clips/playlist.mp4"}, "invalid_media"),
    ({"kind": "upload", "upload_id": "a" * 32}, "input_not_found"),
    ({"kind": "url", "url": "http://127.0.0.1:1/x.mp4"}, "input_rejected"),
    ({"kind": "url", "url": "http://localhost/x.mp4"}, "input_rejected"),
    ({"kind": "url", "url": "http://169.254.169.254/latest/meta-data"}, "input_rejected"),
    ({"kind": "url", "url": "http://10.0.0.1/x.mp4"}, "input_rejected"),
    ({"kind": "url", "url": "http://[::1]/x.mp4"}, "input_rejected"),
    ({"kind": "url", "url": "http://[::ffff:127.0.0.1]/x.mp4"}, "input_rejected"),
    # Cloud credential endpoints (docs/security.md) and a name too long for the file system.
    ({"kind": "url", "url": "http://169.254.170.2/v2/credentials"}, "input_rejected"),
    ({"kind": "url", "url": "http://100.100.100.200/latest/meta-data"}, "input_rejected"),
    ({"kind": "url", "url": "http://[fd00:ec2::23]/"}, "input_rejected"),
    ({"kind": "url", "url": "http://168.63.129.16/machine"}, "input_rejected"),
    ({"kind": "path", "path": "clips/" + "a" * 300 + ".mp4"}, "input_rejected"),
]


def tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def hostile_media(media_root: Path) -> Path:
    outside = media_root.parent / "outside.mp4"
    outside.write_bytes((media_root / "clips" / "sample.mp4").read_bytes())
    os.symlink(outside, media_root / "clips" / "escape.mp4")
    (media_root / "clips" / "notmedia.mp4").write_bytes(b"this is not a video\n" * 100)
    # An HLS playlist pretending to be an MP4 that points FFmpeg at a local file outside.
    (media_root / "clips" / "playlist.mp4").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{outside}\n#EXT-X-ENDLIST\n"
    )
    return media_root


async def assert_still_healthy(c: Conn, http_url: str) -> None:
    await c.send({"type": "ping", "request_id": "still-there"})
    assert (await c.recv()).type == "pong"
    async with aiohttp.ClientSession() as http, http.get(f"{http_url}/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "healthy"


async def test_refused_messages_get_errors_and_keep_the_connection(
    hostile_media: Path, tmp_path: Path
) -> None:
    before = tree(tmp_path)
    async with service(hostile_media) as svc, conn(svc) as c:
        for message, code in REFUSED:
            await c.send(message)
            reply = await c.recv()
            assert (reply.type, reply.code) == ("error", code), (message, reply)
            assert reply.message
        await assert_still_healthy(c, svc.http_url)
    assert tree(tmp_path) - before <= tree(hostile_media)


async def test_errors_name_the_job_and_leave_no_subscription_behind(hostile_media: Path) -> None:
    async with service(hostile_media) as svc, conn(svc) as c:
        for i in range(1100):  # more than one connection may follow at once
            await c.send({"type": "cancel", "job_id": f"{i:032x}", "request_id": str(i)})
            reply = await c.recv()
            assert (reply.code, reply.job_id, reply.request_id) == (
                "unknown_job",
                f"{i:032x}",
                str(i),
            )
        await c.send(submit({"op": "probe"}))
        accepted = await c.expect("accepted")
        assert (await c.until_terminal(accepted.job_id))[-1].type == "completed"


async def test_oversized_message_is_refused_not_fatal(hostile_media: Path) -> None:
    async with service(hostile_media, max_message_bytes=1024) as svc, conn(svc) as c:
        await c.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
        reply = await c.recv()
        assert (reply.type, reply.code) == ("error", "message_too_large")
        await assert_still_healthy(c, svc.http_url)


async def test_bad_inputs_fail_cleanly(hostile_media: Path, tmp_path: Path) -> None:
    before = tree(tmp_path)
    async with service(hostile_media) as svc, conn(svc) as c:
        for job_input, code in FAILING:
            await c.send(
                {"type": "submit", "job": {"input": job_input, "operation": {"op": "thumbnail"}}}
            )
            accepted = await c.expect("accepted")
            final = (await c.until_terminal(accepted.job_id))[-1]
            assert (final.type, final.code) == ("failed", code), (job_input, final)
            assert "/etc/passwd" not in final.stderr_tail
        await assert_still_healthy(c, svc.http_url)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{svc.http_url}/dead-letters") as resp,
        ):
            dead = await resp.json()
        assert len(dead["dead_letters"]) == len(FAILING)
    escaped = {p for p in tree(tmp_path) - before if hostile_media not in p.parents}
    assert escaped == set()
