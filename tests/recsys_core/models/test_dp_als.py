"""dp-als: the privacy record, the contribution bounds, the bad budgets, and its quality bar."""

import numpy as np
import pytest

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.models import create
from recsys_core.models.base import Recommender
from recsys_core.models.dp_als import (
    _sample_per_user,
    bounded_contributions,
    item_statistics,
    rating_indicator,
)
from recsys_core.privacy import accounting


def test_quality_at_a_large_epsilon(quality):
    # measured on the fixture: bias 0.928, this model 0.883 (noise std 1.4); factors zeroed: 0.936
    model = quality.rating(
        "dp-als",
        {
            "epsilon": 1e4,
            "iterations": 5,
            "max_ratings_per_user": 500,
            "clip_norm": 1.0,
            "rating_clip": 2.0,
            "ridge_scale": 2.0,
        },
        beats_bias_by=0.03,
        zeroed=("user_factors_", "item_factors_"),
    )
    assert model.privacy_["epsilon"] <= 1e4


def test_privacy_record(tiny, tmp_path):
    model = create("dp-als", {"epsilon": 1e4, "iterations": 2, "accountant": "rdp"}).fit(tiny.data)
    rec = model.privacy_
    assert rec["epsilon"] == pytest.approx(
        accounting.epsilon(rec["noise_multiplier"], 3, 1e-6, "rdp")
    )
    assert rec["epsilon"] <= 1e4 and rec["delta"] == 1e-6 and rec["accountant"] == "rdp"
    assert rec["noise_std"] == pytest.approx(rec["noise_multiplier"] * model.sensitivity())
    assert rec["releases"] == 3 and rec["clip_norm"] == 0.5
    assert {"epsilon", "delta", "noise_multiplier", "clip_norm"} <= set(model.privacy_metrics())
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert loaded.privacy_ == rec


def test_noise_std_grows_as_epsilon_shrinks(small):
    params = {"iterations": 2, "max_ratings_per_user": 20}
    stds = [
        create("dp-als", {"epsilon": e, **params}).fit(small.data).noise_std_
        for e in (10.0, 2.0, 0.5)
    ]
    assert stds[0] < stds[1] < stds[2]


def test_non_private_has_no_noise(tiny):
    model = create("dp-als", {"epsilon": None, "iterations": 2}).fit(tiny.data)
    assert model.noise_std_ == 0.0 and model.epsilon_ == float("inf")


def test_a_heavy_user_contributes_at_most_the_bound():
    rng = np.random.default_rng(0)
    users = np.concatenate([np.zeros(5000, np.int64), np.repeat(np.arange(1, 50), 7)])
    keep = _sample_per_user(users, 30, rng)
    per_user = np.bincount(users[keep])
    assert per_user[0] == 30  # the user with 5000 ratings
    assert (per_user[1:] == 7).all()  # users under the bound keep everything


def test_a_heavy_user_moves_the_statistics_no_more_than_the_sensitivity():
    # one user with 3000 ratings, a huge factor vector and extreme residuals: after sampling and
    # clipping, the released item statistics with and without them differ by at most the bound
    rng = np.random.default_rng(1)
    n_items, k, m = 4000, 4, 25
    model = create(
        "dp-als", {"factors": k, "max_ratings_per_user": m, "clip_norm": 0.5, "rating_clip": 1.0}
    )
    others = rng.integers(0, n_items, 2000)
    heavy_items = rng.choice(n_items, 3000, replace=False)
    users = np.concatenate([np.repeat(np.arange(1, 101), 20), np.zeros(3000, np.int64)])
    items = np.concatenate([others, heavy_items])
    rows = rng.normal(0, 3, (101, k + 1))
    rows[0] *= 100
    residuals = np.concatenate([rng.normal(0, 1, 2000), np.full(3000, 50.0)])
    keep = _sample_per_user(users, m, rng)
    x, t = bounded_contributions(rows[users[keep]], residuals[keep], 0.5, 1.0)
    with_user = item_statistics(x, t, rating_indicator(items[keep], n_items))
    mine = users[keep] != 0
    without = item_statistics(x[mine], t[mine], rating_indicator(items[keep][mine], n_items))
    upper = np.triu_indices(k + 1)
    dA = (with_user[0] - without[0])[:, upper[0], upper[1]]
    db = with_user[1] - without[1]
    change = np.sqrt((dA**2).sum() + (db**2).sum())
    assert (~mine).sum() == m
    assert change <= model.sensitivity() + 1e-9
    assert change >= 0.9 * model.sensitivity()  # the bound is tight for a clipped heavy user


@pytest.mark.parametrize("params", [{"epsilon": 0}, {"epsilon": -1.0}])
def test_epsilon_must_be_positive(params):
    with pytest.raises(ConfigError, match="greater than 0"):
        create("dp-als", params)


@pytest.mark.parametrize("delta", [0.0, 1.0, 2.0])
def test_delta_outside_zero_one(delta):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        create("dp-als", {"delta": delta})
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        create("dp-als", {"delta": delta, "epsilon": None})


def test_a_budget_the_data_cannot_meet(tiny):
    with pytest.raises(TrainingError, match="too few users.*raise epsilon"):
        create("dp-als", {"epsilon": 0.1}).fit(tiny.data)


