"""The deploy/ stack: Prometheus config and rules, the Grafana dashboard, docker-compose.

The static tests read the files (and run promtool when it is installed). The
integration test has a real Prometheus scrape a real refit server under load, then
evaluates every PromQL expression of the dashboard and of the rules file against
what was scraped: a misspelt metric or label shows up as an empty panel there.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cases import BAD_REQUESTS
from servers import RunningServer, start_bentoml, start_prometheus

ROOT = Path(__file__).resolve().parent.parent
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
    "RefitPredictionLogSlow",
    "RefitDriftDetected",
}
# Words of panel titles: one for each thing the dashboard must show.
DASHBOARD_TOPICS = (
    "throughput", "latency", "queue wait", "batch size", "padding", "input length",
    "truncated", "errors by reason", "load shedding", "in flight", "by label", "confidence",
    "per 1k predictions", "per 1m tokens", "machine price", "model version", "log queue",
    "written and dropped", "write latency", "gpu memory", "gpu utilisation", "drift score",
    "drift detected", "accuracy", "drift window", "since last drift check",
)  # fmt: skip


# --- reading the files -------------------------------------------------------------


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


# --- reading PromQL ------------------------------------------------------------------

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

    from monitoring import prometheus_metrics as metrics

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    return {
        metric._name + suffix
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for suffix in suffixes.get(metric._type, ("",))
    } | set(metrics.DRIFT_GAUGES)


# --- static tests ----------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (["check", "config", PROMETHEUS_CONFIG], ["check", "rules", RULES]):
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_scrapes_the_compose_service() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "refit"
    assert job["metrics_path"] == "/metrics"
    assert job["scrape_interval"] == "15s"
    assert job["static_configs"] == [{"targets": ["refit:3000"]}]
    assert [(PROMETHEUS_CONFIG.parent / f).resolve() for f in config["rule_files"]] == [RULES]


def test_alerts_are_actionable() -> None:
    alerts = {rule["alert"]: rule for rule in rules() if "alert" in rule}
    assert set(alerts) == ALERTS
    for name, rule in alerts.items():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"].strip(), name
        # The description is the on-call person's first guide: it must say where to look.
        assert len(rule["annotations"]["description"].split()) >= 25, name


def test_every_metric_named_is_exported_or_planned() -> None:
    """Guards against typos without a server: names must come from a known exporter."""
    known = declared_refit_metrics() | BENTOML_METRICS | {"up"}
    known |= {rule["record"] for rule in rules() if "record" in rule}
    queries = dashboard_expressions() + [(w, e) for w, e, _ in rule_expressions()]
    unknown = {where: sorted(metric_names(expr) - known) for where, expr in queries}
    assert {where: names for where, names in unknown.items() if names} == {}


def test_error_reasons_in_queries_exist() -> None:
    from monitoring.prometheus_metrics import ERROR_REASONS

    queries = dashboard_expressions() + [(w, e) for w, e, _ in rule_expressions()]
    for where, expr in queries:
        for values in re.findall(r'reason=~?"([^"]*)"', expr):
            assert set(values.split("|")) <= set(ERROR_REASONS), (where, values)


def test_dashboard_panels_all_query_the_provisioned_datasource() -> None:
    dash = dashboard()
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    assert 36 <= dash["schemaVersion"] <= 41
    found = panels(dash)
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for panel in found:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, title
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target["datasource"]["uid"] == source["uid"], title
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, title
    titles = " | ".join(p["title"] for p in found).lower()
    assert [topic for topic in DASHBOARD_TOPICS if topic not in titles] == []


def test_cost_panels_are_single_expressions() -> None:
    # One query each, so that the panels read the same in Grafana's Explore and in a
    # Prometheus alert or recording rule copied from them.
    cost = {
        p["title"]: p["targets"] for p in panels(dashboard()) if re.search(r"per 1[kM]", p["title"])
    }
    assert len(cost) == 3
    for title, targets in cost.items():
        (target,) = targets
        assert "refit_predictions_total" in target["expr"] or "per 1M" in title, title
    assert (
        "max(refit_machine_hourly_price_usd)" in cost["Machine price per 1k predictions"][0]["expr"]
    )


def test_grafana_provisioning_matches_compose_mounts() -> None:
    compose = load_yaml(COMPOSE)
    (provider,) = load_yaml(DASHBOARD_PROVIDER)["providers"]
    assert provider["type"] == "file"
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in compose["services"]["grafana"]["volumes"]
    }
    dashboards_at = provider["options"]["path"]
    assert mounts[dashboards_at] == "./grafana/dashboards"
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home == f"{dashboards_at}/{DASHBOARD.name}"


def test_compose_builds_the_repo_and_mounts_existing_files() -> None:
    compose = load_yaml(COMPOSE)
    services = compose["services"]
    assert set(services) == {"refit", "prometheus", "grafana"}
    build = services["refit"]["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).is_file()
    assert "3000:3000" in services["refit"]["ports"]
    assert any(p.endswith("9090:9090") for p in services["prometheus"]["ports"])
    assert any(p.endswith("3001:3000") for p in services["grafana"]["ports"])
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    named = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"
    assert "refit-data:/data" in services["refit"]["volumes"]
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"} <= mounted


def test_promql_helpers() -> None:
    expr = 'sum by (le) (rate(a_bucket{x=">", y!="b"}[$__rate_interval])) > 0.5 and on () up == 1'
    assert concrete(expr).count("[1m]") == 1
    assert as_probe(expr) == (
        'sum by (le) (rate(a_bucket{x=">", y!="b"}[$__rate_interval])) > bool 0.5 '
        "and on () up == bool 1"
    )
    assert metric_names(concrete(expr)) == {"a_bucket", "up"}
    assert metric_names("1000 * max(x_total offset 5m) / 3600 or vector(0)") == {"x_total"}


# --- integration ------------------------------------------------------------------------

LOAD_SECONDS = 15
WINDOW = "1m"  # stands in for $__rate_interval: covers the whole load at 1 s scrapes


def write_drift_summary(state_dir: Path) -> None:
    """A drift check's summary where the server's export reads it: drift in the
    embeddings, none in the length, as a check that found drift would leave it."""
    from datetime import UTC, datetime, timedelta

    from monitoring.drift.history import report_paths, reports_dir, write_summary
    from monitoring.drift.result import DriftResult
    from monitoring.drift.signals import SignalResult

    folder = reports_dir(state_dir)
    checked = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    html, summary = report_paths(folder, checked, "v1")
    write_summary(
        DriftResult(
            status="drift",
            checked_at=checked,
            model_version="v1",
            window="1h",
            window_start=checked - timedelta(hours=1),
            window_end=checked,
            window_size=5000,
            compared_rows=5000,
            reference_rows=3400,
            signals=[
                SignalResult("embedding", "embedding", "model", 0.71, 0.6, 0.71, 0.6, True),
                SignalResult("n_chars", "numeric", "ks", 0.5, 0.001, 0.301, 3.0, False),
            ],
            estimated_accuracy=0.81,
            actual_accuracy=0.78,
            actual_macro_f1=0.77,
            labelled_rows=120,
            html_path=html,
            json_path=summary,
        ),
        folder,
    )


def prometheus_config_for(refit_target: str) -> str:
    """The deploy config, scraping the test's servers every second."""
    config = load_yaml(PROMETHEUS_CONFIG)
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": [refit_target]}]
    return yaml.safe_dump(config)


