"""Which objects a tenant's job may read and where its outputs go: pure decisions over the
settings and the tenants file (docs/storage.md, "Who may read and write what").

Inputs come only from the pool-wide S3_ALLOW_READ locations and the tenant's own `s3_read`;
an output location named by a job must be within S3_ALLOW_WRITE or the tenant's `s3_write`
(or be the tenant's or pool's default output). Nothing is allowed by default: a pool with no
lists reads no bucket on a client's behalf.

The pool's own areas (S3_BUCKET/S3_PREFIX/jobs and .../uploads: every tenant's uploads and job
records) are refused whatever the lists say, so a broad allow-list such as the whole bucket
cannot open one tenant's uploads or another job's records to a client. The pool's default
outputs carry a tenant segment (.../outputs/<tenant>), so "own outputs only" can be granted.
"""

from __future__ import annotations

from ffpool import names
from ffpool.auth.tenants import TenantSettings
from ffpool.settings import Settings
from ffpool.storage.objects import ObjectRef, parse_url, within


class AccessDenied(Exception):
    """A location the tenant may not use; the message is for the client."""


def _refs(urls: tuple[str, ...]) -> list[ObjectRef]:
    return [parse_url(u) for u in urls]


def _reserved(settings: Settings, ref: ObjectRef) -> bool:
    """`ref` lies within the pool's uploads, job records or chunks (never a client's to
    name: docs/storage.md)."""
    if settings.s3_bucket is None:
        return False
    pool = ObjectRef(settings.s3_bucket, settings.s3_prefix)
    reserved = (names.S3_JOBS_PREFIX, names.S3_UPLOADS_PREFIX, names.S3_CHUNKS_PREFIX)
    areas = tuple(pool.child(name) for name in reserved)
    return any(within(ref, area) for area in areas)


def check_read(settings: Settings, tenant: TenantSettings, url: str) -> ObjectRef:
    """The object an `s3` input names, if the tenant may read it."""
    try:
        ref = parse_url(url)
    except ValueError as exc:
        raise AccessDenied(str(exc)) from None
    if not ref.key:
        raise AccessDenied("an s3 input names an object: s3://bucket/key")
    if _reserved(settings, ref):
        raise AccessDenied(f"reading {ref.url} is not allowed: it is the pool's own area")
    allowed = _refs(settings.s3_allow_read) + _refs(tenant.s3_read)
    if not any(within(ref, a) for a in allowed):
        raise AccessDenied(f"reading {ref.url} is not allowed for this tenant")
    return ref


def default_output(
    settings: Settings, tenant: TenantSettings, tenant_name: str
) -> ObjectRef | None:
    """Where outputs go when a job names no location: the tenant's, the pool's OUTPUT_URL, or
    S3_BUCKET/S3_PREFIX/outputs/<tenant>; None without object storage."""
    if tenant.output is not None:
        return parse_url(tenant.output)
    if settings.output_url is not None:
        return parse_url(settings.output_url)
    if settings.s3_bucket is not None:
        return ObjectRef(settings.s3_bucket, settings.s3_prefix).child(
            names.S3_OUTPUTS_PREFIX, tenant_name
        )
    return None


def output_base(
    settings: Settings, tenant: TenantSettings, requested: str | None, *, tenant_name: str
) -> ObjectRef:
    """The location a job's outputs are uploaded under (then `<job id>/<name>`)."""
    default = default_output(settings, tenant, tenant_name)
    if requested is None:
        if default is None:
            raise AccessDenied("no output location: name one, or configure OUTPUT_URL")
        return default
    try:
        ref = parse_url(requested)
    except ValueError as exc:
        raise AccessDenied(str(exc)) from None
    if _reserved(settings, ref):
        raise AccessDenied(f"writing to {ref.url} is not allowed: it is the pool's own area")
    allowed = _refs(settings.s3_allow_write) + _refs(tenant.s3_write)
    if default is not None:
        allowed.append(default)
    if not any(within(ref, a) for a in allowed):
        raise AccessDenied(f"writing to {ref.url} is not allowed for this tenant")
    return ref
