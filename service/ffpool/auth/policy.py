"""The edge's decisions, as pure functions: credentials from headers, Origin, secure default."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ffpool import names
from ffpool.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost"})


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != names.BEARER_PREFIX.strip().lower():
        return None
    return token.strip() or None


def ticket_from_protocols(header: str | None) -> str | None:
    """The ticket offered in `Sec-WebSocket-Protocol` as `ffpool.ticket.<ticket>`, if any."""
    if header is None:
        return None
    for offered in header.split(","):
        offered = offered.strip()
        if offered.startswith(names.WS_TICKET_PREFIX):
            return offered.removeprefix(names.WS_TICKET_PREFIX) or None
    return None


def normalize_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """Browsers always send Origin on a WebSocket upgrade; a request without one is not a
    browser's, and cross-site WebSocket hijacking needs a browser. So: no Origin → allowed,
    an Origin → only if listed in ALLOWED_ORIGINS."""
    if origin is None:
        return True
    return normalize_origin(origin) in {normalize_origin(a) for a in allowed}


_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_own_page(origin: str, host: str | None, http_port: int) -> bool:
    """Whether `origin` is the service's own web page (docs/web.md): on the host the upgrade was
    sent to (its Host header), either on the HTTP port, where the service serves the page, or
    on the very host and port of the upgrade: the same origin, as through an Ingress that
    routes the page and `/ws` under one host. Another port on that host is another origin."""
    if host is None:
        return False
    try:
        page = urlsplit(origin.strip())
        scheme_port = _DEFAULT_PORTS.get(page.scheme.lower())
        page_port = page.port or scheme_port
        target = urlsplit("//" + host.strip())
        target_port = target.port or scheme_port
    except ValueError:  # a malformed port or host: not the page's
        return False
    return (
        scheme_port is not None
        and page.hostname is not None
        and page.hostname == target.hostname
        and page_port in (http_port, target_port)
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; "" and 0.0.0.0 mean every interface, so not loopback."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def anonymous_allowed(settings: Settings) -> bool:
    """Callers without a token are served as the anonymous tenant: when switched on, or when
    there are no tokens at all (only allowed on loopback, see `startup_refusal`)."""
    return settings.allow_anonymous or settings.auth_tokens_file is None


def startup_refusal(settings: Settings) -> str | None:
    """Why a process serving clients must not start, or None. The secure default: bound to
    anything but loopback, it needs tokens unless anonymous access is switched on explicitly."""
    if settings.auth_tokens_file is not None or settings.allow_anonymous:
        return None
    if is_loopback(settings.host):
        return None
    return (
        f"refusing to serve clients on {settings.host!r} without authentication: set "
        "AUTH_TOKENS_FILE (see `ffpool token create`), or ALLOW_ANONYMOUS=true to let anyone "
        "who can reach this address run jobs (docs/security.md)"
    )


ANONYMOUS_WARNING = (
    "anonymous access is on: anyone who can reach this service can run jobs, and all of them "
    "share the anonymous tenant"
)
