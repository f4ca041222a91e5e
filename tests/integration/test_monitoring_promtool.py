"""The alert rules and the Grafana dashboard against a real promtool (built from the Go module
proxy by cluster/promtool.sh, `make prebuild`) and a live scrape (docs/monitoring.md):

- the PrometheusRule the chart renders loads (`promtool check rules`) and its alerts fire on
  trouble and stay quiet when healthy (`promtool test rules`, tests/promtool/alerts_test.yaml);
- every PromQL expression of the dashboard parses;
- every metric name the rules and the dashboard use is one a running service's ops port or the
  operator's registry really exports (histogram series by their _bucket/_sum/_count names).

Without promtool the promtool tests skip on a developer machine and fail under CI=true."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ffpool_operator import metrics as operator_metrics
from tests import helmchart
from tests.conftest import require
from tests.helmchart import CHART, ROOT
from tests.integration.service import service

DASHBOARD = CHART / "dashboards" / "ffpool.json"
ALERTS_TEST = ROOT / "tests" / "promtool" / "alerts_test.yaml"
# The wait alert with a threshold past the old largest wait bucket (an hour).
WAIT90_TEST = ROOT / "tests" / "promtool" / "alerts_wait90_test.yaml"
VERSIONS = ROOT / "cluster" / "versions.env"
# Grafana's variables, as Grafana would expand them for a query (all pools, a 5-minute rate).
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$namespace": ".*",
    "$pool": ".*",
}
METRIC = re.compile(r"\bffpool_[a-z_]+")
SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{")


def promtool() -> Path:
    version = next(
        line.split("=", 1)[1].strip()
        for line in VERSIONS.read_text().splitlines()
        if line.startswith("PROMETHEUS_MODULE_VERSION=")
    )
    cache = Path(os.environ.get("FFPOOL_CACHE", Path.home() / ".cache" / "ffpool"))
    binary = cache / "promtool" / f"prometheus-{version}" / "bin" / "promtool"
    require(binary.is_file(), f"promtool {version}: build it with cluster/promtool.sh")
    return binary


def run_promtool(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(promtool()), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def rendered_rules(thresholds: dict[str, int] | None = None) -> dict[str, Any]:
    """The rules file the chart ships, as the Prometheus Operator hands it to Prometheus."""
    values = {"prometheusRule": {"enabled": True, "thresholds": thresholds or {}}}
    [rule] = helmchart.of_kind(helmchart.manifests(values), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def rule_queries() -> list[str]:
    return [r["expr"] for group in rendered_rules()["groups"] for r in group["rules"]]


def expanded(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "ffpool-alerts.yaml").write_text(yaml.safe_dump(rendered_rules()))
    long_wait = rendered_rules({"queueWaitMinutes": 90})
    (tmp_path / "ffpool-alerts-wait90.yaml").write_text(yaml.safe_dump(long_wait))
    for test in (ALERTS_TEST, WAIT90_TEST):
        shutil.copy(test, tmp_path / test.name)
    return tmp_path


def test_the_shipped_rules_load(rules_dir: Path) -> None:
    out = run_promtool("check", "rules", "ffpool-alerts.yaml", cwd=rules_dir)
    assert "SUCCESS: 5 rules found" in out


def test_each_alert_fires_on_trouble_and_not_when_healthy(rules_dir: Path) -> None:
    run_promtool("test", "rules", ALERTS_TEST.name, cwd=rules_dir)


def test_waits_longer_than_an_hour_alert(rules_dir: Path) -> None:
    run_promtool("test", "rules", WAIT90_TEST.name, cwd=rules_dir)


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """Each query as a recording rule: `check rules` parses its PromQL (label_values() is
    Grafana's: the selector inside it is checked)."""
    rules = []
    for i, expr in enumerate(dashboard_queries()):
        inner = re.fullmatch(r"label_values\((.*), *\w+\)", expr)
        query = expanded(inner.group(1) if inner else expr)
        rules.append({"record": f"ffpool:dashboard_query_{i}", "expr": query})
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    out = run_promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out


def exported_names(text: str) -> set[str]:
    """Every series name a scrape can hold: counters with _total, histograms by their series."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


@pytest.mark.ffmpeg
async def test_queries_name_only_exported_metrics(media_root: Path) -> None:
    async with service(media_root) as svc, aiohttp.ClientSession() as http:
        scrape = f"http://127.0.0.1:{svc.ops_port}/metrics"
        async with http.get(scrape, timeout=aiohttp.ClientTimeout(total=10)) as reply:
            assert reply.status == 200
            service_text = await reply.text()
    assert operator_metrics.DESIRED_WORKERS is not None  # imported: in the default registry
    exported = exported_names(service_text) | exported_names(generate_latest(REGISTRY).decode())
    queries = dashboard_queries() + rule_queries()
    used = {name for expr in queries for name in METRIC.findall(expr)}
    assert used, "no metric names found in the queries"
    assert used - exported == set(), "queries name metrics nobody exports"
    for expr in queries:  # every selector is one of ours, not some other exporter's
        for name in SELECTOR.findall(expr):
            assert name.startswith("ffpool_"), f"{name} in {expr}"
    wanted = {
        "ffpool_queue_wait_seconds_bucket",
        "ffpool_operator_max_workers",
        "ffpool_operator_queue_ready",
        "ffpool_operator_worker_restarts_total",
    }
    assert wanted <= used
