"""Submit-time checks of what a job names: s3 inputs, output locations, object storage at all."""

from __future__ import annotations

from typing import Any

import pytest

from ffpool.auth.tenants import TenantSettings, TenantsFile
from ffpool.domain.jobs import JobSpec
from ffpool.server.job_checks import NO_OBJECT_STORAGE, JobChecks, job_problem
from ffpool.settings import Settings, StorageKind

TENANTS = TenantsFile(
    tenants={
        "acme": TenantSettings(
            s3_read=("s3://media-in/acme/",),
            s3_write=("s3://media-out/acme",),
        ),
        "own-output": TenantSettings(output="s3://tenant-out/x"),
    }
)


def spec(**job: Any) -> JobSpec:
    data: dict[str, Any] = {
        "input": {"kind": "path", "path": "a.mp4"},
        "operation": {"op": "probe"},
    }
    data.update(job)
    return JobSpec.model_validate(data)


def s3_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"storage": StorageKind.S3, "s3_bucket": "pool-bucket"}
    return Settings(**(base | overrides))


def s3_input(url: str) -> dict[str, str]:
    return {"kind": "s3", "url": url}


def test_plain_jobs_pass_on_any_server() -> None:
    for settings in (Settings(), s3_settings()):
        assert JobChecks(settings, TENANTS).problem("acme", spec()) is None


@pytest.mark.parametrize(
    "job",
    [
        {"input": s3_input("s3://media-in/acme/a.mp4")},
        {"output": "s3://media-out/acme/"},
    ],
)
def test_filesystem_server_refuses_object_storage(job: dict[str, Any]) -> None:
    problem = JobChecks(Settings(), TENANTS).problem("acme", spec(**job))
    assert problem is not None
    assert problem.startswith(NO_OBJECT_STORAGE)


def test_tenant_reads_only_its_own_prefixes() -> None:
    checks = JobChecks(s3_settings(), TENANTS)
    assert checks.problem("acme", spec(input=s3_input("s3://media-in/acme/clips/a.mp4"))) is None
    refused = checks.problem("acme", spec(input=s3_input("s3://media-in/acme-other/a.mp4")))
    assert refused == "reading s3://media-in/acme-other/a.mp4 is not allowed for this tenant"
    # Another tenant (or one missing from the file) may read nothing by default.
    assert checks.problem("other", spec(input=s3_input("s3://media-in/acme/a.mp4"))) is not None


def test_pool_wide_read_list_applies_to_every_tenant() -> None:
    checks = JobChecks(s3_settings(s3_allow_read=("s3://shared/",)), TenantsFile())
    assert checks.problem("anyone", spec(input=s3_input("s3://shared/a/b.mp4"))) is None


def test_output_must_be_writable_or_a_default() -> None:
    checks = JobChecks(s3_settings(), TENANTS)
    assert checks.problem("acme", spec(output="s3://media-out/acme/run1")) is None
    assert checks.problem("acme", spec(output="s3://media-out/other")) == (
        "writing to s3://media-out/other is not allowed for this tenant"
    )
    # The pool's default output location (S3_BUCKET/S3_PREFIX/outputs) is always allowed.
    assert checks.problem("acme", spec(output="s3://pool-bucket/ffpool/outputs/")) is None
    # A tenant's own default output too.
    assert checks.problem("own-output", spec(output="s3://tenant-out/x/y")) is None


def test_no_default_output_without_bucket_is_refused() -> None:
    # Not a state app.py allows (STORAGE=s3 needs S3_BUCKET), but the check must not pass it.
    problem = job_problem(
        Settings(storage=StorageKind.S3), TenantsFile(), "acme", spec(), objects=True
    )
    assert problem == "no output location: name one, or configure OUTPUT_URL"


def test_callback_policy_is_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def refuse(settings: Settings, tenant: TenantSettings, url: str | None) -> str | None:
        seen.append(url)
        return "callback refused" if url else None

    monkeypatch.setattr("ffpool.server.job_checks.callback_problem", refuse)
    checks = JobChecks(Settings(), TENANTS)
    assert checks.problem("acme", spec(callback="https://hooks.example.com/x")) == (
        "callback refused"
    )
    assert checks.problem("acme", spec()) is None
    assert seen == ["https://hooks.example.com/x", None]


def test_callback_refusals_come_from_the_webhook_policy() -> None:
    checks = JobChecks(Settings(), TENANTS)
    problem = checks.problem("acme", spec(callback="http://127.0.0.1:9/hook"))
    assert problem is not None
    assert "callback" in problem
