"""Signed download links (pure): valid until expiry, for their job and file only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ffpool.auth.signed_links import link_valid, sign_completed, sign_record, sign_url
from ffpool.domain.events import CompletedEvent, JobRecord, OutputFile, apply
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp

KEY = b"k" * 32
JOB = "a" * 32
NOW = 1_800_000_000.0


def _params(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["expires"][0], query["sig"][0]


def test_a_signed_link_is_valid_until_it_expires() -> None:
    url = sign_url(f"/jobs/{JOB}/outputs/out.mp4", KEY, JOB, "out.mp4", int(NOW) + 60)
    assert url.startswith(f"/jobs/{JOB}/outputs/out.mp4?expires=")
    expires, sig = _params(url)
    assert link_valid(KEY, JOB, "out.mp4", expires, sig, NOW)
    assert link_valid(KEY, JOB, "out.mp4", expires, sig, NOW + 60)
    assert not link_valid(KEY, JOB, "out.mp4", expires, sig, NOW + 61)


def test_tampered_links_and_other_files_are_refused() -> None:
    expires, sig = _params(sign_url("/x", KEY, JOB, "out.mp4", int(NOW) + 60))
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not link_valid(KEY, JOB, "out.mp4", expires, flipped, NOW)
    assert not link_valid(KEY, JOB, "out.mp4", str(int(expires) + 3600), sig, NOW)
    assert not link_valid(KEY, JOB, "thumb.jpg", expires, sig, NOW)
    assert not link_valid(KEY, "b" * 32, "out.mp4", expires, sig, NOW)
    assert not link_valid(b"other" * 8, JOB, "out.mp4", expires, sig, NOW)
    for bad_expires in (None, "", "-1", "1e9", "9" * 40):
        assert not link_valid(KEY, JOB, "out.mp4", bad_expires, sig, NOW)
    assert not link_valid(KEY, JOB, "out.mp4", expires, None, NOW)
    assert not link_valid(KEY, JOB, "out.mp4", expires, "ü" * 64, NOW)


def test_completed_events_and_records_get_signed_urls() -> None:
    job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()))
    out = OutputFile(
        name="out.mp4",
        size=1,
        content_type="video/mp4",
        url=f"https://cdn.example/jobs/{job.id}/outputs/out.mp4",
    )
    event = CompletedEvent(job_id=job.id, outputs=(out,), processing_time_s=1.0)
    signed = sign_completed(event, KEY, int(NOW) + 60)
    [signed_out] = signed.outputs
    assert signed_out.url.startswith(out.url + "?")
    assert link_valid(KEY, job.id, "out.mp4", *_params(signed_out.url), NOW)
    record = apply(JobRecord.queued(job), event)
    assert sign_record(record, KEY, int(NOW) + 60).result == signed
    queued = JobRecord.queued(job)
    assert sign_record(queued, KEY, int(NOW) + 60) is queued
