"""Ranking scores of the factor families: float32 blocks in the order of the float64 scores."""

import numpy as np
import pytest

from recsys_core.models import create
from recsys_core.models.biased_factors import factor_scores

FACTOR_FAMILIES = {
    "sgd-mf": {"epochs": 5, "factors": 16},
    "als": {"iterations": 3, "factors": 16},
    "svdpp": {"epochs": 3, "factors": 8},
    "implicit-als": {"iterations": 3, "factors": 16},
}


def _float64_scores(model, u: np.ndarray) -> np.ndarray:
    """The scores computed in float64 from the fitted attributes the family names."""
    attrs = model.factor_attributes
    P = np.asarray(getattr(model, attrs["user_factors"]), np.float64)
    Q = np.asarray(getattr(model, attrs["item_factors"]), np.float64)
    scores = P[u] @ Q.T
    if model.predicts_ratings:
        scores += float(getattr(model, attrs["global_bias"]))
        scores += np.asarray(getattr(model, attrs["user_bias"]), np.float64)[u][:, None]
        scores += np.asarray(getattr(model, attrs["item_bias"]), np.float64)[None, :]
    return scores


@pytest.fixture(scope="module", params=sorted(FACTOR_FAMILIES))
def fitted(request, small):
    return create(request.param, FACTOR_FAMILIES[request.param]).fit(small.data)


def test_blocks_are_float32_and_equal_the_float64_scores_to_rounding(fitted):
    u = np.arange(min(300, fitted.n_users), dtype=np.int32)
    block = fitted._score_users(u)
    assert block.dtype == np.float32 and block.shape == (u.size, fitted.n_items)
    exact = _float64_scores(fitted, u)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(block, exact, rtol=0, atol=4 * np.finfo(np.float32).eps * scale)


def test_float32_top_k_is_the_float64_top_k_but_for_near_ties(fitted, small):
    u = np.arange(min(300, fitted.n_users), dtype=np.int32)
    k = 10
    items, scores = fitted.recommend_idx(u, k)
    exact = _float64_scores(fitted, u)
    order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    differ = items != order
    # a position may differ only where the float64 scores of the two items are within a
    # float32 rounding of each other
    tol = 8 * np.finfo(np.float32).eps * np.abs(exact).max()
    rows, cols = np.nonzero(differ)
    gap = np.abs(exact[rows, items[rows, cols]] - exact[rows, order[rows, cols]])
    assert (gap <= tol).all(), gap.max()
    assert differ.mean() < 0.01
    np.testing.assert_allclose(scores, np.take_along_axis(exact, items, 1), rtol=1e-5)


def test_factor_scores_adds_the_biases_of_a_rating_model_only(small):
    rating = create("sgd-mf", {"epochs": 2, "factors": 4}).fit(small.data)
    f = rating.factors()
    u = np.array([0, 3], np.int32)
    plain = f.user[u] @ f.item.T
    with_biases = factor_scores(f, u)
    expected = plain + f.item_bias[None, :] + (f.global_bias + f.user_bias[u])[:, None]
    np.testing.assert_allclose(with_biases, expected, rtol=1e-6)
    assert not np.allclose(with_biases, plain)
    implicit = create("implicit-als", {"iterations": 2, "factors": 4}).fit(small.data)
    g = implicit.factors()
    np.testing.assert_array_equal(factor_scores(g, u), g.user[u] @ g.item.T)
