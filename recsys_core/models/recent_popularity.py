"""Recent popularity: items ranked by their interactions over a trailing window, recent ones
weighing more (``recent-popularity``).

With ``T`` the latest training timestamp, an interaction at time ``t`` counts

    w(t) = 0.5 ** ((T - t) / half_life)   if T - t <= window,   else 0,

and an item's score is the sum of ``w`` over its interactions: a half-life of ``h`` days halves
the weight of an interaction ``h`` days older. Under a time split (and in production), what was
popular last month predicts next month better than what was popular over the whole history,
which is what the all-time ``popularity`` baseline ranks by (Ji et al., "A critical study on
data leakage in recommender system offline evaluation", TOIS 2023, on popularity's drift).

The decayed scores are also the model's answer to users it has never seen (``item_popularity_``),
so the service's fallback and the evaluation rank cold users alike.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from recsys_core.features.matrix import Interactions
from recsys_core.models.base import ModelConfig
from recsys_core.models.baselines import SameListForAll
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.models.user_items import decay_weights


class RecentPopularityConfig(ModelConfig):
    """Hyperparameters of the recent-popularity ranker."""

    window_days: float | None = Field(
        90.0,
        gt=0,
        description="only interactions this many days before the latest count (None: all)",
    )
    half_life_days: float | None = Field(
        30.0, gt=0, description="an interaction this many days older counts half (None: no decay)"
    )


@register("recent-popularity")
class RecentPopularity(SameListForAll[RecentPopularityConfig]):
    """Ranks items by their decayed interactions over a trailing window; the same list for all."""

    item_scores = "scores_"
    scores_: np.ndarray
    """decayed interactions per item in the window (row = index in item_ids.json): the ranking
    score"""
    item_popularity_: np.ndarray
    """the same decayed scores: the ranking of users the model never saw"""

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        keep = data.item_idx >= 0
        weights = decay_weights(data.timestamp[keep], cfg.half_life_days, cfg.window_days)
        scores: np.ndarray = np.bincount(
            data.item_idx[keep], weights=weights, minlength=data.n_items
        ).astype(np.float64)
        # ties (items outside the window) are broken by all-time popularity, a thousandth of
        # the smallest weight so that it never outranks a recent interaction
        tiny = weights[weights > 0].min() if (weights > 0).any() else 1.0
        total = max(float(self.item_popularity_.max()), 1.0)
        scores = scores + 1e-3 * tiny * self.item_popularity_ / total
        self.scores_ = scores.astype(np.float64)
        self.item_popularity_ = scores.astype(np.float32)
