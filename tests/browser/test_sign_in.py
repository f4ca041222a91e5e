"""Signing in with an API token (kept in sessionStorage, sent only in headers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.harness import Page, ServiceProc, Watch, expect, screenshot
from tests.browser.ui import jobs, sign_in, submit, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProc]:
    """No tokens file, anonymous on purpose (ALLOW_ANONYMOUS=true)."""
    svc = ServiceProc(tmp_path_factory.mktemp("web-anonymous"), ALLOW_ANONYMOUS="true")
    try:
        yield svc.start()
    finally:
        svc.stop()


def test_a_wrong_token_is_refused_and_the_form_stays(page: Page) -> None:
    response = page.goto("/")
    # Everything here runs under the page's real policy (axe is evaluated, not injected).
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("API token", exact=True).fill("ffp_not-a-token-this-service-knows")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Token refused")).to_be_visible()
    expect(page.get_by_label("API token", exact=True)).to_be_visible()
    expect(page.get_by_label("Operation", exact=True)).to_be_hidden()


def test_a_token_signs_in_and_stays_out_of_urls(page: Page, token: str, watch: Watch) -> None:
    with page.expect_websocket() as socket:
        sign_in(page, token)
    expect(jobs(page)).to_be_attached()
    expect(page.get_by_role("button", name="Submit", exact=True)).to_be_enabled()
    assert page.evaluate("() => Object.values(sessionStorage)").count(token) == 1
    urls = [*watch.requests, socket.value.url]
    assert not [u for u in urls if token in u], "the token travelled in a URL"
    screenshot(page, "empty")


def test_an_anonymous_service_needs_no_sign_in(page: Page, anonymous: ServiceProc) -> None:
    page.goto(anonymous.url + "/")
    expect(page.get_by_label("Operation", exact=True)).to_be_visible()
    expect(page.get_by_label("API token", exact=True)).to_be_hidden()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("button", name="Submit", exact=True)).to_be_enabled()
    # The WebSocket opens without a ticket: a job goes round (and fails: no such file).
    page.get_by_label("A path on the server").check()
    page.get_by_label("Path under the media root").fill("nothing-here.mp4")
    page.get_by_label("Operation", exact=True).select_option("probe")
    wait_state(page, submit(page), "failed")
