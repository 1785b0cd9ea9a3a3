"""The deploy/ monitoring files, read: paths, dashboard panels, alert rules, PromQL helpers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from paths import ROOT

DEPLOY = ROOT / "deploy"

PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"

RULES = DEPLOY / "prometheus" / "alerts.yml"

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "refit.json"

DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

DASHBOARD_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "refit.yml"

COMPOSE = DEPLOY / "docker-compose.yml"

PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found; .ci/run installs it with the Debian package `prometheus`",
)

BENTOML_METRICS = {
    f"bentoml_service_{name}"
    for name in (
        "request_duration_seconds_bucket",
        "request_duration_seconds_sum",
        "request_duration_seconds_count",
        "request_total",
        "request_in_progress",
        "adaptive_batch_size_bucket",
        "adaptive_batch_size_sum",
        "adaptive_batch_size_count",
    )
}

ALERTS = {
    "RefitDown",
    "RefitNoPredictions",
    "RefitClassifyLatencyHigh",
    "RefitClassifyLatencyCritical",
    "RefitServerErrors",
    "RefitClientErrorsHigh",
    "RefitOverloaded",
    "RefitPredictionLogDropping",
    "RefitPredictionLogFailing",
    "RefitPredictionLogSlow",
    "RefitDriftDetected",
}

# Words of panel titles: one for each thing the dashboard must show.
DASHBOARD_TOPICS = (
    "throughput", "latency", "queue wait", "batch size", "padding", "input length",
    "truncated", "errors by reason", "load shedding", "in flight", "by label", "confidence",
    "per 1k predictions", "per 1m tokens", "machine price", "model version", "log queue",
    "written and dropped", "write latency", "gpu memory", "gpu utilisation", "drift score",
    "drift detected", "accuracy", "drift window", "since last drift check", "scheduler queue",
    "refusals by cause",
)  # fmt: skip


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows excluded, including those inside collapsed rows."""
    found = []
    for panel in dash["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expr) for every Prometheus query of the dashboard, annotations included."""
    dash = dashboard()
    found = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels(dash)
        for target in panel.get("targets", [])
    ]
    found += [
        (f"annotation {item['name']!r}", item["expr"])
        for item in dash.get("annotations", {}).get("list", [])
        if "expr" in item
    ]
    return found


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def rule_expressions() -> list[tuple[str, str, bool]]:
    """(where, expr, is_alert) for every rule."""
    found = []
    for rule in rules():
        where = f"alert {rule['alert']}" if "alert" in rule else f"record {rule['record']}"
        found.append((where, rule["expr"], "alert" in rule))
    return found


_GRAFANA_RANGE = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{__\w+\}")

_STRING = re.compile(r'"(?:\\.|[^"\\])*"')

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
             "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def concrete(expr: str, window: str = "1m") -> str:
    """`expr` with Grafana's range variables replaced by a fixed range."""
    expr = _GRAFANA_RANGE.sub(window, expr)
    assert "$" not in expr, f"unhandled Grafana variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names an expression selects."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in _KEYWORDS:
            continue  # a function or an operator
        names.add(match.group())
    return names


def as_probe(expr: str) -> str:
    """`expr` with every comparison turned into a `bool` one.

    An alert expression is empty while the alert is not firing; with `bool` it
    returns 0 or 1 for every series it compares, so an empty answer then means the
    series themselves are missing.
    """
    out: list[str] = []
    depth = i = 0
    while i < len(expr):
        char = expr[i]
        if char == '"':
            end = _STRING.match(expr, i)
            assert end is not None
            out.append(end.group())
            i = end.end()
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        op = re.match(r"==|!=|>=|<=|>|<", expr[i:]) if depth == 0 else None
        if op:
            out.append(op.group())
            i += len(op.group())
            if not re.match(r"\s*bool\b", expr[i:]):
                out.append(" bool")
            continue
        out.append(char)
        i += 1
    return "".join(out)


def declared_refit_metrics() -> set[str]:
    """Every series name monitoring/prometheus_metrics.py exports, the drift gauges included."""
    from prometheus_client.metrics import MetricWrapperBase

    from refit.monitoring import prometheus_metrics as metrics
    from refit.monitoring.state_gauges import DRIFT_GAUGES

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    return {
        metric._name + suffix
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for suffix in suffixes.get(metric._type or "", ("",))
    } | set(DRIFT_GAUGES)
