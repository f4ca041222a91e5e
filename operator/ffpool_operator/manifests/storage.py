"""Pure builders of what a pool's storage, tenants file and webhook secret add to its pods:
volumes, mounts, settings (ConfigMap) and Secret-backed env.

- `storage.claimName`: the PVC at `mountPath` (MEDIA_ROOT), nothing else, exactly as before
  bucket storage existed (so an upgraded operator restarts no pod of such a pool).
- `storage.s3`: no PVC. MEDIA_ROOT is a small emptyDir, SCRATCH_ROOT a bigger one (sizeLimit
  `scratchSizeLimit`) for runs' files; the bucket's settings go to the ConfigMap, the access
  key pair to env by `secretKeyRef` only, a private CA as a Secret volume (S3_CA_BUNDLE).
- `tenants`: the tenants file, a Secret volume in servers and workers (both resolve a tenant's
  buckets) → TENANTS_FILE.
- `webhooks.secretRef`: the default signing secret, a Secret volume in servers and workers →
  WEBHOOK_SECRET_FILE; `webhooks.url` → WEBHOOK_URL. Servers sign and send; workers queue their
  jobs' deliveries, and a process without a secret queues none (docs/webhooks.md), so both
  need it.
Secrets are whole-directory mounts, never `subPath`, so the kubelet's in-place updates reach the
pods (the same choice as the tokens Secret in deployments.py).
"""

from __future__ import annotations

from typing import Any

from ffpool_operator.spec.pool import PoolSpec

MEDIA_VOLUME = "media"
SCRATCH_VOLUME = "scratch"
SCRATCH_DIR = "/var/lib/ffpool/scratch"
# MEDIA_ROOT in bucket mode holds no media, only the little the service keeps locally.
MEDIA_SIZE_LIMIT = "1Gi"
S3_CA_VOLUME = "s3-ca"
S3_CA_DIR = "/var/run/ffpool/s3-ca"
TENANTS_VOLUME = "tenants"
TENANTS_DIR = "/var/run/ffpool/tenants"
WEBHOOK_VOLUME = "webhook-secret"
WEBHOOK_DIR = "/var/run/ffpool/webhook"
SECRET_FILE_MODE = 0o440  # owner and fsGroup (the service's user) read; nobody writes
STORAGE_S3 = "s3"

Env = list[dict[str, Any]]
Volumes = list[dict[str, Any]]


def _flag(value: bool) -> str:
    return str(value).lower()


def settings(spec: PoolSpec) -> dict[str, str]:
    """Non-secret settings for the ConfigMap (ffpool Settings names, upper case)."""
    out = {"MEDIA_ROOT": spec.storage.mount_path}
    s3 = spec.storage.s3
    if s3 is not None:
        out |= {
            "STORAGE": STORAGE_S3,
            "S3_BUCKET": s3.bucket,
            "S3_PREFIX": s3.prefix,
            "S3_REGION": s3.region,
            "S3_PATH_STYLE": _flag(s3.path_style),
            "S3_VERIFY_TLS": _flag(s3.verify_tls),
            "SCRATCH_ROOT": SCRATCH_DIR,
        }
        if s3.endpoint:
            out["S3_ENDPOINT_URL"] = s3.endpoint
        if s3.public_endpoint:
            out["S3_PUBLIC_ENDPOINT_URL"] = s3.public_endpoint
        if s3.ca_secret_ref:
            out["S3_CA_BUNDLE"] = f"{S3_CA_DIR}/{s3.ca_secret_ref.key}"
        if s3.output_url:
            out["OUTPUT_URL"] = s3.output_url
        if s3.allow_read:
            out["S3_ALLOW_READ"] = ",".join(s3.allow_read)
        if s3.allow_write:
            out["S3_ALLOW_WRITE"] = ",".join(s3.allow_write)
    if spec.webhooks.url:
        out["WEBHOOK_URL"] = spec.webhooks.url
    return out


def env(spec: PoolSpec) -> Env:
    """Per-container env: Secret references and the paths of mounted Secret files."""
    out: Env = []
    s3 = spec.storage.s3
    if s3 is not None and s3.credentials_secret_ref is not None:
        ref = s3.credentials_secret_ref
        for name, key in (
            ("S3_ACCESS_KEY_ID", ref.access_key_id_key),
            ("S3_SECRET_ACCESS_KEY", ref.secret_access_key_key),
        ):
            out.append(
                {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key}}}
            )
    if spec.tenants is not None:
        out.append(
            {"name": "TENANTS_FILE", "value": f"{TENANTS_DIR}/{spec.tenants.secret_ref.key}"}
        )
    hook = spec.webhooks.secret_ref
    if hook is not None:
        out.append({"name": "WEBHOOK_SECRET_FILE", "value": f"{WEBHOOK_DIR}/{hook.key}"})
    return out


def _mount(name: str, path: str, read_only: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        out["readOnly"] = True
    return out


def storage_mounts(spec: PoolSpec) -> list[dict[str, Any]]:
    out = [_mount(MEDIA_VOLUME, spec.storage.mount_path)]
    s3 = spec.storage.s3
    if s3 is not None:
        out.append(_mount(SCRATCH_VOLUME, SCRATCH_DIR))
        if s3.ca_secret_ref is not None:
            out.append(_mount(S3_CA_VOLUME, S3_CA_DIR, read_only=True))
    return out


def secret_mounts(spec: PoolSpec) -> list[dict[str, Any]]:
    out = []
    if spec.tenants is not None:
        out.append(_mount(TENANTS_VOLUME, TENANTS_DIR, read_only=True))
    if spec.webhooks.secret_ref is not None:
        out.append(_mount(WEBHOOK_VOLUME, WEBHOOK_DIR, read_only=True))
    return out


def secret_volume(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret, "defaultMode": SECRET_FILE_MODE}}


def storage_volumes(spec: PoolSpec) -> Volumes:
    storage = spec.storage
    s3 = storage.s3
    if s3 is None:
        return [{"name": MEDIA_VOLUME, "persistentVolumeClaim": {"claimName": storage.claim_name}}]
    out: Volumes = [
        {"name": MEDIA_VOLUME, "emptyDir": {"sizeLimit": MEDIA_SIZE_LIMIT}},
        {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": storage.scratch_limit}},
    ]
    if s3.ca_secret_ref is not None:
        out.append(secret_volume(S3_CA_VOLUME, s3.ca_secret_ref.name))
    return out


def secret_volumes(spec: PoolSpec) -> Volumes:
    out: Volumes = []
    if spec.tenants is not None:
        out.append(secret_volume(TENANTS_VOLUME, spec.tenants.secret_ref.name))
    hook = spec.webhooks.secret_ref
    if hook is not None:
        out.append(secret_volume(WEBHOOK_VOLUME, hook.name))
    return out
