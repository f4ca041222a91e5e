"""`/static/{name}`: only the page's own files, with the types a browser needs (a module script
as JavaScript, else it refuses to run it under `nosniff`), and the CSP on every answer."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ffpool.server.web import load_assets
from tests.browser.harness import Page, ServiceProc, Watch
from tests.browser.ui import wait_for

pytestmark = pytest.mark.browser

REFUSED = [
    "nothing.js",
    ".env",
    "..%2fweb.py",
    "..%2F..%2Fserver%2Fweb.py",
    "%2e%2e%2fapp.py",
    "%252e%252e%252fapp.js",
    "app.js%00.css",
    "app.js%2f",
    "__init__.py",
]


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("style.css", "text/css"),
    ],
)
def test_assets_have_their_types(service: ServiceProc, name: str, content_type: str) -> None:
    status, headers, _ = get(f"{service.url}/static/{name}")
    assert status == 200
    assert headers["Content-Type"] == f"{content_type}; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize("name", REFUSED)
def test_other_names_are_refused(service: ServiceProc, name: str) -> None:
    status, headers, body = get(f"{service.url}/static/{name}")
    assert status == 404, body[:200]
    assert b"import" not in body
    assert b"def " not in body
    assert "Content-Security-Policy" in headers


def test_the_page_needs_no_inline_script_or_style(service: ServiceProc) -> None:
    """What lets the CSP refuse every inline script and style: the page has none."""
    _, _, body = get(f"{service.url}/")
    html = body.decode()
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    for asset in ("app.js", "api.js", "form.js", "jobs.js", "uploads.js"):
        _, _, js = get(f"{service.url}/static/{asset}")
        text = js.decode()
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
            assert risky not in text, f"{asset} uses {risky}"
        assert 'setAttribute("style"' not in text, asset


def test_dotfiles_and_other_kinds_of_file_are_never_loaded(tmp_path: Path) -> None:
    """What an editor or a build may leave in the folder is not served."""
    for name, text in {
        "app.js": "export {};",
        ".env": "SECRET=1",
        ".app.js.swp": "swap",
        "app.js.map": "{}",
        "settings.py": "SECRET = 1",
        "page.html~": "old",
    }.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "sub.js").mkdir()
    assets = load_assets(tmp_path)
    assert sorted(assets) == ["app.js"]
    assert assets["app.js"].content_type == "text/javascript"


def test_the_watch_catches_a_csp_violation(page: Page, token: str, watch: Watch) -> None:
    """Every browser test fails on a CSP violation (conftest's `page`): this checks the watch
    does see one, here an inline script and an inline style added after load."""
    page.goto("/")
    page.get_by_label("API token", exact=True).wait_for()
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.ran = true';
            document.body.append(s);
            document.body.setAttribute('style', 'color: red');
        }"""
    )
    wait_for(page, lambda: len(watch.errors) >= 2, "two CSP reports")
    assert page.evaluate("() => window.ran === undefined"), "an inline script ran"
    caught = list(watch.errors)
    watch.errors.clear()  # seen on purpose: not the page's fault
    assert len([e for e in caught if e.startswith("CSP: ")]) == 2, caught
