"""Single-use WebSocket tickets for browsers, which cannot set headers on a WebSocket.

A browser POSTs /auth/ticket with its token and opens the WebSocket offering two subprotocols,
`ffpool.v1` and `ffpool.ticket.<ticket>`; the server answers with `ffpool.v1` only. The ticket
never appears in a URL (URLs end up in logs and histories) and is good for TICKET_TTL_S.

A ticket is signed (`<tenant>.<expires>.<nonce>.<sig>`), not stored, so any replica holding the
pool's key accepts it; each process remembers the tickets it has taken until they expire, so
within one process a ticket is single use (across replicas, see docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Final

from ffpool.auth.identity import Caller, caller_for

TICKET_TTL_S: Final = 30
# Tickets taken and not yet expired, per process: 30 s at ~1,600 connections a second. When
# full, tickets are refused (the browser fetches another shortly) rather than forgotten early.
MAX_USED_TICKETS: Final = 50_000


def _sign(key: bytes, tenant: str, expires: int, nonce: str) -> str:
    message = f"ticket\0{tenant}\0{expires}\0{nonce}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Tickets:
    def __init__(
        self,
        key: bytes,
        clock: Callable[[], float] = time.time,
        ttl_s: int = TICKET_TTL_S,
        capacity: int = MAX_USED_TICKETS,
    ) -> None:
        self.key = key
        self.clock = clock
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._used: dict[str, int] = {}  # signature → expiry, in the order taken

    def issue(self, caller: Caller) -> str:
        expires = int(self.clock()) + self.ttl_s
        nonce = secrets.token_hex(16)
        return f"{caller.tenant}.{expires}.{nonce}.{_sign(self.key, caller.tenant, expires, nonce)}"

    def redeem(self, ticket: str) -> Caller | None:
        """The caller a ticket was issued to, once; None if forged, expired or taken."""
        parts = ticket.split(".")
        if len(parts) != 4 or not parts[1].isdigit() or len(parts[1]) > 12:
            return None
        tenant, expires_text, nonce, sig = parts
        expires, now = int(expires_text), self.clock()
        if expires < now or expires > now + self.ttl_s + 1:
            return None
        if not hmac.compare_digest(_sign(self.key, tenant, expires, nonce).encode(), sig.encode()):
            return None
        self._forget_expired(now)
        if sig in self._used or len(self._used) >= self.capacity:
            return None
        self._used[sig] = expires
        return caller_for(tenant)

    def _forget_expired(self, now: float) -> None:
        # Tickets are taken roughly in the order they expire (one TTL for all), so expired ones
        # gather at the front; one taken out of order is only remembered a little longer.
        while self._used:
            sig, expires = next(iter(self._used.items()))
            if expires >= now:
                return
            del self._used[sig]
