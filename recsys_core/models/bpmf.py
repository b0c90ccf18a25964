"""Bayesian probabilistic matrix factorization by Gibbs sampling (``bpmf``).

Salakhutdinov & Mnih, "Bayesian probabilistic matrix factorization using Markov chain Monte
Carlo", ICML 2008. Ratings centred on the global mean, ``r_ui ~ N(p_u . q_i, 1/alpha)``, with
Gaussian priors ``p_u ~ N(mu_U, Lambda_U^-1)`` whose hyperparameters have a Gaussian-Wishart
hyperprior ``(mu_0 = 0, beta_0, nu_0 = factors, W_0 = I)``; likewise for items. One Gibbs sweep
samples the user hyperparameters, every user given the items, the item hyperparameters, then
every item given the users:

    Lambda*_u = Lambda_U + alpha sum_{i in I(u)} q_i q_i^T
    p_u ~ N(Lambda*_u^-1 (Lambda_U mu_U + alpha sum_i r_ui q_i), Lambda*_u^-1)

After ``burn_in`` sweeps, ``samples`` draws are kept; the prediction is the posterior mean of
the rating, the average of ``p_u^(s) . q_i^(s)`` over the kept draws (not the product of the
mean factors). The rows are sampled in parallel from normals drawn beforehand by the seeded
generator, so a seed gives the same chain whatever the thread count.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numba
import numpy as np
from pydantic import Field

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig, Recommender
from recsys_core.models.registry import register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)


class BPMFConfig(ModelConfig):
    """Hyperparameters of Bayesian PMF."""

    factors: int = hp.factors(10, most=512)
    burn_in: int = Field(20, ge=0, le=10_000, description="Gibbs sweeps discarded first")
    samples: int = Field(30, ge=1, le=1000, description="Gibbs sweeps kept for the posterior")
    alpha: float = Field(2.0, gt=0, description="precision of the rating noise")
    beta0: float = Field(2.0, gt=0, description="strength of the prior on the factor means")
    seed: int = hp.seed("of the chain")


@register("bpmf")
class BPMF(Recommender[BPMFConfig]):
    """Bayesian probabilistic matrix factorization, posterior mean by Gibbs sampling."""

    mu_: np.float64
    """global mean mu of the training ratings"""
    user_samples_: np.ndarray
    """kept Gibbs draws of the user factors, samples x users x factors"""
    item_samples_: np.ndarray
    """kept Gibbs draws of the item factors, samples x items x factors; r = mu + mean over s of
    user_samples_[s, u] . item_samples_[s, i]"""
    user_axes: ClassVar[dict[str, int]] = {"user_samples_": 1}

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        R = data.matrix
        Rt = R.T.tocsr()
        Rt.sort_indices()
        mu = float(R.data.mean())
        k = cfg.factors
        P = rng.normal(0.0, 0.1, (data.n_users, k))
        Q = rng.normal(0.0, 0.1, (data.n_items, k))
        kept_P = np.zeros((cfg.samples, data.n_users, k))
        kept_Q = np.zeros((cfg.samples, data.n_items, k))
        r_u = (R.data - mu).astype(np.float64)
        r_i = (Rt.data - mu).astype(np.float64)
        val = training.val
        running = np.zeros(0 if val is None else val.user.size)  # sum over the kept draws
        coo = R.tocoo()
        for sweep in range(1, cfg.burn_in + cfg.samples + 1):
            mean_u, prec_u = _sample_hyper(P, cfg.beta0, rng)
            _sample_rows(
                R.indptr,
                R.indices,
                r_u,
                Q,
                P,
                mean_u,
                prec_u,
                cfg.alpha,
                rng.standard_normal(P.shape),
            )
            mean_i, prec_i = _sample_hyper(Q, cfg.beta0, rng)
            _sample_rows(
                Rt.indptr,
                Rt.indices,
                r_i,
                P,
                Q,
                mean_i,
                prec_i,
                cfg.alpha,
                rng.standard_normal(Q.shape),
            )
            if not (np.isfinite(P).all() and np.isfinite(Q).all()):
                raise TrainingError(
                    f"bpmf produced non-finite factors at sweep {sweep}; alpha={cfg.alpha} is "
                    "likely too high for this data: try alpha=2"
                )
            fit = mu + np.einsum("ij,ij->i", P[coo.row], Q[coo.col])
            s = sweep - cfg.burn_in
            val_pred = None
            if s >= 1:
                kept_P[s - 1] = P
                kept_Q[s - 1] = Q
                if val is not None:
                    running += np.einsum("ij,ij->i", P[val.user], Q[val.item])
                    val_pred = mu + running / s  # the posterior mean so far
            training.epoch(sweep, float(np.mean((coo.data - fit) ** 2)), val_pred)
        self.mu_ = np.float64(mu)
        self.user_samples_ = kept_P.astype(np.float32)
        self.item_samples_ = kept_Q.astype(np.float32)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        pred = np.full(u.size, float(self.mu_))
        both = (u >= 0) & (i >= 0)
        Ps = self.user_samples_[:, u[both]].astype(np.float64)
        Qs = self.item_samples_[:, i[both]].astype(np.float64)
        pred[both] += np.einsum("sij,sij->i", Ps, Qs) / Ps.shape[0]
        return pred

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        S = self.user_samples_.shape[0]
        out = np.zeros((u.size, self.n_items))
        for s in range(S):
            out += self.user_samples_[s, u].astype(np.float64) @ self.item_samples_[s].T
        return float(self.mu_) + out / S


def _sample_hyper(
    X: np.ndarray, beta0: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(mu, Lambda)`` from the Gaussian-Wishart posterior given the rows of ``X``."""
    n, k = X.shape
    nu0 = k
    xbar = X.mean(axis=0)
    S = np.cov(X, rowvar=False, bias=True).reshape(k, k)
    beta_n = beta0 + n
    nu_n = nu0 + n
    mu_n = n * xbar / beta_n  # mu_0 = 0
    W_inv = np.eye(k) + n * S + (beta0 * n / beta_n) * np.outer(xbar, xbar)
    W = np.linalg.inv(W_inv)
    W = (W + W.T) / 2
    Lambda = _wishart(W, nu_n, rng)
    cov = np.linalg.inv(beta_n * Lambda)
    mean = rng.multivariate_normal(mu_n, (cov + cov.T) / 2, method="cholesky")
    return mean, Lambda


