"""axe-core (vendored, tests/browser/vendor) on the page's main states: no serious or critical
violation on the empty, a running and a completed page, also in dark mode and at 360 px."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import Page, assert_accessible
from tests.browser.test_long_jobs import LONG, wait_progress
from tests.browser.ui import job, no_horizontal_scroll, run, sign_in, wait_state

pytestmark = pytest.mark.browser


def test_sign_in_and_empty_pages(page: Page, token: str) -> None:
    page.goto("/")
    page.get_by_label("API token", exact=True).wait_for()
    assert_accessible(page, "sign-in")
    sign_in(page, token)
    assert_accessible(page, "empty")


def test_running_and_completed_pages(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    thumb = run(page, clip, "thumbnail")
    wait_state(page, thumb, "completed")
    long = run(page, clip, "transcode", **LONG)
    wait_progress(page, long)
    assert_accessible(page, "running")
    job(page, long).get_by_role("button", name="Cancel", exact=True).click()
    wait_state(page, long, "cancelled", timeout=20_000)
    assert_accessible(page, "completed")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "completed, dark")
    page.set_viewport_size({"width": 360, "height": 740})
    assert no_horizontal_scroll(page), "the jobs list scrolls sideways at 360 px"
    assert_accessible(page, "completed at 360 px")
