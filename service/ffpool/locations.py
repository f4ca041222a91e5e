"""`s3://bucket/key` locations as pure values: parsing and containment (docs/storage.md).

Kept in the bottom layer so that settings.py and the tenants file's model can reject a bad
location when they are loaded, not on the first job that names it; storage/objects.py
re-exports these names for everything above.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, *parts: str) -> ObjectRef:
        """This prefix joined with `parts` by single slashes."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return ObjectRef(self.bucket, key)


def parse_url(url: str) -> ObjectRef:
    """`s3://bucket/key` (already checked by domain/jobs.py's S3Url or S3Prefix pattern);
    raises ValueError on anything else, including ".." or empty path segments."""
    if not url.startswith("s3://"):
        raise ValueError("not an s3:// URL")
    bucket, _, key = url[len("s3://") :].partition("/")
    segments = key.rstrip("/").split("/") if key.rstrip("/") else []
    if not bucket or any(s in ("", ".", "..") for s in segments):
        raise ValueError("an s3:// URL needs a bucket and a key without empty, . or .. parts")
    return ObjectRef(bucket, "/".join(segments))


def within(ref: ObjectRef, allowed: ObjectRef) -> bool:
    """`ref` is `allowed` itself or below it, by whole path segments: s3://b/acme allows
    s3://b/acme/x but not s3://b/acme-other/x."""
    if ref.bucket != allowed.bucket:
        return False
    if not allowed.key:
        return True
    return ref.key == allowed.key or ref.key.startswith(allowed.key + "/")


def checked_location(url: str) -> str:
    """`url` unchanged if it parses, else ValueError naming it: for settings validators."""
    try:
        parse_url(url)
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a usable s3:// location: {exc}") from None
    return url
