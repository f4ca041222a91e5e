"""A real webhook receiver on 127.0.0.1 for the tests: checks every POST's signature twice
(with ffpool's `verify`, and independently with plain hmac), records each delivery once by its
`webhook-id` (counting duplicates), can fail the next N requests, or be down for a while."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ffpool import names
from ffpool.webhooks import signing


@dataclass(frozen=True)
class Received:
    id: str
    type: str
    job_id: str
    body: dict[str, Any]


def plain_check(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The check a receiver writes from the Standard Webhooks spec, nothing of ffpool's."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id = headers[names.WEBHOOK_ID_HEADER]
    stamp = headers[names.WEBHOOK_TIMESTAMP_HEADER]
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.partition(",")[2] for s in headers[names.WEBHOOK_SIGNATURE_HEADER].split(" ")]
    return any(hmac.compare_digest(expected, g) for g in given)


@dataclass
class Receiver:
    secret: str
    port: int = 0
    received: list[Received] = field(default_factory=list)
    copies: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    """Why requests were refused (a bad signature, a wrong content type): must stay empty."""
    requests: int = 0
    fail_next: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.copies.values())

    def types(self, job_id: str) -> list[str]:
        return [r.type for r in self.received if r.job_id == job_id]

    async def start(self) -> None:
        """Up (again), on the same port once it has one."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Down: connections are refused until `start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503)
        try:
            signing.verify(self.secret, headers, body, now=time.time())
        except signing.VerificationError as exc:
            self.bad.append(f"verify: {exc}")
            return web.Response(status=401)
        if not plain_check(self.secret, headers, body):
            self.bad.append("plain hmac check failed")
            return web.Response(status=401)
        if request.content_type != "application/json":
            self.bad.append(f"content type {request.content_type}")
        msg_id = headers[names.WEBHOOK_ID_HEADER]
        self.copies[msg_id] += 1
        if self.copies[msg_id] == 1:
            data = json.loads(body)
            self.received.append(Received(msg_id, data["type"], data["data"]["job_id"], data))
        return web.Response(status=204)
