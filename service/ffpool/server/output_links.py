"""The download links a client is given for a job's outputs, made as a message leaves.

An output on the server's disk gets a signed link to `/jobs/<id>/outputs/<name>` (ffpool.auth
.signed_links). An output in object storage (it has a `location`) gets a presigned link made
from the pool's credentials at that moment, so a `subscribe` an hour later still receives a
working link; both expire DOWNLOAD_LINK_TTL_SECONDS after they are sent (docs/storage.md). A
package's files (a ladder) all get links through its package route (docs/ladders.md).
"""

from __future__ import annotations

from ffpool import logs
from ffpool.auth import signed_links
from ffpool.auth.gate import Authenticator
from ffpool.domain.events import CompletedEvent, JobRecord, OutputFile
from ffpool.ffmpeg.outcome import output_url
from ffpool.storage.objects import ObjectStore, ObjectStoreError, parse_url

log = logs.get(__name__)


class OutputLinks:
    def __init__(self, auth: Authenticator, objects: ObjectStore | None = None) -> None:
        self.auth = auth
        self.objects = objects

    async def presigned(self, output: OutputFile) -> str | None:
        """A fresh presigned GET link for an output in object storage; None for a file on the
        server's disk, or when no link can be made (the signed server link still works)."""
        if self.objects is None or output.location is None:
            return None
        try:
            ref = parse_url(output.location)
            return await self.objects.presign_get(
                ref, self.auth.settings.download_link_ttl_seconds, filename=output.name
            )
        except (ValueError, ObjectStoreError) as exc:
            log.warning("cannot presign an output link", error=str(exc), name=output.name)
            return None

    def _routed(self, event: CompletedEvent) -> CompletedEvent:
        """Outputs in object storage pointed at this server's route first, which redirects:
        the link left when no presigned one can be made."""
        public = self.auth.settings.public_http_url
        outputs = tuple(
            o.model_copy(update={"url": output_url(event.job_id, o.name, public)})
            if o.location
            else o
            for o in event.outputs
        )
        return event.model_copy(update={"outputs": outputs})

    def _package(self, event: CompletedEvent) -> CompletedEvent:
        """A ladder's files, wherever they are, through the package route: relative
        references between them need one base (the route redirects to object storage)."""
        public = self.auth.settings.public_http_url
        base = "" if public is None else str(public)
        expires = self.auth.link_expiry()
        return signed_links.sign_package(event, self.auth.link_key, expires, base)

    async def completed(self, event: CompletedEvent) -> CompletedEvent:
        if signed_links.is_package(event):
            return self._package(event)
        if any(o.location for o in event.outputs):
            event = self._routed(event)
        signed = self.auth.sign_completed(event)
        if self.objects is None or not any(o.location for o in signed.outputs):
            return signed
        outputs = []
        for output in signed.outputs:
            url = await self.presigned(output)
            outputs.append(output if url is None else output.model_copy(update={"url": url}))
        return signed.model_copy(update={"outputs": tuple(outputs)})

    async def record(self, record: JobRecord) -> JobRecord:
        if record.result is None:
            return record
        return record.model_copy(update={"result": await self.completed(record.result)})

    async def redirect(self, record: JobRecord, name: str) -> str | None:
        """A presigned link to the job's output `name` if it is in object storage, else None
        (the file is on the server's disk, or the job has no such output)."""
        if record.result is None:
            return None
        found = [o for o in record.result.outputs if o.name == name]
        return await self.presigned(found[0]) if found else None
