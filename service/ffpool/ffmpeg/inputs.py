"""Turn a job's input into a local file FFmpeg may read.

Path and upload inputs are resolved by Storage. A URL input is downloaded by the worker itself
into the run's scratch directory (FFmpeg never opens a network URL; the download goes with the
run, whatever its outcome), with the SSRF guard of `ffpool.ffmpeg.url_guard` applied at every
connection and every redirect hop, a size limit checked on Content-Length and again on the
bytes actually received, and one deadline for the whole download, redirects included.

Why a download failed (the remote status, refused or timed out) is logged, never told to the
client: otherwise URL inputs are a port scanner for whatever the worker can reach.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final, assert_never

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ffpool import logs
from ffpool.domain.events import FailureCode
from ffpool.domain.jobs import (
    ANONYMOUS_TENANT,
    JobInput,
    PathInput,
    S3Input,
    UploadInput,
    UrlInput,
)
from ffpool.ffmpeg import url_guard
from ffpool.settings import Settings
from ffpool.storage.media import Storage, StorageError, stream_to_file

log = logs.get(__name__)

# A URL input's download inside the job directory: hidden, so it is never served as an output.
URL_INPUT_NAME: Final = ".input"
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
READ_CHUNK_BYTES: Final = 64 * 1024
DOWNLOAD_FAILED_MESSAGE: Final = "the URL could not be fetched"
REFUSED_MESSAGE: Final = "the URL's host is not allowed"
S3_NEEDS_OBJECT_STORAGE: Final = "s3:// inputs need a pool with object storage (STORAGE=s3)"


class InputError(Exception):
    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def materialize(
    job_input: JobInput,
    job_id: str,
    storage: Storage,
    settings: Settings,
    tenant: str = ANONYMOUS_TENANT,
    *,
    into: Path,
) -> Path:
    """The local file for a job's input; raises InputError with a FailureCode. A URL input is
    downloaded into `into`: the run's scratch directory, removed with the run."""
    try:
        match job_input:
            case PathInput():
                return await asyncio.to_thread(storage.resolve_media_path, job_input.path)
            case UploadInput():
                return await asyncio.to_thread(storage.upload_path, tenant, job_input.upload_id)
            case UrlInput():
                log.info("downloading URL input", job_id=job_id, host=job_input.url.host)
                return await fetch_url(str(job_input.url), into / URL_INPUT_NAME, settings)
            case S3Input():
                # With STORAGE=s3 the executor reads these itself (object_inputs.py).
                raise InputError(FailureCode.INPUT_REJECTED, S3_NEEDS_OBJECT_STORAGE)
            case _:
                assert_never(job_input)
    except StorageError as exc:
        raise InputError(exc.code, exc.message) from exc


async def fetch_url(
    url: str,
    dest: Path,
    settings: Settings,
    *,
    address_policy: url_guard.AddressPolicy | None = None,
    upstream: AbstractResolver | None = None,
) -> Path:
    """Download `url` to `dest` (via a temporary name). `address_policy` defaults to the one
    `settings.url_allow_private` implies; `upstream` is the resolver the guard wraps."""
    address_policy = address_policy or url_guard.policy(settings.url_allow_private)
    resolver = url_guard.GuardedResolver(upstream or DefaultResolver(), address_policy)
    start = URL(url, encoded=True)
    temp = dest.with_name(f"{dest.name}.part")
    temp.unlink(missing_ok=True)  # a retried job's leftover
    try:
        async with asyncio.timeout(settings.url_fetch_timeout_seconds):
            await _download(start, temp, settings, address_policy, resolver)
    except TimeoutError as exc:
        limit = settings.url_fetch_timeout_seconds
        raise _failed(start, f"timed out after {limit:g} s") from exc
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, url_guard.AddressRefused):
            raise _refused(start, str(exc.os_error)) from exc
        raise _failed(start, "could not connect") from exc
    except (aiohttp.ClientError, OSError) as exc:
        # Never str(exc): aiohttp's messages can carry the full URL and its query string.
        raise _failed(start, type(exc).__name__) from exc
    except StorageError as exc:
        raise InputError(exc.code, f"download {exc.message}") from exc
    finally:
        await resolver.close()
    os.replace(temp, dest)
    return dest


def _failed(url: URL, why: str) -> InputError:
    log.warning("URL input download failed", url=url_guard.masked(url), reason=why)
    return InputError(FailureCode.DOWNLOAD_FAILED, DOWNLOAD_FAILED_MESSAGE)


def _refused(url: URL, why: str) -> InputError:
    """A name that resolves to a refused address: which one, and what kind, stays in the log
    (the client would learn the worker's view of internal DNS)."""
    log.warning("URL input refused", url=url_guard.masked(url), reason=why)
    return InputError(FailureCode.INPUT_REJECTED, REFUSED_MESSAGE)


async def _download(
    url: URL,
    temp: Path,
    settings: Settings,
    address_policy: url_guard.AddressPolicy,
    resolver: AbstractResolver,
) -> None:
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=1)
    timeout = aiohttp.ClientTimeout(total=settings.url_fetch_timeout_seconds)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, trust_env=False
    ) as session:
        response = await _open(session, url, settings, address_policy)
        async with response:
            _check_response(response, settings.url_max_bytes)
            chunks = response.content.iter_chunked(READ_CHUNK_BYTES)
            await stream_to_file(chunks, temp, settings.url_max_bytes)


async def _open(
    session: aiohttp.ClientSession,
    url: URL,
    settings: Settings,
    address_policy: url_guard.AddressPolicy,
) -> aiohttp.ClientResponse:
    """GET `url`, following redirects by hand so each hop's URL is checked again (its
    addresses are checked by the guarded resolver when the hop connects)."""
    for _ in range(settings.url_max_redirects + 1):
        problem = url_guard.url_problem(url, address_policy)
        if problem:
            raise InputError(FailureCode.INPUT_REJECTED, problem)
        headers = {"Accept-Encoding": "identity"}
        response = await session.get(url, allow_redirects=False, headers=headers)
        if response.status not in REDIRECT_STATUSES:
            return response
        location = response.headers.get("Location", "")
        response.release()
        if not location:
            raise _failed(url, "redirect without a Location")
        try:
            url = response.url.join(URL(location))
        except ValueError as exc:
            raise _failed(url, "invalid redirect") from exc
    raise _failed(url, f"more than {settings.url_max_redirects} redirects")


def _check_response(response: aiohttp.ClientResponse, max_bytes: int) -> None:
    if response.status != 200:
        raise _failed(response.url, f"the server answered HTTP {response.status}")
    if response.content_length is not None and response.content_length > max_bytes:
        raise InputError(
            FailureCode.INPUT_TOO_LARGE,
            f"download is {response.content_length} bytes, over the limit of {max_bytes}",
        )
