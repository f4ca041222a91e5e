"""Where the Kubernetes API is and how to authenticate: one loader for both kopf (its login
handler) and the operator's own client (client.py). In-cluster first, then $KUBECONFIG read at
call time (the `kubernetes` package reads it at import time otherwise)."""

from __future__ import annotations

import os
import ssl
from typing import Any

import kopf
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config


def load() -> Any:
    """A `kubernetes.client.Configuration` (in-cluster, else $KUBECONFIG / ~/.kube/config)."""
    cfg = k8s_client.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=cfg
        )
    return cfg


def token(cfg: Any) -> str | None:
    """The bearer token, refreshed by the config's hook (rotated service-account tokens)."""
    value: str | None = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
    if value and value.lower().startswith("bearer "):
        value = value.split(" ", 1)[1]
    return value


def ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    if not cfg.host.startswith("https"):
        return False
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


def connection_info(cfg: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        scheme="Bearer" if token(cfg) else None,
        token=token(cfg),
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )
