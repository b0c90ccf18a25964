"""The contract every registered model keeps, checked on tiny synthetic data."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_core.exceptions import ConfigError, ModelCapabilityError, NotFittedError
from recsys_core.features import Interactions
from recsys_core.models import available, create
from recsys_core.models.base import ModelConfig, Recommender

MODELS = available()


@pytest.fixture(scope="module", params=MODELS)
def fitted(request, tiny, fast):
    return request.param, create(request.param, fast.get(request.param, {})).fit(tiny.data)


def test_every_family_is_registered():
    expected = {
        "user-knn",
        "item-knn",
        "item-knn-implicit",
        "content",
        "hybrid",
        "sgd-mf",
        "als",
        "svdpp",
        "bpmf",
        "implicit-als",
        "implicit-bpr",
        "ease",
        "blend",
        "mult-vae",
        "rerank",
    }
    assert expected <= set(MODELS)


# the bars the others are held to (conftest.Quality)
BASELINES = {"bias", "global-mean", "popularity"}


@pytest.mark.parametrize("name", sorted(set(MODELS) - BASELINES))
def test_every_model_has_a_quality_bar(name):
    # a new model gets the same scrutiny: a test of its own through conftest's `quality`
    calls = re.compile(rf'quality\.(rating|ranking)\(\s*"{re.escape(name)}"')
    tests = Path(__file__).parent.glob("test_*.py")
    assert any(calls.search(t.read_text()) for t in tests), (
        f"model {name!r} has no quality test: add one that calls quality.rating({name!r}, ...) "
        f"or quality.ranking({name!r}, ...) with the margin measured on the fixture"
    )


@pytest.mark.parametrize("name", MODELS)
def test_not_fitted_raises(name):
    model = create(name)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.recommend(["1"], k=3)
    with pytest.raises(NotFittedError):
        model.predict(["1"], ["1"])


@pytest.mark.parametrize("name", MODELS)
def test_get_params_is_the_config(name):
    model = create(name)
    params = model.get_params()
    assert isinstance(params, dict)
    assert set(params) == set(type(model).Config.model_fields)
    assert type(model)(**params).get_params() == params


@pytest.mark.parametrize("name", MODELS)
def test_config_class_is_the_base_parameter(name):
    # ``class ALS(BiasedFactors[ALSConfig])`` sets ``ALS.Config``, through generic bases too
    model = create(name)
    assert type(model).Config is not ModelConfig
    assert type(model.config) is type(model).Config


@pytest.mark.parametrize("name", MODELS)
def test_unknown_parameter_is_rejected(name):
    with pytest.raises(ConfigError, match="not_a_param"):
        create(name, {"not_a_param": 1})


def test_predictions_and_recommendations(fitted, tiny):
    name, model = fitted
    users = tiny.test["user"].unique()[:10]
    recs = model.recommend(users, k=5)
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert (recs.groupby("user").size() == 5).all()
    seen = set(zip(tiny.train["user"], tiny.train["item"], strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"], strict=True))
    if model.predicts_ratings:
        pred = model.predict(tiny.test["user"], tiny.test["item"])
        lo, hi = model.rating_scale_
        assert np.isfinite(pred).all() and (pred >= lo).all() and (pred <= hi).all()
    else:
        with pytest.raises(ModelCapabilityError):
            model.predict(tiny.test["user"][:3], tiny.test["item"][:3])


def test_unknown_users_and_items(fitted, tiny):
    name, model = fitted
    recs = model.recommend(["no-such-user"], k=5)
    # the most popular items (ties may be broken either way)
    got = np.sort(model.item_popularity_[model.item_vocab_.index(recs["item"])])[::-1]
    np.testing.assert_array_equal(got, np.sort(model.item_popularity_)[::-1][:5])
    if model.predicts_ratings:
        known_u, known_i = tiny.train["user"].iloc[0], tiny.train["item"].iloc[0]
        pred = model.predict(
            ["no-such-user", known_u, "no-such-user"], [known_i, "no-such-item", "no-such-item"]
        )
        lo, hi = model.rating_scale_
        assert np.isfinite(pred).all() and (pred >= lo).all() and (pred <= hi).all()


# rating models whose own answer for unknown ids is not the bias model's, and why
OWN_FALLBACK = {
    "bias": "it is the bias model",
    "global-mean": "the floor the bias model is measured against",
    "dp-als": "its private item side; a bias model on the raw ratings would release them",
}


def test_unknown_users_and_items_get_at_least_the_bias_models_answer(fitted, tiny):
    """A pair with an unknown user or item is answered as the bias model fitted on the same
    data answers it: no model's fallback is worse than the baseline's."""
    name, model = fitted
    if not model.predicts_ratings:
        pytest.skip(f"{name} does not predict ratings")
    assert type(model).bias_fallback is (name not in OWN_FALLBACK)
    if name in OWN_FALLBACK:
        return
    bias = create("bias").fit(tiny.data)
    items = list(tiny.train["item"].unique()[:15])
    users = list(tiny.train["user"].unique()[:15])
    for pair_users, pair_items in (
        (["no-such-user"] * len(items), items),  # unknown user, known items
        (users, ["no-such-item"] * len(users)),  # known users, unknown item
        (["no-such-user", "nobody"], ["no-such-item", items[0]]),
    ):
        np.testing.assert_allclose(
            model.predict(pair_users, pair_items),
            bias.predict(pair_users, pair_items),
            rtol=1e-12,
            err_msg=name,
        )
    # known pairs still get the model's own answer (not the fallback)
    known = model.predict(tiny.test["user"], tiny.test["item"])
    assert not np.allclose(known, bias.predict(tiny.test["user"], tiny.test["item"]))


def test_save_load_round_trip(fitted, tiny, tmp_path):
    name, model = fitted
    model.save(tmp_path / name)
    loaded = Recommender.load(tmp_path / name)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    users = list(tiny.test["user"].unique()[:10]) + ["no-such-user"]
    a, b = model.recommend(users, k=5), loaded.recommend(users, k=5)
    assert a["item"].tolist() == b["item"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6)
    if model.predicts_ratings:
        np.testing.assert_allclose(
            model.predict(tiny.test["user"], tiny.test["item"]),
            loaded.predict(tiny.test["user"], tiny.test["item"]),
            rtol=1e-9,
        )


def test_same_seed_same_model(fitted, tiny, fast):
    name, model = fitted
    again = create(name, fast.get(name, {})).fit(tiny.data)
    users = tiny.test["user"].unique()[:10]
    a, b = model.recommend(users, k=5), again.recommend(users, k=5)
    assert a["item"].tolist() == b["item"].tolist()
    if model.predicts_ratings:
        np.testing.assert_array_equal(
            model.predict(tiny.test["user"], tiny.test["item"]),
            again.predict(tiny.test["user"], tiny.test["item"]),
        )


# models whose saved folder exports user and item factors as Parquet; svdpp's user vectors are
# p_u plus its implicit sum, the vector its predictions use
FACTORS = {
    "sgd-mf": "user_factors_",
    "als": "user_factors_",
    "svdpp": "user_vectors_",
    "implicit-als": "user_factors_",
    "implicit-bpr": "user_factors_",
    "spark-als": "user_factors_",
    "spark-als-implicit": "user_factors_",
}
BIASED = {"sgd-mf", "als", "svdpp", "spark-als"}  # r = mu + b_u + b_i + user . item


def test_manifest_and_factors_load_with_plain_pandas(fitted, tiny, tmp_path):
    name, model = fitted
    folder = model.save(tmp_path / name)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["model"] == name
    assert type(model)(**manifest["config"]).get_params() == model.get_params()
    assert (folder / "MANIFEST.md").read_text().startswith(f"# Model state: {name}")
    entries = {e["name"]: e for e in manifest["arrays"]}
    with np.load(folder / "state.npz", allow_pickle=False) as state:
        assert set(state.files) | set(
            json.loads((folder / "model.json").read_text())["sparse"]
        ) == set(entries)
        for key in state.files:
            assert entries[key]["file"] == "state.npz"
            assert entries[key]["shape"] == list(state[key].shape)
            assert entries[key]["dtype"] == str(state[key].dtype)
    for entry in entries.values():
        assert entry["description"], f"{name} does not describe {entry['name']} (state_docs)"
        if entry["file"] != "state.npz":
            assert list(sp.load_npz(folder / entry["file"]).shape) == entry["shape"]
    for scalar, value in manifest["scalars"].items():
        assert value["description"], f"{name} does not describe {scalar} (state_docs)"
    for member in manifest["members"]:
        assert (folder / member / "MANIFEST.json").exists()

    users = json.loads((folder / "user_ids.json").read_text())
    items = json.loads((folder / "item_ids.json").read_text())
    assert set(users) == set(tiny.train["user"].astype(str))  # the original ids
    tables = {t["file"] for t in manifest["tables"]}
    if name not in FACTORS:
        return
    assert tables == {"user_factors.parquet", "item_factors.parquet"}
    U = pd.read_parquet(folder / "user_factors.parquet")
    V = pd.read_parquet(folder / "item_factors.parquet")
    assert U["user_id"].tolist() == users and V["item_id"].tolist() == items
    np.testing.assert_array_equal(
        U.filter(regex=r"^f\d+$").to_numpy(), getattr(model, FACTORS[name])
    )
    np.testing.assert_array_equal(V.filter(regex=r"^f\d+$").to_numpy(), model.item_factors_)
    if name in BIASED:
        # a prediction rebuilt from the manifest and the two tables alone, by raw ids
        pairs = tiny.test[tiny.test["user"].isin(users) & tiny.test["item"].isin(items)][:20]
        u = U.set_index("user_id").loc[pairs["user"].astype(str)]
        v = V.set_index("item_id").loc[pairs["item"].astype(str)]
        factor_cols = [c for c in U.columns if c.startswith("f")]
        rebuilt = (
            manifest["scalars"]["mu_"]["value"]
            + u["bias"].to_numpy()
            + v["bias"].to_numpy()
            + (u[factor_cols].to_numpy() * v[factor_cols].to_numpy()).sum(axis=1)
        )
        lo, hi = model.rating_scale_
        np.testing.assert_allclose(
            np.clip(rebuilt, lo, hi), model.predict(pairs["user"], pairs["item"]), rtol=1e-9
        )


@pytest.mark.parametrize("name", MODELS)
def test_capabilities_are_declared_consistently(name):
    cls = type(create(name))
    caps = cls.capabilities
    assert cls.predicts_ratings is caps.predicts_ratings
    assert caps.roles == (("ranking", "rating") if caps.predicts_ratings else ("ranking",))
    assert caps.fold_in in (None, "factors", "item-item", "model")
    if caps.fold_in == "model":  # the Scorer folds in and explains through the family's own
        assert cls.fold_in is not Recommender.fold_in
        assert cls.explain_idx is not Recommender.explain_idx
    if caps.scored_in_spark:  # the Spark evaluator rebuilds scores from the factors
        assert caps.factor_scores and caps.fold_in == "factors"
    if caps.factor_scores:
        assert caps.fold_in == "factors"
    assert not caps.fitted_in_spark or caps.scored_in_spark
    documented = set(cls.state_docs())
    # every declared per-user array is a documented part of the fitted state
    assert set(cls.per_user_arrays()) - {
        "user_factors_",
        "user_bias_",
        "user_vectors_",
    } <= documented | {"seen_"}


def test_declared_capabilities_hold(fitted, tiny):
    """What a family declares is what it does: fold-in, factor scoring, per-user arrays."""
    name, model = fitted
    caps = model.capabilities
    items = np.asarray(model.seen_[0].indices[:3], np.int64)
    if caps.fold_in is None:
        with pytest.raises(ModelCapabilityError, match="cannot fold in"):
            model.fold_in(items)
    else:
        before = model.recommend_idx(np.arange(3), 5)
        cold = model.fold_in(items)
        warm = model.fold_in(items, user=0)
        assert cold.shape == warm.shape == (model.n_items,)
        assert np.isfinite(cold).all() and np.isfinite(warm).all()
        np.testing.assert_array_equal(model.fold_in(items), cold)  # deterministic
        after = model.recommend_idx(np.arange(3), 5)
        np.testing.assert_array_equal(before[0], after[0])  # the model is left unchanged
    if caps.factor_scores:
        f = model.factors()
        u = np.arange(min(5, model.n_users), dtype=np.int32)
        rebuilt = f.global_bias + f.user_bias[u, None] + f.item_bias[None, :] + f.user[u] @ f.item.T
        np.testing.assert_allclose(rebuilt, model._score_users(u), rtol=1e-4, atol=1e-4)
    for attr, axis in type(model).per_user_arrays().items():
        value = getattr(model, attr, None)
        if value is not None:
            assert value.shape[axis] == model.n_users, (name, attr)
    if caps.needs_item_metadata:
        bare = Interactions.from_frame(tiny.train)
        with pytest.raises(ConfigError, match=f"^{name} needs item metadata"):
            create(name).fit(bare)
