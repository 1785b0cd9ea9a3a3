"""The layering rule, the sizes that keep modules readable, and the packaging files.

The layers, lowest first (docs/architecture.md):

    core        shared by every layer: settings base, errors, registry, inference
    datagen     the built-in dataset generator; imports nothing of refit
    training    data, fine-tuning, evaluation, registration
    monitoring  Prometheus metrics, the prediction log, drift checks
    retraining  trigger, challenger, gate, schedule, audit
    service     the BentoML service, and the one composed settings object
    refit       the command line, on top of everything
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from paths import ROOT

# Which of the project's packages each layer may import.
ALLOWED = {
    "core": {"core"},
    "datagen": {"datagen"},
    "training": {"training", "core", "datagen"},
    "monitoring": {"monitoring", "training", "core"},
    "retraining": {"retraining", "monitoring", "training", "core"},
    "service": {"service", "retraining", "monitoring", "training", "core"},
    "refit": {"refit", "service", "retraining", "monitoring", "training", "core", "datagen"},
}
# Inference engines each stay behind the backend seam (`core/backends/`): outside
# `training/` (which fine-tunes and exports with torch), only the engine's own backend
# modules import it.
ENGINE_MODULES = {
    "torch": {"core/backends/torch_backend.py", "core/backends/torch_pass.py",
              "core/backends/torch_int8.py"},
    "onnxruntime": {"core/backends/onnx_backend.py"},
    "onnx": set(),
}  # fmt: skip
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
# Functions allowed past MAX_FUNCTION_LINES, each with the reason.
LONG_FUNCTIONS: dict[str, str] = {}


def modules() -> Iterator[Path]:
    for layer in ALLOWED:
        yield from sorted((ROOT / layer).rglob("*.py"))


def module_name(path: Path) -> str:
    """The importable name of a source file: `core/registry.py` is `refit.core.registry`."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts if parts[0] == "refit" else ("refit", *parts))


def layer_of(module: str) -> str | None:
    """The layer a `refit…` module belongs to; None for anything else."""
    parts = module.split(".")
    if parts[0] != "refit":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "refit"


def imports_of(path: Path) -> set[str]:
    """Every refit module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from refit import datagen` imports the layer, not the CLI package.
            if node.module != "refit":
                found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if layer_of(name) is not None}


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of everything `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("engine", sorted(ENGINE_MODULES))
def test_only_its_backend_and_training_import_an_engine(engine: str) -> None:
    importers = {
        str(path.relative_to(ROOT))
        for path in modules()
        if path.relative_to(ROOT).parts[0] != "training" and engine in third_party_imports(path)
    }
    assert importers - ENGINE_MODULES[engine] == set()


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_downwards(layer: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            {str(layer_of(name)) for name in imports_of(path)} - ALLOWED[layer]
        )
        for path in (ROOT / layer).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_module_imports_itself_back() -> None:
    """No import cycle between modules, function-local imports included."""
    graph = {module_name(path): imports_of(path) for path in modules()}
    graph = {
        name: {dep for dep in deps if dep in graph and dep != name} for name, deps in graph.items()
    }
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for dep in graph[node]:
                if dep == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif dep not in seen:
                    seen.add(dep)
                    stack.append((dep, [*trail, dep]))
    assert cycles == []


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_functions_stay_short_or_say_why() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{module_name(path)}.{node.name}"
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS:
                    long[name] = lines
    assert long == {}


def test_bentofile_packages_match_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert sorted(bentofile["python"]["packages"]) == sorted(project["dependencies"])
    assert bentofile["python"]["lock_packages"] is False
    assert bentofile["service"] == "refit.service.service:Classifier"


def test_every_package_is_installed_and_in_the_architecture_page() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    folders = {
        ".".join(("refit", *p.relative_to(ROOT).parts)) if p.parts[-1] != "refit" else "refit"
        for layer in ALLOWED
        for p in [ROOT / layer, *(ROOT / layer).rglob("*")]
        if p.is_dir() and (p / "__init__.py").is_file()
    }
    folders = {name.replace("refit.refit", "refit") for name in folders}
    assert sorted(setuptools["packages"]) == sorted(folders)
    mapped = {name: folder for name, folder in setuptools["package-dir"].items()}
    assert {mapped[f"refit.{layer}"] for layer in ALLOWED if layer != "refit"} == (
        set(ALLOWED) - {"refit"}
    )
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for layer in ALLOWED:
        assert f"`{layer}/`" in architecture


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_the_settings_page_is_what_the_code_generates() -> None:
    from refit.settings_command import settings_markdown

    page = (ROOT / "docs" / "settings.md").read_text()
    assert page == settings_markdown(), "run `refit settings --markdown > docs/settings.md`"
    from refit.service.settings import setting_names

    assert [f"REFIT_{s.upper()}" for s in setting_names() if f"REFIT_{s.upper()}" not in page] == []


def test_every_setting_has_a_description_and_one_owner() -> None:
    from refit.service.settings import SECTIONS

    fields = [(s, n, f) for s, cls in SECTIONS.items() for n, f in cls.model_fields.items()]
    assert [f"{s}.{n}" for s, n, f in fields if not f.description] == []
    variables = [SECTIONS[s].env_var(n) for s, n, _ in fields]
    assert len(variables) == len(set(variables))


@pytest.mark.parametrize(
    ("cores", "workers", "expected_workers", "expected_threads"),
    [(1, None, 1, 1), (2, None, 2, 1), (16, None, 4, 4), (16, 1, 1, 16), (2, 4, 4, 1)],
)
def test_workers_default_to_one_per_core_and_threads_share_the_rest(
    monkeypatch: pytest.MonkeyPatch,
    cores: int,
    workers: int | None,
    expected_workers: int,
    expected_threads: int,
) -> None:
    from refit.service.settings import Settings

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    settings = Settings(workers=workers)
    assert settings.serving.resolved_workers() == expected_workers
    assert settings.serving.resolved_torch_threads() == expected_threads


def test_test_modules_have_unique_names() -> None:
    """Test folders are not packages: two test files of one name cannot both be collected."""
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
