"""Biased matrix factorization by alternating least squares (``als``), for explicit ratings.

Zhou, Wilkinson, Schreiber & Pan, "Large-scale parallel collaborative filtering for the Netflix
Prize", AAIM 2008 (ALS with weighted-lambda regularization, "ALS-WR").

Model: ``r_ui ~ mu + b_u + b_i + p_u . q_i``, minimizing

    sum_(u,i) (r_ui - r^_ui)^2 + reg * (sum_u n_u (|p_u|^2 + b_u^2) + sum_i n_i (|q_i|^2 + b_i^2))

where ``n_u``/``n_i`` count the ratings of the user/item (the weighted-lambda term that makes
``reg`` transfer across data sizes). With the items fixed, each user solves a ridge regression
on the augmented vectors ``[q_i, 1]`` for ``[p_u, b_u]``:

    (Q~_u^T Q~_u + reg n_u I) [p_u, b_u] = Q~_u^T (r_u - mu - b_I)

and symmetrically for the items. Two solvers: ``cg`` (the default) takes ``cg_steps`` steps of
conjugate gradient per row, warm-started from the previous sweep, without ever forming the
``k x k`` matrix: ``O(n_u k)`` per step instead of ``O(n_u k^2 + k^3)`` (Takács, Pilászy & Tikk,
"Applications of the conjugate gradient method for implicit feedback collaborative filtering",
RecSys 2011, the method of the ``implicit`` library); ``cholesky`` builds each row's normal
equations and solves them exactly. Rows run in parallel (numba ``prange``); as every row is
solved independently the result does not depend on the thread count.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Literal

import numba
import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig
from recsys_core.models.biased_factors import BiasedFactors, predict_biased_factors
from recsys_core.models.registry import register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)


class ALSConfig(ModelConfig):
    """Hyperparameters of explicit ALS with weighted-lambda regularization."""

    factors: int = hp.factors(10, most=2048)
    iterations: int = hp.sweeps(15, what="alternating sweeps (users, items)")
    reg: float = hp.weighted_lambda(0.1, positive=True)
    init_std: float = hp.init_std(of="item-factor")
    biased: bool = hp.biased()
    solver: Literal["cg", "cholesky"] = Field(
        "cg", description="cg: warm-started conjugate gradient; cholesky: exact solves"
    )
    cg_steps: int = Field(3, ge=1, le=100, description="conjugate-gradient steps per row")
    seed: int = hp.seed("(initialization)")


@register("als")
class ALS(BiasedFactors[ALSConfig]):
    """Biased matrix factorization by alternating least squares (ALS-WR, Zhou et al. 2008)."""

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        R = sp.csr_matrix(data.matrix, dtype=np.float64)
        R.sort_indices()
        Rt = R.T.tocsr()
        Rt.sort_indices()
        mu = float(R.data.mean()) if cfg.biased else 0.0
        k = cfg.factors
        # the last column is the bias; on the other side it is the constant 1
        P = np.zeros((data.n_users, k + 1))
        Q = np.zeros((data.n_items, k + 1))
        Q[:, :k] = rng.normal(0.0, cfg.init_std, (data.n_items, k))
        coo = R.tocoo()
        r_centred, rt_centred = R.data - mu, Rt.data - mu
        for it in range(1, cfg.iterations + 1):
            if cfg.solver == "cg":
                _cg_side(R.indptr, R.indices, r_centred, Q, P, cfg.reg, cfg.biased, cfg.cg_steps)
                _cg_side(Rt.indptr, Rt.indices, rt_centred, P, Q, cfg.reg, cfg.biased, cfg.cg_steps)
            else:
                _solve_side(R.indptr, R.indices, r_centred, Q, P, cfg.reg, cfg.biased)
                _solve_side(Rt.indptr, Rt.indices, rt_centred, P, Q, cfg.reg, cfg.biased)
            if not (np.isfinite(P).all() and np.isfinite(Q).all()):
                raise TrainingError(
                    f"als produced non-finite factors at iteration {it}; reg={cfg.reg} is likely "
                    "too small for this data (or the ratings hold NaN): try reg=0.1"
                )
            predict = partial(predict_biased_factors, mu, P[:, k], Q[:, k], P[:, :k], Q[:, :k])
            training.epoch(it, float(np.mean((coo.data - predict(coo.row, coo.col)) ** 2)), predict)
        self.mu_ = np.float64(mu)
        self.user_bias_ = np.ascontiguousarray(P[:, k])
        self.item_bias_ = np.ascontiguousarray(Q[:, k])
        self.user_factors_ = np.ascontiguousarray(P[:, :k])
        self.item_factors_ = np.ascontiguousarray(Q[:, :k])


@numba.njit(parallel=True, cache=True)
def _solve_side(indptr, indices, ratings, Y, X, reg, biased):
    """Solve every row of ``X`` (last column = bias) with the other side ``Y`` fixed.

    ``ratings`` are ``r - mu``; ``Y[:, -1]`` is the other side's bias, moved to the target.
    """
    n = X.shape[0]
    kk = Y.shape[1]
    k = kk - 1
    dim = kk if biased else k
    for row in numba.prange(n):
        start, stop = indptr[row], indptr[row + 1]
        m = stop - start
        if m == 0:
            X[row, :] = 0.0
            continue
        G = np.empty((m, dim))
        t = np.empty(m)
        for p in range(m):
            j = indices[start + p]
            for f in range(k):
                G[p, f] = Y[j, f]
            if biased:
                G[p, k] = 1.0
                t[p] = ratings[start + p] - Y[j, k]
            else:
                t[p] = ratings[start + p]
        A = G.T @ G
        for f in range(dim):
            A[f, f] += reg * m
        x = np.linalg.solve(A, G.T @ t)
        for f in range(dim):
            X[row, f] = x[f]
        if not biased:
            X[row, k] = 0.0


@numba.njit(parallel=True, fastmath=True, cache=True)
def _cg_side(indptr, indices, ratings, Y, X, reg, biased, steps):
    """Improve every row of ``X`` by ``steps`` conjugate-gradient steps on its normal equations.

    ``A x = b`` with ``A = Y~_u^T Y~_u + reg n_u I`` and ``b = Y~_u^T t`` is never formed:
    ``A v = sum_j y~_j (y~_j . v) + reg n_u v`` over the row's ratings.
    """
    n = X.shape[0]
    kk = Y.shape[1]
    k = kk - 1
    dim = kk if biased else k
    for row in numba.prange(n):
        start, stop = indptr[row], indptr[row + 1]
        m = stop - start
        if m == 0:
            X[row, :] = 0.0
            continue
        lam = reg * m
        x = np.zeros(dim)
        for f in range(dim):
            x[f] = X[row, f]
        # r = b - A x
        r = np.zeros(dim)
        for p in range(m):
            j = indices[start + p]
            t = ratings[start + p] - (Y[j, k] if biased else 0.0)
            dot = 1.0 * x[k] if biased else 0.0
            for f in range(k):
                dot += Y[j, f] * x[f]
            err = t - dot
            for f in range(k):
                r[f] += err * Y[j, f]
            if biased:
                r[k] += err
        for f in range(dim):
            r[f] -= lam * x[f]
        d = r.copy()
        rs_old = 0.0
        for f in range(dim):
            rs_old += r[f] * r[f]
        if rs_old < 1e-20:
            continue
        Ad = np.zeros(dim)
        for _ in range(steps):
            for f in range(dim):
                Ad[f] = lam * d[f]
            for p in range(m):
                j = indices[start + p]
                dot = d[k] if biased else 0.0
                for f in range(k):
                    dot += Y[j, f] * d[f]
                for f in range(k):
                    Ad[f] += dot * Y[j, f]
                if biased:
                    Ad[k] += dot
            dAd = 0.0
            for f in range(dim):
                dAd += d[f] * Ad[f]
            if dAd <= 0.0:
                break
            alpha = rs_old / dAd
            rs_new = 0.0
            for f in range(dim):
                x[f] += alpha * d[f]
                r[f] -= alpha * Ad[f]
                rs_new += r[f] * r[f]
            if rs_new < 1e-20:
                break
            beta = rs_new / rs_old
            for f in range(dim):
                d[f] = r[f] + beta * d[f]
            rs_old = rs_new
        for f in range(dim):
            X[row, f] = x[f]
        if not biased:
            X[row, k] = 0.0
