"""The client's HTTP transfers: uploads and output downloads (used by queries.HttpQueries)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import urljoin, urlsplit

import aiohttp

from ffpool.client.outcomes import http_error
from ffpool.domain.events import OutputFile

CHUNK: Final = 256 * 1024


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def output_url(http_url: str, url: str) -> str:
    """An output's link as the client fetches it: a path (`/jobs/...`) is the server's own,
    under the base URL's path prefix if it has one (an Ingress routing `/ffpool/...`)."""
    if url.startswith("/") and not url.startswith("//"):
        return http_url.rstrip("/") + url
    return urljoin(http_url + "/", url)


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
                if resp.status != 201:
                    raise await http_error(resp)
                reply = await resp.json()
    finally:
        await asyncio.to_thread(handle.close)
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
    """Save one output into `dest_dir` under its own name (see `save`)."""
    dest = dest_dir / Path(output.name).name
    return await save(http, http_url, output, dest, headers)


async def save(
    http: aiohttp.ClientSession,
    http_url: str,
    output: OutputFile,
    dest: Path,
    headers: Mapping[str, str],
) -> Path:
    """Save one output to exactly `dest`. Its URL is a signed link; the token goes only to the
    server itself, never to another host the URL may name (PUBLIC_HTTP_URL, a CDN). The bytes
    go to a temporary name beside `dest`, renamed once complete: a failed download never
    leaves a partial file under the real name."""
    await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
    url = output_url(http_url, output.url)
    sent = headers if same_origin(url, http_url) else {}
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        async with http.get(url, headers=sent) as resp:
            if resp.status != 200:
                raise await http_error(resp)
            handle = await asyncio.to_thread(part.open, "wb")
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, part, dest)
    finally:
        await asyncio.to_thread(part.unlink, missing_ok=True)
    return dest
