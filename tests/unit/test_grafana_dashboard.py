"""The Grafana dashboard (charts/ffpool-operator/dashboards/ffpool.json, docs/monitoring.md) is a
well-formed dashboard: identity and schema version, a data source variable every query uses, the
namespace and pool filters applied by every query, panels laid out on Grafana's 24-column grid
without overlaps, and the panels the issue asks for. Its PromQL and metric names are checked
against promtool and a live scrape in tests/integration/test_monitoring_promtool.py."""

from __future__ import annotations

import json
from typing import Any

from tests.helmchart import CHART

DASHBOARD = CHART / "dashboards" / "ffpool.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def board() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in board()["panels"] if p["type"] != "row"]


def test_identity_and_schema() -> None:
    dash = board()
    assert dash["uid"] == "ffpool-overview"
    assert dash["title"] == "ffpool"
    assert isinstance(dash["schemaVersion"], int)
    assert dash["schemaVersion"] >= 36  # Grafana 9+: data sources referenced by uid
    assert "id" not in dash  # an import assigns it


def test_variables_datasource_namespace_and_pool() -> None:
    variables = {v["name"]: v for v in board()["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "pool"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "pool"):
        var = variables[name]
        assert var["type"] == "query"
        assert var["datasource"] == DATASOURCE
        assert var["multi"] is True
        assert var["includeAll"] is True
        assert var["allValue"] == ".*"
    assert "$namespace" in variables["pool"]["definition"]  # pools of the chosen namespaces


def test_every_panel_queries_through_the_datasource_variable_with_the_filters() -> None:
    ids = [p["id"] for p in board()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert "$namespace" in target["expr"], target["expr"]
            assert "$pool" in target["expr"], target["expr"]


def test_panels_tile_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in board()["panels"]:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid), panel["title"]
        assert grid["x"] >= 0
        assert grid["w"] >= 1
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_panels_the_issue_asks_for() -> None:
    exprs = " ".join(t["expr"] for p in panels() for t in p["targets"])
    for metric in (
        "ffpool_queue_depth",
        "ffpool_queue_wait_seconds_bucket",
        "ffpool_operator_desired_workers",
        "ffpool_operator_current_workers",
        "ffpool_operator_busy_workers",
        "ffpool_jobs_finished_total",
        "ffpool_job_duration_seconds_bucket",
        "ffpool_realtime_factor_bucket",
        "ffpool_operator_scaling_decisions_total",
        "ffpool_dead_letters",
        "ffpool_broker_reconnects_total",
        "ffpool_input_bytes_total",
        "ffpool_output_bytes_total",
    ):
        assert metric in exprs, metric
