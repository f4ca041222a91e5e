"""The pool spec's storage: a ReadWriteMany PersistentVolumeClaim shared by servers and workers,
or a bucket (S3 or S3-compatible), in which case the pods share no filesystem at all and each
keeps only a local scratch `emptyDir`. docs/kubernetes.md ("Storage: a volume or a bucket")
explains the choice."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ffpool_operator.spec.camel import Camel, K8sName
from ffpool_operator.spec.rules import Rule
from ffpool_operator.spec.security import SecretKey, SecretKeyRef

# S3 bucket naming rules (3-63 lower-case letters, digits, dots and hyphens).
BucketName = Annotated[
    str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
]
# `s3://bucket[/prefix]`: the service's S3Prefix (service/ffpool/domain/jobs.py), which the
# operator may not import; a unit test keeps the patterns equal. No commas: lists are joined
# with commas (S3_ALLOW_READ).
S3_LOCATION_PATTERN = (
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/([A-Za-z0-9_.][A-Za-z0-9_./=+-]*)?)?$"
)
S3Location = Annotated[str, Field(min_length=8, max_length=1000, pattern=S3_LOCATION_PATTERN)]
# A key prefix: no leading or trailing slash, no white space; empty is the bucket's root.
KeyPrefix = Annotated[str, Field(max_length=512, pattern=r"^([^/\s]([^\s]*[^/\s])?)?$")]
# scheme://host[:port], nothing else: the NetworkPolicy opens the endpoint's port.
Endpoint = Annotated[
    str,
    Field(
        max_length=270,
        pattern=r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$",
    ),
]
# A Kubernetes quantity as emptyDir's sizeLimit takes it (binary or decimal suffix).
Quantity = Annotated[
    str, Field(max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
]
DEFAULT_SCRATCH_SIZE_LIMIT = "20Gi"


class S3CredentialsRef(Camel):
    """A Secret with the access key pair. Passed to the pods by `secretKeyRef` (never as a
    plain value, never in the ConfigMap)."""

    name: K8sName
    access_key_id_key: SecretKey = "accessKeyId"
    secret_access_key_key: SecretKey = "secretAccessKey"  # noqa: S105 - a key name


class S3StorageSpec(Camel):
    """The pool's bucket: uploads, job state records and (by default) outputs."""

    bucket: BucketName
    prefix: KeyPrefix = "ffpool"
    """Key prefix of everything the pool writes in the bucket (S3_PREFIX)."""
    endpoint: Endpoint | None = None
    """An S3-compatible server (https://minio.minio.svc:9000); unset: AWS S3."""
    public_endpoint: Endpoint | None = None
    """The endpoint as clients reach it, named by presigned links (S3_PUBLIC_ENDPOINT_URL),
    when `endpoint` is an in-cluster address clients cannot resolve."""
    region: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = (
        "us-east-1"
    )
    path_style: bool = False
    """Path-style addressing (endpoint/bucket/key), which most S3-compatible servers need."""
    verify_tls: bool = True
    ca_secret_ref: SecretKeyRef | None = None
    """A PEM bundle (a private CA) to verify the endpoint with, mounted as S3_CA_BUNDLE."""
    credentials_secret_ref: S3CredentialsRef | None = None
    """Unset: the pod's own identity (AWS' default chain: IRSA, EKS Pod Identity, ...)."""
    output_url: S3Location | None = None
    """Default output location (OUTPUT_URL); unset: s3://BUCKET/PREFIX/outputs."""
    allow_read: Annotated[list[S3Location], Field(max_length=64)] = Field(default_factory=list)
    """Locations every tenant may read inputs from (S3_ALLOW_READ); the tenants file adds
    per-tenant ones."""
    allow_write: Annotated[list[S3Location], Field(max_length=64)] = Field(default_factory=list)
    """Locations every tenant may name as a job's output (S3_ALLOW_WRITE)."""


class StorageSpec(Camel):
    """Exactly one of `claimName` (a shared volume) and `s3` (a bucket, no shared volume)."""

    RULES = (
        Rule(
            cel="has(self.claimName) != has(self.s3)",
            message="set exactly one of claimName (a ReadWriteMany PersistentVolumeClaim"
            " shared by servers and workers) and s3 (a bucket: no shared volume)",
            holds=lambda s: (s.claim_name is None) != (s.s3 is None),
        ),
        Rule(
            cel="!has(self.scratchSizeLimit) || has(self.s3)",
            message="scratchSizeLimit is for s3 storage only: with claimName runs use the volume",
            holds=lambda s: s.scratch_size_limit is None or s.s3 is not None,
        ),
    )

    claim_name: K8sName | None = None
    """A ReadWriteMany PVC, mounted at mountPath in servers and workers (MEDIA_ROOT)."""
    mount_path: Annotated[str, Field(pattern=r"^/[^:]*$")] = "/media"
    """MEDIA_ROOT: the volume's mount path; with s3, a small per-pod emptyDir."""
    s3: S3StorageSpec | None = None
    scratch_size_limit: Quantity | None = None
    """With s3: the sizeLimit of each pod's scratch emptyDir (SCRATCH_ROOT), which holds a
    run's inputs and outputs while it runs; default 20Gi."""

    @property
    def scratch_limit(self) -> str:
        return self.scratch_size_limit or DEFAULT_SCRATCH_SIZE_LIMIT
