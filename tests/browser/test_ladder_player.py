"""A ladder's package on the page (docs/web.md, "Ladders"): its master playlist plays in one
`<video>` through the package links, natively where Chromium plays HLS and with the vendored
hls.js otherwise; other jobs get no HLS player and never load hls.js; the CSP is unchanged."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from ffpool.server.web import CSP, load_assets
from tests.browser.harness import (
    Locator,
    Page,
    ServiceProc,
    Watch,
    assert_accessible,
    expect,
    screenshot,
)
from tests.browser.ui import (
    choose,
    field,
    job,
    no_horizontal_scroll,
    run,
    sign_in,
    wait_state,
)
from tests.polling import poll_until

pytestmark = pytest.mark.browser

HLS_TYPE = "application/vnd.apple.mpegurl"
# The clip's own size, the ladder's top rung (never upscaled), as the table writes it.
RESOLUTION = re.compile(r"320\u00d7240")
# Makes the page believe the browser has no HLS of its own, so that hls.js plays. Run through
# the DevTools protocol before the page's scripts, so the page's CSP does not govern it.
NO_NATIVE_HLS = """(() => {
    const real = HTMLMediaElement.prototype.canPlayType;
    HTMLMediaElement.prototype.canPlayType = function (type) {
        return /mpegurl/i.test(type) ? "" : real.call(this, type);
    };
})()"""
LADDER_OPTIONS = {"segment_seconds": ("Segment seconds", "2"), "preset": ("Preset", "ultrafast")}
# A list option typed comma-separated (the form's structured.js): HLS and DASH in one package.
BOTH_FORMATS = {"formats": ("Formats", "hls, dash")}
# The documented policy, word for word (docs/web.md, "Security"): playing a package needs
# nothing more than `media-src blob:`, which the page already had.
DOCUMENTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'; object-src 'none'"
)


def package_requests(watch: Watch, job_id: str, suffixes: tuple[str, ...]) -> list[str]:
    pattern = re.compile(rf"^GET .*/jobs/{job_id}/package/[^/]+/[^/?]+")
    return [r for r in watch.requests if pattern.match(r) and r.split("?")[0].endswith(suffixes)]


def playing(video: Locator) -> dict[str, float] | None:
    state: dict[str, float] = video.evaluate(
        "v => ({ready: v.readyState, time: v.currentTime, error: v.error ? v.error.code : 0})"
    )
    assert not state["error"], f"the video failed: {state}"
    return state if state["ready"] >= 3 and state["time"] > 1 else None


def play_ladder(
    page: Page, token: str, clip: Path, watch: Watch, **options: tuple[str, str]
) -> tuple[str, Locator]:
    """Submit a ladder from the page, wait for it, play its master playlist past a second."""
    sign_in(page, token)
    job_id = run(page, clip, "ladder", **LADDER_OPTIONS, **options)
    wait_state(page, job_id, "completed", timeout=120_000)
    item = job(page, job_id)
    # One player for the package, not one per segment.
    expect(item.locator("video")).to_have_count(1)
    video = item.get_by_label(re.compile("^Adaptive stream: "))
    expect(video).to_be_visible()
    expect(item.get_by_role("table", name="Renditions")).to_contain_text(RESOLUTION)
    video.evaluate("v => { v.muted = true; return v.play(); }")
    poll_until(lambda: playing(video), timeout=30, what="the ladder's video playing past 1 s")
    master = package_requests(watch, job_id, (".m3u8",))
    assert master, f"no playlist read through the package link: {watch.requests}"
    segments = package_requests(watch, job_id, (".m4s", ".ts", ".mp4"))
    assert segments, f"no segment read through the package link: {watch.requests}"
    print(f"through the package link: {len(master)} playlists, {len(segments)} segments")
    return job_id, video


def test_hls_js_plays_the_master_playlist(page: Page, token: str, clip: Path, watch: Watch) -> None:
    page.add_init_script(NO_NATIVE_HLS)
    job_id, video = play_ladder(page, token, clip, watch, **BOTH_FORMATS)
    expect(video).to_have_attribute("data-player", "hls.js")
    [sent] = watch.submits()
    assert sent["job"]["operation"]["formats"] == ["hls", "dash"]
    # The DASH manifest is a link (no DASH player), beside the HLS player.
    manifest = job(page, job_id).locator(".package > .output-line", has_text="manifest.mpd")
    expect(manifest.get_by_role("link", name="Download")).to_have_attribute(
        "href", re.compile(rf"/jobs/{job_id}/package/[^/]+/manifest\.mpd$")
    )
    assert any(r.endswith("/static/hls.min.mjs") for r in watch.requests)
    # hls.js plays from a MediaSource: the page's `media-src blob:` is all it needs.
    assert video.evaluate("v => v.src.startsWith('blob:')")
    # Keyboard users reach the player; at 360 px nothing scrolls sideways.
    video.focus()
    assert video.evaluate("v => document.activeElement === v")
    page.set_viewport_size({"width": 360, "height": 740})
    assert no_horizontal_scroll(page)
    assert_accessible(page, "ladder")
    screenshot(page, "ladder")
    item = job(page, job_id)
    item.locator("summary", has_text="Package files").click()
    expect(item.get_by_role("link", name="Download").first).to_be_visible()


def test_hls_js_remuxes_ts_segments_without_a_worker(
    page: Page, token: str, clip: Path, watch: Watch
) -> None:
    """MPEG-TS segments need transmuxing, which hls.js does on the page's thread here: its
    worker would start from a blob: URL the CSP refuses (the page fixture fails on that)."""
    page.add_init_script(NO_NATIVE_HLS)
    job_id, video = play_ladder(
        page, token, clip, watch, hls_segment_type=("Hls segment type", "ts")
    )
    expect(video).to_have_attribute("data-player", "hls.js")
    assert package_requests(watch, job_id, (".ts",)), watch.requests


def test_a_dash_only_package_is_links_only(
    page: Page, token: str, clip: Path, watch: Watch
) -> None:
    sign_in(page, token)
    job_id = run(page, clip, "ladder", **LADDER_OPTIONS, formats=("Formats", "dash"))
    wait_state(page, job_id, "completed", timeout=120_000)
    item = job(page, job_id)
    expect(item.locator(".package")).to_have_count(1)
    expect(item.locator("video")).to_have_count(0)
    manifest = item.locator(".package > .output-line", has_text="manifest.mpd")
    expect(manifest.get_by_role("link", name="Download")).to_be_visible()
    assert not [r for r in watch.requests if "hls.min.mjs" in r], "hls.js loaded for nothing"


def test_native_hls_plays_the_master_playlist(
    page: Page, token: str, clip: Path, watch: Watch
) -> None:
    page.goto("/")
    if not page.evaluate(f"() => document.createElement('video').canPlayType('{HLS_TYPE}')"):
        pytest.skip("this Chromium plays no HLS by itself (hls.js is tested above)")
    _, video = play_ladder(page, token, clip, watch)
    # Where the native player refused the package, hls.js would have taken over.
    player = video.get_attribute("data-player")
    print(f"played by: {player}")
    assert player in ("native", "hls.js")


def test_a_non_ladder_job_shows_no_hls_player(
    page: Page, token: str, clip: Path, watch: Watch
) -> None:
    sign_in(page, token)
    job_id = run(page, clip, "transcode", preset=("Preset", "ultrafast"))
    wait_state(page, job_id, "completed")
    item = job(page, job_id)
    expect(item.locator("video")).to_have_count(1)  # the output itself, as before
    expect(item.locator("video[data-player]")).to_have_count(0)
    expect(item.get_by_role("table", name="Renditions")).to_have_count(0)
    expect(item.locator(".package")).to_have_count(0)
    assert not [r for r in watch.requests if "hls.min.mjs" in r], "hls.js loaded for nothing"


def test_the_csp_is_unchanged_and_hls_js_is_served(service: ServiceProc) -> None:
    assert CSP == DOCUMENTED_CSP
    for path in ("/", "/static/hls.min.mjs", "/static/hls.js-LICENSE.txt"):
        with urllib.request.urlopen(service.url + path, timeout=10) as resp:
            assert resp.status == 200, path
            assert resp.headers["Content-Security-Policy"] == DOCUMENTED_CSP, path
            if path.endswith(".mjs"):
                assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_list_options_are_checked_before_sending(
    page: Page, token: str, clip: Path, watch: Watch
) -> None:
    sign_in(page, token)
    choose(page, clip, "ladder", formats=("Formats", "hls, mp4"))
    page.get_by_role("button", name="Submit", exact=True).click()
    formats = page.get_by_label("Formats", exact=True)
    expect(formats).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#op-formats-error")).to_contain_text("mp4: Choose one of the listed")
    formats.fill("dash")
    field(page, "renditions", "Renditions").fill('{"height": 240}')
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#op-renditions-error")).to_have_text("Enter a JSON list: […].")
    assert not watch.uploads(), "sent although a field was wrong"


def test_the_players_code_writes_no_html(service: ServiceProc) -> None:
    """As test_static.py checks the page's other modules: text only, never markup."""
    for name in ("player.js", "links.js", "structured.js", "jobs.js", "form.js"):
        with urllib.request.urlopen(f"{service.url}/static/{name}", timeout=10) as resp:
            text = resp.read().decode()
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
            assert risky not in text, f"{name} uses {risky}"


def test_vendored_files_are_served_flat_and_shadow_nothing(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("export {};")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "lib.mjs").write_text("export default 1;")
    (vendor / "LICENSE").write_text("not served: no known kind of file")
    (vendor / "lib.mjs.map").write_text("{}")
    assets = load_assets(tmp_path)
    assert sorted(assets) == ["app.js", "lib.mjs"]
    assert assets["lib.mjs"].content_type == "text/javascript"
    (vendor / "app.js").write_text("export const evil = 1;")
    with pytest.raises(ValueError, match="shadow"):
        load_assets(tmp_path)
