"""The exact error messages of the splits (found by `make mutation`): each says what to do."""

import re

import pandas as pd
import pytest

from recsys_core.exceptions import DataError
from recsys_core.features import SplitConfig, split


def _frame(users, items, timestamps):
    return pd.DataFrame(
        {"user": users, "item": items, "rating": [3.0] * len(users), "timestamp": timestamps}
    )


def test_constant_timestamps_message():
    f = _frame(["a", "b", "c"], ["x", "y", "x"], [5, 5, 5])
    expected = (
        "the time split needs timestamps that vary; all rows have the same timestamp. "
        "Use split strategy 'random'"
    )
    with pytest.raises(DataError, match=f"^{re.escape(expected)}$"):
        split(f, SplitConfig(strategy="time"))


def test_empty_side_message():
    f = _frame(["a", "b", "c"], ["x", "x", "y"], [1, 2, 3])
    expected = (
        "the 'last_k' split left 3 training and 0 test rows; use more data or another test_fraction"
    )
    with pytest.raises(DataError, match=f"^{re.escape(expected)}$"):
        split(f, SplitConfig(strategy="last_k", last_k=1))
