"""Per-tenant settings: which buckets a tenant may read and write, its webhook secret and its
default callback URL (docs/storage.md, docs/webhooks.md).

TENANTS_FILE is TOML, one table a tenant; every key is optional:

    [tenants.acme]
    s3_read = ["s3://media-in/acme/"]      # inputs may come from here
    s3_write = ["s3://media-out/acme/"]    # jobs may name outputs here
    output = "s3://media-out/acme/"        # where outputs go when a job names none
    callback_url = "https://hooks.acme.example/ffpool"
    webhook_secret = "whsec_..."           # Standard Webhooks secret (base64 after whsec_)

A tenant's lists add to the pool-wide S3_ALLOW_READ / S3_ALLOW_WRITE; its output, callback URL
and secret replace the pool's OUTPUT_URL, WEBHOOK_URL and WEBHOOK_SECRET_FILE. The file holds
secrets: mount it from a Kubernetes Secret, readable by the service's user only.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails

from ffpool.domain.jobs import CallbackUrl, S3Prefix, TenantName
from ffpool.locations import checked_location

# A tenants file is a few lines a tenant; anything this large is not one.
MAX_TENANTS_FILE_BYTES: Final = 1024 * 1024


class TenantsFileError(Exception):
    """The file cannot be used; the message names the problem, never a secret."""


class TenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    s3_read: tuple[S3Prefix, ...] = ()
    s3_write: tuple[S3Prefix, ...] = ()
    output: S3Prefix | None = None
    callback_url: CallbackUrl | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("s3_read", "s3_write")
    @classmethod
    def _check_locations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """The pattern lets `..` segments through (RE2, shared with the CRD, has no
        lookahead); the parser does not, and a bad entry must fail when the file is loaded."""
        return tuple(checked_location(url) for url in value)

    @field_validator("output")
    @classmethod
    def _check_output(cls, value: str | None) -> str | None:
        return None if value is None else checked_location(value)


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[TenantName, TenantSettings] = Field(default_factory=dict)


_LOCATION_FIELDS: Final = frozenset({"s3_read", "s3_write", "output"})


def _where(error: ErrorDetails) -> str:
    """The entry's place; for a location the parser refused (a value_error of our own
    validator, not a pattern mismatch), its reason too."""
    loc = error["loc"]
    where = ".".join(str(p) for p in loc)
    if len(loc) > 2 and loc[2] in _LOCATION_FIELDS and error["type"] == "value_error":
        return f"{where} ({error['msg']})"
    return where


def parse(text: str) -> TenantsFile:
    try:
        return TenantsFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise TenantsFileError(f"tenants file is not TOML: {exc}") from None
    except ValidationError as exc:
        # Field locations only: a value may be a secret. Storage locations are not, and
        # their parser says what is wrong with one.
        where = sorted({_where(e) for e in exc.errors()})
        raise TenantsFileError(f"tenants file has invalid entries: {', '.join(where)}") from None


def load(path: Path | None) -> TenantsFile:
    """Blocking: the parsed file, or no tenants when no file is configured."""
    if path is None:
        return TenantsFile()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TENANTS_FILE_BYTES + 1)
    except OSError as exc:
        raise TenantsFileError(f"cannot read tenants file {path}: {exc.strerror}") from None
    if len(data) > MAX_TENANTS_FILE_BYTES:
        raise TenantsFileError(f"tenants file {path} is over {MAX_TENANTS_FILE_BYTES} bytes")
    try:
        return parse(data.decode())
    except UnicodeDecodeError:
        raise TenantsFileError(f"tenants file {path} is not UTF-8") from None


def settings_for(tenants: TenantsFile, tenant: str) -> TenantSettings:
    return tenants.tenants.get(tenant, TenantSettings())
