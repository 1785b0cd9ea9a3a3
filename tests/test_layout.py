"""The layering rule and the packaging files stay true as the code grows."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Which of the project's packages each layer may import.
ALLOWED = {
    "training": {"training"},
    "monitoring": {"monitoring", "training"},
    "service": {"service", "monitoring", "training"},
    "refit": {"refit", "service", "monitoring", "training"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_downwards(layer: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[layer])
        for path in (ROOT / layer).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_bentofile_packages_match_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert sorted(bentofile["python"]["packages"]) == sorted(project["dependencies"])
    assert bentofile["python"]["lock_packages"] is False
    assert bentofile["service"] == "service.service:Classifier"


def test_every_setting_is_documented_in_the_readme() -> None:
    from core.settings import Settings

    readme = (ROOT / "README.md").read_text()
    missing = [
        f"REFIT_{name.upper()}"
        for name in Settings.model_fields
        if f"REFIT_{name.upper()}" not in readme
    ]
    assert missing == []


def test_every_setting_has_a_description() -> None:
    from core.settings import Settings

    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


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
    from core.settings import Settings

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    settings = Settings(workers=workers)
    assert settings.resolved_workers() == expected_workers
    assert settings.resolved_torch_threads() == expected_threads
