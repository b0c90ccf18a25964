import numpy as np
import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_beats_the_bias_baseline_and_leans_on_content_for_rare_items(small, rmse):
    bias = create("bias").fit(small.data)
    model = create("hybrid").fit(small.data)
    assert rmse(model, small) < rmse(bias, small)
    w = model._weights(np.array([0, 0]), np.array([-1, 0]))
    assert w[0] == 0.0 and 0.0 < w[1] < 1.0


def test_member_params_are_checked():
    with pytest.raises(ConfigError, match="factors"):
        create("hybrid", {"cf_params": {"factors": -1}})
