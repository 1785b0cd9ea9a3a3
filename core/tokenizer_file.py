"""A version's tokenizer read from its `tokenizer.json` with the `tokenizers` library.

Serving needs token ids and nothing else of a tokenizer. transformers' AutoTokenizer
gives the same ids (its fast tokenizers run this very Rust pipeline), but importing
transformers imports torch: 4.6 s of a 5.0 s worker start under cProfile, paid by a
worker that serves an ONNX graph and has no other use for torch. So a version folder
with a `tokenizer.json` (every fast tokenizer saves one) is read here, and the three
settings the ids depend on come from `tokenizer_config.json`.

Registration checks that the file gives the ids the training tokenizer gave
(`same_ids`), so a version whose file would tokenise differently never registers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TOKENIZER_FILE = "tokenizer.json"
_CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class RustTokenizer:
    """The Rust pipeline and what an id row depends on besides it."""

    pipeline: Tokenizer
    pad_token_id: int | None
    unk_token_id: int | None
    truncation_side: str = "right"
    split_special_tokens: bool = False

    @classmethod
    def read(cls, folder: Path | str) -> RustTokenizer | None:
        """The tokenizer of `folder`; None when it has no `tokenizer.json`."""
        folder = Path(folder)
        if not (folder / TOKENIZER_FILE).is_file():
            return None
        try:
            pipeline = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception with the reason
            raise ValueError(f"{TOKENIZER_FILE} cannot be parsed: {exc}") from exc
        config: dict[str, Any] = {}
        for name in reversed(_CONFIG_FILES):  # tokenizer_config.json wins, as in transformers
            if (folder / name).is_file():
                config.update(json.loads((folder / name).read_text(encoding="utf-8")))

        def token_id(key: str) -> int | None:
            token = config.get(key)
            if isinstance(token, dict):  # the older form: {"content": "[PAD]", ...}
                token = token.get("content")
            return pipeline.token_to_id(token) if isinstance(token, str) else None

        return cls(
            pipeline,
            pad_token_id=token_id("pad_token"),
            unk_token_id=token_id("unk_token"),
            truncation_side=str(config.get("truncation_side") or "right"),
            split_special_tokens=bool(config.get("split_special_tokens", False)),
        )

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> RustTokenizer | None:
        """The Rust side of a transformers tokenizer; None for a slow one, which has none."""
        pipeline = getattr(tokenizer, "backend_tokenizer", None)
        if pipeline is None:
            return None
        return cls(
            pipeline,
            pad_token_id=tokenizer.pad_token_id,
            unk_token_id=tokenizer.unk_token_id,
            truncation_side=str(tokenizer.truncation_side),
            split_special_tokens=bool(getattr(tokenizer, "split_special_tokens", False)),
        )

    def cutting_at(self, max_length: int) -> Tokenizer:
        """A copy of the pipeline set up as transformers' call with `truncation=True,
        max_length=max_length` sets it. A copy: that call re-applies its own settings to
        the pipeline it shares with the tokenizer each time."""
        own = copy.deepcopy(self.pipeline)
        own.enable_truncation(
            max_length, stride=0, strategy="longest_first", direction=self.truncation_side
        )
        own.no_padding()
        own.encode_special_tokens = self.split_special_tokens
        return own


def same_ids(
    folder: Path, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> str | None:
    """None when the `tokenizer.json` in `folder` gives `tokenizer`'s ids for `texts`;
    else what differs."""
    read = RustTokenizer.read(folder)
    if read is None:
        return None  # no file: serving loads the tokenizer with transformers
    if read.pad_token_id != tokenizer.pad_token_id:
        return f"pad token id {read.pad_token_id}, not {tokenizer.pad_token_id}"
    expected = transformers_ids(tokenizer, texts, max_length)
    got = [e.ids for e in read.cutting_at(max_length).encode_batch(list(texts))]
    differ = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
    if not differ:
        return None
    first = texts[differ[0]][:60]
    return f"{len(differ)} of {len(texts)} texts get other ids, the first {first!r}"


def transformers_ids(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """The ids transformers' own call gives `texts`, cut at `max_length`: what every
    other path here must reproduce."""
    ids: list[list[int]] = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]
    return ids
