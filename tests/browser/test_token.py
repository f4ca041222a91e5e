"""The API token: in this tab's sessionStorage and the Authorization header of the page's own
calls only; signing out forgets it; a refused token on any call signs out, "Token refused"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import Page, ServiceProc, Watch, expect
from tests.browser.ui import choose, jobs, run, sign_in, wait_for, wait_state

pytestmark = pytest.mark.browser

STORED_JS = """() => ({local: Object.keys(localStorage).length, cookies: document.cookie,
    session: Object.values(sessionStorage)})"""
SPOIL_JS = "() => sessionStorage.setItem('ffpool.token', 'ffp_revoked-or-never-known')"


def authorized(page: Page) -> list[tuple[str, str]]:
    """(url, Authorization header) of every request that carried one."""
    seen: list[tuple[str, str]] = []

    def on_request(request: Any) -> None:
        value = request.headers.get("authorization")
        if value:
            seen.append((request.url, value))

    page.on("request", on_request)
    return seen


def assert_signed_out(page: Page, why: str) -> None:
    token_field = page.get_by_label("API token", exact=True)
    expect(token_field).to_be_visible()
    expect(token_field).to_be_focused()
    expect(page.get_by_label("Operation", exact=True)).to_be_hidden()
    if why:
        expect(page.get_by_role("alert").filter(has_text=why)).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('ffpool.token')") is None


def test_the_token_stays_in_this_tab_and_its_headers(
    page: Page, token: str, clip: Path, service: ServiceProc, watch: Watch
) -> None:
    sent = authorized(page)
    sign_in(page, token)
    wait_state(page, run(page, clip, "thumbnail"), "completed")
    stored = page.evaluate(STORED_JS)
    assert stored["local"] == 0, "something in localStorage"
    assert stored["cookies"] == ""
    assert stored["session"].count(token) == 1
    assert {url for url, _ in sent}, "no call carried the token"
    assert all(url.startswith(service.url + "/") for url, _ in sent), sent
    assert all(value == f"Bearer {token}" for _, value in sent)
    assert not [r for r in watch.requests if token in r], "the token travelled in a URL"
    assert not [m for m in watch.sent if token in m], "the token went over the WebSocket"
    assert token not in service.log.read_text(errors="replace"), "the token is in the log"


def test_signing_out_forgets_the_token_and_the_jobs(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    wait_state(page, run(page, clip, "thumbnail"), "completed")
    page.get_by_role("button", name="Sign out", exact=True).click()
    assert_signed_out(page, "")
    assert page.evaluate("() => sessionStorage.getItem('ffpool.jobs')") == "[]"
    expect(jobs(page).locator("li")).to_have_count(0)
    page.reload()
    expect(page.get_by_label("API token", exact=True)).to_be_visible()


def test_a_refused_upload_signs_out(page: Page, token: str, clip: Path) -> None:
    sign_in(page, token)
    page.evaluate(SPOIL_JS)
    choose(page, clip, "thumbnail")
    page.get_by_role("button", name="Submit", exact=True).click()
    assert_signed_out(page, "Token refused")


def test_a_refused_ticket_on_reconnect_signs_out(page: Page, token: str) -> None:
    """The connection drops; its new ticket is refused (the token was revoked meanwhile)."""
    routes: list[Any] = []

    def handler(ws: Any) -> None:
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket("**/*", handler)
    sign_in(page, token)
    wait_for(page, lambda: bool(routes), "the page's WebSocket")
    page.evaluate(SPOIL_JS)
    routes[-1].close(code=1012, reason="restarting")
    assert_signed_out(page, "Token refused")
