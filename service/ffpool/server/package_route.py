"""`GET /jobs/{job_id}/package/{token}/{name}`: the files of a ladder's HLS/DASH package
(docs/ladders.md), the link's token in its path so that a player's relative references keep it.

Served inline (a player reads them; no attachment), with their Content-Type and `nosniff`. In
object storage a media segment is answered with a redirect to a fresh presigned link, as the
output route does; a playlist or manifest is answered here with its bytes, because a player
resolves the references inside it against the URL it finally read it from, and a presigned
URL's relative neighbours carry no signature.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from ffpool import logs
from ffpool.auth import signed_links
from ffpool.auth.gate import Authenticator
from ffpool.domain.events import JobRecord
from ffpool.server.output_links import OutputLinks
from ffpool.storage.media import content_type
from ffpool.storage.objects import ObjectStoreError, parse_url

log = logs.get(__name__)

_JOB_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
# Playlists and manifests reference others by name: served here, never redirected.
REFERRING_SUFFIXES: Final = (".m3u8", ".mpd")
# A playlist of MAX_PACKAGE_FILES segments is well under this.
MAX_PLAYLIST_BYTES: Final = 4 * 1024 * 1024

Serve = Callable[[str, str, dict[str, str]], Awaitable[web.StreamResponse]]
Lookup = Callable[[str], Awaitable[JobRecord | None]]


def _not_found() -> web.Response:
    body = '{"error": "not_found", "message": "no such output"}'
    return web.Response(text=body, status=404, content_type="application/json")


class PackageRoute:
    def __init__(self, auth: Authenticator, links: OutputLinks, lookup: Lookup, serve: Serve):
        """`lookup` finds a job's record (any tenant: the token names the job); `serve`
        answers a file on disk or a redirect to object storage, as the output route does."""
        self.auth = auth
        self.links = links
        self.lookup = lookup
        self.serve = serve

    def valid(self, job_id: str, token: str) -> bool:
        if not _JOB_ID_RE.fullmatch(job_id):
            return False
        now = self.auth.clock()
        return signed_links.package_token_valid(self.auth.link_key, job_id, token, now)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        job_id, token = request.match_info["job_id"], request.match_info["token"]
        name = request.match_info["name"]
        if not self.valid(job_id, token):
            return _not_found()
        if self.links.objects is not None and name.endswith(REFERRING_SUFFIXES):
            body = await self._from_objects(job_id, name)
            if body is not None:
                headers = {
                    "Content-Type": content_type(name),
                    "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "no-store",
                }
                return web.Response(body=body, headers=headers)
        return await self.serve(job_id, name, {})

    async def _from_objects(self, job_id: str, name: str) -> bytes | None:
        """A playlist's bytes from object storage; None when it is not there (the disk or a
        404 answers then)."""
        objects = self.links.objects
        record = await self.lookup(job_id)
        if objects is None or record is None or record.result is None:
            return None
        found = [o for o in record.result.outputs if o.name == name and o.location]
        if not found or found[0].location is None:
            return None
        try:
            return await objects.get_bytes(parse_url(found[0].location), MAX_PLAYLIST_BYTES)
        except (ValueError, ObjectStoreError) as exc:
            log.warning("cannot read a package playlist", error=str(exc), name=name)
            return None
