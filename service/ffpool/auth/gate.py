"""`Authenticator`: the one object the HTTP and WebSocket edges ask "who is this?"."""

from __future__ import annotations

import time
from collections.abc import Callable

from ffpool.auth import signed_links
from ffpool.auth.identity import ANONYMOUS, Caller
from ffpool.auth.keys import derive
from ffpool.auth.policy import anonymous_allowed, bearer_token, ticket_from_protocols
from ffpool.auth.store import TokenStore
from ffpool.auth.tickets import Tickets
from ffpool.domain.events import CompletedEvent, JobRecord
from ffpool.settings import Settings


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        key: bytes,
        store: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path = settings.auth_tokens_file
        self.settings = settings
        self.store = store or (TokenStore(path) if path is not None else None)
        self.anonymous = anonymous_allowed(settings)
        self.clock = clock
        # One sub-key per use, so no signature made for one ever verifies as another.
        self.link_key = derive(key, "download-link")
        self.job_id_key = derive(key, "job-id")
        self.tickets = Tickets(derive(key, "ws-ticket"), clock)

    async def start(self) -> None:
        if self.store is not None:
            await self.store.load()

    async def from_authorization(self, header: str | None) -> Caller | None:
        """The caller of an HTTP request or WebSocket upgrade; None answers 401. A wrong token
        is refused even when anonymous access is on: its sender should learn it is wrong."""
        if self.store is None:
            return ANONYMOUS  # no tokens at all: everyone is anonymous (see policy)
        if header is None:
            return ANONYMOUS if self.anonymous else None
        token = bearer_token(header)
        return None if token is None else await self.store.lookup(token)

    async def for_upgrade(self, authorization: str | None, protocols: str | None) -> Caller | None:
        """A WebSocket upgrade: a browser's ticket if one is offered, else the Bearer header."""
        ticket = ticket_from_protocols(protocols)
        if ticket is not None:
            return self.tickets.redeem(ticket)
        return await self.from_authorization(authorization)

    def link_expiry(self) -> int:
        return int(self.clock() + self.settings.download_link_ttl_seconds)

    def sign_completed(self, event: CompletedEvent) -> CompletedEvent:
        return signed_links.sign_completed(event, self.link_key, self.link_expiry())

    def sign_record(self, record: JobRecord) -> JobRecord:
        return signed_links.sign_record(record, self.link_key, self.link_expiry())

    def link_valid(self, job_id: str, name: str, expires: str | None, sig: str | None) -> bool:
        return signed_links.link_valid(self.link_key, job_id, name, expires, sig, self.clock())
