"""REFIT_MODEL_STORE: `$BENTOML_HOME/models` as a link to a shared folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from paths import ROOT

from refit.core.errors import ConfigError
from refit.core.model_store import link_model_store
from refit.core.settings import CoreSettings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A BENTOML_HOME of the test's own (only the environment variable: BentoML itself
    keeps the session's home)."""
    folder = tmp_path / "replica-home"
    monkeypatch.setenv("BENTOML_HOME", str(folder))
    return folder


def _core(store: Path | None) -> CoreSettings:
    return CoreSettings.load(model_store=store)


def test_unset_leaves_the_home_alone(home: Path) -> None:
    assert link_model_store(_core(None)) is None
    assert not home.exists()


def test_links_a_fresh_home_and_creates_the_store(home: Path, tmp_path: Path) -> None:
    store = tmp_path / "shared" / "models"
    link = link_model_store(_core(store))
    assert link == home / "models"
    assert link.is_symlink()
    assert store.is_dir()
    (store / "written-through-the-store").write_text("x")
    assert (link / "written-through-the-store").read_text() == "x"
    assert link_model_store(_core(store)) == link  # idempotent
    assert os.readlink(link) == str(store)


def test_replaces_the_empty_folder_bentoml_creates(home: Path, tmp_path: Path) -> None:
    (home / "models").mkdir(parents=True)
    store = tmp_path / "shared"
    link_model_store(_core(store))
    assert (home / "models").is_symlink()
    assert (home / "models").resolve() == store.resolve()


def test_refuses_to_hide_a_store_that_holds_versions(home: Path, tmp_path: Path) -> None:
    version = home / "models" / "refit-classifier" / "v1"
    version.mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds a model store") as caught:
        link_model_store(_core(tmp_path / "shared"))
    assert str(home / "models") in str(caught.value)
    assert version.is_dir()  # untouched
    assert not (home / "models").is_symlink()


def test_refuses_a_file_in_the_way(home: Path, tmp_path: Path) -> None:
    home.mkdir()
    (home / "models").write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file"):
        link_model_store(_core(tmp_path / "shared"))


def test_a_link_elsewhere_is_moved_to_the_new_store(home: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "old-store", tmp_path / "new-store"
    link_model_store(_core(old))
    link_model_store(_core(new))
    assert (home / "models").resolve() == new.resolve()
    assert old.is_dir()  # the old store itself is never touched
    assert not list(home.glob(".models-*"))  # no staged link left behind


def test_the_store_may_be_the_home_models_folder_itself(home: Path) -> None:
    link = link_model_store(_core(home / "models"))
    assert link == home / "models"
    assert link.is_dir()
    assert not link.is_symlink()


_RACER = """
import sys, time
from refit.core.model_store import link_model_store
from refit.core.settings import CoreSettings
start = float(sys.argv[1])
while time.time() < start:
    pass
print(link_model_store(CoreSettings(model_store=sys.argv[2])))
"""


def test_processes_starting_together_all_end_on_the_one_link(home: Path, tmp_path: Path) -> None:
    # BentoML creates an empty `models` in every process it starts: the workers of one
    # server race to replace it. Every racer must succeed and leave one good link.
    (home / "models").mkdir(parents=True)
    store = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = f"{__import__('time').time() + 3.0}"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, start, str(store)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * 6, outputs
    assert {out.strip() for out, _ in outputs} == {str(home / "models")}
    assert (home / "models").is_symlink()
    assert (home / "models").resolve() == store.resolve()


def test_a_folder_another_process_removes_midway_is_no_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the test above can lose: another worker removes the empty `models`
    after this one saw it and before it looks inside (CI, 2026-12-07: FileNotFoundError)."""
    (home / "models").mkdir(parents=True)
    looked_inside = Path.iterdir

    def removed_first(folder: Path) -> Iterator[Path]:
        if folder == home / "models":
            folder.rmdir()  # what the other process did a moment earlier
        return looked_inside(folder)

    monkeypatch.setattr(Path, "iterdir", removed_first)
    assert link_model_store(_core(tmp_path / "shared")) == home / "models"
    assert (home / "models").resolve() == (tmp_path / "shared").resolve()


_REGISTER = """
import json, sys
import bentoml
from refit.core.model_store import link_model_store
from refit.core.settings import CoreSettings
bentoml.models.list()  # BentoML creates its empty `models` first
link_model_store(CoreSettings())
if sys.argv[1] == "register":
    with bentoml.models.create("shared-store-test", metadata={"by": "trainer"}) as model:
        (__import__("pathlib").Path(model.path) / "weights").write_text("w")
print(json.dumps([str(m.tag) for m in bentoml.models.list("shared-store-test")]))
"""


def test_bentoml_in_two_homes_sees_one_store(tmp_path: Path) -> None:
    """A trainer registers a version through its home's link; a replica with another
    home finds it, while each home keeps BentoML's own files to itself."""

    def run(home: Path, action: str) -> list[str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENTOML_HOME": str(home),
            "REFIT_MODEL_STORE": str(tmp_path / "shared"),
        }
        done = subprocess.run(
            [sys.executable, "-c", _REGISTER, action],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    trainer, replica = tmp_path / "trainer-home", tmp_path / "replica-home"
    registered = run(trainer, "register")
    assert len(registered) == 1
    assert run(replica, "list") == registered
    assert (tmp_path / "shared" / "shared-store-test").is_dir()
    for home in (trainer, replica):
        assert (home / "models").is_symlink()
        assert (home / "bentos").is_dir()  # BentoML's other folders stay per home


def test_a_refit_command_links_before_it_reads_the_store(tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    (home / "models" / "refit-classifier").mkdir(parents=True)  # a store in the way
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENTOML_HOME": str(home),
        "REFIT_MODEL_STORE": str(tmp_path / "shared"),
    }
    args = [sys.executable, "-m", "refit", "models", "list"]
    refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "REFIT_MODEL_STORE" in refused.stderr
    (home / "models" / "refit-classifier").rmdir()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (home / "models").resolve() == (tmp_path / "shared").resolve()
