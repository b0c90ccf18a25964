"""The per-epoch validation curve: RMSE on the known pairs of a held-out set.

Iterative rating models report ``val_rmse`` after each epoch when ``fit`` is given
``eval_data``; this is the one place that picks the pairs (users and items known to the
training vocabularies) and scores them as ``evaluate`` does (predictions clipped to the training
rating scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_core.features.matrix import Interactions


@dataclass(frozen=True)
class ValidationPairs:
    """The known ``(user, item, rating)`` triples of a held-out set, in index space."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    low: float
    high: float

    @classmethod
    def of(
        cls, eval_data: Interactions | None, rating_scale: np.ndarray
    ) -> ValidationPairs | None:
        """The pairs of ``eval_data``; ``None`` when there is nothing to validate on."""
        if eval_data is None:
            return None
        known = eval_data.known
        if not known.any():
            return None
        return cls(
            user=eval_data.user_idx[known],
            item=eval_data.item_idx[known],
            rating=eval_data.rating[known].astype(np.float64),
            low=float(rating_scale[0]),
            high=float(rating_scale[1]),
        )

    def rmse(self, predicted: np.ndarray) -> float:
        """RMSE of ``predicted`` (one value per pair, clipped to the rating scale)."""
        pred = np.clip(np.asarray(predicted, dtype=np.float64), self.low, self.high)
        return float(np.sqrt(np.mean((pred - self.rating) ** 2)))
