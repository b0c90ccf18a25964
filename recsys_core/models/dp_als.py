"""Alternating least squares with user-level differential privacy (``dp-als``).

Private ALS after Chien, Jain, Krichene, Rendle, Song, Thakurta & Zhang, "Private alternating
least squares", ICML 2021, and Jain, Thakkar & Thakurta, "Differentially private matrix
completion revisited", ICML 2018: the item factors are what is released; user factors never
leave the user.

Each iteration:

1. **users** (private to each user): every user solves their biased ridge regression against
   the current item factors, from their own ratings (as in ``als``);
2. **items** (the release): the item side's sufficient statistics, the Gram matrices
   ``A_j = sum_u x_u x_u^T`` and right-hand sides ``b_j = sum_u t_uj x_u`` over the raters of
   item ``j`` with ``x_u = [p_u, 1]``, are computed from bounded contributions and released
   with Gaussian noise, then each item solves ``(A~_j + lambda_j I) [q_j, b_j] = b~_j``.

Contribution bounds: each user keeps at most ``max_ratings_per_user`` ratings (a seeded uniform
sample) in the statistics, their factor vector is clipped to norm ``clip_norm`` and each target
``r - mu - b_u`` to ``[-rating_clip, rating_clip]``. One user's whole contribution to one release
(every ``A_j`` upper triangle and every ``b_j``) then has L2 norm at most ``sqrt(m) *
sqrt(c^4 + rating_clip^2 c^2)`` with ``c^2 = clip_norm^2 + 1`` (the sensitivity), and the noise
on every entry has standard deviation ``noise_multiplier * sensitivity``. The global mean is one
more release (noisy sum and count of the sampled ratings). The ``iterations + 1`` Gaussian
releases are composed by ``dp-accounting`` (``recsys_core.privacy.accounting``), which also
finds the noise multiplier for the target ``(epsilon, delta)``.

``lambda_j = reg * max(n~_j, 1) + ridge``: ``n~_j`` is the item's noisy rater count (the bias
entry of ``A~_j``) and ``ridge`` ``ridge_scale`` times the expected spectral norm ``std *
sqrt(d)`` of the Gram noise: at least 2 keeps the noisy system positive definite, the default 8
also shrinks the noisy item factors of rarely rated items (on 100k-shaped data, epsilon 1: RMSE
1.02 against 1.13 at 2). Projecting onto the PSD cone instead amplifies that noise.

User factors are a fold-in: with the released item factors fixed, each user's least-squares
solve on their own ratings. The fitted model keeps them (``user_factors_``/``user_bias_``) as
``evaluate`` and serving score known users from them; they are not part of the private release
and must be treated as the users' own data (``solve_user`` recomputes them for any ratings).

``privacy_`` records what a run must log: ``epsilon``, ``delta``, the accountant, the clipping
bounds, the noise multiplier and the noise standard deviation (``privacy_metrics`` returns the
numeric ones as run metrics; the gate can require ``epsilon <= budget`` with a threshold).
``epsilon=None`` trains without noise (same bounds), the non-private reference.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models.als import _solve_side
from recsys_core.models.base import ModelConfig
from recsys_core.models.biased_factors import BiasedFactors, predict_biased_factors
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.privacy import accounting

log = logging.getLogger(__name__)


class DPALSConfig(ModelConfig):
    """Hyperparameters of private ALS: the model's and the privacy budget's."""

    factors: int = Field(10, ge=1, le=256, description="number of latent factors")
    iterations: int = Field(3, ge=1, le=100, description="alternating sweeps (each one release)")
    reg: float = Field(0.1, gt=0, description="weighted-lambda regularization")
    init_std: float = Field(0.1, ge=0, description="std of the normal item-factor initialization")
    epsilon: float | None = Field(
        5.0, description="target privacy loss over the whole training (> 0); None: no noise"
    )
    delta: float = Field(1e-6, description="target delta, in (0, 1); well below 1/users")
    accountant: accounting.Accountant = Field("rdp", description="rdp or pld (dp-accounting)")
    max_ratings_per_user: int = Field(
        50, ge=1, description="ratings of one user used in the item statistics (sampled)"
    )
    clip_norm: float = Field(0.5, gt=0, description="bound on a user factor vector's L2 norm")
    rating_clip: float = Field(
        1.0, gt=0, description="bound on |r - mu - b_u| in the item right-hand sides"
    )
    ridge_scale: float = Field(
        8.0,
        gt=0,
        description="diagonal added to the noisy Gram matrices, in units of the "
        "noise's expected spectral norm (>= 2 keeps them positive definite; more shrinks the "
        "noisy item factors)",
    )
    rating_min: float = Field(1.0, description="lowest rating of the public rating scale")
    rating_max: float = Field(5.0, description="highest rating of the public rating scale")
    seed: int = Field(42, description="random seed (initialization, sampling, noise)")


@register("dp-als")
class DPALS(BiasedFactors):
    """ALS with user-level differential privacy on the released item factors."""

    Config = DPALSConfig
    config: DPALSConfig
    # its answer for an unknown user or item is its own private mu~ + b~_i: a bias baseline
    # fitted on the raw ratings would release every item's mean rating without noise
    bias_fallback = False

    state_docs: ClassVar[dict[str, str]] = {
        "user_factors_": "user factors p_u by fold-in on the released item factors, users x "
        "factors: each user's own data, not part of the private release",
        "user_bias_": "user biases b_u by fold-in: each user's own data, not released",
        "epsilon_": "privacy loss epsilon of the release by the accountant (inf: no noise)",
        "delta_": "delta of the (epsilon, delta) guarantee",
        "noise_multiplier_": "Gaussian noise std divided by the L2 sensitivity of a release",
        "noise_std_": "Gaussian noise std added to every entry of the item statistics",
        "sensitivity_": "L2 sensitivity of one release to one user's whole data",
        "releases_": "number of composed Gaussian releases (iterations + 1 for the mean)",
        "accountant_": "privacy accountant of dp-accounting (rdp or pld)",
        "released_item_counts_": "each item's noisy rater count n~_j of the last release (the "
        "bias entry of A~_j): part of the private release",
        "released_mean_": "the global mean's release: [noisy sum of the sampled ratings centred "
        "on the scale's midpoint, noisy count]: part of the private release",
    }

    private_release: ClassVar[frozenset[str] | None] = frozenset(
        {
            "mu_",
            "item_bias_",
            "item_factors_",
            "released_item_counts_",
            "released_mean_",
            "epsilon_",
            "delta_",
            "noise_multiplier_",
            "noise_std_",
            "sensitivity_",
            "releases_",
            "accountant_",
        }
    )
    """The item side and the global mean are released with noise; the record of the noise is
    public. The fold-in user factors and biases, the seen lists, the exact item popularity,
    mean and rating scale, and the user ids are not covered."""

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        cfg = self.config
        if cfg.epsilon is not None:
            accounting.check_target(cfg.epsilon, cfg.delta)
        elif not 0 < cfg.delta < 1:
            accounting.check_target(1.0, cfg.delta)
        if not cfg.rating_min < cfg.rating_max:
            raise TrainingError(
                f"rating_min={cfg.rating_min} must be below rating_max={cfg.rating_max}"
            )

    # ------------------------------------------------------------------ privacy
    def sensitivity(self) -> float:
        """L2 sensitivity of one item release to one user's data (module docstring)."""
        cfg = self.config
        c2 = cfg.clip_norm**2 + 1.0
        return math.sqrt(cfg.max_ratings_per_user) * math.sqrt(c2**2 + cfg.rating_clip**2 * c2)

    def privacy_metrics(self, fits: int = 1) -> dict[str, float]:
        """The numeric privacy record, to log as run metrics beside the challenger's (``epsilon``
        is what a gate threshold ``epsilon <= budget`` reads); the accountant is a string, to
        log as a tag or parameter.

        ``fits`` is how many fits of this configuration the run releases on the same users (2
        when the evaluated model and its refit on all rows are both registered): ``epsilon`` is
        then their composition by the accountant, ``epsilon_per_fit`` this fit's own.
        """
        self._check_fitted()
        if fits < 1:
            raise ConfigError(f"fits={fits!r}: a run releases at least one fit")
        out = {k: float(v) for k, v in self.privacy_.items() if not isinstance(v, str)}
        out["epsilon_per_fit"] = out["epsilon"]
        out["fits"] = float(fits)
        if fits > 1 and math.isfinite(out["epsilon"]):
            out["epsilon"] = accounting.composed_epsilon(
                [(self.noise_multiplier_, self.releases_)] * fits, self.delta_, self.accountant_
            )
        return out

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        R = sp.csr_matrix(data.matrix, dtype=np.float64)
        R.sort_indices()
        k, d = cfg.factors, cfg.factors + 1
        releases = cfg.iterations + 1
        sens = self.sensitivity()
        if cfg.epsilon is None:
            sigma, eps = 0.0, math.inf
        else:
            sigma = accounting.noise_multiplier_for(
                cfg.epsilon, cfg.delta, releases, cfg.accountant
            )
            eps = accounting.epsilon(sigma, releases, cfg.delta, cfg.accountant)
        std = sigma * sens
        # the bounded contributions: at most m sampled ratings per user
        coo = R.tocoo()
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        ratings = np.clip(coo.data, cfg.rating_min, cfg.rating_max)
        keep = _sample_per_user(users, cfg.max_ratings_per_user, rng)
        su, si, sr = users[keep], items[keep], ratings[keep]
        counts = np.bincount(si, minlength=data.n_items)
        if std > 0 and std >= counts.max():
            raise TrainingError(
                f"epsilon={cfg.epsilon} needs noise of std {std:.1f} on every item statistic, "
                f"more than the {int(counts.max())} raters of the most rated item: the data has "
                "too few users for this budget and the release would be noise only; raise "
                "epsilon, lower max_ratings_per_user or clip_norm, use fewer iterations, or "
                "collect more users"
            )
        mu = self._private_mean(sr, sigma, rng)
        S = rating_indicator(si, data.n_items)
        P = np.zeros((data.n_users, d))
        Q = np.zeros((data.n_items, d))
        Q[:, :k] = rng.normal(0.0, cfg.init_std, (data.n_items, k))
        r_centred = R.data - mu
        ridge = cfg.ridge_scale * std * math.sqrt(d)  # ~ spectral norm of the d x d Gram noise
        upper = np.triu_indices(d)
        for it in range(1, cfg.iterations + 1):
            _solve_side(R.indptr, R.indices, r_centred, Q, P, cfg.reg, True)
            x, t = bounded_contributions(P[su], sr - mu - P[su, k], cfg.clip_norm, cfg.rating_clip)
            A, b = item_statistics(x, t, S)
            if std > 0:
                noise = np.zeros((data.n_items, d, d))
                noise[:, upper[0], upper[1]] = rng.normal(0.0, std, (data.n_items, upper[0].size))
                noise = noise + np.triu(noise, 1).transpose(0, 2, 1)
                A = A + noise
                b = b + rng.normal(0.0, std, b.shape)
            released_counts = A[:, k, k].copy()
            lam = cfg.reg * np.maximum(released_counts, 1.0) + ridge
            A[:, np.arange(d), np.arange(d)] += lam[:, None]
            Q = np.linalg.solve(A, b[:, :, None])[:, :, 0]
            if not np.isfinite(Q).all():
                raise TrainingError(
                    f"dp-als produced non-finite item factors at iteration {it}; raise reg "
                    "(e.g. reg=0.1) or epsilon"
                )
            _solve_side(R.indptr, R.indices, r_centred, Q, P, cfg.reg, True)  # fold-in
            predict = _predictor(mu, P, Q, k)
            training.epoch(it, float(np.mean((coo.data - predict(coo.row, coo.col)) ** 2)), predict)
        self.mu_ = np.float64(mu)
        self.user_bias_ = np.ascontiguousarray(P[:, k])
        self.item_bias_ = np.ascontiguousarray(Q[:, k])
        self.user_factors_ = np.ascontiguousarray(P[:, :k])
        self.item_factors_ = np.ascontiguousarray(Q[:, :k])
        self.epsilon_ = eps
        self.delta_ = float(cfg.delta)
        self.noise_multiplier_ = float(sigma)
        self.noise_std_ = float(std)
        self.sensitivity_ = float(sens)
        self.releases_ = int(releases)
        self.accountant_ = cfg.accountant
        # what was released, kept so that the noise actually added can be checked against the
        # record: without noise these are the exact sampled counts and sum
        self.released_item_counts_ = released_counts
        log.info(
            "dp-als: epsilon=%.4g delta=%g (%s), noise multiplier %.4g, std %.4g",
            eps,
            cfg.delta,
            cfg.accountant,
            sigma,
            std,
        )

    def _private_mean(self, ratings: np.ndarray, sigma: float, rng: np.random.Generator) -> float:
        """The global mean as one Gaussian release of the sampled ratings' sum and count.

        Ratings are centred on the scale's midpoint ``c``: one user changes the sum by at most
        ``m * h`` (``h`` half the scale) and the count by ``m``, L2 ``m * sqrt(h^2 + 1)``.
        """
        cfg = self.config
        c = (cfg.rating_min + cfg.rating_max) / 2
        h = (cfg.rating_max - cfg.rating_min) / 2
        total, count = float(np.sum(ratings - c)), float(ratings.size)
        if sigma > 0:
            s = sigma * cfg.max_ratings_per_user * math.sqrt(h * h + 1.0)
            total += rng.normal(0.0, s)
            count += rng.normal(0.0, s)
        self.released_mean_ = np.array([total, count])
        return float(np.clip(c + total / max(count, 1.0), cfg.rating_min, cfg.rating_max))

    @property
    def privacy_(self) -> dict[str, Any]:
        """What every run of this model logs (see the module docstring)."""
        self._check_fitted()
        return {
            "epsilon": float(self.epsilon_),
            "delta": float(self.delta_),
            "accountant": str(self.accountant_),
            "noise_multiplier": float(self.noise_multiplier_),
            "noise_std": float(self.noise_std_),
            "sensitivity": float(self.sensitivity_),
            "clip_norm": self.config.clip_norm,
            "rating_clip": self.config.rating_clip,
            "max_ratings_per_user": self.config.max_ratings_per_user,
            "releases": int(self.releases_),
        }

    def solve_user(self, items: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, float]:
        """A user's factors and bias from their own ratings of item indices ``items``, with the
        released item factors fixed (the user step of ``fit``)."""
        self._check_fitted()
        items = np.asarray(items, np.int32)
        k = self.item_factors_.shape[1]
        Q = np.column_stack([self.item_factors_, self.item_bias_])
        X = np.zeros((1, k + 1))
        _solve_side(
            np.array([0, items.size], np.int32),
            items,
            np.asarray(ratings, np.float64) - float(self.mu_),
            Q,
            X,
            self.config.reg,
            True,
        )
        return X[0, :k].copy(), float(X[0, k])


