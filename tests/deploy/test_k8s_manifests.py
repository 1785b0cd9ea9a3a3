"""The Kubernetes manifests in deploy/k8s: they build, validate against the Kubernetes
schemas, and say what refit needs (per-pod BentoML home, shared state, autoscaling on a
serving signal, GPU overlay).

`kubectl kustomize` builds the base (CPU) and the GPU overlay; the one-off Jobs in
deploy/k8s/jobs/ are plain files. Every built object and every Job is validated
strictly (unknown fields refused) with kubernetes-validate against Kubernetes
KUBE_VERSION; custom resources have no schema there and are checked field by field.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from paths import ROOT
from typer.main import get_command

from refit.cli import app
from refit.service.settings import Settings, setting_names

K8S = ROOT / "deploy" / "k8s"
# Keys double as test ids: not "gpu", which tests/conftest.py takes for the gpu marker.
VARIANTS = {"base": K8S / "base", "gpu-overlay": K8S / "overlays" / "gpu"}
JOB_FILES = sorted((K8S / "jobs").glob("*.yaml"))
ADAPTER_VALUES = K8S / "autoscaling" / "prometheus-adapter-values.yaml"
KUBE_VERSION = "1.30.0"

# Custom resources: not in the Kubernetes schemas, checked structurally below.
CRDS = {("monitoring.coreos.com/v1", "PodMonitor")}
BUILT_KINDS = [
    "ConfigMap",
    "CronJob",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "PodMonitor",
    "Service",
]
# Secrets the operator creates (README); every other reference must resolve in the build.
EXTERNAL_SECRETS = {"refit-postgres", "refit-admin"}
# Environment variables that are neither refit settings nor BENTOML_HOME, and why.
OTHER_ENV = {
    "BENTOML_DO_NOT_TRACK",  # no usage reporting from inside a cluster
    "HF_HUB_OFFLINE",  # serving never downloads
    "TOKENIZERS_PARALLELISM",  # no fork warnings from the tokenizers
    "HOME",  # a writable home (/tmp) under a read-only root filesystem
}
SECRET = "<from a secret>"


# --- building and reading ---------------------------------------------------------------


@functools.cache
def _kustomize(folder: Path) -> tuple[int, str, str]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def build(variant: str) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` builds the manifests")
    code, out, err = _kustomize(VARIANTS[variant])
    assert code == 0, f"kubectl kustomize {VARIANTS[variant]} failed:\n{err}"
    return [doc for doc in yaml.safe_load_all(out) if doc]


def jobs() -> list[dict[str, Any]]:
    return [doc for path in JOB_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in {"Deployment", "CronJob", "Job"}]


def main_container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_template(doc)["spec"]["containers"]
    return container


def effective_env(container: dict[str, Any], config_maps: dict[str, dict[str, str]]) -> dict:
    """What the container's process sees: envFrom ConfigMaps first, `env` on top."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]
        if ref["name"] in config_maps:
            env.update(config_maps[ref["name"]])
        else:
            assert ref.get("optional"), f"ConfigMap {ref['name']} is not in the build"
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", SECRET)
    return env


def config_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


def volume_at(pod_spec: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict, dict]:
    """The volume and mount that hold `path` in the container (the deepest mount wins)."""
    target = PurePosixPath(path)
    mounts = [
        m
        for m in container.get("volumeMounts", [])
        if target == PurePosixPath(m["mountPath"])
        or PurePosixPath(m["mountPath"]) in target.parents
    ]
    assert mounts, f"{path} is on the container's root filesystem, not on a volume"
    mount = max(mounts, key=lambda m: len(PurePosixPath(m["mountPath"]).parts))
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == mount["name"]]
    return volume, mount


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in base units (enough of the grammar for these files)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "": 1}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, f"unexpected quantity {value!r}"
    assert match.group(2) in units, f"unexpected unit in {value!r}"
    return float(match.group(1)) * units[match.group(2)]


