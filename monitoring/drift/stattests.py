"""A two-sample chi-square test, registered with Evidently as `chi2_homogeneity`.

Evidently's own `chisquare` is a goodness-of-fit test: it takes the reference's
label shares as exact and asks whether the window fits them. With a reference of
1,000 held-out rows and a window of 20,000, the reference's own sampling noise is
then read as drift: on windows drawn from the training distribution its p-value
fell from 0.88 (500 rows) to 0.0002 (2,000) and 0.0 (20,000). The test of
homogeneity below compares the two samples as samples (a 2 x k contingency table),
so its p-value stays uniform on undrifted data whatever the sizes, and its power is
bounded by the smaller side.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from scipy.stats import chi2_contingency

HOMOGENEITY: Final = "chi2_homogeneity"


def homogeneity_p_value(reference: pd.Series, current: pd.Series) -> float:
    """p-value of "both samples come from one categorical distribution"."""
    reference, current = reference.dropna(), current.dropna()
    categories = sorted(set(reference.astype(str)) | set(current.astype(str)))
    if len(categories) < 2:
        return 1.0  # one category on both sides: the distributions are the same
    table = np.array(
        [
            sample.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
            for sample in (reference, current)
        ]
    )
    if (table.sum(axis=1) == 0).any():
        return float("nan")  # an empty side: nothing to compare
    # No continuity correction: with hundreds of rows it only costs power.
    return float(chi2_contingency(table, correction=False).pvalue)


def _homogeneity(
    reference: pd.Series, current: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    p_value = homogeneity_p_value(reference, current)
    return p_value, p_value < threshold


register_stattest(
    StatTest(
        name=HOMOGENEITY,
        display_name="chi-square homogeneity p_value",
        allowed_feature_types=[ColumnType.Categorical],
        default_threshold=0.001,
    ),
    _homogeneity,
)
