"""What a failed S3 call means for ffpool: botocore's and aiohttp's errors mapped to
ObjectStoreError kinds (storage/objects.py), with messages safe to show a client.

A message names the action, the s3:// location and S3's error code, nothing else: botocore's
own texts carry the endpoint's URL, and an S3 error body may echo the access key id and the
string that was signed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import structlog
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStoreError

log = structlog.get_logger(__name__)

NOT_FOUND_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "NoSuchUpload", "NotFound", "404"})
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AccountProblem",
        "403",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "503",
        "500",
    }
)
PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})

_WHAT = {
    ObjectErrorKind.NOT_FOUND: "not found",
    ObjectErrorKind.DENIED: "access denied",
    ObjectErrorKind.UNAVAILABLE: "storage unavailable",
    ObjectErrorKind.INVALID: "refused",
    ObjectErrorKind.TOO_LARGE: "too large",
}


def error_code(exc: ClientError) -> tuple[str, int]:
    """S3's error code and the HTTP status of a ClientError."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return code or str(status), status


def kind_of_client_error(code: str, status: int) -> ObjectErrorKind:
    if code in NOT_FOUND_CODES or status == 404:
        return ObjectErrorKind.NOT_FOUND
    if code in DENIED_CODES or status == 403:
        return ObjectErrorKind.DENIED
    if code in UNAVAILABLE_CODES or status >= 500:
        return ObjectErrorKind.UNAVAILABLE
    return ObjectErrorKind.INVALID


def classify(exc: Exception) -> tuple[ObjectErrorKind, str] | None:
    """(kind, a short safe reason) for a storage call's exception; None: not a storage error."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        return kind_of_client_error(code, status), code
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ObjectErrorKind.DENIED, "no usable credentials"
    if isinstance(
        exc,
        BotoConnectionError
        | HTTPClientError
        | IncompleteReadError
        | aiohttp.ClientError
        | ConnectionError
        | TimeoutError,
    ):
        # Connection refused or reset, DNS, TLS, connect/read timeouts, a response cut short:
        # the storage could not be reached or did not answer in full. Other OSErrors are
        # local (a missing file, a full disk).
        return ObjectErrorKind.UNAVAILABLE, type(exc).__name__
    if isinstance(exc, BotoCoreError):
        return ObjectErrorKind.INVALID, type(exc).__name__
    return None


def store_error(exc: Exception, action: str, ref: ObjectRef) -> ObjectStoreError | None:
    """The ObjectStoreError `exc` means for `action` on `ref` (logged), or None."""
    found = classify(exc)
    if found is None:
        return None
    kind, reason = found
    log.warning(
        "s3 call failed", action=action, bucket=ref.bucket, key=ref.key, kind=kind, reason=reason
    )
    return ObjectStoreError(kind, f"{action} {ref.url}: {_WHAT[kind]} ({reason})")


@contextmanager
def translated(action: str, ref: ObjectRef) -> Iterator[None]:
    """Raise storage failures inside the block as ObjectStoreError; others pass unchanged.
    The original is dropped (`from None`): its text would name the endpoint."""
    try:
        yield
    except ObjectStoreError:
        raise
    except Exception as exc:
        mapped = store_error(exc, action, ref)
        if mapped is None:
            raise
        raise mapped from None
