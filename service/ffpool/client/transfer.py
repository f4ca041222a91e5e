"""The client's HTTP transfers: uploads and output downloads (used by session.Client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import urljoin, urlsplit

import aiohttp

from ffpool.domain.events import OutputFile

CHUNK: Final = 256 * 1024


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


async def upload(
    http: aiohttp.ClientSession,
    http_url: str,
    path: Path,
    read_timeout: float,
    headers: Mapping[str, str],
) -> str:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        # aiohttp's sock_read starts only once the body is sent: a server that stops
        # reading would stall us forever, so every chunk taken re-arms this deadline.
        async with asyncio.timeout(read_timeout) as stall:
            body = _file_chunks(handle, stall, read_timeout)
            async with http.post(f"{http_url}/uploads", data=body, headers=headers) as resp:
                stall.reschedule(None)  # the reply's reads are bounded by sock_read
                reply = await resp.json()
    finally:
        await asyncio.to_thread(handle.close)
    if resp.status != 201:
        raise RuntimeError(f"upload failed ({resp.status}): {reply}")
    return str(reply["upload_id"])


async def _file_chunks(
    handle: BinaryIO, stall: asyncio.Timeout, read_timeout: float
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    while chunk := await asyncio.to_thread(handle.read, CHUNK):
        stall.reschedule(loop.time() + read_timeout)
        yield chunk


async def download(
    http: aiohttp.ClientSession,
    http_url: str,
    output: OutputFile,
    dest_dir: Path,
    headers: Mapping[str, str],
) -> Path:
    """Save one output. Its URL is a signed link; the token goes only to the server itself,
    never to another host the URL may name (PUBLIC_HTTP_URL, a CDN)."""
    await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
    dest = dest_dir / Path(output.name).name
    url = urljoin(http_url + "/", output.url)
    sent = headers if same_origin(url, http_url) else {}
    async with http.get(url, headers=sent) as resp:
        resp.raise_for_status()
        handle = await asyncio.to_thread(dest.open, "wb")
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
    return dest
