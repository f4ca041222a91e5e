"""A process's webhooks as assembled at start: nothing without a secret, refusals of unusable
configuration, the memory backend's in-process queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.auth import tenants as tenants_file
from ffpool.backends.base import NO_NOTIFIER
from ffpool.settings import Settings
from ffpool.webhooks import runtime, signing
from ffpool.webhooks.local import LocalQueue
from ffpool.webhooks.notifier import WebhookNotifier

NO_TENANTS = tenants_file.TenantsFile()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(signing.new_secret() + "\n")
    return path


async def test_no_secret_means_no_webhooks_at_all() -> None:
    settings = Settings(webhook_url="https://h.example.com/")
    hooks = await runtime.build(settings, NO_TENANTS, consume=True)
    assert hooks.notifier is NO_NOTIFIER
    assert hooks.queue is None


async def test_memory_backend_gets_an_in_process_queue(secret_file: Path) -> None:
    settings = Settings(webhook_secret_file=secret_file)
    hooks = await runtime.build(settings, NO_TENANTS, consume=True)
    assert isinstance(hooks.notifier, WebhookNotifier)
    assert isinstance(hooks.queue, LocalQueue)
    assert hooks.queue.dispatcher is not None
    await hooks.start()
    await hooks.stop()


@pytest.mark.parametrize(
    ("content", "overrides", "message"),
    [
        ("whsec_c2hvcnQ=", {}, "bytes"),
        ("whsec_!!", {}, "not base64"),
        (None, {}, "cannot read"),
        ("ok", {"webhook_url": "http://169.254.169.254/"}, "WEBHOOK_URL: callback URL refused"),
    ],
)
async def test_unusable_configuration_is_refused_at_start(
    tmp_path: Path, secret_file: Path, content: str | None, overrides: dict[str, str], message: str
) -> None:
    path = secret_file if content == "ok" else tmp_path / "other"
    if content not in (None, "ok"):
        path.write_text(content)
    settings = Settings.model_validate({"webhook_secret_file": path, **overrides})
    with pytest.raises(runtime.WebhooksConfigError, match=message) as caught:
        await runtime.build(settings, NO_TENANTS, consume=True)
    assert secret_file.read_text().strip() not in str(caught.value)


async def test_a_tenants_file_secret_enables_webhooks(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(f'[tenants.acme]\nwebhook_secret = "{signing.new_secret()}"\n')
    hooks = await runtime.build(Settings(), tenants_file.load(tenants), consume=False)
    assert isinstance(hooks.notifier, WebhookNotifier)
    assert hooks.sender is None  # not sending: a worker-only process
