"""Jobs from the page: an upload with its progress, a thumbnail and a transcode shown and
downloaded, and failures with their code and message."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.browser.harness import Page, expect, screenshot
from tests.browser.ui import (
    UploadThrottle,
    choose,
    click_submit,
    download_link,
    job,
    new_job,
    run,
    sign_in,
    submit,
    wait_state,
)

pytestmark = pytest.mark.browser

UPLOAD_BAR = 'progress[aria-label="Upload progress"]'


def downloaded(page: Page, job_id: str, dest: Path) -> Path:
    """Click the job's (first) "Download" link and keep the file the browser saves."""
    with page.expect_download() as info:
        download_link(page, job_id).first.click()
    info.value.save_as(dest)
    return dest


def probe(ffprobe: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_upload_thumbnail_and_transcode(
    page: Page, token: str, clip: Path, ffprobe_bin: str, tmp_path: Path
) -> None:
    sign_in(page, token)
    throttle = UploadThrottle(page)
    throttle.set(256 * 1024)
    choose(page, clip, "thumbnail", format=("Format", "png"))
    known = click_submit(page)
    bar = page.locator(UPLOAD_BAR)
    expect(page.get_by_role("button", name="Cancel upload", exact=True)).to_be_visible()
    page.wait_for_function(
        f"() => (document.querySelector('{UPLOAD_BAR}') || {{}}).value > 0", timeout=10_000
    )
    screenshot(page, "uploading")
    thumb = new_job(page, known)
    expect(bar).to_have_count(0)
    throttle.set(None)
    transcode = run(page, clip, "transcode")

    wait_state(page, thumb, "completed")
    image = job(page, thumb).locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "image not rendered"
    png = downloaded(page, thumb, tmp_path / "thumb.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

    wait_state(page, transcode, "completed")
    expect(job(page, transcode).locator("progress[aria-label='Progress']")).to_have_attribute(
        "value", "100"
    )
    expect(job(page, transcode)).to_contain_text("100%")
    expect(job(page, transcode).locator("video")).to_be_attached()
    info = probe(ffprobe_bin, downloaded(page, transcode, tmp_path / "out.mp4"))
    kinds = sorted(s["codec_type"] for s in info["streams"])  # type: ignore[attr-defined]
    assert kinds == ["audio", "video"]
    assert float(info["format"]["duration"]) > 5  # type: ignore[index]
    screenshot(page, "completed")


def test_a_missing_path_fails_with_its_code_and_message(page: Page, token: str) -> None:
    sign_in(page, token)
    page.get_by_label("A path on the server").check()
    page.get_by_label("Path under the media root").fill("clips/nothing-here.mp4")
    page.get_by_label("Operation", exact=True).select_option("probe")
    job_id = submit(page)
    wait_state(page, job_id, "failed")
    expect(job(page, job_id)).to_contain_text("input_not_found: ")
    expect(job(page, job_id).get_by_role("button", name="Cancel")).to_be_hidden()
    # An ended job shows no busy (indeterminate, animated) progress bar.
    expect(job(page, job_id).locator("progress:indeterminate")).to_have_count(0)


def test_a_corrupt_upload_fails_with_its_code_and_message(
    page: Page, token: str, corrupt_clip: Path
) -> None:
    sign_in(page, token)
    job_id = run(page, corrupt_clip, "thumbnail")
    wait_state(page, job_id, "failed")
    # "code: message", as the protocol's failed event has them
    failure = re.compile(r"(invalid_media|input_rejected|ffmpeg_error): \S")
    expect(job(page, job_id)).to_contain_text(failure)
    screenshot(page, "failed")
