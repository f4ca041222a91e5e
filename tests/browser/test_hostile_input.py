"""Hostile text on the page: file names, inputs and the service's own messages are shown as text,
never run as HTML or script, and links are only the service's http(s) links."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import Page, expect
from tests.browser.ui import job, run, sign_in, submit, wait_state

pytestmark = pytest.mark.browser

HOSTILE_FILE = "<img src=x onerror=alert(1)>.mp4"
HOSTILE_PATH = '"><script>alert(2)</script>'
HOSTILE_URL = "javascript:alert(3)"
HOSTILE_NAME = '<img src=y onerror=alert(4)>"/../../.bashrc'
# Whatever the page may have made of the strings above.
INJECTED_JS = """() => ({
    scripts: document.scripts.length,
    imgs: [...document.querySelectorAll('img')].map(i => i.getAttribute('src')),
    handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
    badLinks: [...document.body.querySelectorAll('[href], [src]')]
        .map(e => e.getAttribute('href') || e.getAttribute('src'))
        .filter(u => !/^(https?:|\\/)/i.test(u)),
})"""


def dialogs_of(page: Page) -> list[str]:
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def assert_nothing_injected(page: Page, dialogs: list[str]) -> None:
    found = page.evaluate(INJECTED_JS)
    assert found["scripts"] == 1, f"scripts on the page: {found}"  # the page's own app.js
    assert found["handlers"] == 0, f"inline handlers: {found}"
    assert found["badLinks"] == [], f"links that are not the service's: {found}"
    assert not [s for s in found["imgs"] if s in ("x", "y")], f"injected images: {found}"
    assert dialogs == [], f"a dialog fired: {dialogs}"


def forge_outputs(message: dict[str, Any]) -> dict[str, Any]:
    """A `completed` whose outputs a hostile or broken service could send."""
    real = message["outputs"][0]
    message["outputs"] = [
        {**real, "name": HOSTILE_NAME, "url": HOSTILE_URL, "content_type": "image/png"},
        {**real, "name": "second.png", "url": "data:text/html,<script>alert(5)</script>"},
        {**real, "name": "kept.png", "content_type": 'image/png"><script>alert(6)</script>'},
    ]
    return message


def forge_failure(message: dict[str, Any]) -> dict[str, Any]:
    """A `failed` whose code, message and FFmpeg lines carry markup."""
    return {
        **message,
        "code": "<b>ffmpeg_error</b>",
        "message": f"cannot open {HOSTILE_FILE}",
        "stderr_tail": f"{HOSTILE_PATH}\n<svg onload=alert(8)>",
    }


def rewrite_server(
    page: Page, kind: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """The real service behind the page's WebSocket, with its events of one type changed."""

    def handler(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_server(raw: str | bytes) -> None:
            message = json.loads(raw)
            if message.get("type") == kind:
                raw = json.dumps(change(message))
            ws.send(raw)

        server.on_message(from_server)
        ws.on_message(lambda raw: server.send(raw))

    page.route_web_socket("**/*", handler)


def test_a_hostile_file_name_and_outputs_stay_text(
    page: Page, token: str, clip: Path, tmp_path: Path
) -> None:
    dialogs = dialogs_of(page)
    rewrite_server(page, "completed", forge_outputs)
    hostile = tmp_path / HOSTILE_FILE
    shutil.copyfile(clip, hostile)
    sign_in(page, token)
    job_id = run(page, hostile, "thumbnail")
    wait_state(page, job_id, "completed")
    item = job(page, job_id)
    expect(item.locator(".job-title")).to_have_text(f"thumbnail {HOSTILE_FILE}")
    expect(item.locator(".output-name").first).to_have_text(HOSTILE_NAME)
    # No link and no media for the javascript: and data: URLs; the third keeps its real link.
    links = item.get_by_role("link", name="Download", exact=True)
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/"))
    expect(links).to_have_attribute("download", "kept.png")
    expect(item.get_by_text("(no safe download link)")).to_have_count(2)
    assert_nothing_injected(page, dialogs)


def test_a_hostile_path_and_url_stay_text(page: Page, token: str) -> None:
    dialogs = dialogs_of(page)
    sign_in(page, token)
    page.get_by_label("Operation", exact=True).select_option("probe")
    page.get_by_label("A path on the server").check()
    path = page.get_by_label("Path under the media root")
    path.fill(HOSTILE_PATH)
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#input-path-error")).to_have_text("Not in the expected form.")
    expect(path).to_have_value(HOSTILE_PATH)
    expect(path).to_be_focused()

    page.get_by_label("From a URL").check()
    page.get_by_label("Input URL").fill(HOSTILE_URL)
    page.get_by_role("button", name="Submit", exact=True).click()
    # The service refuses it (or takes it and fails it): either way, as text.
    refused = page.locator("#form-error").filter(has_text=HOSTILE_URL)
    failed = page.locator('ul[aria-label="Jobs"] .job-title').filter(has_text=HOSTILE_URL)
    expect(refused.or_(failed)).to_be_visible()
    assert_nothing_injected(page, dialogs)


def test_a_failure_quoting_markup_stays_text(page: Page, token: str) -> None:
    """A failure's code, message and FFmpeg lines (which may quote user paths)."""
    dialogs = dialogs_of(page)
    rewrite_server(page, "failed", forge_failure)
    sign_in(page, token)
    page.get_by_label("Operation", exact=True).select_option("probe")
    page.get_by_label("A path on the server").check()
    page.get_by_label("Path under the media root").fill("clips/nothing-here.mp4")
    job_id = submit(page)
    wait_state(page, job_id, "failed")
    item = job(page, job_id)
    expect(item.locator(".job-failure")).to_have_text(
        f"<b>ffmpeg_error</b>: cannot open {HOSTILE_FILE}"
    )
    item.get_by_text("FFmpeg's last lines").click()
    expect(item.locator(".stderr pre")).to_have_text(f"{HOSTILE_PATH}\n<svg onload=alert(8)>")
    assert_nothing_injected(page, dialogs)
