"""The form generated from the schema: client-side validation (nothing sent), keyboard order,
and a narrow screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import Page, Watch, expect
from tests.browser.ui import choose, field, no_horizontal_scroll, sign_in

pytestmark = pytest.mark.browser


def test_an_out_of_bounds_number_is_refused_before_anything_is_sent(
    page: Page, token: str, clip: Path, watch: Watch
) -> None:
    sign_in(page, token)
    # The schema: a thumbnail's width is 16 to 7680.
    choose(page, clip, "thumbnail", width=("Width", "5"))
    page.get_by_role("button", name="Submit", exact=True).click()
    width = field(page, "width", "Width")
    expect(width).to_have_attribute("aria-invalid", "true")
    described = (width.get_attribute("aria-describedby") or "").split()
    messages = [page.locator(f"#{ref}") for ref in described]
    assert any("16" in m.inner_text() for m in messages if m.is_visible()), (
        "no message naming the bound next to the field"
    )
    assert watch.submits() == [], "a submit went over the WebSocket"
    assert watch.uploads() == [], "the file was uploaded"

    width.fill("64")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(width).not_to_have_attribute("aria-invalid", "true")
    page.wait_for_function("() => document.querySelector('ul[aria-label=\"Jobs\"] > li')")
    assert [s["job"]["operation"].get("width") for s in watch.submits()] == [64]


def test_tab_reaches_input_file_operation_and_submit_in_order(page: Page, token: str) -> None:
    sign_in(page, token)
    targets = {
        "Input file": page.get_by_label("Input file", exact=True),
        "Operation": page.get_by_label("Operation", exact=True),
        "Submit": page.get_by_role("button", name="Submit", exact=True),
    }
    # Sign-in moves focus to the form once it is built; start from the top after that.
    expect(page.get_by_label("Upload a file", exact=True)).to_be_focused()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    reached: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        for name, target in targets.items():
            if name not in reached and target.evaluate("e => e === document.activeElement"):
                reached.append(name)
        if "Submit" in reached:
            break
    assert reached == ["Input file", "Operation", "Submit"]


def test_usable_at_360_px_without_horizontal_scroll(page: Page, token: str) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/")
    expect(page.get_by_label("API token", exact=True)).to_be_visible()
    assert no_horizontal_scroll(page), "the sign-in page scrolls sideways at 360 px"
    sign_in(page, token)
    page.get_by_label("Operation", exact=True).select_option("transcode")
    assert no_horizontal_scroll(page), "the job form scrolls sideways at 360 px"
