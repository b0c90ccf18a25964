"""The ``ml100k`` profile of the synthetic generator has MovieLens-100K's shape.

The facts (real ML-100K): 943 users, 1,682 items, 100,000 ratings (6.3% dense); stars 1..5 in
6.1% / 11.4% / 27.1% / 34.2% / 21.2%; on a random 80/20 split the global mean scores RMSE 1.126
and the bias baseline 0.945-0.954; on the 80/20 time split 85% of the test rows belong to users
with no rating before the cutoff. Measured on the profile (seed 42): 943 / 1,671 / 99,182, RMSE
1.129 and 0.962, 84% cold rows.
"""

import numpy as np
import pytest

from recsys_core.data import synthetic
from recsys_core.exceptions import ConfigError
from recsys_core.features import Interactions, SplitConfig, split
from recsys_core.models.baselines import Bias


@pytest.fixture(scope="module")
def ml100k():
    return synthetic.generate(synthetic.config_for("ml100k")).interactions


def _rmse(model, test):
    u = model.user_vocab_.index(test["user"])
    i = model.item_vocab_.index(test["item"])
    return float(np.sqrt(np.mean((model.predict_idx(u, i) - test["rating"].to_numpy()) ** 2)))


def test_shape_and_density(ml100k):
    n_users, n_items = ml100k["user"].nunique(), ml100k["item"].nunique()
    assert n_users == 943
    assert 1_600 <= n_items <= 1_682
    assert 97_000 <= len(ml100k) <= 100_000
    assert len(ml100k) / (n_users * 1_682) == pytest.approx(0.063, abs=0.002)
    assert ml100k.groupby("user").size().min() >= 20  # MovieLens keeps users with 20 ratings


def test_rating_histogram(ml100k):
    shares = ml100k["rating"].value_counts(normalize=True).sort_index()
    assert shares.index.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert shares.to_numpy() == pytest.approx(synthetic.ML100K_HISTOGRAM, abs=0.003)
    assert ml100k["rating"].mean() == pytest.approx(3.53, abs=0.01)


def test_random_split_errors(ml100k):
    s = split(ml100k, SplitConfig(strategy="random", seed=1))
    bias = Bias().fit(Interactions.from_frame(s.train))
    global_mean = np.sqrt(np.mean((s.test["rating"] - s.train["rating"].mean()) ** 2))
    assert 1.10 <= global_mean <= 1.15  # real 1.126
    assert 0.93 <= _rmse(bias, s.test) <= 0.98  # real 0.945-0.954
    assert global_mean - _rmse(bias, s.test) >= 0.15  # the biases explain most of what is known


def test_a_time_split_leaves_the_test_period_mostly_to_new_users(ml100k):
    s = split(ml100k, SplitConfig(strategy="time"))
    share = s.info["cold_user_rows"] / s.info["n_test"]
    assert 0.78 <= share <= 0.92  # real 0.85 (0.86 on u1.base)
    # users arrive over the span and rate in bursts: the median user's ratings span days, not
    # months, and arrivals spread over the whole span
    days = ml100k.groupby("user")["timestamp"].agg(lambda t: np.quantile(t, 0.5) - t.min())
    assert float(np.median(days)) < 2 * 86_400
    first = ml100k.groupby("user")["timestamp"].min()
    span = ml100k["timestamp"].max() - ml100k["timestamp"].min()
    assert (first.max() - first.min()) > 0.9 * span


def test_profiles_are_named_sizes_and_the_plain_sizes_are_unchanged():
    cfg = synthetic.config_for("ml100k", seed=3)
    assert (cfg.n_users, cfg.n_items, cfg.seed) == (943, 1_682, 3)
    assert cfg.time_profile == "bursts" and cfg.rating_histogram == synthetic.ML100K_HISTOGRAM
    plain = synthetic.config_for("100k")
    assert plain.time_profile == "spread" and plain.rating_histogram is None
    with pytest.raises(ConfigError, match="unknown synthetic size 'ml5m'; available: .*ml100k"):
        synthetic.config_for("ml5m")


def test_a_bad_histogram_is_refused():
    cfg = synthetic.config_for("tiny", rating_histogram=(0.5, 0.5))
    with pytest.raises(ConfigError, match=r"rating_histogram=\(0.5, 0.5\) must give one"):
        synthetic.generate(cfg)
