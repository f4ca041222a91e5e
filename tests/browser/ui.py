"""Driving the page by the accessible names the page promises (docs: the web page's contract):
sign in, pick a file and an operation, submit, and find a job's item in the "Jobs" list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.browser.harness import Locator, Page, expect

JOB_IDS_JS = """() => [...document.querySelectorAll('ul[aria-label="Jobs"] > li[data-job-id]')]
    .map(li => li.dataset.jobId)"""
NEW_JOB_JS = """(known) => [...document.querySelectorAll('ul[aria-label="Jobs"] > li[data-job-id]')]
    .map(li => li.dataset.jobId).find(id => id && !known.includes(id)) || null"""


class UploadThrottle:
    """Chromium's own network throttling (DevTools protocol), so an upload's progress is seen
    moving on loopback. One session per page: a setting holds for the session that made it."""

    def __init__(self, page: Page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")

    def set(self, bytes_per_second: int | None) -> None:
        """None: no limit."""
        self.cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": -1 if bytes_per_second is None else bytes_per_second,
            },
        )


def sign_in(page: Page, token: str, url: str = "/") -> None:
    page.goto(url)
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Operation", exact=True)).to_be_visible(timeout=10_000)
    expect(page.get_by_label("API token", exact=True)).to_be_hidden()


def jobs(page: Page) -> Locator:
    return page.get_by_role("list", name="Jobs", exact=True)


def job(page: Page, job_id: str) -> Locator:
    return jobs(page).locator(f'li[data-job-id="{job_id}"]')


def field(page: Page, name: str, title: str) -> Locator:
    """An operation option's control, generated from the schema: by its label (the schema's
    title) or by its form name (the schema's property name)."""
    return page.get_by_label(title, exact=True).or_(page.locator(f'[name="{name}"]')).first


def choose(page: Page, clip: Path, operation: str, **options: tuple[str, str]) -> None:
    """Pick the file and the operation, and set options: name=(title, value)."""
    page.get_by_label("Input file", exact=True).set_input_files(str(clip))
    page.get_by_label("Operation", exact=True).select_option(operation)
    for name, (title, value) in options.items():
        control = field(page, name, title)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def click_submit(page: Page) -> list[str]:
    """Click Submit; returns the job ids listed before, for `new_job`."""
    known: list[str] = page.evaluate(JOB_IDS_JS)
    page.get_by_role("button", name="Submit", exact=True).click()
    return known


def new_job(page: Page, known: list[str], timeout: float = 20_000) -> str:
    """The id of the job item that appears after `known` (an upload goes first)."""
    job_id = page.wait_for_function(NEW_JOB_JS, arg=known, timeout=timeout).json_value()
    assert isinstance(job_id, str)
    return job_id


def submit(page: Page) -> str:
    return new_job(page, click_submit(page))


def run(page: Page, clip: Path, operation: str, **options: tuple[str, str]) -> str:
    choose(page, clip, operation, **options)
    return submit(page)


def state_of(page: Page, job_id: str) -> Locator:
    return job(page, job_id).locator(".job-state")


def wait_state(page: Page, job_id: str, state: str, timeout: float = 30_000) -> None:
    expect(state_of(page, job_id)).to_have_text(state, timeout=timeout)


def download_link(page: Page, job_id: str) -> Locator:
    return job(page, job_id).get_by_role("link", name="Download", exact=True)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(
        page.evaluate(
            "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def wait_for(page: Page, ready: Callable[[], bool], what: str, timeout_ms: int = 10_000) -> None:
    """Until `ready()` (a check of what playwright's events recorded), letting the page run and
    its events arrive meanwhile; fails after the deadline."""
    for _ in range(timeout_ms // 50):
        if ready():
            return
        page.wait_for_timeout(50)
    assert ready(), f"timed out waiting for {what}"