def drive_load(url: str, seconds: float) -> Counter[str]:
    """Good, bad, refused and feedback traffic from a few threads; counts what came back."""
    import datagen

    texts = datagen.generate(400, seed=5)["text"].tolist()
    long_text = " ".join(texts)[:1900]  # past the served model's 64 tokens: truncated
    ids: list[str] = []
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def note(kind: str, response: httpx.Response) -> None:
        with lock:
            codes[f"{kind} {response.status_code}"] += 1
            if kind == "classify" and response.status_code == 200:
                ids.extend(item["id"] for item in response.json()[:1])

    def singles(seed: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = seed
            while time.monotonic() < deadline:
                i += 1
                note("classify", client.post("/classify", json={"texts": [texts[i % 400]]}))

    def batches() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = 0
            while time.monotonic() < deadline:
                i += 16
                chunk = [texts[(i + k) % 400] for k in range(15)] + [long_text]
                note("classify", client.post("/classify", json={"texts": chunk}))

    def bad_and_feedback() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = 0
            while time.monotonic() < deadline:
                _, body, _ = BAD_REQUESTS[i % len(BAD_REQUESTS)]
                headers = {"content-type": "application/json"}
                note("bad", client.post("/classify", content=body, headers=headers))
                if i % 5 == 0:  # a wrong method: an error that is neither 400 nor overload
                    note("get", client.get("/classify"))
                with lock:
                    some = ids[-3:]
                if some:
                    items = [{"id": pid, "label": "billing"} for pid in some]
                    note("feedback", client.post("/feedback", json={"items": items}))
                i += 1
                time.sleep(0.2)

    def bursts() -> None:
        # Many 16-text requests at once overflow REFIT_MAX_IN_FLIGHT_TEXTS: 429s.
        chunk = texts[:16]
        with ThreadPoolExecutor(max_workers=16) as pool:
            while time.monotonic() < deadline:
                for response in pool.map(
                    lambda _: httpx.post(f"{url}/classify", json={"texts": chunk}, timeout=60),
                    range(16),
                ):
                    note("burst", response)
                time.sleep(2)

    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs = [pool.submit(singles, 0), pool.submit(singles, 200), pool.submit(batches),
                pool.submit(bad_and_feedback), pool.submit(bursts)]  # fmt: skip
        for job in jobs:
            job.result()
    return codes


def query(prometheus: RunningServer, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not found; .ci/run installs it with the Debian package `prometheus`",
)
def test_every_dashboard_and_rule_query_answers_from_a_live_server(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    import torch

    cuda = torch.cuda.is_available()
    env = {
        **served_env,
        # On a GPU machine serve on it, so that the GPU panels have data to show.
        "REFIT_DEVICE": "cuda" if cuda else "cpu",
        # Low enough for the test's bursts to be refused with 429.
        "REFIT_MAX_IN_FLIGHT_TEXTS": "40",
    }
    (tmp_path / "refit").mkdir()
    refit = start_bentoml(env, tmp_path / "refit")
    # The server exports the latest drift summary of its (private) state folder at
    # every scrape: the real export path, from file to /metrics to the alert.
    write_drift_summary(tmp_path / "refit" / "state")
    prometheus: RunningServer | None = None
    try:
        target = refit.url.removeprefix("http://")
        prometheus = start_prometheus(prometheus_config_for(target), tmp_path / "prom")
        prom = prometheus
        wait_until(
            lambda: query(prom, 'up{job="refit"} == 1')["data"]["result"], 30, "first scrape"
        )
        codes = drive_load(refit.url, LOAD_SECONDS)
        # The last requests must be scraped and the rules evaluated on them.
        time.sleep(3)
        check_queries(prom, codes, cuda)
        check_rules_and_alerts(prom)
    finally:
        if prometheus is not None:
            prometheus.stop()
        refit.stop()


def check_queries(prometheus: RunningServer, codes: Counter[str], cuda: bool) -> None:
    for wanted in ("classify 200", "burst 429", "bad 400", "get 405", "feedback 200"):
        assert codes[wanted], f"the load produced no {wanted!r}: {dict(codes)}"
    names = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values").json()["data"]
    present = set(names)

    def why_absent(name: str) -> str | None:
        """Why a metric may be missing in this test, or None if it must be there."""
        if name.startswith("refit_gpu_") and not cuda:
            return "no CUDA device"
        if name == "refit_prediction_log_dropped_total":
            return "no record was dropped (its reasons appear on the first drop)"
        return None

    exprs = [(w, e, False) for w, e in dashboard_expressions()] + rule_expressions()
    failures: list[str] = []
    report: list[str] = []
    for where, raw, is_alert in exprs:
        expr = concrete(raw, WINDOW)
        answers = [query(prometheus, expr)]
        if is_alert:
            answers.append(query(prometheus, as_probe(expr)))
        errors = [a.get("error") for a in answers if a["status"] != "success"]
        if errors:
            failures.append(f"{where}: {errors}")
            continue
        result = answers[-1]["data"]["result"]
        missing = sorted(metric_names(expr) - present)
        excuses = {name: why_absent(name) for name in missing}
        if any(excuse is None for excuse in excuses.values()):
            failures.append(f"{where}: Prometheus never saw {missing}")
        elif result:
            values = [float(series["value"][1]) for series in result]
            if not all(math.isfinite(v) for v in values):
                failures.append(f"{where}: {values}: a ratio or quantile of nothing")
            report.append(f"data  {where}: {len(values)} series, first {values[0]:.4g}")
        elif missing:
            report.append(f"empty {where}: allowed, {'; '.join(filter(None, excuses.values()))}")
        else:
            failures.append(f"{where}: empty result although {sorted(metric_names(expr))} exist")
    print("\n".join(report))
    assert not failures, "\n".join(failures)


def check_rules_and_alerts(prometheus: RunningServer) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        return loaded if all(rule["health"] != "unknown" for rule in loaded) else None

    loaded = wait_until(evaluated, 10, "every rule evaluated")
    expected = {rule.get("alert") or rule["record"] for rule in rules()}
    assert {rule["name"] for rule in loaded} == expected
    assert {
        rule["name"]: rule.get("lastError", "") for rule in loaded if rule["health"] != "ok"
    } == {}

    # The drift summary reports drift on one signal: the alert goes pending with its
    # annotation naming that signal and not the one below its threshold.
    def drift_alert() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{prometheus.url}/api/v1/alerts").json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "RefitDriftDetected"]

    (alert,) = wait_until(drift_alert, 10, "RefitDriftDetected to be pending")
    assert alert["labels"]["severity"] == "warning"
    assert "embedding=0.710" in alert["annotations"]["description"]
    assert "n_chars" not in alert["annotations"]["description"]
