"""Signed, expiring download links: `<url>?expires=<unix>&sig=<hex>`, the signature an HMAC
over job id, file name and expiry, so a link can be handed to a browser, a player or a CDN
without the token, and opens that one file until it expires."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from ffpool import names
from ffpool.domain.events import CompletedEvent, JobRecord


def signature(key: bytes, job_id: str, name: str, expires: int) -> str:
    message = f"{job_id}\0{name}\0{expires}".encode(errors="surrogateescape")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_url(url: str, key: bytes, job_id: str, name: str, expires: int) -> str:
    query = urlencode(
        {
            names.LINK_EXPIRES_PARAM: expires,
            names.LINK_SIGNATURE_PARAM: signature(key, job_id, name, expires),
        }
    )
    base = url.split("?", 1)[0]
    return f"{base}?{query}"


def link_valid(
    key: bytes, job_id: str, name: str, expires: str | None, sig: str | None, now: float
) -> bool:
    """A link is valid until its expiry, for the job and file it was made for."""
    if expires is None or sig is None or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < now:
        return False
    return hmac.compare_digest(signature(key, job_id, name, int(expires)).encode(), sig.encode())


def sign_completed(event: CompletedEvent, key: bytes, expires: int) -> CompletedEvent:
    outputs = tuple(
        out.model_copy(update={"url": sign_url(out.url, key, event.job_id, out.name, expires)})
        for out in event.outputs
    )
    return event.model_copy(update={"outputs": outputs})


def sign_record(record: JobRecord, key: bytes, expires: int) -> JobRecord:
    if record.result is None:
        return record
    return record.model_copy(update={"result": sign_completed(record.result, key, expires)})
