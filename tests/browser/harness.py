"""The browser tests' harness (no tests here): a real `ffpool serve` process, Debian's headless
Chromium driven by playwright, and the checks the tests share (axe-core, screenshots).

Without playwright the importing test module is skipped on a developer machine and fails to
import in CI (CI=true), like every other missing dependency of the default run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.polling import poll_until

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Locator,
        Page,
        WebSocket,
        expect,
        sync_playwright,
    )
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

CHROMIUM = "/usr/bin/chromium"
# The tests run offline: without these Chromium keeps trying to reach outside hosts (updates,
# sync, field trials), and its sandbox needs user namespaces that a container may lack.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FFPOOL = str(Path(sys.executable).with_name("ffpool"))
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1000, "height": 760}
__all__ = ["Locator", "expect", "sync_playwright"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProc:
    """`ffpool serve` (memory backend, real FFmpeg) on free loopback ports; its log in a file."""

    def __init__(self, root: Path, **extra: str) -> None:
        self.root = root
        self.http_port, self.ws_port, self.ops_port = free_port(), free_port(), free_port()
        self.log = root / "service.log"
        self.env = {
            "BACKEND": "memory",
            "HOST": "127.0.0.1",
            "WS_PORT": str(self.ws_port),
            "HTTP_PORT": str(self.http_port),
            "OPS_PORT": str(self.ops_port),
            "MEDIA_ROOT": str(root / "media"),
            "MAX_CONCURRENT_JOBS": "2",
            "CANCEL_GRACE_SECONDS": "1",
            "DRAIN_SECONDS": "0",
            "PROGRESS_INTERVAL_SECONDS": "0.25",
            "LOG_LEVEL": "INFO",
            **extra,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> ServiceProc:
        (self.root / "media").mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [FFPOOL, "serve"],
                env={**os.environ, **self.env},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        poll_until(self._healthy, timeout=30, what=f"ffpool serve on {self.url}:\n{self.tail()}")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"ffpool serve exited {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Watch:
    """What a page did that the DOM does not show: WebSocket frames sent, and errors (an
    uncaught exception, a Content-Security-Policy violation) that fail the test at its end."""

    sent: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Watch:
        page.on("websocket", self._socket)
        page.on("request", lambda req: self.requests.append(f"{req.method} {req.url}"))
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)
        return self

    def _socket(self, ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: self.sent.append(str(payload)))

    def _console(self, msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            self.errors.append(f"CSP: {msg.text}")

    def uploads(self) -> list[str]:
        return [r for r in self.requests if r.startswith("POST ") and "/uploads" in r]

    def submits(self) -> list[dict[str, Any]]:
        found = []
        for raw in self.sent:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "submit":
                found.append(message)
        return found


def launch(playwright: Any) -> Browser:
    browser: Browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    return browser


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    axe is evaluated as source through the DevTools protocol (page.evaluate), which the page's
    Content-Security-Policy does not govern: the page under test keeps its real CSP, and the
    check needs no CSP-bypassing context."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Page, where: str) -> None:
    bad = axe_violations(page)
    report = "\n".join(
        f"{v['impact']} {v['id']}: {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in bad
    )
    print(f"axe on the {where} page: {len(bad)} serious/critical violations\n{report}")
    assert not bad, f"axe on the {where} page:\n{report}"


def screenshot(page: Page, name: str) -> None:
    """docs/screenshots/NAME.png, only when FFPOOL_SCREENSHOTS=1 (normal runs leave the tree
    clean)."""
    if os.environ.get("FFPOOL_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")
