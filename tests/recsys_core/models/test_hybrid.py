import numpy as np
import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_quality_and_leans_on_content_for_rare_items(quality):
    # measured on the fixture: RMSE 0.895 against the bias baseline's 0.928, 0.926 with the CF
    # factors and the content profiles of the members zeroed
    model = quality.rating(
        "hybrid", {}, beats_bias_by=0.015, zeroed=("user_factors_", "user_profiles_")
    )
    w = model._weights(np.array([0, 0]), np.array([-1, 0]))
    assert w[0] == 0.0 and 0.0 < w[1] < 1.0


def test_member_params_are_checked():
    with pytest.raises(ConfigError, match="factors"):
        create("hybrid", {"cf_params": {"factors": -1}})
