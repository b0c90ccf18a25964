"""Private rating model with user-level joint differential privacy (``dp-als``).

Under joint differential privacy (Kearns et al. 2014; the billboard model of Hsu et al. 2014, as
in Jain, Thakkar & Thakurta, "Differentially private matrix completion revisited", ICML 2018,
and Chien, Jain, Krichene, Rendle, Song, Thakurta & Zhang, "Private alternating least squares",
ICML 2021) only the item side is released; each user computes their own side from their own
ratings against it, at no cost to the budget. The release, in order:

1. **the global mean** ``mu~``: a noisy sum of the users' own mean ratings (centred on the
   scale's midpoint ``c``) and a noisy user count; one user moves them by at most ``h`` (half
   the scale) and 1: L2 sensitivity ``sqrt(h^2 + 1)``;
2. **item biases** (one scalar per item, cheap in sensitivity): each user weighs their ratings by
   ``w_u = 1 / sqrt(n_u)`` and contributes ``w_u t_uj`` to the item's sum and ``w_u`` to its
   count, where ``t_uj = r_uj - mu~ - b0_u`` is clipped to ``[-rating_clip, rating_clip]`` and
   ``b0_u`` is the user's own shrunk mean offset; one user's whole contribution has L2 norm at
   most ``sqrt(rating_clip^2 + 1)`` however many items they rated (every rating is used, none
   sampled away). The item bias is the noisy sum over the noisy count shrunk towards 0 as a
   Gaussian prior of variance ``item_bias_prior`` dictates: ``b~_j = S~_j N_j / (N_j^2 +
   bias_reg N_j + std^2 / item_bias_prior)`` with ``N_j = max(N~_j, 0)``: an item whose
   count the noise swamps keeps a bias near 0;
3. **user biases** (the user's side, free): ``b_u = sum_j (r_uj - mu~ - b~_j) / (n_u +
   reg_users)`` against the released item biases;
4. **factors of the frequently rated items** (Chien et al. 2021's frequency-based item
   selection): the ``frequent_items`` items with the largest released counts (a function of the
   release, so free) get ``factors`` private factors by ``iterations`` alternating sweeps on the
   residuals ``r - mu~ - b_u - b~_j``: each user solves their factors ``p_u`` against the
   current item factors (their side), then the items' weighted Gram matrices ``A_j = sum_u w_u
   x_u x_u^T`` and right-hand sides ``b_j = sum_u w_u t_uj x_u`` are released with Gaussian
   noise (``x_u = p_u`` clipped to norm ``clip_norm``, ``t_uj`` clipped to ``rating_clip``,
   ``w_u = 1 / sqrt`` of the user's count of such items: L2 sensitivity ``sqrt(clip_norm^4 +
   rating_clip^2 clip_norm^2)``) and each item solves ``(A~_j + lambda_j I) q_j = b~_j`` with
   ``lambda_j = reg max(N~_j, 0) + ridge_scale std sqrt(factors)`` (the second term, about
   ``ridge_scale`` times the spectral norm of the Gram noise, keeps the noisy system positive
   definite and shrinks noisy factors). Every other item has no factors and is answered by its
   biases.

The budget: the ``2 + iterations`` Gaussian releases share it, the mean ``MEAN_SHARE``, the
biases ``bias_share`` and each factor sweep an equal part of the rest (all to the biases when
``frequent_items=0``). Gaussian mechanisms compose by adding their inverse squared noise
multipliers (exactly under RDP and the Gaussian privacy loss distribution), so the releases cost
what ``releases`` releases of one multiplier cost: ``dp-accounting``
(``recsys_core.privacy.accounting``) calibrates that multiplier for the target ``(epsilon,
delta)``, the shares split it, and the recorded epsilon is the accountant's over the releases as
made.

User factors and biases are a fold-in: the fitted model keeps them (``user_factors_``,
``user_bias_``) as ``evaluate`` and serving score known users from them; they are not part of the
private release and must be treated as the users' own data (``solve_user`` recomputes them for
any ratings). An unknown user is answered by ``mu~ + b~_j`` and an unknown item by ``mu~ + b_u``:
both private, where a bias model fitted on the raw ratings would release every item's mean.

``privacy_`` records what a run must log: ``epsilon``, ``delta``, the accountant, the clipping
bounds, the noise multiplier and every release's noise standard deviation and sensitivity
(``privacy_metrics`` returns the numeric ones as run metrics; the gate can require ``epsilon <=
budget`` with a threshold). ``epsilon=None`` trains without noise (same bounds), the non-private
reference.
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
from recsys_core.models import fold_in
from recsys_core.models import hyperparameters as hp
from recsys_core.models.als import _solve_side
from recsys_core.models.base import ModelConfig
from recsys_core.models.biased_factors import BiasedFactors, predict_biased_factors
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.privacy import accounting

log = logging.getLogger(__name__)

MEAN_SHARE = 0.02
"""Share of the budget spent on the global mean (a single scalar over all users: little noise)."""
RELEASES = ("mean", "biases", "factors")
"""The kinds of release, in order (``factors`` once per sweep)."""


class DPALSConfig(ModelConfig):
    """Hyperparameters of the private model: the model's and the privacy budget's."""

    factors: int = Field(3, ge=1, le=256, description="latent factors of the frequent items")
    iterations: int = Field(
        2, ge=1, le=100, description="alternating sweeps of the factors (each one release)"
    )
    frequent_items: int = Field(
        0,
        ge=0,
        description="items with private factors: the most rated by the released counts (0: "
        "biases only, the whole budget on them)",
    )
    bias_share: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="share of the budget spent on the item biases (the factor sweeps share the "
        f"rest, less the mean's {MEAN_SHARE})",
    )
    reg: float = hp.weighted_lambda(0.1, positive=True, of=" of the factors")
    reg_users: float = Field(5.0, ge=0, description="shrinkage of the user biases (user side)")
    item_bias_prior: float = Field(
        0.3, gt=0, description="prior variance of the item biases, to shrink noisy estimates"
    )
    bias_reg: float = Field(
        0.3, ge=0, description="shrinkage of the item biases against the rating noise"
    )
    init_std: float = hp.init_std(of="item-factor")
    epsilon: float | None = Field(
        5.0, description="target privacy loss over the whole training (> 0); None: no noise"
    )
    delta: float = Field(1e-6, description="target delta, in (0, 1); well below 1/users")
    accountant: accounting.Accountant = Field("rdp", description="rdp or pld (dp-accounting)")
    max_ratings_per_user: int = Field(
        20,
        ge=1,
        description="ratings of one user counted at full weight in the item statistics (a user "
        "with n more has each weighted by sqrt(max_ratings_per_user / n))",
    )
    clip_norm: float = Field(1.0, gt=0, description="bound on a user factor vector's L2 norm")
    rating_clip: float = Field(
        1.0, gt=0, description="bound on a rating's residual in the item statistics"
    )
    ridge_scale: float = Field(
        2.0,
        gt=0,
        description="diagonal added to the noisy Gram matrices, in units of the "
        "noise's expected spectral norm (>= 2 keeps them positive definite; more shrinks the "
        "noisy item factors)",
    )
    rating_min: float = Field(1.0, description="lowest rating of the public rating scale")
    rating_max: float = Field(5.0, description="highest rating of the public rating scale")
    seed: int = hp.seed("(initialization, noise)")


@register("dp-als")
class DPALS(BiasedFactors[DPALSConfig]):
    """Private item biases and frequent-item factors under user-level joint DP."""

    # its answer for an unknown user or item is its own private mu~ + b~_i: a bias baseline
    # fitted on the raw ratings would release every item's mean rating without noise
    bias_fallback = False

    user_factors_: np.ndarray
    """user factors p_u by fold-in on the released item factors, users x factors: each user's own
    data, not part of the private release"""
    user_bias_: np.ndarray
    """user biases b_u against the released item biases: each user's own data, not released"""
    item_factors_: np.ndarray
    """released item factors q_j, items x factors (zero for the items without private factors)"""
    factor_items_: np.ndarray
    """indices of the items with private factors (the most rated by the released counts)"""
    epsilon_: float
    """privacy loss epsilon of the release by the accountant (inf: no noise)"""
    delta_: float
    """delta of the (epsilon, delta) guarantee"""
    noise_multiplier_: float
    """the Gaussian noise multiplier that, on each of the releases, costs what the releases as made
    cost (their own: noise_multipliers_)"""
    noise_multipliers_: np.ndarray
    """each release's noise std divided by its L2 sensitivity (mean, biases, then one per factor
    sweep)"""
    noise_stds_: np.ndarray
    """each release's Gaussian noise std (mean, biases, factor sweeps)"""
    sensitivities_: np.ndarray
    """each release's L2 sensitivity to one user's whole data"""
    releases_: int
    """number of composed Gaussian releases (2 + factor sweeps)"""
    accountant_: accounting.Accountant
    """privacy accountant of dp-accounting (rdp or pld)"""
    released_item_counts_: np.ndarray
    """each item's noisy weighted rater count N~_j of the bias release: part of the private
    release"""
    released_item_sums_: np.ndarray
    """each item's noisy weighted residual sum S~_j of the bias release: part of the private
    release"""
    released_mean_: np.ndarray
    """the global mean's release: [noisy sum of the users' mean ratings centred on the scale's
    midpoint, noisy user count]: part of the private release"""

    private_release: ClassVar[frozenset[str] | None] = frozenset(
        {
            "mu_",
            "item_bias_",
            "item_factors_",
            "factor_items_",
            "released_item_counts_",
            "released_item_sums_",
            "released_mean_",
            "epsilon_",
            "delta_",
            "noise_multiplier_",
            "noise_multipliers_",
            "noise_stds_",
            "sensitivities_",
            "releases_",
            "accountant_",
        }
    )
    """The item side and the global mean are released with noise; the record of the noise is
    public. The fold-in user factors and biases, the seen lists, the exact item popularity,
    mean and rating scale, and the user ids are not covered."""

    def __init__(self, config: DPALSConfig | None = None, **params: Any) -> None:
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
        if cfg.frequent_items > 0 and cfg.bias_share >= 1 - MEAN_SHARE:
            raise ConfigError(
                f"bias_share={cfg.bias_share!r} leaves nothing of the budget for the factors of "
                f"the {cfg.frequent_items} frequent items (the mean takes {MEAN_SHARE}): use a "
                f"bias_share below {1 - MEAN_SHARE}, or frequent_items=0 for biases only"
            )

    # ------------------------------------------------------------------ privacy
    def budget_shares(self) -> list[float]:
        """Each release's share of the budget: mean, biases, then one per factor sweep."""
        cfg = self.config
        if cfg.frequent_items == 0:
            return [MEAN_SHARE, 1 - MEAN_SHARE]
        sweep = (1 - MEAN_SHARE - cfg.bias_share) / cfg.iterations
        return [MEAN_SHARE, cfg.bias_share, *[sweep] * cfg.iterations]

    def sensitivities(self) -> list[float]:
        """L2 sensitivity of each release to one user's whole data (module docstring)."""
        cfg = self.config
        h = (cfg.rating_max - cfg.rating_min) / 2
        c, t, m = cfg.clip_norm, cfg.rating_clip, cfg.max_ratings_per_user
        sweeps = len(self.budget_shares()) - 2
        return [
            math.sqrt(h * h + 1.0),
            math.sqrt(m * (t * t + 1.0)),
            *[math.sqrt(m * (c**4 + t * t * c * c))] * sweeps,
        ]

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
            out["epsilon"] = accounting.releases_epsilon(
                [float(s) for s in self.noise_multipliers_] * fits, self.delta_, self.accountant_
            )
        return out

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        shares = self.budget_shares()
        sens = self.sensitivities()
        releases = len(shares)
        if cfg.epsilon is None:
            sigma, eps = 0.0, math.inf
            sigmas = [0.0] * releases
        else:
            sigma = accounting.noise_multiplier_for(
                cfg.epsilon, cfg.delta, releases, cfg.accountant
            )
            sigmas = accounting.split_noise(sigma, shares)
            eps = accounting.releases_epsilon(sigmas, cfg.delta, cfg.accountant)
        stds = [s * d for s, d in zip(sigmas, sens, strict=True)]
        R = sp.csr_matrix(data.matrix, dtype=np.float64)
        R.sort_indices()
        R.data = np.clip(R.data, cfg.rating_min, cfg.rating_max)
        n_users, n_items = data.n_users, data.n_items
        n_u = np.diff(R.indptr).astype(np.float64)
        users = np.repeat(np.arange(n_users), np.diff(R.indptr))
        items, ratings = R.indices.astype(np.int64), R.data

        # 1. the global mean, from the users' own means
        mu = self._private_mean(ratings, users, n_u, stds[0], rng)
        # 2. the item biases: each user's weighted, clipped residuals against their own offset
        b0 = np.bincount(users, ratings - mu, n_users) / (n_u + cfg.reg_users)
        w = user_weights(n_u, cfg.max_ratings_per_user)[users]
        t = np.clip(ratings - mu - b0[users], -cfg.rating_clip, cfg.rating_clip)
        S = np.bincount(items, w * t, n_items).astype(np.float64)
        N = np.bincount(items, w, n_items).astype(np.float64)
        if stds[1] > 0 and stds[1] >= N.max():
            raise TrainingError(
                f"epsilon={cfg.epsilon} needs noise of std {stds[1]:.2f} on every item "
                f"statistic, more than the weighted count {N.max():.2f} of the most rated item: "
                "the data has too few users for this budget and the release would be noise "
                "only; raise epsilon, leave frequent_items at 0 (the whole budget on the biases), "
                "or collect more users"
            )
        if stds[1] > 0:
            S = S + rng.normal(0.0, stds[1], n_items)
            N = N + rng.normal(0.0, stds[1], n_items)
        self.released_item_sums_, self.released_item_counts_ = S, N
        bi = shrunk_biases(S, N, stds[1], cfg.bias_reg, cfg.item_bias_prior)
        # 3. the user biases, each user's own against the released item side
        bu = np.bincount(users, ratings - mu - bi[items], n_users) / (n_u + cfg.reg_users)
        # 4. factors of the frequently rated items
        k = cfg.factors
        P = np.zeros((n_users, k + 1))
        Q = np.zeros((n_items, k + 1))
        selected = frequent(N, cfg.frequent_items)
        predict = _predictor(mu, bu, bi, P, Q, k)
        if selected.size == 0:
            training.epoch(1, _mse(ratings, predict(users, items)), predict)
        else:
            chosen = np.zeros(n_items, dtype=bool)
            chosen[selected] = True
            keep = chosen[items]
            indptr = np.zeros(n_users + 1, dtype=np.int32)
            indptr[1:] = np.cumsum(np.bincount(users[keep], minlength=n_users))
            fu, fi = users[keep], items[keep]
            e = ratings[keep] - mu - bu[fu] - bi[fi]
            columns = fi.astype(np.int32)
            wf = user_weights(np.diff(indptr), cfg.max_ratings_per_user)[fu]
            indicator = rating_indicator(fi, n_items, wf)
            Q[selected, :k] = rng.normal(0.0, cfg.init_std, (selected.size, k))
            upper = np.triu_indices(k)
            for it in range(1, cfg.iterations + 1):
                std = stds[1 + it]
                _solve_side(indptr, columns, e, Q, P, cfg.reg, False)
                x, tt = bounded_contributions(P[fu, :k], e, cfg.clip_norm, cfg.rating_clip)
                A, b = item_statistics(x, tt, indicator)
                A, b = A[selected], b[selected]
                if std > 0:
                    noise = np.zeros((selected.size, k, k))
                    noise[:, upper[0], upper[1]] = rng.normal(
                        0.0, std, (selected.size, upper[0].size)
                    )
                    A = A + noise + np.triu(noise, 1).transpose(0, 2, 1)
                    b = b + rng.normal(0.0, std, b.shape)
                ridge = cfg.ridge_scale * std * math.sqrt(k)
                lam = cfg.reg * np.maximum(N[selected], 0.0) + ridge + 1e-9
                A[:, np.arange(k), np.arange(k)] += lam[:, None]
                Q[selected, :k] = np.linalg.solve(A, b[:, :, None])[:, :, 0]
                if not np.isfinite(Q).all():
                    raise TrainingError(
                        f"dp-als produced non-finite item factors at sweep {it}; raise reg "
                        "(e.g. reg=0.1), ridge_scale or epsilon"
                    )
                _solve_side(indptr, columns, e, Q, P, cfg.reg, False)  # fold-in
                training.epoch(it, _mse(ratings, predict(users, items)), predict)
        self.mu_ = np.float64(mu)
        self.user_bias_ = np.ascontiguousarray(bu)
        self.item_bias_ = np.ascontiguousarray(bi)
        self.user_factors_ = np.ascontiguousarray(P[:, :k])
        self.item_factors_ = np.ascontiguousarray(Q[:, :k])
        self.factor_items_ = np.sort(selected).astype(np.int64)
        self.epsilon_ = eps
        self.delta_ = float(cfg.delta)
        self.noise_multiplier_ = float(sigma)
        self.noise_multipliers_ = np.asarray(sigmas, dtype=np.float64)
        self.noise_stds_ = np.asarray(stds, dtype=np.float64)
        self.sensitivities_ = np.asarray(sens, dtype=np.float64)
        self.releases_ = int(releases)
        self.accountant_ = cfg.accountant
        log.info(
            "dp-als: epsilon=%.4g delta=%g (%s), noise std: mean %.3g, biases %.3g, factors %s; "
            "%d items with factors",
            eps,
            cfg.delta,
            cfg.accountant,
            stds[0],
            stds[1],
            ", ".join(f"{s:.3g}" for s in stds[2:]) or "-",
            selected.size,
        )

    def _private_mean(
        self,
        ratings: np.ndarray,
        users: np.ndarray,
        n_u: np.ndarray,
        std: float,
        rng: np.random.Generator,
    ) -> float:
        """The global mean as one Gaussian release: the noisy sum of the users' own mean ratings
        centred on the scale's midpoint ``c`` over the noisy number of users (one user moves
        the sum by at most ``h``, half the scale, and the count by 1)."""
        cfg = self.config
        c = (cfg.rating_min + cfg.rating_max) / 2
        rated = n_u > 0
        means = np.bincount(users, ratings - c, n_u.size)[rated] / n_u[rated]
        total, count = float(np.sum(means)), float(rated.sum())
        if std > 0:
            total += rng.normal(0.0, std)
            count += rng.normal(0.0, std)
        self.released_mean_ = np.array([total, count])
        return float(np.clip(c + total / max(count, 1.0), cfg.rating_min, cfg.rating_max))

    @property
    def privacy_(self) -> dict[str, Any]:
        """What every run of this model logs (see the module docstring)."""
        self._check_fitted()
        stds, sens = self.noise_stds_, self.sensitivities_
        return {
            "epsilon": float(self.epsilon_),
            "delta": float(self.delta_),
            "accountant": str(self.accountant_),
            "noise_multiplier": float(self.noise_multiplier_),
            "releases": int(self.releases_),
            "noise_std_mean": float(stds[0]),
            "noise_std_biases": float(stds[1]),
            "noise_std_factors": float(stds[2]) if stds.size > 2 else 0.0,
            "sensitivity_mean": float(sens[0]),
            "sensitivity_biases": float(sens[1]),
            "sensitivity_factors": float(sens[2]) if sens.size > 2 else 0.0,
            "clip_norm": self.config.clip_norm,
            "rating_clip": self.config.rating_clip,
            "bias_share": float(self.budget_shares()[1]),
            "factor_items": int(np.asarray(self.factor_items_).size),
        }

    def fold_in(
        self, items: np.ndarray, ratings: np.ndarray | None = None, *, user: int = -1
    ) -> np.ndarray:
        """Scores of every item for a user who has just rated ``items`` (unrated: the top of the
        scale), their training ratings included: the user steps of ``fit`` (``solve_user``)
        against the released item side, so a known user's fold-in is their fitted self."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        hist_idx, hist_val = fold_in.history(self, user)
        keep = ~np.isin(hist_idx, items)
        new = (
            np.full(items.size, float(self.config.rating_max))
            if ratings is None
            else np.asarray(ratings, np.float64)
        )
        p, b = self.solve_user(
            np.concatenate([hist_idx[keep], items]),
            np.concatenate([np.asarray(hist_val, np.float64)[keep], new]),
        )
        return float(self.mu_) + b + self.item_bias_ + self.item_factors_ @ p

    def solve_user(self, items: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, float]:
        """A user's factors and bias from their own ratings of item indices ``items``, with the
        released item side fixed (the user steps of ``fit``)."""
        self._check_fitted()
        cfg = self.config
        items = np.asarray(items, np.int64)
        ratings = np.clip(np.asarray(ratings, np.float64), cfg.rating_min, cfg.rating_max)
        mu = float(self.mu_)
        b = float(np.sum(ratings - mu - self.item_bias_[items]) / (items.size + cfg.reg_users))
        k = self.item_factors_.shape[1]
        own = items[np.isin(items, self.factor_items_)]
        e = ratings[np.isin(items, self.factor_items_)] - mu - b - self.item_bias_[own]
        Q = np.column_stack([self.item_factors_, np.zeros(self.item_factors_.shape[0])])
        X = np.zeros((1, k + 1))
        indptr = np.array([0, own.size], np.int32)
        _solve_side(indptr, own.astype(np.int32), e, Q, X, cfg.reg, False)
        return X[0, :k].copy(), b


def user_weights(counts: np.ndarray, m: int) -> np.ndarray:
    """Each user's weight in the item statistics: 1 up to ``m`` ratings, ``sqrt(m / n)`` for a
    user with ``n > m``, so that the sum of a user's squared weights is at most ``m``."""
    return np.minimum(1.0, np.sqrt(m / np.maximum(np.asarray(counts, np.float64), 1.0)))


