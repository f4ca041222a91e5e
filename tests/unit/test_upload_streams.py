"""UploadStreams: bucket uploads in flight per tenant and per process (server/bucket_uploads.py)."""

from __future__ import annotations

from ffpool.server.bucket_uploads import UploadStreams
from ffpool.settings import Settings


def test_per_tenant_then_process_limit_and_release() -> None:
    streams = UploadStreams(per_tenant=2, total=3)
    assert streams.acquire("a") is None
    assert streams.acquire("a") is None
    refusal = streams.acquire("a")
    assert refusal is not None
    assert "TENANT_MAX_UPLOAD_STREAMS" in refusal
    assert streams.acquire("b") is None
    refusal = streams.acquire("c")  # c has none in flight, the process is full
    assert refusal is not None
    assert "(MAX_UPLOAD_STREAMS)" in refusal
    streams.release("a")
    assert streams.acquire("c") is None
    for tenant in ("a", "b", "c"):
        streams.release(tenant)
    assert not streams.open


def test_defaults_from_settings() -> None:
    streams = UploadStreams.from_settings(Settings(_env_file=None))
    assert (streams.per_tenant, streams.total) == (4, 16)
