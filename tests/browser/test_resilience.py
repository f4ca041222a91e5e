"""The page when things go wrong: a refused submit said in words next to the form, the
connection lost mid-job (the service restarts) and found again, and names too long for 360 px."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ffpool.auth.tokens import file_line
from tests.browser.harness import Page, ServiceProc, Watch, expect
from tests.browser.test_long_jobs import LONG, wait_progress
from tests.browser.ui import (
    UploadThrottle,
    choose,
    click_submit,
    job,
    new_job,
    no_horizontal_scroll,
    run,
    sign_in,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, token: str) -> Iterator[ServiceProc]:
    """A service of its own (this module restarts it) taking one active job per tenant."""
    root = tmp_path_factory.mktemp("web-limited")
    tokens = root / "tokens"
    tokens.write_text(file_line("web", token) + "\n")
    svc = ServiceProc(root, AUTH_TOKENS_FILE=str(tokens), TENANT_MAX_ACTIVE_JOBS="1")
    try:
        yield svc.start()
    finally:
        svc.stop()


def subscribed(watch: Watch, job_id: str) -> int:
    frames = [json.loads(raw) for raw in watch.sent if raw.startswith("{")]
    return sum(1 for f in frames if f.get("type") == "subscribe" and f.get("job_id") == job_id)


def test_a_refused_submit_is_said_in_words(
    page: Page, token: str, clip: Path, limited: ServiceProc
) -> None:
    sign_in(page, token, limited.url + "/")
    first = run(page, clip, "transcode", **LONG)
    choose(page, clip, "thumbnail")
    submit_button = page.get_by_role("button", name="Submit", exact=True)
    submit_button.click()
    refusal = page.locator("#form-error")
    expect(refusal).to_be_visible(timeout=20_000)
    expect(refusal).to_contain_text("You have as many jobs queued or running as you may")
    expect(refusal).to_contain_text("too_many_jobs: ")
    expect(refusal).to_have_attribute("role", "alert")
    expect(submit_button).to_be_focused()
    job(page, first).get_by_role("button", name="Cancel", exact=True).click()
    wait_state(page, first, "cancelled", timeout=20_000)


def test_a_restart_mid_job_reconnects_and_subscribes_again(
    page: Page, token: str, clip: Path, limited: ServiceProc, watch: Watch
) -> None:
    sign_in(page, token, limited.url + "/")
    job_id = run(page, clip, "transcode", **LONG)
    wait_progress(page, job_id)
    tickets = len([r for r in watch.requests if r.startswith("POST ") and "/auth/ticket" in r])
    before = subscribed(watch, job_id)
    status = page.locator("#connection")

    limited.stop()
    expect(status).to_have_text("Connection to the service lost. Reconnecting…")
    expect(status).to_be_visible()
    limited.start()
    expect(status).to_be_hidden(timeout=20_000)
    after = [r for r in watch.requests if r.startswith("POST ") and "/auth/ticket" in r]
    assert len(after) > tickets, "no fresh ticket for the new connection"
    wait_for(page, lambda: subscribed(watch, job_id) > before, "the job's new subscribe")
    # The restarted (in-memory) service no longer knows the job: the page says so.
    expect(job(page, job_id)).to_have_count(0, timeout=20_000)
    expect(page.get_by_role("status").filter(has_text="no longer known")).to_be_visible()


def test_very_long_names_wrap_at_360_px(page: Page, token: str, clip: Path, tmp_path: Path) -> None:
    long = tmp_path / ("averylongfilenamewithoutspacesorhyphens" * 6 + ".mp4")
    shutil.copyfile(clip, long)
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, token)
    throttle = UploadThrottle(page)
    throttle.set(256 * 1024)
    choose(page, long, "thumbnail")
    known = click_submit(page)
    expect(page.locator("#uploads li")).to_have_count(1)
    assert no_horizontal_scroll(page), "an upload's long name widens the page"
    job_id = new_job(page, known)
    throttle.set(None)
    wait_state(page, job_id, "completed")
    assert no_horizontal_scroll(page), "a job's long name widens the page"
