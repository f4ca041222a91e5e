"""The web page for people (docs/web.md): `/` (the HTML), `/static/{name}` (its assets) and
`/ui/config.json` (what the page must know before anyone signs in).

The files are the package's `ffpool.web/static/` folder, read once when the app is built, and
its `vendor/` subfolder (third-party code, docs/web.md "Vendored code"), whose files are served
under their bare names beside the page's own. Only a name found there is served: a request
names a file, never a path, so there is nothing to traverse. Every answer carries a strict
Content-Security-Policy; the page has no inline script or style, so it needs none of the CSP's
escape hatches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import PurePosixPath
from typing import Final

from aiohttp import web
from pydantic import BaseModel

from ffpool import names
from ffpool.settings import Settings

STATIC_PACKAGE: Final = "ffpool.web"
INDEX: Final = "index.html"
# Vendored files keep their own folder (with their licence and notes) but one flat namespace
# on the wire: the asset route and its public-route check stay one file name after /static/.
VENDOR: Final = "vendor"
CSP: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        # The WebSocket is on its own port (another origin) unless an Ingress serves both.
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Assets may be reused for a while; the page itself is revalidated every time, so a new
# version's page is seen at once (and its ETags tell the browser which assets changed).
ASSET_CACHE: Final = "public, max-age=300"
PAGE_CACHE: Final = "no-cache"
_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class UiConfig(BaseModel):
    auth_required: bool
    ws_port: int
    ws_path: str
    http_port: int
    max_upload_bytes: int


def _content_type(name: str) -> str | None:
    """The type a page asset is served as, or None: not a kind of file the page has."""
    return _TYPES.get(PurePosixPath(name).suffix.lower())


def _load_flat(folder: Traversable) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for entry in folder.iterdir():
        content_type = _content_type(entry.name)
        if entry.name.startswith(".") or content_type is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[entry.name] = Asset(body, content_type, etag)
    return assets


def load_assets(folder: Traversable | None = None) -> dict[str, Asset]:
    """Every file of the static folder by name (the folder is flat, and small), less what an
    editor or a build may leave there: dotfiles (`.env`, swap files) and other kinds of file
    (`.py`, `.map`, backups), which the page never asks for. The files of its `vendor/`
    subfolder are added under their bare names; one may not shadow a page file."""
    if folder is None:
        folder = resources.files(STATIC_PACKAGE).joinpath("static")
    assets = _load_flat(folder)
    vendor = folder.joinpath(VENDOR)
    if vendor.is_dir():
        vendored = _load_flat(vendor)
        clash = sorted(set(vendored) & set(assets))
        if clash:
            raise ValueError(f"vendored files shadow the page's own: {clash}")
        assets.update(vendored)
    return assets


def _answer(request: web.Request, asset: Asset, cache: str) -> web.Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": asset.etag}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset=charset, headers=headers
    )


class WebPage:
    def __init__(self, settings: Settings, auth_required: bool) -> None:
        self.assets = load_assets()
        self.config = UiConfig(
            auth_required=auth_required,
            ws_port=settings.ws_port,
            ws_path=names.WS_PATH,
            http_port=settings.http_port,
            max_upload_bytes=settings.max_upload_bytes,
        )

    async def page(self, request: web.Request) -> web.Response:
        return _answer(request, self.assets[INDEX], PAGE_CACHE)

    async def asset(self, request: web.Request) -> web.Response:
        asset = self.assets.get(request.match_info["name"])
        if asset is None:
            return web.json_response(
                {"error": "not_found", "message": "no such file"},
                status=404,
                headers=SECURITY_HEADERS,
            )
        return _answer(request, asset, ASSET_CACHE)

    async def ui_config(self, _: web.Request) -> web.Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": PAGE_CACHE}
        return web.json_response(text=self.config.model_dump_json(), headers=headers)


PAGE: Final = web.AppKey("page", WebPage)


def tell_bound_ports(app: web.Application, ws_port: int | None, http_port: int) -> None:
    """The ports the sockets are really bound to: with port 0 in the settings (an ephemeral
    port), the page and the CLI, which find the WebSocket from /ui/config.json, need them."""
    page = app.get(PAGE)
    if page is not None and ws_port is not None:
        page.config = page.config.model_copy(update={"ws_port": ws_port, "http_port": http_port})


def add_web_routes(app: web.Application, settings: Settings, auth_required: bool) -> None:
    """The page's routes, on a server that serves clients."""
    page = app[PAGE] = WebPage(settings, auth_required)
    app.router.add_get(names.PAGE_PATH, page.page)
    app.router.add_get(names.STATIC_PATH, page.asset)
    app.router.add_get(names.UI_CONFIG_PATH, page.ui_config)
