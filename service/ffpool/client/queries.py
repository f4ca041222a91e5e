"""The client's HTTP side (session.Client's): job records, the caller's jobs, dead letters,
uploads and downloads. Every request carries the token; a refusal raises ClientError with the
server's code and message (outcomes.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from pydantic import BaseModel, TypeAdapter

from ffpool import names
from ffpool.client import transfer
from ffpool.client.outcomes import ClientError, http_error
from ffpool.domain.events import JobRecord, JobState, OutputFile
from ffpool.domain.listing import JobList, JobSummary
from ffpool.domain.protocol import Error, ErrorCode

DEFAULT_LIMIT: Final = 100
T = TypeVar("T")


class DeadLetters(BaseModel):
    """`GET /dead-letters`' body (server/ops.py)."""

    dead_letters: list[JobRecord]


class HttpQueries:
    """Mixed into session.Client, which sets these up in `__init__`/`__aenter__`."""

    http_url: str
    read_timeout: float
    _headers: dict[str, str]
    _http: aiohttp.ClientSession | None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("use `async with Client(...)`")
        return self._http

    async def _get(self, path: str, query: Mapping[str, str], model: type[T]) -> T:
        url = self.http_url + path + (f"?{urlencode(query)}" if query else "")
        async with self._session().get(url, headers=self._headers) as resp:
            if resp.status != 200:
                raise await http_error(resp)
            body = await resp.read()
        return TypeAdapter(model).validate_json(body)

    async def job(self, job_id: str) -> JobRecord:
        """The job's record (`GET /jobs/{id}`); ClientError `unknown_job` if there is none
        (or it is another tenant's)."""
        if not job_id or "/" in job_id:
            raise ClientError(Error(code=ErrorCode.UNKNOWN_JOB, message=f"no job {job_id!r}"))
        path = names.JOB_PATH.format(job_id=quote(job_id, safe=""))
        return await self._get(path, {}, JobRecord)

    async def jobs(
        self, limit: int = DEFAULT_LIMIT, states: Iterable[JobState | str] = ()
    ) -> list[JobSummary]:
        """The caller's jobs, newest first (`GET /jobs`), of these states if any are given."""
        query = {"limit": str(limit)}
        if wanted := [JobState(s).value for s in states]:
            query["state"] = ",".join(wanted)
        listed = await self._get(names.JOBS_PATH, query, JobList)
        return listed.jobs

    async def dead_letters(self, limit: int = DEFAULT_LIMIT) -> list[JobRecord]:
        """The caller's failed jobs with their reasons, newest first (`GET /dead-letters`)."""
        found = await self._get(names.DEAD_LETTERS_PATH, {"limit": str(limit)}, DeadLetters)
        return found.dead_letters

    async def upload(self, path: Path) -> str:
        return await transfer.upload(
            self._session(), self.http_url, path, self.read_timeout, self._headers
        )

    async def download(self, output: OutputFile, dest_dir: Path) -> Path:
        """Save an output into `dest_dir` under its own name (see `save`)."""
        return await transfer.download(
            self._session(), self.http_url, output, dest_dir, self._headers
        )

    async def save(self, output: OutputFile, path: Path) -> Path:
        """Save ONE output to exactly `path` (replacing it), through a temporary name beside it:
        a failed download never leaves a partial file under the real name."""
        return await transfer.save(self._session(), self.http_url, output, path, self._headers)
