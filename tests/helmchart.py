"""Render the ffpool-operator chart with the real Helm engine (helm-python-sdk: Helm v4's Go SDK
in-process, no binary, no cluster) and parse what it produces. Shared by the chart and
manifest tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "ffpool-operator"
RELEASE = "ffpool-operator"
NAMESPACE = "ffpool-system"

# The variations every manifest test runs over: name → values.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"rbac": {"scope": "namespace", "namespaces": ["media", "batch"]}},
    "namespaced-release-ns": {"rbac": {"scope": "namespace"}},
    "metrics": {
        "metrics": {"service": {"enabled": True, "annotations": {"prometheus.io/scrape": "true"}}}
    },
    "prometheus-operator": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
        "grafanaDashboard": {"enabled": True},
    },
    "custom-image": {
        "image": {
            "repository": "registry.example.com/ffpool/operator",
            "tag": "1.2.3",
            "pullPolicy": "Always",
        },
        "imagePullSecrets": ["regcred"],
        "operator": {"logLevel": "DEBUG", "extraEnv": [{"name": "TZ", "value": "UTC"}]},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
}


@cache
def chart() -> helm_python.Chart:
    """Loaded once per test process (a Chart is immutable and thread-safe)."""
    return helm_python.Chart.load(CHART)


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path → rendered text, as `helm install` would render it."""
    rendered: dict[str, str] = chart().render(
        values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    return rendered


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the templates produce (NOTES.txt excluded), in template order."""
    out: list[dict[str, Any]] = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        out.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return out


def notes(values: dict[str, Any] | None = None) -> str:
    return next(t for p, t in render(values).items() if p.endswith("NOTES.txt"))


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def crd_documents() -> list[dict[str, Any]]:
    """The CRDs Helm installs from the chart's crds/ directory."""
    return [doc for item in chart().crds for doc in yaml.safe_load_all(item["data"]) if doc]