# --- building and schemas -----------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kustomize_builds_every_object(variant: str) -> None:
    docs = build(variant)
    assert sorted(doc["kind"] for doc in docs) == BUILT_KINDS
    for doc in docs:
        assert doc["apiVersion"]
        assert doc["metadata"]["name"].startswith("refit")


def test_one_off_jobs_are_separate_files_with_generated_names() -> None:
    # A Job's pod template is immutable: in the kustomization, re-applying a changed one
    # would fail. Each run is `kubectl create -f`, hence generateName.
    assert [p.name for p in JOB_FILES] == ["train-multi-gpu.yaml", "train.yaml"]
    for doc in jobs():
        assert doc["kind"] == "Job"
        assert doc["apiVersion"] == "batch/v1"
        assert "name" not in doc["metadata"]
        assert doc["metadata"]["generateName"].startswith("refit-")


@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "jobs"])
def test_every_object_validates_against_the_kubernetes_schemas(variant: str) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate (PyPI) carries the Kubernetes schemas; pip install it",
    )
    docs = jobs() if variant == "jobs" else build(variant)
    skipped = set()
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            # No schema for custom resources: test_pod_monitor_scrapes_the_serving_pods.
            skipped.add((doc["apiVersion"], doc["kind"]))
            continue
        try:
            kv.validate(doc, KUBE_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']}: {exc}")
    # A kind without a schema must be a known custom resource, never silently skipped.
    assert skipped <= CRDS


def test_strict_validation_refuses_a_misspelt_field() -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    deployment = one(build("base"), "Deployment")
    container = main_container(deployment)
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBE_VERSION, strict=True)


