"""Which callbacks are accepted at submit, and where a job's webhooks go."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ffpool.auth.tenants import TenantSettings, TenantsFile
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.webhooks import policy, signing

SECRET = SecretStr(signing.new_secret())
WITH_SECRET = TenantSettings(webhook_secret=SECRET)


def _settings(**kwargs: object) -> Settings:
    return Settings.model_validate(kwargs)


def _job(callback: str | None = None) -> Job:
    spec = JobSpec.model_validate(
        {"input": PathInput(path="a.mp4"), "operation": ProbeOp(), "callback": callback}
    )
    return Job(spec=spec, tenant="acme")


def test_a_public_https_callback_with_a_secret_is_accepted() -> None:
    assert policy.callback_problem(_settings(), WITH_SECRET, "https://hooks.example.com/x") is None


def test_no_callback_is_always_accepted() -> None:
    assert policy.callback_problem(_settings(), TenantSettings(), None) is None


def test_a_callback_needs_a_secret() -> None:
    problem = policy.callback_problem(_settings(), TenantSettings(), "https://hooks.example.com/")
    assert problem == policy.NO_SECRET
    with_file = _settings(webhook_secret_file="/run/secret")
    assert policy.callback_problem(with_file, TenantSettings(), "https://h.example.com/") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.5/hook",
        "ftp://hooks.example.com/",
        "https://user:pass@hooks.example.com/",
    ],
)
def test_refused_callbacks(url: str) -> None:
    problem = policy.callback_problem(_settings(), WITH_SECRET, url)
    assert problem is not None
    assert SECRET.get_secret_value() not in problem


def test_private_addresses_need_webhook_allow_private_but_metadata_never_passes() -> None:
    allowed = _settings(webhook_allow_private=True)
    assert policy.callback_problem(allowed, WITH_SECRET, "http://127.0.0.1:8080/hook") is None
    metadata = policy.callback_problem(allowed, WITH_SECRET, "http://169.254.169.254/")
    assert metadata is not None
    assert "metadata" in metadata


def test_url_inputs_setting_does_not_open_callbacks() -> None:
    urls_only = _settings(url_allow_private=True)
    assert policy.callback_problem(urls_only, WITH_SECRET, "http://127.0.0.1/") is not None


def test_target_prefers_the_job_then_the_tenant_then_the_pool() -> None:
    pool = _settings(webhook_url="https://pool.example.com/", webhook_secret_file="/s")
    tenant = TenantSettings(callback_url="https://tenant.example.com/")
    assert (
        policy.target(pool, tenant, _job("https://job.example.com/")) == "https://job.example.com/"
    )
    assert policy.target(pool, tenant, _job()) == "https://tenant.example.com/"
    assert policy.target(pool, TenantSettings(), _job()) == "https://pool.example.com/"
    assert policy.target(_settings(webhook_secret_file="/s"), TenantSettings(), _job()) is None


def test_no_secret_no_target() -> None:
    pool = _settings(webhook_url="https://pool.example.com/")
    assert policy.target(pool, TenantSettings(), _job("https://job.example.com/")) is None


def test_enabled_only_with_a_secret_somewhere() -> None:
    assert not policy.enabled(_settings(webhook_url="https://x.example.com/"), TenantsFile())
    assert policy.enabled(_settings(), TenantsFile(tenants={"acme": WITH_SECRET}))
    assert policy.enabled(_settings(webhook_secret_file="/s"), TenantsFile())
