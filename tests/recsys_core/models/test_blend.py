import numpy as np
import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create

MEMBERS = [{"model": "bias"}, {"model": "als"}, {"model": "item-knn", "params": {"k": 20}}]


def test_quality_and_at_least_as_good_as_its_best_member(quality):
    # measured on the fixture: RMSE 0.779 against the bias baseline's 0.928 and its best member's
    # (als) 0.798; 1.021 with the members' factors and similarities zeroed
    blend = quality.rating(
        "blend", {"members": MEMBERS}, beats_bias_by=0.07, zeroed=("user_factors_", "similarities_")
    )
    members = [
        quality.rmse(create(m["model"], m.get("params")).fit(quality.fx.data)) for m in MEMBERS
    ]
    assert quality.rmse(blend) <= min(members)
    assert blend.weights_.shape == (3,)


def test_members_are_checked():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create("blend", {"members": [{"model": "nope"}]})
    with pytest.raises(ConfigError, match="does not predict ratings"):
        create("blend", {"members": [{"model": "ease"}]})
    with pytest.raises(ConfigError, match="holdout=0.9"):
        create("blend", {"holdout": 0.9})


TREES = {
    "members": [{"model": "bias"}, {"model": "als", "params": {"iterations": 3}}],
    "stacker": "lightgbm",
    "trees": 30,
    "min_child_samples": 5,
}


def test_the_lightgbm_stacker_round_trips_without_pickle(tiny, tmp_path):
    from recsys_core.models.base import Recommender

    model = create("blend", TREES).fit(tiny.data)
    users, items = tiny.test["user"].tolist(), tiny.test["item"].tolist()
    pred = model.predict(users, items)
    lo, hi = model.rating_scale_
    assert np.isfinite(pred).all() and (pred >= lo).all() and (pred <= hi).all()
    assert np.std(pred) > 0.05  # the trees split: not one constant
    folder = model.save(tmp_path / "m")
    text = (folder / "stacker.lgb.txt").read_text()
    assert text.startswith("tree") and "member_1_als" in text and "user_var" in text
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    loaded = Recommender.load(folder)
    np.testing.assert_array_equal(loaded.predict(users, items), pred)
    # ranking goes through the same stacker
    recs = loaded.recommend(users[:2], k=5)
    assert len(recs) == 10
    np.testing.assert_allclose(
        loaded._score_users(np.array([0]))[0, :7],
        loaded._predict_idx(np.zeros(7, np.int64), np.arange(7)),
    )


def test_the_lightgbm_stacker_is_deterministic(tiny):
    users, items = tiny.test["user"].tolist(), tiny.test["item"].tolist()
    a = create("blend", TREES).fit(tiny.data).predict(users, items)
    b = create("blend", TREES).fit(tiny.data).predict(users, items)
    np.testing.assert_array_equal(a, b)
    c = create("blend", {**TREES, "seed": 3}).fit(tiny.data).predict(users, items)
    assert not np.array_equal(a, c)  # another held-out part, other trees


def test_unknown_users_and_items_reach_the_trees_as_missing(tiny):
    model = create("blend", TREES).fit(tiny.data)
    known_u, known_i = tiny.train["user"].iloc[0], tiny.train["item"].iloc[0]
    pred = model.predict(["nobody", known_u], [known_i, "nothing"])
    assert np.isfinite(pred).all()


def test_support_features():
    from recsys_core.models.blend import support

    table = support(np.array([0, 0, 2]), np.array([4.0, 2.0, 5.0]), 3)
    np.testing.assert_allclose(table[0], [np.log(3.0), 3.0, 1.0])
    np.testing.assert_allclose(table[2], [np.log(2.0), 5.0, 0.0])
    assert table[1, 0] == 0 and np.isnan(table[1, 1:]).all()


def test_stacker_config_is_checked():
    with pytest.raises(ConfigError, match="stacker"):
        create("blend", {"stacker": "xgboost"})
    with pytest.raises(ConfigError, match="trees"):
        create("blend", {"stacker": "lightgbm", "trees": 0})
    assert create("blend").get_params()["stacker"] == "ridge"


def test_a_missing_trees_extra_names_it():
    from recsys_core import extras
    from recsys_core.exceptions import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"'trees' extra.*recsys\[trees\]"):
        extras.require("lightgbm_not_installed_here", "trees")


def test_cross_fitting_holds_every_rating_out_once(tiny):
    ridge = create("blend", {**TREES, "stacker": "ridge", "folds": 3}).fit(tiny.data)
    trees = create("blend", {**TREES, "folds": 3}).fit(tiny.data)
    single = create("blend", {**TREES, "stacker": "ridge"}).fit(tiny.data)
    # the same ridge under both stackers, from the same folds; another from one holdout
    np.testing.assert_allclose(trees.weights_, ridge.weights_)
    assert not np.allclose(single.weights_, ridge.weights_)
    users, items = tiny.test["user"].tolist(), tiny.test["item"].tolist()
    assert np.isfinite(trees.predict(users, items)).all()
    with pytest.raises(ConfigError, match="folds"):
        create("blend", {"folds": 0})


def test_the_lightgbm_stacker_quality(quality):
    # measured on the fixture: 0.7745 against the ridge blend's 0.7789 on the same held-out part
    # (1.02 with the members' factors and similarities zeroed)
    trees = quality.rating(
        "blend",
        {"members": MEMBERS, "stacker": "lightgbm"},
        beats_bias_by=0.07,
        zeroed=("user_factors_", "similarities_"),
    )
    ridge = quality.rmse(create("blend", {"members": MEMBERS}).fit(quality.fx.data))
    assert quality.rmse(trees) <= ridge - 0.002
