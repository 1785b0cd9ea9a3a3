"""Collecting a data file's problems row by row, so that one error reports them all."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from refit.core.errors import DataProblem
from refit.training.data_files import Table

# A wrong column choice can flag every row of a huge file; past this many problems of
# one kind a single summary problem stands for the rest, so the error stays readable.
MAX_PROBLEMS_PER_KIND = 1000


class ProblemList:
    """Row problems grouped by kind, each kind capped so a wrong column stays readable."""

    def __init__(self, source: str, table: Table) -> None:
        self._source = source
        self._table = table
        self._found: dict[str, list[DataProblem]] = defaultdict(list)
        self._extra: Counter[str] = Counter()

    def add(self, kind: str, position: int, message: str) -> None:
        if len(self._found[kind]) >= MAX_PROBLEMS_PER_KIND:
            self._extra[kind] += 1
            return
        table = self._table
        problem = table.problem(self._source, position, message)
        self._found[kind].append(problem)

    def problems(self) -> list[DataProblem]:
        result = []
        for kind, found in self._found.items():
            result += found
            if self._extra[kind]:
                message = f"and {self._extra[kind]} more rows with the same problem ({kind})"
                result.append(DataProblem(self._source, message))
        return result


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)
