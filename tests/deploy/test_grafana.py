"""deploy/grafana/pawhub.json: every metric its queries name is one the processes export, and
every pawhub metric they export is on it (so neither can drift from the other)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, Metric

# The composition roots of the hub, the worker and the API: what they import is registered.
PROCESS_ROOTS = ("pawhub.hub", "pawhub.worker", "pawhub.api")
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "pawhub.json"
PROMQL_KEYWORDS = {"and", "or", "unless", "offset", "bool"}
# Clauses whose parentheses hold label names, not metrics.
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or strings)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)
    bare = GROUPING.sub("", bare)
    bare = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+|ms|[smhdwy])?\b", "", bare)  # numbers, durations
    return {
        name for name, call in IDENTIFIER.findall(bare) if not call and name not in PROMQL_KEYWORDS
    }


def exported_families() -> list[Metric]:
    for module in PROCESS_ROOTS:
        importlib.import_module(module)
    return list(REGISTRY.collect())


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]


def test_metric_names_are_parsed_out_of_promql() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job=~"$job"}[5m])))'
        ' / ignoring(instance) b_total offset 5m - on(x) group_left(y) c unless d{l="x y"}'
    )
    assert metric_names(expression) == {"a_seconds_bucket", "b_total", "c", "d"}


def test_every_queried_metric_is_exported(dashboard: dict[str, Any]) -> None:
    exported = {sample.name for family in exported_families() for sample in family.samples}
    queried = {name for expression in expressions(dashboard) for name in metric_names(expression)}
    variables = [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    queried |= {re.fullmatch(r"label_values\((\w+), \w+\)", v)[1] for v in variables}  # type: ignore[index]
    assert len(queried) >= 10
    assert queried <= exported, queried - exported


def test_every_exported_pawhub_metric_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    queried = {name for expression in expressions(dashboard) for name in metric_names(expression)}
    families = {family.name for family in exported_families() if family.name.startswith("pawhub_")}
    missing = {
        family
        for family in families
        if not any(name == family or name.startswith(f"{family}_") for name in queried)
    }
    assert missing == set(), f"exported but on no panel: {missing}"


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    assert "datasource" in {variable["name"] for variable in dashboard["templating"]["list"]}
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
    for panel in panels(dashboard):
        assert panel["datasource"] == datasource and panel["description"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
