"""The Kubernetes manifests: well-formed, and every command and setting they use exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from refit.cli import app
from core.settings import Settings

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
DOCS = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if "template" in spec:
        return spec["template"]["spec"]["containers"]
    return []


def test_every_manifest_has_kind_version_and_name() -> None:
    kinds = sorted(doc["kind"] for doc in DOCS)
    assert kinds == [
        "ConfigMap",
        "CronJob",
        "Deployment",
        "Job",
        "PersistentVolumeClaim",
        "Service",
    ]
    for doc in DOCS:
        assert doc["apiVersion"]
        assert doc["metadata"]["name"].startswith("refit")


@pytest.mark.parametrize("doc", [d for d in DOCS if _containers(d)], ids=lambda d: d["kind"])
def test_container_commands_are_real_refit_commands(doc: dict) -> None:
    cli = get_command(app)
    for container in _containers(doc):
        command = container["command"]
        assert command[0] == "refit"
        ctx = cli.make_context("refit", list(command[1:]), resilient_parsing=True)
        sub = cli.get_command(ctx, command[1])  # type: ignore[attr-defined]
        assert sub is not None, command
        options = {o for p in sub.params for o in getattr(p, "opts", [])}
        assert set(command[2:]) <= options, command
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/data" in mounts


def test_the_watch_cronjob_never_overlaps_itself() -> None:
    (cron,) = [d for d in DOCS if d["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert _containers(cron)[0]["command"] == ["refit", "watch", "--once"]


def test_config_map_only_sets_known_settings() -> None:
    (config,) = [d for d in DOCS if d["kind"] == "ConfigMap"]
    known = {f"REFIT_{name.upper()}" for name in Settings.model_fields} | {"BENTOML_HOME"}
    assert set(config["data"]) <= known
