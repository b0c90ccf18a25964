"""Implicit-feedback factorization through the ``implicit`` library (0.7).

* ``implicit-als``: Hu, Koren & Volinsky, "Collaborative filtering for implicit feedback
  datasets", ICDM 2008. Preferences ``p_ui = 1`` for observed pairs, confidence
  ``c_ui = 1 + alpha * w_ui`` where ``w`` is the (optionally BM25 or TF-IDF weighted)
  interaction matrix; weighted least squares solved by conjugate gradient.
* ``implicit-bpr``: Rendle et al., "BPR: Bayesian personalized ranking from implicit feedback",
  UAI 2009; pairwise SGD on (user, seen item, unseen item) triples.

What ``implicit`` needs and how it is met (see its issues #535, #576, #608, #699): a users x
items CSR matrix, float32, with sorted indices; BLAS pinned to one thread while it trains (its
own threads do the work); ``use_gpu=False``; the factor shapes are checked after fit, so a
swapped orientation fails loudly. Only the factors are kept (``user_factors_``,
``item_factors_``), as plain arrays that the base class saves; the ``implicit`` objects are never
pickled. Scores are ``user_factors_[u] @ item_factors_.T`` (BPR's extra column carries its item
bias). These are ranking models: they do not predict ratings.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from recsys_core.exceptions import TrainingError
from recsys_core.features.matrix import Interactions
from recsys_core.models import fold_in
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import C, Capabilities, ModelConfig, Recommender
from recsys_core.models.biased_factors import factor_scores
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.models.user_items import user_items

log = logging.getLogger(__name__)


class ImplicitALSConfig(ModelConfig):
    """Hyperparameters of implicit ALS (implicit's names)."""

    factors: int = hp.factors(64)
    iterations: int = hp.sweeps(15)
    regularization: float = Field(0.05, ge=0, description="L2 regularization of the factors")
    alpha: float = Field(1.0, gt=0, description="confidence scale: c = 1 + alpha * weight")
    weighting: Literal["none", "bm25", "tfidf"] = Field(
        "bm25", description="weighting of the interactions before the confidence"
    )
    bm25_k1: float = Field(100.0, gt=0, description="BM25 term-frequency saturation")
    bm25_b: float = Field(0.8, ge=0, le=1, description="BM25 length normalization")
    use_ratings: bool = hp.use_ratings()
    seed: int = hp.seed("of the factor initialization")


class ImplicitBPRConfig(ModelConfig):
    """Hyperparameters of BPR (implicit's names)."""

    factors: int = hp.factors(64)
    iterations: int = hp.sweeps(100, most=10_000, what="epochs of sampled triples")
    learning_rate: float = hp.learning_rate(0.01, what="SGD learning rate")
    regularization: float = Field(0.01, ge=0, description="L2 regularization")
    seed: int = hp.seed("(initialization and sampling)")


class ImplicitFactors(Recommender[C]):
    """State, scoring and checks of the implicit-feedback factor models (``implicit-als``,
    ``implicit-bpr``, and Spark's ``spark-als-implicit``): scores ``user_factors_ @
    item_factors_.T``, no rating predictions."""

    capabilities = Capabilities(
        predicts_ratings=False, fold_in="factors", factor_scores=True, scored_in_spark=True
    )
    user_factors_: np.ndarray
    """user factors, users x factors (row = index in user_ids.json); scores = user_factors_ @
    item_factors_.T"""
    item_factors_: np.ndarray
    """item factors, items x factors (row = index in item_ids.json)"""

    def _check_factors(
        self, data: Interactions, user_factors: np.ndarray, item_factors: np.ndarray
    ) -> None:
        U = np.asarray(user_factors)
        V = np.asarray(item_factors)
        if U.shape[0] != data.n_users or V.shape[0] != data.n_items:
            raise TrainingError(
                f"{self.name} returned user factors {U.shape} and item factors {V.shape} for "
                f"{data.n_users} users x {data.n_items} items: the matrix orientation is swapped"
            )
        if not (np.isfinite(U).all() and np.isfinite(V).all()):
            raise TrainingError(
                f"{self.name} produced non-finite factors; the learning rate or alpha is likely "
                "too high: lower it"
            )
        self.user_factors_ = U.astype(np.float32)
        self.item_factors_ = V.astype(np.float32)

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return factor_scores(self.factors(), u)  # float32: the order is what ranking reads


@register("implicit-als")
class ImplicitALS(ImplicitFactors[ImplicitALSConfig]):
    """Implicit-feedback ALS with confidence weighting (Hu, Koren & Volinsky 2008)."""

    def _fit(self, data: Interactions, training: Training) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        X = confidence_matrix(
            data, cfg.weighting, cfg.alpha, cfg.bm25_k1, cfg.bm25_b, cfg.use_ratings
        )
        model = AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=1.0,
            iterations=cfg.iterations,
            random_state=cfg.seed,
            calculate_training_loss=False,
        )
        with threadpool_limits(1, "blas"):
            model.fit(X, show_progress=False)
        self._check_factors(data, model.user_factors, model.item_factors)

    def fold_in(
        self, items: np.ndarray, ratings: np.ndarray | None = None, *, user: int = -1
    ) -> np.ndarray:
        """Scores from the user vector solved by implicit ALS's own confidence-weighted normal
        equations (``recsys_core.models.fold_in``), with this model's ``alpha``."""
        self._check_fitted()
        return fold_in.factor_scores(
            self, np.asarray(items, np.int64), ratings, user, alpha=self.config.alpha
        )


@register("implicit-bpr")
class ImplicitBPR(ImplicitFactors[ImplicitBPRConfig]):
    """Bayesian personalized ranking by SGD (Rendle et al. 2009), through implicit."""

    user_factors_: np.ndarray
    """user factors, users x (factors + 1) (row = index in user_ids.json); the last column is 1, so
    that scores = user_factors_ @ item_factors_.T"""
    item_factors_: np.ndarray
    """item factors, items x (factors + 1) (row = index in item_ids.json); the last column is the
    item bias"""

    def _fit(self, data: Interactions, training: Training) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        cfg = self.config
        X = user_items(data, use_ratings=False)
        # one thread: parallel BPR updates race (Hogwild), which would break "same seed,
        # same model"
        model = BayesianPersonalizedRanking(
            factors=cfg.factors,
            learning_rate=cfg.learning_rate,
            regularization=cfg.regularization,
            iterations=cfg.iterations,
            random_state=cfg.seed,
            num_threads=1,
        )
        with threadpool_limits(1, "blas"):
            model.fit(X, show_progress=False)
        self._check_factors(data, model.user_factors, model.item_factors)


def confidence_matrix(
    data: Interactions,
    weighting: str,
    alpha: float,
    k1: float = 100.0,
    b: float = 0.8,
    use_ratings: bool = False,
) -> sp.csr_matrix:
    """Confidences ``c = 1 + alpha * w`` of the observed pairs, users x items CSR float32.

    ``implicit`` reads the stored values as the confidences themselves (its unobserved pairs
    have confidence 1), hence the explicit ``1 +``.
    """
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    X = user_items(data, use_ratings)
    if weighting == "bm25":
        X = bm25_weight(X, K1=k1, B=b)
    elif weighting == "tfidf":
        X = tfidf_weight(X)
    X = sp.csr_matrix(X, dtype=np.float32)
    X.data = (1.0 + alpha * X.data).astype(np.float32)
    X.sort_indices()
    return X
