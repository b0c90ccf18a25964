"""DataConfig: the data section of a run."""

import pytest
from pydantic import ValidationError

from recsys_core.data.config import DataConfig


def test_defaults_and_scale():
    cfg = DataConfig()
    assert (cfg.source, cfg.synthetic_size, cfg.duplicates) == ("synthetic", "100k", "latest")
    assert DataConfig(rating_min=0.5, rating_max=10).rating_scale == (0.5, 10.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rating_min": 5, "rating_max": 1}, "rating_min (5.0) must be below rating_max (1.0)"),
        ({"duplicates": "first"}, "'latest', 'mean' or 'refuse'"),
        (
            {"synthetic_size": "huge"},
            "'tiny', 'small', '100k', '1m', '10m', '25m', 'ml100k' or 'ml1m'",
        ),
        ({"sorce": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(fields, message):
    with pytest.raises(ValidationError) as info:
        DataConfig(**fields)
    assert message in str(info.value)
