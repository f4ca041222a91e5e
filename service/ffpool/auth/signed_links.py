"""Signed, expiring download links: `<url>?expires=<unix>&sig=<hex>`, the signature an HMAC
over job id, file name and expiry, so a link can be handed to a browser, a player or a CDN
without the token, and opens that one file until it expires.

A package (a ladder's HLS/DASH files, docs/ladders.md) is linked differently: a player
resolves the playlists' relative references against the playlist's URL and drops its query,
so the signature is in the path, `/jobs/<id>/package/<expires>.<sig>/<name>`, and opens every
output of that job. It is made with its own sub-key over a fixed marker, job id and expiry, so
a per-file signature never verifies as a package token, nor the reverse."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from ffpool import names
from ffpool.auth.keys import derive
from ffpool.domain.events import CompletedEvent, JobRecord

# What a package token's HMAC is keyed and prefixed with (domain separation, see above).
PACKAGE_PURPOSE = "package-link"
PACKAGE_MARKER = "package"
# The outputs only a ladder writes (ffmpeg/ladder_mux.py): they make an event a package's.
PACKAGE_ENTRY_NAMES = frozenset({"master.m3u8", "manifest.mpd"})
_MAX_EXPIRES_DIGITS = 12


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


def is_package(event: CompletedEvent) -> bool:
    return any(out.name in PACKAGE_ENTRY_NAMES for out in event.outputs)


def package_signature(key: bytes, job_id: str, expires: int) -> str:
    message = f"{PACKAGE_MARKER}\0{job_id}\0{expires}".encode(errors="surrogateescape")
    return hmac.new(derive(key, PACKAGE_PURPOSE), message, hashlib.sha256).hexdigest()


def package_token(key: bytes, job_id: str, expires: int) -> str:
    return f"{expires}.{package_signature(key, job_id, expires)}"


def package_token_valid(key: bytes, job_id: str, token: str, now: float) -> bool:
    """A package token is valid until its expiry, for the job it was made for."""
    expires, _, sig = token.partition(".")
    if not expires.isdigit() or len(expires) > _MAX_EXPIRES_DIGITS or not sig:
        return False
    if int(expires) < now:
        return False
    expected = package_signature(key, job_id, int(expires))
    return hmac.compare_digest(expected.encode(), sig.encode(errors="surrogateescape"))


def package_url(public_base: str, job_id: str, token: str, name: str) -> str:
    path = names.PACKAGE_PATH.format(job_id=job_id, token=token, name=name)
    return public_base.rstrip("/") + path


def sign_package(
    event: CompletedEvent, key: bytes, expires: int, public_base: str
) -> CompletedEvent:
    """Every output's link through the package route, one token for all of them."""
    token = package_token(key, event.job_id, expires)
    outputs = tuple(
        out.model_copy(update={"url": package_url(public_base, event.job_id, token, out.name)})
        for out in event.outputs
    )
    return event.model_copy(update={"outputs": outputs})
