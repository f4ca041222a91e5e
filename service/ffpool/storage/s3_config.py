"""How storage/s3.py reaches the storage: endpoint, region, addressing, TLS, credentials,
timeouts and retries, from the settings (docs/storage.md) or given directly (tests).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.awsrequest import AWSRequest
from botocore.config import Config

from ffpool.settings import MiB, Settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

Addressing = Literal["auto", "path"]
CHECKSUMMED_UPLOADS = ("PutObject", "UploadPart")
"""The calls storage/s3.py always sends with an x-amz-checksum-sha256 header."""


@dataclass(frozen=True)
class S3ClientConfig:
    """How to reach the storage; credentials None: the AWS default chain."""

    endpoint_url: str | None = None
    public_endpoint_url: str | None = None
    """Presigned links name this endpoint (clients reach it), calls go to `endpoint_url`."""
    region: str = "us-east-1"
    path_style: bool = False
    verify: bool | str = True
    """False: no TLS verification; a path: the CA bundle to verify with."""
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    part_size: int = 16 * MiB
    concurrency: int = 4
    """Parts of one multipart upload in flight at once."""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ClientConfig:
        verify: bool | str = settings.s3_verify_tls
        if settings.s3_verify_tls and settings.s3_ca_bundle is not None:
            verify = str(settings.s3_ca_bundle)
        key, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        endpoint, public = settings.s3_endpoint_url, settings.s3_public_endpoint_url
        return cls(
            endpoint_url=None if endpoint is None else str(endpoint).rstrip("/"),
            public_endpoint_url=None if public is None else str(public).rstrip("/"),
            region=settings.s3_region,
            path_style=settings.s3_path_style,
            verify=verify,
            access_key_id=None if key is None else key.get_secret_value(),
            secret_access_key=None if secret is None else secret.get_secret_value(),
            timeout_s=settings.s3_timeout_seconds,
            part_size=settings.s3_part_size_bytes,
        )

    @property
    def addressing(self) -> Addressing:
        return "path" if self.path_style else "auto"

    def aio_config(self) -> AioConfig:
        return AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": self.addressing},
            connect_timeout=self.timeout_s,
            read_timeout=self.timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max(10, 2 * self.concurrency),
            # botocore reads its service models from disk: in a thread, not on the loop.
            warm_up_loader_caches=True,
        )


def content_disposition(filename: str) -> str:
    """`attachment` under `filename`: an ASCII fallback plus the exact name (RFC 6266)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def checksum_signs_payload(client: S3Client, addressing: Addressing) -> None:
    """Let the signed SHA-256 checksum stand for the payload hash of uploads.

    Over plain HTTP botocore also hashes every body for the signature, one more SHA-256 pass
    on the event loop (and one more on the server). An upload's body is already bound to its
    signed x-amz-checksum-sha256 header, which the storage verifies, so its signature may say
    UNSIGNED-PAYLOAD as botocore's own default does over HTTPS; every other call stays signed.
    """
    unsigned = client.meta.config.merge(
        Config(s3={"addressing_style": addressing, "payload_signing_enabled": False})
    )

    def hook(request: AWSRequest, **_: Any) -> None:
        if "x-amz-checksum-sha256" in request.headers:
            request.context["client_config"] = unsigned

    for operation in CHECKSUMMED_UPLOADS:
        client.meta.events.register(f"before-sign.s3.{operation}", hook)


async def open_client(cfg: S3ClientConfig, stack: contextlib.AsyncExitStack) -> S3Client:
    """A client for `cfg`, closed with `stack`; explicit keys if set, else the AWS chain."""
    keys: dict[str, Any] = {}
    if cfg.access_key_id and cfg.secret_access_key:
        keys = {
            "aws_access_key_id": cfg.access_key_id,
            "aws_secret_access_key": cfg.secret_access_key,
        }
    creating = get_session().create_client(
        "s3",
        endpoint_url=cfg.endpoint_url,
        region_name=cfg.region,
        verify=cfg.verify,
        config=cfg.aio_config(),
        **keys,
    )
    client = await stack.enter_async_context(creating)
    checksum_signs_payload(client, cfg.addressing)
    return client
