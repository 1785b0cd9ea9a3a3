"""The deploy/ monitoring files as written: promtool, alerts, dashboard panels, compose mounts."""

from __future__ import annotations

import re
import subprocess

from monitoring_files import (
    ALERTS,
    BENTOML_METRICS,
    COMPOSE,
    DASHBOARD,
    DASHBOARD_PROVIDER,
    DASHBOARD_TOPICS,
    DATASOURCES,
    DEPLOY,
    PROMETHEUS_CONFIG,
    PROMTOOL,
    ROOT,
    RULES,
    as_probe,
    concrete,
    dashboard,
    dashboard_expressions,
    declared_refit_metrics,
    load_yaml,
    metric_names,
    needs_promtool,
    panels,
    rule_expressions,
    rules,
)


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
    from refit.monitoring.prometheus_metrics import ERROR_REASONS

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
    # Every published port binds loopback unless the operator says otherwise.
    assert services["refit"]["ports"] == ["${REFIT_BIND:-127.0.0.1}:3000:3000"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert services["grafana"]["ports"] == ["127.0.0.1:3001:3000"]
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
