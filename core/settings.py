"""The base of refit's settings, and the settings of the shared core.

Each package declares the settings it owns as a `Section` (`training/settings.py`,
`monitoring/settings.py`, `retraining/settings.py`, `service/settings.py`), and
`service.settings.Settings` composes them into the one settings object. Every
section reads `REFIT_<FIELD NAME>` from the environment on its own, so a variable
keeps its name whichever section owns it. Nothing is read at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from refit.core.errors import ConfigError

ENV_PREFIX = "REFIT_"


class Section(BaseSettings):
    """One package's settings, each field read from `REFIT_<FIELD NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=None,
        extra="ignore",
        validate_default=True,
        # Each field is documented by the docstring under it (shown in errors and docs).
        use_attribute_docstrings=True,
        # `inf` and `nan` parse as floats and pass every `gt`/`le` bound pydantic checks
        # (nan compares false, so no bound refuses it): a timeout of inf waits for ever.
        # Refused for every float setting of every section, the variable named.
        allow_inf_nan=False,
    )

    @classmethod
    def env_var(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        named = [c for c in choices if isinstance(c, str) and c.startswith(ENV_PREFIX)]
        return named[0] if named else f"{ENV_PREFIX}{field.upper()}"

    @classmethod
    def load(cls, **overrides: Any) -> Any:
        """The section from the environment, `overrides` winning; errors name the variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(describe_errors(cls, exc)) from exc


def describe_errors(section: type[Section], exc: ValidationError) -> str:
    """One line per invalid setting, naming its environment variable and the constraint."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        field = loc[0] if loc else ""
        if field in section.model_fields:
            name = section.env_var(field)
        else:  # a rule across fields, or an alias: pydantic names no single field
            name = field.upper() if field.startswith(ENV_PREFIX) else "settings"
        given = error.get("input")
        shown = "" if isinstance(given, dict) or given is None else f" (got {given!r})"
        lines.append(f"{name}: {error['msg']}{shown}")
    return "invalid settings:\n" + "\n".join(f"  {line}" for line in lines)


class CoreSettings(Section):
    """Where refit keeps its models and state, and where it computes."""

    state_dir: Path | None = None
    """Folder for refit's own state (champion pointer, reports). Defaults to `refit/` inside the
    BentoML home, so that one BENTOML_HOME holds a consistent model store and champion.
    """
    model_store: Path | None = None
    """Shared folder of the model store (every version), for replicas and jobs that share one.
    `$BENTOML_HOME/models` becomes a link to it, so BENTOML_HOME (BentoML's metrics folder,
    wiped at every start) then stays local to each replica. Unset: the store is
    `$BENTOML_HOME/models` itself.
    """
    model_name: str = Field("refit-classifier", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    """Name of the model in the BentoML model store; every training run adds a version of it."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train and serve; auto picks CUDA when present."""

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        return bentoml_home() / "refit"


def bentoml_home() -> Path:
    """BentoML's home folder, as BentoML itself resolves it."""
    return Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")).expanduser()
