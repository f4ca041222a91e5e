"""Files in: several at once, dropped on the drop zone, and an upload cancelled mid-way; and
the header's health line."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.browser.harness import Page, expect
from tests.browser.ui import (
    JOB_IDS_JS,
    UploadThrottle,
    click_submit,
    jobs,
    new_job,
    sign_in,
    wait_state,
)

pytestmark = pytest.mark.browser

DROP_JS = """([name, b64]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
    return transfer;
}"""


def test_two_files_chosen_make_two_jobs(page: Page, token: str, clip: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.mp4"
    second.write_bytes(clip.read_bytes())
    sign_in(page, token)
    page.get_by_label("Input file", exact=True).set_input_files([str(clip), str(second)])
    page.get_by_label("Operation", exact=True).select_option("probe")
    known = click_submit(page)
    first = new_job(page, known)
    other = new_job(page, [*known, first])
    wait_state(page, first, "completed")
    wait_state(page, other, "completed")


def test_a_dropped_file_is_the_input(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    transfer = page.evaluate_handle(
        DROP_JS, ["dropped.mp4", base64.b64encode(clip.read_bytes()).decode()]
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    assert page.get_by_label("Input file", exact=True).evaluate("e => e.files[0].name") == (
        "dropped.mp4"
    )
    page.get_by_label("Operation", exact=True).select_option("probe")
    wait_state(page, new_job(page, click_submit(page)), "completed")


def test_a_cancelled_upload_submits_nothing(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    throttle = UploadThrottle(page)
    throttle.set(16 * 1024)  # the clip takes seconds: time to cancel it
    page.get_by_label("Input file", exact=True).set_input_files(str(clip))
    page.get_by_label("Operation", exact=True).select_option("probe")
    known = click_submit(page)
    page.get_by_role("button", name="Cancel upload", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("cancelled", timeout=10_000)
    expect(page.locator('progress[aria-label="Upload progress"]')).to_have_count(0)
    assert page.evaluate(JOB_IDS_JS) == known
    # The page still works after the cancel: the next upload goes through.
    throttle.set(None)
    page.get_by_label("Input file", exact=True).set_input_files(str(clip))
    click_submit(page)
    wait_state(page, new_job(page, known), "completed")
    expect(jobs(page).locator("li[data-job-id]")).to_have_count(len(known) + 1)


def test_the_header_names_the_service_health_and_backend(page: Page, token: str) -> None:
    sign_in(page, token)
    expect(page.locator("#health")).to_contain_text("backend memory", timeout=10_000)
    expect(page.locator("#health")).to_have_attribute("data-status", "healthy")
