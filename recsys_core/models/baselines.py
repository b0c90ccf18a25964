"""Baselines: global mean, regularized user/item biases, popularity.

The bias model is Koren's *baseline estimates* (Koren, "Factor in the neighbors", TKDD 2010,
section 2.1): ``r_ui ~ mu + b_u + b_i``, fitted by alternating least squares with separate
shrinkage for items (``reg_items``) and users (``reg_users``), as Surprise's ``BaselineOnly``.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import numpy as np
from pydantic import Field

from recsys_core.features.matrix import Interactions
from recsys_core.models import fallback
from recsys_core.models.base import C, Capabilities, ModelConfig, Recommender
from recsys_core.models.biased_factors import predict_biases, score_biases
from recsys_core.models.registry import register
from recsys_core.models.training import Training


class GlobalMeanConfig(ModelConfig):
    """The global mean has no hyperparameters."""


@register("global-mean")
class GlobalMean(Recommender[GlobalMeanConfig]):
    """Predicts the mean training rating for every pair; ranks by popularity."""

    bias_fallback = False  # the floor the bias model is measured against: the mean, always
    mean_: np.float64
    """the mean training rating"""

    def _fit(self, data: Interactions, training: Training) -> None:
        self.mean_ = np.float64(data.global_mean)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return np.full(u.size, float(self.mean_))

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_popularity_, (u.size, self.n_items))

    def _shared_scores(self) -> np.ndarray:
        return self.item_popularity_


class BiasConfig(ModelConfig):
    """Hyperparameters of the regularized bias baseline."""

    reg_items: float = Field(
        fallback.REG_ITEMS, ge=0, description="shrinkage of item biases (lambda2)"
    )
    reg_users: float = Field(
        fallback.REG_USERS, ge=0, description="shrinkage of user biases (lambda3)"
    )
    epochs: int = Field(
        fallback.EPOCHS, ge=1, le=1000, description="alternating least-squares sweeps"
    )


class BaselineEstimates(Recommender[C]):
    """The rating families built on the baseline estimates ``b_ui = mu + b_u + b_i``: ``bias``
    (the estimates alone) and the families that add their own term to those of a ``bias``
    model fitted first (``item-knn``, ``user-knn``, ``content``)."""

    mu_: np.float64
    """global mean mu of the training ratings (baseline estimates mu + b_u + b_i)"""
    user_bias_: np.ndarray
    """baseline user biases b_u, one per user (row = index in user_ids.json)"""
    item_bias_: np.ndarray
    """baseline item biases b_i, one per item (row = index in item_ids.json)"""

    def _fit_baseline(self, data: Interactions, reg_items: float, reg_users: float) -> None:
        """Keep the estimates of a ``bias`` model fitted on ``data`` with this shrinkage."""
        bias = Bias(reg_items=reg_items, reg_users=reg_users).fit(data)
        self.mu_ = np.float64(bias.mu_)
        self.user_bias_ = bias.user_bias_
        self.item_bias_ = bias.item_bias_

    def _baseline(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """``b_ui`` of index pairs (a bias of an unknown index counts as zero)."""
        return predict_biases(float(self.mu_), self.user_bias_, self.item_bias_, u, i)

    def _baseline_scores(self, u: np.ndarray) -> np.ndarray:
        """``b_ui`` of every item for known users ``u``, shape ``(len(u), n_items)``."""
        return score_biases(float(self.mu_), self.user_bias_, self.item_bias_, u)


@register("bias")
class Bias(BaselineEstimates[BiasConfig]):
    """Regularized user and item biases around the global mean (Koren's baseline estimates)."""

    bias_fallback = False  # its answer for unknown ids is the fallback itself

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config

        def report(epoch: int, loss: float, mu: float, bu: np.ndarray, bi: np.ndarray) -> None:
            training.epoch(epoch, loss, partial(predict_biases, mu, bu, bi))

        mu, bu, bi = fallback.fit_biases(
            data.user_idx,
            data.item_idx,
            data.rating,
            data.n_users,
            data.n_items,
            reg_items=cfg.reg_items,
            reg_users=cfg.reg_users,
            epochs=cfg.epochs,
            on_epoch=report,
        )
        self.mu_ = np.float64(mu)
        self.user_bias_ = bu
        self.item_bias_ = bi

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self._baseline(u, i)

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_bias_, (u.size, self.n_items))

    def _shared_scores(self) -> np.ndarray:
        return self.item_bias_


class PopularityConfig(ModelConfig):
    """Hyperparameters of the popularity ranker."""

    min_rating: float | None = Field(
        None, description="count only interactions with at least this rating (None: all)"
    )


class SameListForAll(Recommender[C]):
    """A ranking family that gives every user the same list: the items by one score each, the
    fitted attribute named by ``item_scores``."""

    capabilities = Capabilities(predicts_ratings=False)
    item_scores: ClassVar[str]

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return np.broadcast_to(getattr(self, self.item_scores), (u.size, self.n_items))

    def _shared_scores(self) -> np.ndarray:
        # one list for everyone: recommend_idx selects from this row, never a users x items copy
        return getattr(self, self.item_scores)


@register("popularity")
class Popularity(SameListForAll[PopularityConfig]):
    """Ranks items by how many users interacted with them; the same list for everyone."""

    item_scores = "counts_"
    counts_: np.ndarray
    """interactions per item (row = index in item_ids.json): the ranking score"""

    def _fit(self, data: Interactions, training: Training) -> None:
        keep = data.known
        if self.config.min_rating is not None:
            keep &= data.rating >= self.config.min_rating
        self.counts_ = np.bincount(data.item_idx[keep], minlength=data.n_items).astype(np.float64)