def _wishart(scale: np.ndarray, df: float, rng: np.random.Generator) -> np.ndarray:
    """One Wishart draw by the Bartlett decomposition."""
    k = scale.shape[0]
    L = np.linalg.cholesky(scale)
    A = np.zeros((k, k))
    A[np.diag_indices(k)] = np.sqrt(rng.chisquare(df - np.arange(k)))
    rows, cols = np.tril_indices(k, -1)
    A[rows, cols] = rng.standard_normal(rows.size)
    LA = L @ A
    return LA @ LA.T


@numba.njit(parallel=True, cache=True)
def _sample_rows(indptr, indices, ratings, Y, X, mean, prec, alpha, normals):
    n, k = X.shape
    base = prec @ mean
    for row in numba.prange(n):
        A = prec.copy()
        b = base.copy()
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            r = ratings[p]
            for f in range(k):
                yf = Y[j, f]
                b[f] += alpha * r * yf
                for g in range(k):
                    A[f, g] += alpha * yf * Y[j, g]
        L = np.linalg.cholesky(A)
        # mean = A^-1 b; draw = mean + L^-T z has covariance A^-1
        m = np.linalg.solve(A, b)
        d = np.linalg.solve(L.T, normals[row])
        for f in range(k):
            X[row, f] = m[f] + d[f]
