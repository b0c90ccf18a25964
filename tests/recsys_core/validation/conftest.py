"""A small valid interaction table, generated once and copied for each test."""

import pandas as pd
import pytest

from recsys_core.data.synthetic import config_for, generate


@pytest.fixture(scope="session")
def _tiny() -> pd.DataFrame:
    return generate(config_for("tiny")).interactions


@pytest.fixture
def frame(_tiny) -> pd.DataFrame:
    return _tiny.copy()
