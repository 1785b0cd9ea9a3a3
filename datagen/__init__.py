"""A seeded generator of labelled customer-support messages, with drifted variants.

refit needs data to fine-tune on when the user brings none, and known drifts to test
monitoring and retraining against. `generate` gives both: ``base`` data for training
and the other `SCENARIOS` for the drift a deployed model meets later.
"""

from refit.datagen.generator import generate
from refit.datagen.intents import INTENTS, UNSEEN_INTENT
from refit.datagen.scenarios import SCENARIOS

__all__ = ["INTENTS", "SCENARIOS", "UNSEEN_INTENT", "generate"]
