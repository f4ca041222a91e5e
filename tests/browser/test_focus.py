"""What axe cannot see: where focus goes (after sign-in, Submit and Cancel), the keyboard's way
to the file input, every button's name, and a status region that speaks once per change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import Page, expect
from tests.browser.test_long_jobs import A_FEW_SECONDS, LONG, wait_progress
from tests.browser.ui import UploadThrottle, choose, job, run, sign_in, wait_state

pytestmark = pytest.mark.browser

RECORD_STATUS_JS = """() => {
    window.spoken = [];
    const status = document.getElementById('status');
    new MutationObserver(() => window.spoken.push(status.textContent))
        .observe(status, {childList: true, characterData: true, subtree: true});
}"""
NAMED = "button, [role=button], progress, input, select"
UNNAMED_JS = """() => [...document.querySelectorAll('NAMED')]
    .filter(e => e.offsetParent !== null || e.tagName === 'INPUT')
    .filter(e => {
        const labelled = e.labels && [...e.labels].some(l => l.textContent.trim());
        return !(e.textContent.trim() || e.getAttribute('aria-label') || labelled);
    })
    .filter(e => e.type !== 'hidden')
    .map(e => e.outerHTML.slice(0, 80))""".replace("NAMED", NAMED)


def test_sign_in_moves_focus_to_the_form(page: Page, token: str) -> None:
    sign_in(page, token)
    expect(page.get_by_label("Upload a file", exact=True)).to_be_focused()


def test_the_keyboard_reaches_the_file_input_in_the_drop_zone(page: Page, token: str) -> None:
    sign_in(page, token)
    # Sign-in moves focus to the form once the form is built: Tab from there, not before.
    expect(page.get_by_label("Upload a file", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    file_input = page.get_by_label("Input file", exact=True)
    expect(file_input).to_be_focused()
    assert file_input.evaluate("e => e.closest('#drop-zone') !== null")


def test_every_control_has_a_name(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    job_id = run(page, clip, "transcode", **LONG)
    wait_progress(page, job_id)
    assert page.evaluate(UNNAMED_JS) == []
    assert page.get_by_role("button", name="Submit", exact=True).is_visible()
    cancel = job(page, job_id).get_by_role("button", name="Cancel", exact=True)
    # Cancelled by keyboard: its button goes, and focus moves to the job, not the page's top.
    cancel.focus()
    page.keyboard.press("Enter")
    wait_state(page, job_id, "cancelled", timeout=20_000)
    expect(job(page, job_id).locator(".job-title")).to_be_focused()


def test_the_status_region_speaks_once_per_change(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    page.evaluate(RECORD_STATUS_JS)
    job_id = run(page, clip, "transcode", **A_FEW_SECONDS)
    wait_state(page, job_id, "completed")
    expect(page.get_by_role("button", name="Submit", exact=True)).to_be_focused()
    spoken: list[str] = page.evaluate("() => window.spoken")
    said = [s for s in spoken if s]
    label = f"transcode {clip.name}"
    for state in ("queued", "running", "completed"):
        assert said.count(f"{label}: {state}") <= 1, said
    assert said.count(f"{label}: completed") == 1, said
    percents = [s for s in said if s.endswith("%")]
    assert len(percents) <= 3, f"progress announced too often: {said}"
    assert len(said) == len(set(said)), f"something announced twice: {said}"


def test_a_cancelled_upload_leaves_focus_on_the_file_input(
    page: Page, token: str, clip: Path
) -> None:
    sign_in(page, token)
    UploadThrottle(page).set(64 * 1024)
    choose(page, clip, "thumbnail")
    page.get_by_role("button", name="Submit", exact=True).click()
    cancel = page.get_by_role("button", name="Cancel upload", exact=True)
    cancel.focus()
    page.keyboard.press("Enter")
    expect(cancel).to_have_count(0)
    expect(page.get_by_label("Input file", exact=True)).to_be_focused()
    expect(page.get_by_role("status")).to_have_text(f"Upload of {clip.name} cancelled")
