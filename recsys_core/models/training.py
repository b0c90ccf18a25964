"""One fit in progress: the per-epoch validation curve, the history and the epoch callback.

``Recommender.fit`` hands a ``Training`` to the model's ``_fit``. Iterative models call
``training.epoch(n, train_loss, predict)`` after each epoch: it appends the epoch to the model's
``history_``, adds ``val_rmse`` when ``fit`` was given ``eval_data`` (RMSE on its pairs whose user
and item the training data knows, predictions clipped to the training rating scale, as
``evaluate`` scores them) and calls the callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys_core.features.matrix import Interactions

EpochCallback = Callable[[int, dict[str, float]], None]
"""Called after each epoch/iteration with its number (from 1) and its metrics."""


@dataclass(frozen=True)
class ValidationPairs:
    """The known ``(user, item, rating)`` triples of a held-out set, in index space."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    low: float
    high: float

    @classmethod
    def of(cls, eval_data: Interactions | None, rating_scale: np.ndarray) -> ValidationPairs | None:
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


Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Predicted ratings of index pairs ``(u, i)`` with the parameters as they are now."""


class Training:
    """What a model's ``_fit`` reports to: history, validation pairs and the epoch callback."""

    def __init__(
        self,
        history: list[dict[str, float]],
        *,
        eval_data: Interactions | None = None,
        rating_scale: np.ndarray | None = None,
        callback: EpochCallback | None = None,
    ) -> None:
        self.eval_data = eval_data
        scale = np.array([-np.inf, np.inf]) if rating_scale is None else rating_scale
        self.val = ValidationPairs.of(eval_data, scale)
        self._history = history
        self._callback = callback

    def epoch(
        self,
        number: int,
        train_loss: float,
        predict: Predictor | np.ndarray | None = None,
        *,
        extra: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """Record epoch ``number`` (from 1): its training loss, the model's own ``extra``
        metrics (such as a validation NDCG it stops on) and, when there are validation pairs
        and ``predict`` is given, ``val_rmse``; returns the metrics.

        ``predict`` is a function of the index pairs (called only when there are validation
        pairs), or the predictions of ``val``'s pairs already computed.
        """
        metrics = {"train_loss": float(train_loss), **(extra or {})}
        if predict is not None and self.val is not None:
            pred = (
                predict
                if isinstance(predict, np.ndarray)
                else predict(self.val.user, self.val.item)
            )
            metrics["val_rmse"] = self.val.rmse(pred)
        self._history.append({"epoch": number, **metrics})
        if self._callback is not None:
            self._callback(number, metrics)
        return metrics