def bounded_contributions(
    user_rows: np.ndarray, residuals: np.ndarray, clip_norm: float, rating_clip: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per sampled rating, the user's augmented vector ``[p_u, 1]`` with ``p_u`` clipped to
    norm ``clip_norm`` (``user_rows`` holds ``[p_u, b_u]``), and the residual clipped to
    ``[-rating_clip, rating_clip]``."""
    k = user_rows.shape[1] - 1
    x = np.array(user_rows, dtype=np.float64, copy=True)
    x[:, k] = 1.0
    norms = np.linalg.norm(x[:, :k], axis=1)
    x[:, :k] *= np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))[:, None]
    return x, np.clip(residuals, -rating_clip, rating_clip)


def rating_indicator(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Items x sampled ratings, 1 where the rating is of the item."""
    return sp.csr_matrix(
        (np.ones(items.size), (items, np.arange(items.size))), shape=(n_items, items.size)
    )


def item_statistics(
    x: np.ndarray, t: np.ndarray, indicator: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """The item Gram matrices ``sum x x^T`` (items x d x d) and right-hand sides ``sum t x``
    (items x d) over each item's sampled ratings."""
    n, d = x.shape
    A = np.asarray(indicator @ (x[:, :, None] * x[:, None, :]).reshape(n, d * d))
    return A.reshape(indicator.shape[0], d, d), np.asarray(indicator @ (x * t[:, None]))


def _predictor(mu: float, P: np.ndarray, Q: np.ndarray, k: int):
    def predict(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return predict_biased_factors(mu, P[:, k], Q[:, k], P[:, :k], Q[:, :k], u, i)

    return predict


def _sample_per_user(users: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Mask keeping a uniform sample of at most ``m`` entries of each user."""
    order = np.lexsort((rng.random(users.size), users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    rank = np.arange(users.size) - starts
    keep = np.zeros(users.size, dtype=bool)
    keep[order[rank < m]] = True
    return keep
