"""Fixtures of the browser tests: one Chromium per module, one token-protected service for the
package, a fresh browser context (and so a fresh sessionStorage) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ffpool.auth.tokens import file_line, new_token
from tests.conftest import make_clip, require

if TYPE_CHECKING:
    from tests.browser.harness import Browser, Page, ServiceProc, Watch

# tests.browser.harness is imported inside the fixtures: without playwright it skips (or, in
# CI, fails) the test modules that import it, which a conftest cannot do for them.


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per package: playwright's sync API keeps its event loop marked running
    in this thread while it is open, and pytest may hold a package's fixtures until the end of
    the session, which would break every asyncio test after these."""
    from tests.browser.harness import CHROMIUM, launch, sync_playwright

    require(Path(CHROMIUM).exists(), f"no {CHROMIUM}: scripts/setup.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def token() -> str:
    return new_token()


@pytest.fixture(scope="package")
def service(tmp_path_factory: pytest.TempPathFactory, token: str) -> Iterator[ServiceProc]:
    """Tokens required (AUTH_TOKENS_FILE with one tenant), as a served pool runs."""
    from tests.browser.harness import ServiceProc

    root = tmp_path_factory.mktemp("web-service")
    tokens = root / "tokens"
    tokens.write_text(file_line("web", token) + "\n")
    svc = ServiceProc(root, AUTH_TOKENS_FILE=str(tokens))
    try:
        yield svc.start()
    finally:
        svc.stop()


@pytest.fixture(scope="package")
def clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s test pattern with a tone, about 0.6 MB."""
    return make_clip(ffmpeg_bin, tmp_path_factory.mktemp("web-clips") / "clip.mp4", seconds=6)


@pytest.fixture(scope="package")
def corrupt_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Named like a video, but no media at all: FFmpeg fails on it."""
    path = tmp_path_factory.mktemp("web-corrupt") / "corrupt.mp4"
    path.write_bytes(b"this is not a video\n" * 2048)
    return path


@pytest.fixture
def watch() -> Watch:
    from tests.browser.harness import Watch

    return Watch()


@pytest.fixture
def page(browser: Browser, service: ServiceProc, watch: Watch) -> Iterator[Page]:
    from tests.browser.harness import VIEWPORT

    context = browser.new_context(viewport=VIEWPORT, base_url=service.url)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        watch.attach(page)
        yield page
    finally:
        context.close()
    assert not watch.errors, "the page reported errors:\n" + "\n".join(watch.errors)
