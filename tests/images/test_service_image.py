"""The service image runs `ffpool serve` as Kubernetes runs the pool's pods (uid 10001, read-only
root, no capabilities) and completes a real FFmpeg job submitted with the Python client."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import aiohttp
import pytest

from ffpool import names
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, PathInput, Preset, TranscodeOp
from tests.images.conftest import (
    APP_UID,
    SERVICE,
    Images,
    assert_restricted,
    container,
    free_port,
    process_status,
    wait_http,
)

pytestmark = [pytest.mark.images, pytest.mark.ffmpeg, pytest.mark.timeout(1500)]


def _give_to_app_user(root: Path) -> None:
    """The media volume as a pod's fsGroup would leave it: writable for 10001."""
    for path in [root, *root.rglob("*")]:
        if os.geteuid() == 0:
            os.chown(path, APP_UID, APP_UID)
        else:
            path.chmod(0o777 if path.is_dir() else 0o666)


async def test_serve_completes_a_real_job_as_10001(
    images: Images, media_root: Path, tmp_path: Path, ffprobe_bin: str
) -> None:
    _give_to_app_user(media_root)
    ws_port, http_port, ops_port = free_port(), free_port(), free_port()
    # No --user: the image's own USER must make it 10001.
    with container(
        images,
        "-v",
        f"{media_root}:/media",
        "-e",
        "HOST=127.0.0.1",
        "-e",
        f"WS_PORT={ws_port}",
        "-e",
        f"HTTP_PORT={http_port}",
        "-e",
        f"OPS_PORT={ops_port}",
        "-e",
        "MAX_CONCURRENT_JOBS=1",
        SERVICE,
        "serve",
    ) as name:
        http_url = f"http://127.0.0.1:{http_port}"
        await wait_http(images, name, http_url + names.READY_PATH)
        assert_restricted(process_status(images, name))
        # The web page ships inside the package: the image serves it and its assets.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for path in (names.PAGE_PATH, "/static/app.js"):
                async with http.get(http_url + path) as page:
                    assert page.status == 200, path
                    assert "default-src 'self'" in page.headers["Content-Security-Policy"]

        spec = JobSpec(
            input=PathInput(path="clips/sample.mp4"),
            operation=TranscodeOp(height=120, preset=Preset.ULTRAFAST),
        )
        async with Client(f"ws://127.0.0.1:{ws_port}{names.WS_PATH}", http_url) as client:
            job_id = (await client.submit(spec)).job_id
            outcome = await client.wait(job_id, timeout=120)
            assert isinstance(outcome, CompletedEvent), outcome
            [output] = outcome.outputs
            downloaded = await client.download(output, tmp_path / "out")

    # Written by the container's FFmpeg into the bind-mounted volume, as the app user.
    written = media_root / "jobs" / job_id / output.name
    assert written.is_file()
    assert written.stat().st_uid == APP_UID
    assert written.read_bytes() == downloaded.read_bytes()
    probe = subprocess.run(
        [ffprobe_bin, "-v", "error", "-print_format", "json", "-show_streams", str(written)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    streams = json.loads(probe.stdout)["streams"]
    video = [s for s in streams if s["codec_type"] == "video"]
    assert [(s["codec_name"], s["height"]) for s in video] == [("h264", 120)]
    assert any(s["codec_type"] == "audio" for s in streams)