def shrunk_biases(
    sums: np.ndarray, counts: np.ndarray, std: float, reg: float, prior: float
) -> np.ndarray:
    """Item biases from noisy weighted sums and counts: the posterior mean under a Gaussian
    prior of variance ``prior``, ``S N / (N^2 + reg N + std^2 / prior)`` with ``N`` the count
    floored at 0 (``std`` the noise's: without noise, ``S / (N + reg)``)."""
    n = np.maximum(counts, 0.0)
    denominator = n * n + reg * n + std * std / prior
    out = np.zeros_like(sums)
    np.divide(sums * n, denominator, out=out, where=denominator > 0)
    return out


def frequent(counts: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` items with the largest (released) counts, ties to the lower index."""
    n = min(n, counts.size)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.argsort(-counts, kind="stable")[:n]).astype(np.int64)


def bounded_contributions(
    user_rows: np.ndarray, residuals: np.ndarray, clip_norm: float, rating_clip: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per rating, the user's factor vector clipped to norm ``clip_norm`` and the residual
    clipped to ``[-rating_clip, rating_clip]``."""
    x = np.array(user_rows, dtype=np.float64, copy=True)
    norms = np.linalg.norm(x, axis=1)
    x *= np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))[:, None]
    return x, np.clip(residuals, -rating_clip, rating_clip)


def rating_indicator(
    items: np.ndarray, n_items: int, weights: np.ndarray | None = None
) -> sp.csr_matrix:
    """Items x ratings, the rating's weight (1 unless given) where the rating is of the item."""
    values = np.ones(items.size) if weights is None else np.asarray(weights, np.float64)
    return sp.csr_matrix((values, (items, np.arange(items.size))), shape=(n_items, items.size))


def item_statistics(
    x: np.ndarray, t: np.ndarray, indicator: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """The item Gram matrices ``sum w x x^T`` (items x d x d) and right-hand sides ``sum w t x``
    (items x d) over each item's ratings, ``w`` the indicator's weights."""
    n, d = x.shape
    A = np.asarray(indicator @ (x[:, :, None] * x[:, None, :]).reshape(n, d * d))
    return A.reshape(indicator.shape[0], d, d), np.asarray(indicator @ (x * t[:, None]))


def _mse(ratings: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean((ratings - predicted) ** 2))


def _predictor(mu: float, bu: np.ndarray, bi: np.ndarray, P: np.ndarray, Q: np.ndarray, k: int):
    def predict(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return predict_biased_factors(mu, bu, bi, P[:, :k], Q[:, :k], u, i)

    return predict
