"""Jobs that run for a while: cancelled from the page, and followed across a reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.harness import Page, expect, screenshot
from tests.browser.ui import job, run, sign_in, wait_state

pytestmark = pytest.mark.browser

# Upscaling the 6 s clip to 2160 lines with a slow preset runs for a minute on two cores: long
# enough to cancel it at leisure.
LONG = {"height": ("Height", "2160"), "preset": ("Preset", "slow")}
# 720 lines with the medium preset: a few seconds, long enough to reload the page mid-job.
A_FEW_SECONDS = {"height": ("Height", "720"), "preset": ("Preset", "medium")}


def wait_progress(page: Page, job_id: str, above: float = 0, timeout: float = 20_000) -> None:
    """Until the job's progress bar has moved past `above` percent (running, with progress
    events)."""
    page.wait_for_function(
        """([id, above]) => {
            const bar = document.querySelector(`li[data-job-id="${id}"] progress`);
            return bar !== null && bar.value > above;
        }""",
        arg=[job_id, above],
        timeout=timeout,
    )


def test_cancel_a_running_job(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    job_id = run(page, clip, "transcode", **LONG)
    wait_state(page, job_id, "running")
    wait_progress(page, job_id, above=20)
    expect(job(page, job_id)).to_contain_text("ETA")
    # The status region announced the state change, or a progress milestone since.
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"running|\d+ ?%"))
    screenshot(page, "running")
    job(page, job_id).get_by_role("button", name="Cancel", exact=True).click()
    wait_state(page, job_id, "cancelled", timeout=20_000)
    expect(job(page, job_id).get_by_role("button", name="Cancel", exact=True)).to_be_hidden()
    expect(job(page, job_id).get_by_role("link", name="Download")).to_have_count(0)


def test_reload_mid_job_and_see_it_finish(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    job_id = run(page, clip, "transcode", **A_FEW_SECONDS)
    wait_state(page, job_id, "running")
    page.reload()
    # The token and this tab's job ids are in sessionStorage: no sign-in, the job comes back.
    expect(page.get_by_label("API token", exact=True)).to_be_hidden()
    wait_state(page, job_id, "completed", timeout=60_000)
    expect(job(page, job_id).get_by_role("link", name="Download", exact=True)).to_have_count(1)
