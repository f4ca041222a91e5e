"""Submit-time checks of what a job names: s3 inputs, output locations, object storage at all."""

from __future__ import annotations

from typing import Any

import pytest

from ffpool.auth.tenants import TenantSettings, TenantsFile, settings_for
from ffpool.domain.jobs import JobSpec
from ffpool.server.job_checks import NO_OBJECT_STORAGE, JobChecks, job_problem
from ffpool.settings import Settings, StorageKind
from ffpool.storage.access import output_base

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
    # The tenant's own part of the pool's default outputs (S3_BUCKET/S3_PREFIX/outputs/<tenant>)
    # is always allowed; another tenant's part, or all of them, is not.
    assert checks.problem("acme", spec(output="s3://pool-bucket/ffpool/outputs/acme/x")) is None
    for other in ("s3://pool-bucket/ffpool/outputs/", "s3://pool-bucket/ffpool/outputs/beta"):
        assert checks.problem("acme", spec(output=other)) == (
            f"writing to {other.rstrip('/')} is not allowed for this tenant"
        )
    # A tenant's own default output too.
    assert checks.problem("own-output", spec(output="s3://tenant-out/x/y")) is None


def test_default_outputs_have_a_tenant_segment() -> None:
    tenants = TenantsFile()
    base = output_base(s3_settings(), settings_for(tenants, "acme"), None, tenant_name="acme")
    assert base.url == "s3://pool-bucket/ffpool/outputs/acme"
    # OUTPUT_URL and a tenant's own output replace it as they are.
    pool = s3_settings(output_url="s3://out-bucket/all")
    assert output_base(pool, TenantSettings(), None, tenant_name="acme").url == (
        "s3://out-bucket/all"
    )
    own = TENANTS.tenants["own-output"]
    assert output_base(pool, own, None, tenant_name="own-output").url == "s3://tenant-out/x"


# However broad an allow-list, the pool's uploads, job records and chunks stay out of reach.
RESERVED = (
    "s3://pool-bucket/ffpool/uploads/beta/" + "a" * 32,
    "s3://pool-bucket/ffpool/jobs/" + "b" * 32 + "/completed.json",
    "s3://pool-bucket/ffpool/jobs",
    "s3://pool-bucket/ffpool/chunks/" + "c" * 32 + "/in-0000.mkv",
    "s3://pool-bucket/ffpool/chunks",
)


@pytest.mark.parametrize("url", RESERVED)
@pytest.mark.parametrize("allowed", ["s3://pool-bucket/", "s3://pool-bucket/ffpool"])
def test_the_pools_own_areas_are_never_readable(url: str, allowed: str) -> None:
    settings = s3_settings(s3_allow_read=(allowed,), s3_allow_write=(allowed,))
    checks = JobChecks(settings, TenantsFile())
    problem = checks.problem("acme", spec(input=s3_input(url)))
    assert problem == f"reading {url} is not allowed: it is the pool's own area"
    problem = checks.problem("acme", spec(output=url))
    assert problem == f"writing to {url} is not allowed: it is the pool's own area"


def test_areas_outside_the_pools_own_stay_usable_with_a_broad_list() -> None:
    settings = s3_settings(
        s3_allow_read=("s3://pool-bucket/",), s3_allow_write=("s3://pool-bucket",)
    )
    checks = JobChecks(settings, TenantsFile())
    # Whole segments: ffpool/jobs-archive is not ffpool/jobs; another prefix is not the pool's.
    for url in ("s3://pool-bucket/ffpool/jobs-archive/a.mp4", "s3://pool-bucket/other/jobs/a"):
        assert checks.problem("acme", spec(input=s3_input(url))) is None
        assert checks.problem("acme", spec(output=url)) is None
    # The pool's own prefix as a whole may be named as an output: outputs go under <job id>/.
    assert checks.problem("acme", spec(output="s3://pool-bucket/ffpool")) is None
    # Another bucket's jobs/ is not the pool's.
    other = s3_settings(s3_allow_read=("s3://media-in/",))
    problem = JobChecks(other, TenantsFile()).problem(
        "acme", spec(input=s3_input("s3://media-in/ffpool/jobs/x.mp4"))
    )
    assert problem is None


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
