"""What a failed model load says: one ModelLoadError, whatever the library raised.

Loading a version runs tokenizers, transformers, safetensors and torch, and each
fails its own way: `SafetensorError` for a truncated or overwritten weight file,
a bare `Exception` from tokenizers for a damaged tokenizer.json, `OSError` for a
config that is not JSON, `RuntimeError` for weights of the wrong shape. Callers
(registration, promotion, hot-swap, startup) catch one error class instead of
guessing that list. Messages name the file and the cause but never the version's
folder: they reach HTTP clients, and the store's location is not theirs to know.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from refit.core.errors import ModelLoadError

# What could not be loaded, by step of loading a version (`core.backends`).
_STEPS = {
    "tokenizer": "the tokenizer cannot be loaded",
    "weights": "the model cannot be built from config.json and model.safetensors",
}
_UNREADABLE_WEIGHTS = "weights in model.safetensors cannot be read"


def describe_cause(exc: BaseException, folder: Path | str | None = None) -> str:
    """`Type: message` of `exc`, with `folder` cut out of the message."""
    message = str(exc)
    if folder is not None:
        for form in {str(folder), str(Path(folder).resolve())}:
            message = message.replace(form + "/", "").replace(form, "the version folder")
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextmanager
def load_step(step: str, folder: Path | str) -> Iterator[None]:
    """Turn any exception of the block into a ModelLoadError saying what failed and why."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as exc:
        what = _STEPS[step]
        if step == "weights" and type(exc).__module__.startswith("safetensors"):
            what = _UNREADABLE_WEIGHTS
        raise ModelLoadError(f"{what}: {describe_cause(exc, folder)}") from exc
