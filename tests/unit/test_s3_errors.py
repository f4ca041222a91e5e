"""What S3 failures mean (storage/s3_errors.py) and the download name of presigned links
(storage/s3_config.py): pure decisions, no server."""

from __future__ import annotations

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from ffpool.settings import Settings
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStoreError
from ffpool.storage.s3_config import S3ClientConfig, content_disposition
from ffpool.storage.s3_errors import classify, translated

REF = ObjectRef("media", "jobs/1/out.mp4")


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "AWSAccessKeyId AKIASECRET"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("NoSuchBucket", 404, ObjectErrorKind.NOT_FOUND),
        ("NoSuchKey", 404, ObjectErrorKind.NOT_FOUND),
        ("404", 404, ObjectErrorKind.NOT_FOUND),
        ("AccessDenied", 403, ObjectErrorKind.DENIED),
        ("InvalidAccessKeyId", 403, ObjectErrorKind.DENIED),
        ("SignatureDoesNotMatch", 403, ObjectErrorKind.DENIED),
        ("SlowDown", 503, ObjectErrorKind.UNAVAILABLE),
        ("InternalError", 500, ObjectErrorKind.UNAVAILABLE),
        ("WhateverElse", 502, ObjectErrorKind.UNAVAILABLE),
        ("BadDigest", 400, ObjectErrorKind.INVALID),
        ("EntityTooLarge", 400, ObjectErrorKind.INVALID),
    ],
)
def test_client_errors(code: str, status: int, kind: ObjectErrorKind) -> None:
    assert classify(client_error(code, status)) == (kind, code)


def test_transport_and_local_errors() -> None:
    url = "http://10.1.2.3:9000/media"
    unavailable = [
        EndpointConnectionError(endpoint_url=url),
        ReadTimeoutError(endpoint_url=url),
        aiohttp.ServerDisconnectedError(),
        TimeoutError(),
        ConnectionRefusedError(),
        IncompleteReadError(actual_bytes=10, expected_bytes=20),
        ResponseStreamingError(error="reset"),
    ]
    for exc in unavailable:
        assert classify(exc) == (ObjectErrorKind.UNAVAILABLE, type(exc).__name__)
    assert classify(NoCredentialsError()) == (ObjectErrorKind.DENIED, "no usable credentials")
    invalid = classify(ParamValidationError(report="bad"))
    assert invalid == (ObjectErrorKind.INVALID, "ParamValidationError")
    assert classify(ValueError("a bug")) is None
    assert classify(FileNotFoundError("/scratch/out.mp4")) is None  # local, not the storage


def test_translated_messages_name_the_object_not_the_endpoint() -> None:
    with pytest.raises(ObjectStoreError) as info, translated("upload", REF):
        raise EndpointConnectionError(endpoint_url="http://10.1.2.3:9000/media")
    assert info.value.kind is ObjectErrorKind.UNAVAILABLE
    assert info.value.message == (
        "upload s3://media/jobs/1/out.mp4: storage unavailable (EndpointConnectionError)"
    )
    assert info.value.__cause__ is None
    with pytest.raises(ObjectStoreError) as info, translated("write", REF):
        raise client_error("AccessDenied", 403)
    assert "AKIA" not in info.value.message
    with pytest.raises(ValueError, match="a bug"), translated("write", REF):
        raise ValueError("a bug")


def test_content_disposition_keeps_the_name_and_an_ascii_fallback() -> None:
    value = content_disposition('my "clip" é.mp4')
    assert value == (
        "attachment; filename=\"my _clip_ _.mp4\"; filename*=UTF-8''my%20%22clip%22%20%C3%A9.mp4"
    )


def test_config_from_settings_hides_secrets() -> None:
    settings = Settings(
        s3_endpoint_url="https://minio.example:9000",
        s3_path_style=True,
        s3_access_key_id="AKIAEXAMPLE",
        s3_secret_access_key="very-secret",
        s3_ca_bundle="/etc/ca.pem",
    )
    config = S3ClientConfig.from_settings(settings)
    assert config.endpoint_url == "https://minio.example:9000"
    assert config.verify == "/etc/ca.pem"
    assert config.secret_access_key == "very-secret"
    assert "very-secret" not in repr(config)
    assert "AKIAEXAMPLE" not in repr(config)
    unverified = S3ClientConfig.from_settings(Settings(s3_verify_tls=False))
    assert unverified.verify is False
    assert unverified.access_key_id is None
    assert unverified.aio_config().s3 == {"addressing_style": "auto"}
