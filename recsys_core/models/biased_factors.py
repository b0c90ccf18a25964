"""The biased model ``r^_ui = mu + b_u + b_i (+ p_u . q_i)``: prediction and scoring kernels.

One place for what several families share:

* ``predict_biases`` / ``score_biases``: the baseline estimates ``mu + b_u + b_i`` (Koren, "Factor
  in the neighbors", TKDD 2010, section 2.1), used by ``bias`` and on top of which ``item-knn``,
  ``user-knn``, ``content`` and ``svdpp`` add their own terms;
* ``predict_biased_factors``: the full biased matrix factorization, compiled with numba;
* ``BiasedFactors``: prediction and scoring of the models that learn ``mu_``, ``user_bias_``,
  ``item_bias_``, ``user_factors_`` and ``item_factors_`` differently (``sgd-mf``, ``als``).

An index of ``-1`` is an unknown user or item: its bias and factors count as zero.
"""

from __future__ import annotations

import numba
import numpy as np

from recsys_core.models import fallback
from recsys_core.models.base import C, Capabilities, Factors, Recommender

predict_biases = fallback.predict
"""``mu + b_u + b_i`` for index pairs (a bias of an unknown index counts as zero): the bias
baseline's own prediction (:func:`recsys_core.models.fallback.predict`)."""


def score_biases(
    mu: float, user_bias: np.ndarray, item_bias: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """``mu + b_u + b_i`` of every item for known users ``u``: shape ``(len(u), n_items)``."""
    return float(mu) + user_bias[u][:, None] + item_bias[None, :]


def factor_scores(f: Factors, u: np.ndarray) -> np.ndarray:
    """Scores of every item for known users ``u`` from a model's float32 :class:`Factors`:
    ``global_bias + user_bias[u] + item_bias + user[u] @ item.T``, shape ``(len(u), n_items)``,
    float32.

    Ranking reads the order of the scores only; float32 keeps it (to within ties closer than a
    float32 rounding) at half the memory and time of a float64 block (1,024 users x the
    catalogue per block in ``recommend_idx``). Rating predictions (RMSE, MAE) stay float64
    (``predict_biased_factors``).
    """
    scores = f.user[u] @ f.item.T
    if f.biased:
        scores += f.item_bias[None, :]
        scores += (np.float32(f.global_bias) + f.user_bias[u])[:, None]
    return scores


def predict_biased_factors(
    mu: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    u: np.ndarray,
    i: np.ndarray,
) -> np.ndarray:
    """``mu + b_u + b_i + p_u . q_i`` for index pairs (unknown indices: zero bias and factors)."""
    out = np.empty(len(u), dtype=np.float64)
    _predict_kernel(
        float(mu),
        user_bias,
        item_bias,
        user_factors,
        item_factors,
        np.asarray(u, np.int64),
        np.asarray(i, np.int64),
        out,
    )
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _predict_kernel(mu, bu, bi, P, Q, u, i, out):
    k = P.shape[1]
    for n in numba.prange(u.size):
        uu = u[n]
        ii = i[n]
        val = mu
        if uu >= 0:
            val += bu[uu]
        if ii >= 0:
            val += bi[ii]
        if uu >= 0 and ii >= 0:
            dot = 0.0
            for f in range(k):
                dot += P[uu, f] * Q[ii, f]
            val += dot
        out[n] = val


class BiasedFactors(Recommender[C]):
    """Prediction and scoring of the fitted biased MF model ``mu + b_u + b_i + p_u . q_i``."""

    capabilities = Capabilities(fold_in="factors", factor_scores=True, scored_in_spark=True)

    mu_: np.float64
    """global offset mu of the predicted rating"""
    user_bias_: np.ndarray
    """user biases b_u, one per user (row = index in user_ids.json)"""
    item_bias_: np.ndarray
    """item biases b_i, one per item (row = index in item_ids.json)"""
    user_factors_: np.ndarray
    """user factors p_u, users x factors (row = index in user_ids.json)"""
    item_factors_: np.ndarray
    """item factors q_i, items x factors (row = index in item_ids.json)"""

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return predict_biased_factors(
            float(self.mu_),
            self.user_bias_,
            self.item_bias_,
            self.user_factors_,
            self.item_factors_,
            u,
            i,
        )

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        # the user's own bias and mu do not change the order; kept so scores are ratings
        return factor_scores(self.factors(), u)
