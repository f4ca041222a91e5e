"""A ladder through the whole service (memory backend, real FFmpeg, a tokens file): the
`completed` event links every file through the package route, and a player with no token
follows the links from the master playlist to a variant to its segments by resolving their
relative references against the link, with the right Content-Type, inline, `nosniff`, and CORS
for a listed origin; unknown names and bad tokens are refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import m3u8
import pytest

from ffpool import names
from tests.conftest import make_clip
from tests.integration.auth_harness import conn_as, http_status, secured
from tests.integration.service import submit

pytestmark = pytest.mark.ffmpeg

ORIGIN = "https://player.example"
LADDER = {
    "op": "ladder",
    "segment_seconds": 2,
    "preset": "ultrafast",
    "formats": ["hls", "dash"],
}


@pytest.fixture(scope="module")
def wide_clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        ffmpeg_bin, tmp_path_factory.mktemp("clip") / "wide.mp4", seconds=4, size="640x360"
    )


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with http.get(url, headers={"Origin": ORIGIN}) as resp:
        return resp, await resp.read()


def check_headers(resp: aiohttp.ClientResponse, content_type: str) -> None:
    assert resp.status == 200
    assert resp.headers["Content-Type"] == content_type
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in resp.headers
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_player_follows_the_package_links(
    media_root: Path, tmp_path: Path, wide_clip: Path
) -> None:
    shutil.copy(wide_clip, media_root / "clips" / "wide.mp4")
    async with secured(media_root, tmp_path, allowed_origins=(ORIGIN,)) as (svc, tokens):
        async with conn_as(svc, tokens["acme"]) as conn:
            await conn.send(submit(LADDER, path="clips/wide.mp4"))
            accepted = await conn.expect("accepted")
            events = await conn.until_terminal(accepted.job_id, timeout=90)
        done = events[-1]
        assert done.type == "completed", done
        by_name = {o.name: o for o in done.outputs}
        token = by_name["master.m3u8"].url.split("/")[-2]
        assert all(
            o.url == names.PACKAGE_PATH.format(job_id=done.job_id, token=token, name=o.name)
            for o in done.outputs
        )
        master_url = svc.http_url + by_name["master.m3u8"].url
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:  # no token at all
            resp, body = await fetch(http, master_url)
            check_headers(resp, "application/vnd.apple.mpegurl")
            master = m3u8.loads(body.decode())
            variant_url = urljoin(master_url, master.playlists[0].uri)
            resp, body = await fetch(http, variant_url)
            check_headers(resp, "application/vnd.apple.mpegurl")
            variant = m3u8.loads(body.decode())
            init_url = urljoin(variant_url, variant.segment_map[0].uri)
            resp, _ = await fetch(http, init_url)
            check_headers(resp, "video/mp4")
            for segment in variant.segments:
                resp, data = await fetch(http, urljoin(variant_url, segment.uri))
                check_headers(resp, "video/iso.segment")
                assert data
            resp, _ = await fetch(http, urljoin(master_url, "manifest.mpd"))
            check_headers(resp, "application/dash+xml")
            await _refusals(svc.http_url, done.job_id, token, master_url)


async def _refusals(base: str, job_id: str, token: str, master_url: str) -> None:
    # An unknown name in a valid package: 404.
    status, _ = await http_status("GET", urljoin(master_url, "nothing.m3u8"))
    assert status == 404
    # A token for another job, or a tampered one: no access (no bearer token either).
    other = names.PACKAGE_PATH.format(job_id="b" * 32, token=token, name="master.m3u8")
    status, _ = await http_status("GET", base + other)
    assert status == 401
    expires, _, sig = token.partition(".")
    tampered = f"{expires}.{'0' * len(sig)}"
    path = names.PACKAGE_PATH.format(job_id=job_id, token=tampered, name="master.m3u8")
    status, _ = await http_status("GET", base + path)
    assert status == 401
    # A per-file signature does not open the package route.
    status, _ = await http_status("GET", f"{base}/jobs/{job_id}/outputs/master.m3u8")
    assert status == 401
