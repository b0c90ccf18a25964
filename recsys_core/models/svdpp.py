"""SVD++: matrix factorization with implicit feedback from what users rated (``svdpp``).

Koren, "Factorization meets the neighborhood: a multifaceted collaborative filtering model",
KDD 2008, section 4 (Surprise's ``SVDpp``). Model:

    r^_ui = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)

with ``N(u)`` the items ``u`` rated. SGD with the paper's updates, organised by user (as in
LibRec and most fast implementations): the implicit sum ``z_u`` is computed once per user, each
rating updates ``b_u, b_i, p_u, q_i`` and accumulates the gradient of the ``y_j``, which is
applied once after the user's ratings. That makes an epoch ``O(ratings x factors)`` instead of
Surprise's ``O(sum_u |N(u)|^2 x factors)``. Users and their ratings are visited in a seeded
random order; the loop is sequential (numba), so a seed gives the same model.

The defaults are Surprise SVDpp's (factors=20, epochs=20, lr=0.007, reg=0.02, init_std=0.1).
"""

from __future__ import annotations

import logging
import math
from typing import ClassVar

import numba
import numpy as np
import scipy.sparse as sp

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import Capabilities, ModelConfig, Recommender
from recsys_core.models.biased_factors import factor_scores, predict_biases
from recsys_core.models.registry import register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)


class SVDppConfig(ModelConfig):
    """Hyperparameters of SVD++ (Surprise SVDpp's names and defaults)."""

    factors: int = hp.factors(20, most=2048)
    epochs: int = hp.epochs(20)
    lr: float = hp.learning_rate(0.007)
    reg: float = hp.sgd_reg(0.02)
    init_std: float = hp.init_std()
    seed: int = hp.seed("(initialization and visiting order)")


@register("svdpp")
class SVDpp(Recommender[SVDppConfig]):
    """Biased MF with implicit feedback from the rated items (SVD++, Koren 2008)."""

    # the prediction holds more than the factors (the implicit term): no factor scoring
    capabilities = Capabilities(fold_in="factors")
    mu_: np.float64
    """global mean mu of the training ratings"""
    user_bias_: np.ndarray
    """user biases b_u (row = index in user_ids.json)"""
    item_bias_: np.ndarray
    """item biases b_i (row = index in item_ids.json)"""
    user_factors_: np.ndarray
    """explicit user factors p_u, users x factors"""
    item_factors_: np.ndarray
    """item factors q_i, items x factors (row = index in item_ids.json)"""
    implicit_factors_: np.ndarray
    """implicit item factors y_j, items x factors"""
    user_vectors_: np.ndarray
    """p_u + |N(u)|^-1/2 sum_j y_j, users x factors: the user vector that predictions use, r = mu +
    b_u + b_i + user_vectors_[u] . item_factors_[i]"""
    # the exported user vectors are those the predictions use
    factor_attributes: ClassVar[dict[str, str]] = {
        **Recommender.factor_attributes,
        "user_factors": "user_vectors_",
    }

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        R = data.matrix
        n_u, n_i, k = data.n_users, data.n_items, cfg.factors
        P = rng.normal(0.0, cfg.init_std, (n_u, k))
        Q = rng.normal(0.0, cfg.init_std, (n_i, k))
        Y = rng.normal(0.0, cfg.init_std, (n_i, k))
        bu = np.zeros(n_u)
        bi = np.zeros(n_i)
        mu = float(R.data.mean())
        indptr = R.indptr.astype(np.int64)
        indices = R.indices.astype(np.int64)
        ratings = R.data.astype(np.float64)
        for epoch in range(1, cfg.epochs + 1):
            users = rng.permutation(n_u).astype(np.int64)
            # a random order of each user's ratings (one key per rating, sorted within rows)
            keys = rng.random(ratings.size)
            sse = _epoch(
                indptr, indices, ratings, users, keys, mu, bu, bi, P, Q, Y, cfg.lr, cfg.reg
            )
            if not math.isfinite(sse) or not np.isfinite(P).all():
                raise TrainingError(
                    f"svdpp diverged at epoch {epoch} (non-finite loss or factors); the "
                    f"learning rate lr={cfg.lr} is likely too high for this data: try 0.007"
                )
            self._store(mu, bu, bi, P, Q, Y, R)
            training.epoch(epoch, sse / max(1, ratings.size), self._predict_idx)
        self._store(mu, bu, bi, P, Q, Y, R)

    def _store(
        self,
        mu: float,
        bu: np.ndarray,
        bi: np.ndarray,
        P: np.ndarray,
        Q: np.ndarray,
        Y: np.ndarray,
        R: sp.csr_matrix,
    ) -> None:
        self.mu_ = np.float64(mu)
        self.user_bias_ = bu
        self.item_bias_ = bi
        self.user_factors_ = P
        self.item_factors_ = Q
        self.implicit_factors_ = Y
        # p_u + |N(u)|^-1/2 sum y_j: what a user's prediction uses, fixed once trained
        counts = np.diff(R.indptr)
        norm = 1.0 / np.sqrt(np.maximum(counts, 1))
        implicit = (R.astype(bool).astype(np.float64) @ Y) * norm[:, None]
        self.user_vectors_ = P + implicit

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        pred = predict_biases(float(self.mu_), self.user_bias_, self.item_bias_, u, i)
        both = (u >= 0) & (i >= 0)
        pred[both] += np.einsum(
            "ij,ij->i", self.user_vectors_[u[both]], self.item_factors_[i[both]]
        )
        return pred

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return factor_scores(self.factors(), u)  # float32: the order is what ranking reads


@numba.njit(fastmath=True, cache=True)
def _epoch(indptr, indices, ratings, users, keys, mu, bu, bi, P, Q, Y, lr, reg):
    k = P.shape[1]
    z = np.empty(k)
    grad_y = np.empty(k)
    sse = 0.0
    for uu in users:
        start, stop = indptr[uu], indptr[uu + 1]
        n = stop - start
        if n == 0:
            continue
        norm = 1.0 / np.sqrt(n)
        for f in range(k):
            z[f] = 0.0
            grad_y[f] = 0.0
        for p in range(start, stop):
            j = indices[p]
            for f in range(k):
                z[f] += Y[j, f]
        for f in range(k):
            z[f] *= norm
        order = np.argsort(keys[start:stop])
        for o in order:
            p = start + o
            ii = indices[p]
            dot = 0.0
            for f in range(k):
                dot += Q[ii, f] * (P[uu, f] + z[f])
            err = ratings[p] - (mu + bu[uu] + bi[ii] + dot)
            sse += err * err
            bu[uu] += lr * (err - reg * bu[uu])
            bi[ii] += lr * (err - reg * bi[ii])
            for f in range(k):
                puf = P[uu, f]
                qif = Q[ii, f]
                P[uu, f] += lr * (err * qif - reg * puf)
                Q[ii, f] += lr * (err * (puf + z[f]) - reg * qif)
                grad_y[f] += err * norm * qif
        # the n per-rating updates of y_j summed: lr (sum_i e_ui |N(u)|^-1/2 q_i - n reg y_j)
        for p in range(start, stop):
            j = indices[p]
            for f in range(k):
                Y[j, f] += lr * (grad_y[f] - n * reg * Y[j, f])
    return sse
