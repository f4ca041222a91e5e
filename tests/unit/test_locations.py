"""s3:// locations in the settings and the tenants file are parsed when they are loaded: one
the pattern lets through but the parser refuses fails at start, not on every submit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ffpool.auth.tenants import TenantsFileError, parse
from ffpool.locations import ObjectRef, checked_location, parse_url
from ffpool.settings import Settings
from ffpool.storage import objects

# Each passes domain/jobs.py's S3Prefix pattern (or has none to pass) but not the parser.
BAD = ("s3://bkt/a/../x", "s3://bkt/a/./x", "s3://bkt/a//x", "https://bkt/a")


def test_storage_re_exports_the_pure_parser() -> None:
    assert objects.parse_url is parse_url
    assert objects.ObjectRef is ObjectRef
    assert parse_url("s3://bkt/a/b/") == ObjectRef("bkt", "a/b")


@pytest.mark.parametrize("url", BAD)
def test_checked_location_names_the_bad_value(url: str) -> None:
    with pytest.raises(ValueError, match="is not a usable s3:// location") as info:
        checked_location(url)
    assert url in str(info.value)


@pytest.mark.parametrize("url", BAD)
@pytest.mark.parametrize("field", ["s3_allow_read", "s3_allow_write", "output_url"])
def test_bad_settings_locations_fail_at_load(
    monkeypatch: pytest.MonkeyPatch, field: str, url: str
) -> None:
    value = url if field == "output_url" else f"s3://bkt/fine/, {url}"
    monkeypatch.setenv(field.upper(), value)
    with pytest.raises(ValidationError, match="is not a usable s3:// location") as info:
        Settings()
    assert field in str(info.value)


def test_good_settings_locations_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ALLOW_READ", "s3://bkt/a/, s3://other")
    monkeypatch.setenv("OUTPUT_URL", "s3://out-bkt/x/")
    settings = Settings()
    assert settings.s3_allow_read == ("s3://bkt/a/", "s3://other")
    assert settings.output_url == "s3://out-bkt/x/"


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ('s3_read = ["s3://bkt/a/../x"]', "tenants.acme.s3_read"),
        ('s3_write = ["s3://bkt/ok", "s3://bkt/a/./x"]', "tenants.acme.s3_write"),
        ('output = "s3://bkt/a/../x"', "tenants.acme.output"),
    ],
)
def test_bad_tenant_locations_fail_at_load(entry: str, where: str) -> None:
    with pytest.raises(TenantsFileError) as info:
        parse(f"[tenants.acme]\n{entry}\n")
    message = str(info.value)
    assert where in message
    assert "is not a usable s3:// location" in message


def test_a_bad_secret_is_still_not_shown() -> None:
    with pytest.raises(TenantsFileError) as info:
        parse('[tenants.acme]\nwebhook_secret = 12345\noutput = "s3://bkt/a/../x"\n')
    assert "12345" not in str(info.value)
    assert "tenants.acme.webhook_secret" in str(info.value)
