"""The cluster's keys and certificates, made with the openssl command line (Debian's `openssl`):
one CA, the API server's serving certificate naming every address clients use, a client
certificate the API server presents to kubelets, and the ServiceAccount token signing key."""

from __future__ import annotations

import subprocess
from pathlib import Path

DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _signed(cwd: Path, name: str, subject: str, extensions: str) -> None:
    (cwd / f"{name}.ext").write_text(extensions, encoding="utf-8")
    _openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-subj",
        subject,
        "-out",
        f"{name}.csr",
        cwd=cwd,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=cwd,
    )


def make(directory: Path, addresses: list[str]) -> None:
    """Write ca.{crt,key}, apiserver.{crt,key}, apiserver-kubelet-client.{crt,key}, sa.{key,pub};
    idempotent, so a reused work directory keeps its identities."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "sa.pub").exists():
        return
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "30",
        "-subj",
        "/CN=ffpool-test-ca",
        cwd=directory,
    )
    sans = [f"DNS:{n}" for n in DNS_NAMES] + [f"IP:{a}" for a in ("127.0.0.1", *addresses)]
    _signed(
        directory,
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(sans)}\n",
    )
    _signed(
        directory,
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