def test_solve_user_reproduces_the_fitted_user(tiny):
    model = create("dp-als", {"epsilon": 1e4, "iterations": 2}).fit(tiny.data)
    row = model.seen_[3]
    p, b = model.solve_user(row.indices, row.data)
    np.testing.assert_allclose(p, model.user_factors_[3], atol=1e-8)
    assert b == pytest.approx(model.user_bias_[3], abs=1e-8)


def _mean_noise_std(model) -> float:
    cfg = model.config
    h = (cfg.rating_max - cfg.rating_min) / 2
    return model.noise_multiplier_ * cfg.max_ratings_per_user * np.sqrt(h * h + 1.0)


@pytest.fixture(scope="module")
def private_and_exact(small):
    # same seed, so the same sampled ratings: the exact fit's released counts and mean are the
    # true statistics of the private fit's sample
    params = {"epsilon": 5.0, "iterations": 2, "max_ratings_per_user": 20}
    private = create("dp-als", params).fit(small.data)
    exact = create("dp-als", {**params, "epsilon": None}).fit(small.data)
    return private, exact


def test_the_release_differs_from_the_exact_statistics_by_the_noise(private_and_exact):
    private, exact = private_and_exact
    assert exact.noise_std_ == 0.0 and private.noise_std_ > 1.0
    # the exact fit releases the true counts: every one a whole number of raters
    np.testing.assert_array_equal(
        exact.released_item_counts_, np.round(exact.released_item_counts_)
    )
    diff = private.released_item_counts_ - exact.released_item_counts_
    assert diff.size > 1000
    # Gaussian noise of the recorded std on every item: its sample std within 10% (1,650 draws:
    # the estimate's relative standard error is about 2%) and its mean near 0
    assert np.std(diff) == pytest.approx(private.noise_std_, rel=0.1)
    assert abs(np.mean(diff)) < 4 * private.noise_std_ / np.sqrt(diff.size)
    # the mean's release: one draw on the sum and one on the count, each of its own std
    s = _mean_noise_std(private)
    z = (private.released_mean_ - exact.released_mean_) / s
    assert (np.abs(z) > 1e-4).all() and (np.abs(z) < 5).all(), z


def test_the_privacy_record_matches_the_noise_actually_added(private_and_exact):
    # the epsilon implied by the noise measured on the release (the accountant run on the
    # measured noise multiplier) is the recorded epsilon: less noise than recorded would mean a
    # larger real privacy loss than the one logged and gated
    private, exact = private_and_exact
    rec = private.privacy_
    measured_std = np.std(private.released_item_counts_ - exact.released_item_counts_)
    measured_multiplier = measured_std / rec["sensitivity"]
    implied = accounting.epsilon(
        measured_multiplier, rec["releases"], rec["delta"], rec["accountant"]
    )
    assert implied == pytest.approx(rec["epsilon"], rel=0.15)
    assert rec["noise_std"] == pytest.approx(rec["noise_multiplier"] * rec["sensitivity"])
    assert rec["epsilon"] == pytest.approx(5.0, rel=1e-3)


def test_a_run_of_two_fits_reports_their_composition(tiny):
    model = create("dp-als", {"epsilon": 5e3, "iterations": 2}).fit(tiny.data)
    one, two = model.privacy_metrics(), model.privacy_metrics(fits=2)
    assert one["epsilon"] == one["epsilon_per_fit"] == model.epsilon_ and one["fits"] == 1
    assert two["epsilon_per_fit"] == model.epsilon_ and two["fits"] == 2
    assert two["epsilon"] == pytest.approx(
        accounting.composed_epsilon([(model.noise_multiplier_, 3)] * 2, 1e-6, "rdp")
    )
    assert model.epsilon_ < two["epsilon"] < 2 * model.epsilon_
    with pytest.raises(ConfigError, match="at least one fit"):
        model.privacy_metrics(fits=0)


def test_the_manifest_marks_what_the_guarantee_does_not_cover(tiny, tmp_path):
    import json

    model = create("dp-als", {"epsilon": 1e4, "iterations": 2}).fit(tiny.data)
    folder = model.save(tmp_path / "m")
    privacy = json.loads((folder / "MANIFEST.json").read_text())["privacy"]
    outside = {o["name"]: o["why"] for o in privacy["outside"]}
    for per_user in (
        "user_factors_",
        "user_bias_",
        "seen_",
        "user_ids.json",
        "user_factors.parquet",
    ):
        assert outside[per_user].startswith("per-user"), per_user
    assert {"item_popularity_", "global_mean_"} <= set(outside)  # exact, no noise
    assert {"item_factors_", "item_bias_", "mu_"} <= set(privacy["covered"])
    assert not set(privacy["covered"]) & set(outside)
    assert privacy["epsilon"] == model.epsilon_
    text = (folder / "MANIFEST.md").read_text()
    assert "**Outside the guarantee**" in text and "- `user_factors_`: per-user" in text
    # a model without a privacy promise has no such section
    bias = create("bias").fit(tiny.data).save(tmp_path / "b")
    assert "privacy" not in json.loads((bias / "MANIFEST.json").read_text())
