"""What a submitted job may name, checked before it reaches a backend: its s3 input, its output
location and its callback URL (docs/storage.md, docs/webhooks.md).

Pure decisions over the settings and the tenants file; the session turns a problem into an
`invalid_job` refusal, so a job the worker would only fail later is never queued. The worker
checks the input again when it runs (defence in depth: the tenants file may have changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ffpool.auth.tenants import TenantsFile, settings_for
from ffpool.domain.jobs import JobSpec, S3Input
from ffpool.settings import Settings, StorageKind
from ffpool.storage.access import AccessDenied, check_read, output_base
from ffpool.webhooks.policy import callback_problem

NO_OBJECT_STORAGE = "this server has no object storage (STORAGE=filesystem): s3 inputs and outputs"


def job_problem(
    settings: Settings, tenants: TenantsFile, tenant: str, spec: JobSpec, *, objects: bool
) -> str | None:
    """Why `tenant` may not submit `spec`, in words for the client; None when it may.
    `objects`: this server has an object store (STORAGE=s3)."""
    tenant_settings = settings_for(tenants, tenant)
    wants_objects = isinstance(spec.input, S3Input) or spec.output is not None
    if wants_objects and not objects:
        return f"{NO_OBJECT_STORAGE} are not available"
    try:
        if isinstance(spec.input, S3Input):
            check_read(settings, tenant_settings, spec.input.url)
        if objects:
            output_base(settings, tenant_settings, spec.output, tenant_name=tenant)
    except AccessDenied as exc:
        return str(exc)
    callback = None if spec.callback is None else str(spec.callback)
    return callback_problem(settings, tenant_settings, callback)


@dataclass(frozen=True)
class JobChecks:
    """The checks as the edge holds them: one server's settings and tenants."""

    settings: Settings
    tenants: TenantsFile = field(default_factory=TenantsFile)

    @property
    def objects(self) -> bool:
        return self.settings.storage is StorageKind.S3

    def problem(self, tenant: str, spec: JobSpec) -> str | None:
        return job_problem(self.settings, self.tenants, tenant, spec, objects=self.objects)
