"""The receivers' verification snippet in docs/webhooks.md works against the service's
signer (so the doc cannot rot)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from ffpool.webhooks import signing

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
BODY = b'{"type":"job.completed","data":{"job_id":"x"}}'


@pytest.fixture(scope="module")
def snippet() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    (code,) = [b for b in blocks if "def verify_webhook(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_snippet_accepts_what_the_service_signs(snippet: dict[str, Any]) -> None:
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_1", int(time.time()), BODY)
    snippet["verify_webhook"](secret, {k.title(): v for k, v in headers.items()}, BODY)


@pytest.mark.parametrize("change", ["body", "secret", "old", "headers"])
def test_the_snippet_refuses(snippet: dict[str, Any], change: str) -> None:
    secret, body = signing.new_secret(), BODY
    stamp = int(time.time()) - (301 if change == "old" else 0)
    headers = signing.headers(secret, "msg_1", stamp, body)
    if change == "body":
        body = body + b" "
    if change == "secret":
        secret = signing.new_secret()
    if change == "headers":
        del headers["webhook-id"]
    with pytest.raises(snippet["InvalidWebhook"]):
        snippet["verify_webhook"](secret, headers, body)