def test_pod_monitor_scrapes_the_serving_pods() -> None:
    docs = build("base")
    monitor = one(docs, "PodMonitor")
    deployment = one(docs, "Deployment")
    cron = one(docs, "CronJob")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_template(deployment)["metadata"]["labels"].items()
    assert not selector.items() <= pod_template(cron)["metadata"]["labels"].items()
    ports = {p["name"] for p in main_container(deployment)["ports"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports
    assert endpoint["path"] == "/metrics"


# --- commands and settings (carried over from tests/test_k8s.py) ----------------------------


def _refit_args(command: list[str]) -> list[str]:
    """The `refit ...` part of a command, also under `accelerate launch -m` or `torchrun -m`."""
    if command[0] == "refit":
        return command
    assert command[0] in {"accelerate", "torchrun"}, command
    index = command.index("-m")
    assert command[index + 1] == "refit", command
    return command[index + 1 :]


def _all_workloads() -> list[dict[str, Any]]:
    return workloads(build("base")) + workloads(build("gpu-overlay")) + jobs()


def test_container_commands_are_real_refit_commands() -> None:
    cli = get_command(app)
    commands = []
    for doc in _all_workloads():
        for container in pod_template(doc)["spec"]["containers"]:
            command = _refit_args(container["command"])
            commands.append(command)
            ctx = cli.make_context("refit", list(command[1:]), resilient_parsing=True)
            sub = cli.get_command(ctx, command[1])  # type: ignore[attr-defined]
            assert sub is not None, command
            options = {o for p in sub.params for o in getattr(p, "opts", [])}
            assert set(command[2:]) <= options, command
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/data" in mounts
    assert ["refit", "serve"] in commands
    assert ["refit", "watch", "--once"] in commands
    assert ["refit", "train"] in commands


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_watch_cronjob_never_overlaps_itself(variant: str) -> None:
    cron = one(build(variant), "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert main_container(cron)["command"] == ["refit", "watch", "--once"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_config_map_only_sets_known_settings(variant: str) -> None:
    config = one(build(variant), "ConfigMap")
    known = {f"REFIT_{name.upper()}" for name in setting_names()} | {"BENTOML_HOME"}
    assert set(config["data"]) <= known


@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "jobs"])
def test_every_environment_variable_is_known_and_valid(variant: str) -> None:
    docs = build("base") + jobs() if variant == "jobs" else build(variant)
    maps = config_maps(docs)
    known = {f"REFIT_{name.upper()}" for name in setting_names()} | {"BENTOML_HOME"}
    for doc in workloads(docs):
        if variant == "jobs" and doc["kind"] != "Job":
            continue
        env = effective_env(main_container(doc), maps)
        assert set(env) <= known | OTHER_ENV, set(env) - known - OTHER_ENV
        # The values parse as refit settings (a typo such as REFIT_DEVICE=gpu fails).
        values = {
            k.removeprefix("REFIT_").lower(): v
            for k, v in env.items()
            if k.startswith("REFIT_") and v != SECRET
        }
        Settings(**values)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_references_resolve(variant: str) -> None:
    docs = build(variant)
    maps = config_maps(docs)
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for doc in [*workloads(docs), *jobs()]:
        spec = pod_template(doc)["spec"]
        for volume in spec["volumes"]:
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        for container in spec["containers"] + spec.get("initContainers", []):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in EXTERNAL_SECRETS, ref


# --- storage: per-pod BentoML home, shared model store and state ----------------------------


@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "jobs"])
def test_bentoml_home_is_per_pod_and_the_state_is_shared(variant: str) -> None:
    docs = build("base") if variant == "jobs" else build(variant)
    maps = config_maps(docs)
    (pvc,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    claim = pvc["metadata"]["name"]
    targets = jobs() if variant == "jobs" else workloads(docs)
    assert targets
    stores = set()
    for doc in targets:
        spec = pod_template(doc)["spec"]
        container = main_container(doc)
        env = effective_env(container, maps)
        home = PurePosixPath(env["BENTOML_HOME"])

        # BentoML's home, and with it its metrics multiprocess folder (wiped at every
        # `bentoml serve` start), tmp and the `models` link refit makes, on the pod's
        # own emptyDir: nothing is mounted inside it.
        for path in (home, home / "prometheus_multiproc_dir", home / "tmp", home / "models"):
            volume, _ = volume_at(spec, container, str(path))
            assert "emptyDir" in volume, (doc["kind"], path, volume)
        for mount in container["volumeMounts"]:
            assert not mount.get("subPath"), mount
            assert home not in PurePosixPath(mount["mountPath"]).parents, mount

        # The model store (REFIT_MODEL_STORE) and refit's state on the shared volume,
        # neither inside BENTOML_HOME.
        for name in ("REFIT_MODEL_STORE", "REFIT_STATE_DIR"):
            path = PurePosixPath(env[name])
            assert home not in [path, *path.parents], (name, path)
            volume, _ = volume_at(spec, container, str(path))
            assert volume["persistentVolumeClaim"]["claimName"] == claim, (name, volume)
        assert (
            PurePosixPath(env["REFIT_MODEL_STORE"])
            not in PurePosixPath(env["REFIT_STATE_DIR"]).parents
        )
        stores.add((env["REFIT_MODEL_STORE"], env["REFIT_STATE_DIR"]))
    # One store and one champion for every pod and job.
    assert len(stores) == 1, stores


def test_the_shared_folders_are_set_once_for_every_pod() -> None:
    config = one(build("base"), "ConfigMap")["data"]
    assert {"BENTOML_HOME", "REFIT_MODEL_STORE", "REFIT_STATE_DIR"} <= set(config)
    for doc in [*workloads(build("base")), *jobs()]:
        names = {item["name"] for item in main_container(doc).get("env", [])}
        assert not names & {"BENTOML_HOME", "REFIT_MODEL_STORE", "REFIT_STATE_DIR"}, doc["kind"]


# --- serving pods: probes, resources, security ----------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_serving_pods_probe_health_and_start_slowly_enough(variant: str) -> None:
    deployment = one(build(variant), "Deployment")
    container = main_container(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] in {"/readyz", "/livez"}
    # Model load: ~4 s with MiniLM on CPU; allow minutes before liveness takes over.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 3000}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_pod_runs_unprivileged_on_a_read_only_root(variant: str) -> None:
    for doc in [*workloads(build(variant)), *jobs()]:
        spec = pod_template(doc)["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"] + spec.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
        # What refit writes outside the volumes (a new version is staged in /tmp).
        container = spec["containers"][0]
        volume, _ = volume_at(spec, container, "/tmp")
        assert "emptyDir" in volume


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_serving_pods_have_resources_and_the_shared_prediction_log(variant: str) -> None:
    docs = build(variant)
    deployment = one(docs, "Deployment")
    container = main_container(deployment)
    resources = container["resources"]
    limit, request = resources["limits"]["memory"], resources["requests"]["memory"]
    assert quantity(request) <= quantity(limit)
    # Two workers with MiniLM measured ~2.2 GiB RSS under load; a hot swap holds two models.
    assert quantity(limit) >= 4 * 2**30
    assert quantity(resources["requests"]["cpu"]) >= 1
    env = effective_env(container, config_maps(docs))
    # Workers sized to the CPU request, not to os.cpu_count() (the node's cores).
    workers, threads = int(env["REFIT_WORKERS"]), int(env["REFIT_TORCH_THREADS"])
    assert workers * threads <= math.ceil(quantity(resources["requests"]["cpu"]))
    (log_url,) = [e for e in container["env"] if e["name"] == "REFIT_PREDICTION_LOG_URL"]
    ref = log_url["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "refit-postgres"
    assert not ref.get("optional", False)


def test_the_autoscaler_owns_the_replica_count() -> None:
    # With an HPA, spec.replicas in the manifest would reset the replicas at every apply.
    assert "replicas" not in one(build("base"), "Deployment")["spec"]


# --- autoscaling and disruptions ------------------------------------------------------------


def _defined_metric_names() -> set[str]:
    """Metric names declared in refit's Python sources."""
    names: set[str] = set()
    for package in ("core", "training", "monitoring", "retraining", "service", "refit"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"[\"'](refit_[a-z0-9_]+)[\"']", path.read_text()))
    return names


def _adapter_rules() -> dict[str, dict[str, Any]]:
    """Metric name served by prometheus-adapter -> its rule."""
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    rules = {}
    for rule in values["rules"]["custom"]:
        alternatives = re.fullmatch(r"\^refit_queue_\((.*)\)\$", rule["name"]["matches"])
        if alternatives:
            for part in alternatives.group(1).split("|"):
                rules[f"refit_queue_{part}"] = rule
        else:
            rules[rule["name"]["as"]] = rule
    return rules


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_autoscaler_scales_the_deployment_on_a_serving_signal(variant: str) -> None:
    docs = build(variant)
    hpa = one(docs, "HorizontalPodAutoscaler")
    deployment = one(docs, "Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "refit"}
    assert target["name"] == deployment["metadata"]["name"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    metrics = hpa["spec"]["metrics"]
    serving = [m for m in metrics if m["type"] == "Pods"]
    assert serving, "the autoscaler must use a serving metric, not CPU alone"
    rules = _adapter_rules()
    defined = _defined_metric_names()
    for metric in serving:
        name = metric["pods"]["metric"]["name"]
        assert name in defined, f"{name} is not a metric refit exports"
        assert name in rules, f"prometheus-adapter does not serve {name}"
        assert metric["pods"]["target"]["type"] == "AverageValue"
        assert quantity(metric["pods"]["target"]["averageValue"]) > 0


def test_the_gpu_pods_scale_at_a_higher_load_per_pod() -> None:
    def target(variant: str) -> float:
        hpa = one(build(variant), "HorizontalPodAutoscaler")
        (pods,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        return quantity(pods["pods"]["target"]["averageValue"])

    assert target("gpu-overlay") > target("base")


def test_the_adapter_rules_select_per_pod_series_and_are_valid_promql(tmp_path: Path) -> None:
    rules = _adapter_rules()
    assert "refit_in_flight_texts" in rules
    expressions = []
    for name, rule in rules.items():
        assert rule["resources"]["overrides"] == {
            "namespace": {"resource": "namespace"},
            "pod": {"resource": "pod"},
        }
        assert re.search(rule["name"]["matches"], name)
        query = rule["metricsQuery"]
        for placeholder in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
            assert placeholder in query
        # What the adapter sends to Prometheus for one pod.
        expressions.append(
            query.replace("<<.Series>>", name)
            .replace("<<.LabelMatchers>>", 'namespace="refit",pod=~"refit-0"')
            .replace("<<.GroupBy>>", "pod")
        )
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) checks the PromQL syntax")
    rules_text = [{"record": f"adapter:rule{i}", "expr": e} for i, e in enumerate(expressions)]
    groups = [{"name": "adapter", "rules": rules_text}]
    rule_file = tmp_path / "adapter-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_disruption_budget_covers_the_serving_pods_only(variant: str) -> None:
    docs = build(variant)
    pdb = one(docs, "PodDisruptionBudget")
    deployment = one(docs, "Deployment")
    service = one(docs, "Service")
    hpa = one(docs, "HorizontalPodAutoscaler")
    selector = pdb["spec"]["selector"]["matchLabels"]
    labels = pod_template(deployment)["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    for doc in [one(docs, "CronJob"), *jobs()]:
        assert not selector.items() <= pod_template(doc)["metadata"]["labels"].items()
    # One pod may go at a time, and at least one more always runs.
    assert pdb["spec"]["maxUnavailable"] == 1
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["maxUnavailable"]


# --- GPU --------------------------------------------------------------------------------------


def _gpus(container: dict[str, Any]) -> int:
    return int(container["resources"].get("limits", {}).get("nvidia.com/gpu", 0))


def test_the_gpu_overlay_puts_each_serving_pod_on_one_gpu() -> None:
    docs = build("gpu-overlay")
    deployment = one(docs, "Deployment")
    container = main_container(deployment)
    assert _gpus(container) == 1
    requested = container["resources"].get("requests", {}).get("nvidia.com/gpu")
    assert requested is None or int(requested) == 1
    spec = pod_template(deployment)["spec"]
    assert any("nvidia.com/gpu" in key for key in spec.get("nodeSelector", {}))
    assert any(t["key"] == "nvidia.com/gpu" for t in spec.get("tolerations", []))
    env = effective_env(container, config_maps(docs))
    assert env["REFIT_DEVICE"] == "cuda"
    base = build("base")
    base_env = effective_env(main_container(one(base, "Deployment")), config_maps(base))
    gpu_price = float(env["REFIT_HOURLY_PRICE_USD"])
    assert gpu_price > float(base_env.get("REFIT_HOURLY_PRICE_USD", "0.10"))


def test_the_base_is_cpu_only() -> None:
    docs = build("base")
    for doc in workloads(docs):
        container = main_container(doc)
        assert _gpus(container) == 0
        assert effective_env(container, config_maps(docs)).get("REFIT_DEVICE") != "cuda"


def test_the_multi_gpu_job_starts_one_process_per_gpu() -> None:
    (job,) = [d for d in jobs() if _gpus(main_container(d)) > 1]
    container = main_container(job)
    command = container["command"]
    assert _refit_args(command) == ["refit", "train"]
    processes = int(command[command.index("--num_processes") + 1])
    assert processes == _gpus(container)
    spec = pod_template(job)["spec"]
    # NCCL needs more shared memory than a container's default 64 MiB.
    shm, _ = volume_at(spec, container, "/dev/shm")
    assert shm["emptyDir"]["medium"] == "Memory"
