"""Package links (pure): the token in the path opens every file of its job until it expires,
and is domain separated from per-file signatures (neither verifies as the other)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ffpool import names
from ffpool.auth.signed_links import (
    is_package,
    link_valid,
    package_token,
    package_token_valid,
    sign_completed,
    sign_package,
    sign_url,
)
from ffpool.domain.events import CompletedEvent, OutputFile

KEY = b"k" * 32
JOB = "a" * 32
OTHER_JOB = "b" * 32
NOW = 1_800_000_000.0


def event(*names_: str) -> CompletedEvent:
    outputs = tuple(
        OutputFile(name=n, size=1, content_type="x", url=f"/jobs/{JOB}/outputs/{n}") for n in names_
    )
    return CompletedEvent(job_id=JOB, outputs=outputs, processing_time_s=1.0)


def test_token_valid_until_it_expires() -> None:
    token = package_token(KEY, JOB, int(NOW) + 60)
    assert package_token_valid(KEY, JOB, token, NOW)
    assert package_token_valid(KEY, JOB, token, NOW + 60)
    assert not package_token_valid(KEY, JOB, token, NOW + 61)


def test_token_is_for_its_job_and_key_only() -> None:
    token = package_token(KEY, JOB, int(NOW) + 60)
    assert not package_token_valid(KEY, OTHER_JOB, token, NOW)
    assert not package_token_valid(b"other" * 8, JOB, token, NOW)
    expires, _, sig = token.partition(".")
    assert not package_token_valid(KEY, JOB, f"{int(expires) + 3600}.{sig}", NOW)
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not package_token_valid(KEY, JOB, f"{expires}.{flipped}", NOW)
    for bad in ("", ".", f"{expires}.", f".{sig}", f"-1.{sig}", f"{'9' * 40}.{sig}", sig):
        assert not package_token_valid(KEY, JOB, bad, NOW)


def test_per_file_signature_is_not_a_package_token() -> None:
    expires = int(NOW) + 60
    for name in ("master.m3u8", "package", ""):
        url = sign_url("/x", KEY, JOB, name, expires)
        sig = parse_qs(urlsplit(url).query)["sig"][0]
        assert not package_token_valid(KEY, JOB, f"{expires}.{sig}", NOW)


def test_package_token_is_not_a_per_file_signature() -> None:
    expires = int(NOW) + 60
    sig = package_token(KEY, JOB, expires).partition(".")[2]
    for name in ("master.m3u8", "package", ""):
        assert not link_valid(KEY, JOB, name, str(expires), sig, NOW)


def test_sign_package_links_every_output_through_the_route() -> None:
    signed = sign_package(event("master.m3u8", "seg-0-00001.m4s"), KEY, int(NOW) + 60, "")
    token = package_token(KEY, JOB, int(NOW) + 60)
    assert [o.url for o in signed.outputs] == [
        names.PACKAGE_PATH.format(job_id=JOB, token=token, name=n)
        for n in ("master.m3u8", "seg-0-00001.m4s")
    ]
    public = sign_package(event("manifest.mpd"), KEY, int(NOW) + 60, "https://ff.example/")
    assert public.outputs[0].url.startswith(f"https://ff.example/jobs/{JOB}/package/")


def test_only_packages_are_packages() -> None:
    assert is_package(event("master.m3u8", "seg-v0-00000.ts"))
    assert is_package(event("manifest.mpd"))
    assert not is_package(event("output.mp4"))
    # Other jobs keep their per-file links.
    plain = sign_completed(event("output.mp4"), KEY, int(NOW) + 60)
    assert "?expires=" in plain.outputs[0].url
