"""Settings owned by training: the data, the split and fine-tuning.

A section of the one settings object (`service.settings.Settings`); each field is
`REFIT_<FIELD NAME>` in the environment.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, field_validator, model_validator

from refit.core.settings import CoreSettings, Section

DEFAULT_BASE_MODEL = "packaged:all-MiniLM-L6-v2"


class TrainingSettings(Section):
    """What to learn from and how to fine-tune."""

    text_column: str = "text"
    """Column holding the input text."""
    label_column: str = "label"
    """Column holding the class label."""
    min_examples_per_class: int = Field(10, ge=2, le=100_000)
    """A class with fewer labelled rows is refused."""
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    """Share of rows held out for model selection."""
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    """Share of rows held out for the final report."""
    generated_rows: int = Field(5000, ge=200, le=1_000_000)
    """Rows of the built-in customer-support dataset used when no data file is given."""

    # --- fine-tuning ---------------------------------------------------------
    base_model: str = DEFAULT_BASE_MODEL
    """Model to fine-tune: the packaged all-MiniLM-L6-v2 (default), a local Hugging Face model
    folder, or a hub id (needs network).
    """
    epochs: int = Field(3, ge=1, le=100)
    """Passes over the training split."""
    learning_rate: float = Field(1e-4, gt=0, lt=1)
    """Peak AdamW learning rate."""
    batch_size: int = Field(32, ge=1, le=4096)
    """Training batch size."""
    max_length: int = Field(128, ge=8, le=8192)
    """Tokens kept per text; longer texts are truncated."""
    seed: int = Field(42, ge=0, le=2**32 - 1)
    """Seed for splits, shuffling and initialisation (NumPy takes seeds below 2**32)."""
    drift_reference_rows: int = Field(3000, ge=100, le=20000)
    """Size of each sample in the reference profile written with each new model version: a uniform
    sample of the labelled data (for the texts) and one of the held-out rows (for the model's
    outputs and the calibration).
    """
    calibration_folds: int = Field(0, ge=0, le=10)
    """Cross-fit the accuracy estimate's calibration: this many fold models, each the
    version's recipe on all but one fold of the train and validation rows, score the fold
    they did not see, and the map is fitted on those scores plus the test split's
    (training/calibration_folds.py). Five folds cost five more fine-tunings and fit the map
    on about five times the rows, so an estimate inherits less of the held-out split's
    sampling luck. Only for versions fine-tuned from REFIT_BASE_MODEL: a challenger started
    from the champion (REFIT_RETRAIN_FROM=champion) starts from weights that learned from
    those rows, and keeps the held-out rows. 0: the held-out rows alone.
    """
    export_backends: bool = True
    """Export each new version to ONNX (fp32 and int8) at registration and verify every backend
    against torch on its test split (docs/backends.md), so that REFIT_BACKEND can serve it on ONNX
    Runtime; versions registered before refit did this are exported at their first load on a CPU.
    false: no ONNX files (they take about the weights' size again on disk, and tens of seconds
    for MiniLM), and torch serves unless `refit models export` makes them.
    """

    @field_validator("base_model")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a model: a folder, a hub id, or " + DEFAULT_BASE_MODEL)
        return value.strip()

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> TrainingSettings:
        if self.validation_fraction + self.test_fraction >= 0.6:
            raise ValueError(
                "REFIT_VALIDATION_FRACTION + REFIT_TEST_FRACTION must stay below 0.6 so "
                "that most rows are left for training"
            )
        return self


class TrainingContext(Protocol):
    """The sections training reads: where models live, and how to train them."""

    @property
    def core(self) -> CoreSettings: ...

    @property
    def training(self) -> TrainingSettings: ...
