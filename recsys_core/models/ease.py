"""EASE: embarrassingly shallow autoencoder for top-N recommendation (``ease``).

Steck, "Embarrassingly shallow autoencoders for sparse data", WWW 2019. With the binary users x
items matrix ``X`` and ``P = (X^T X + lambda I)^-1``, the item x item weights have the closed
form

    B_ij = -P_ij / P_jj  (i != j),   B_ii = 0,

and the scores of user ``u`` are ``X_u B``. The weights are dense items x items (float32 once
fitted, float64 while inverting), so the fit checks first that they fit in ``max_bytes``.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg
from pydantic import Field
from threadpoolctl import threadpool_limits

from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig, Recommender
from recsys_core.models.item_scores import ItemItemState
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.models.user_items import user_items

log = logging.getLogger(__name__)

_GIB = 1024**3


class EASEConfig(ModelConfig):
    """Hyperparameters of EASE."""

    reg: float = Field(500.0, gt=0, description="L2 regularization lambda of the item weights")
    use_ratings: bool = hp.use_ratings()
    half_life_days: float | None = hp.half_life_days()
    max_bytes: int = Field(
        4 * _GIB, ge=1, description="largest memory the item x item solve may take, in bytes"
    )


def ease_memory(n_items: int) -> int:
    """Peak bytes of the fit: float64 Gram (factorized in place), float64 inverse, float32
    weights."""
    return n_items * n_items * (8 + 8 + 4)


@register("ease")
class EASE(ItemItemState, Recommender[EASEConfig]):
    """Closed-form item-item linear autoencoder for top-N (Steck 2019)."""

    weights_: np.ndarray
    """items x items weights B (zero diagonal): scores = user_items_ @ weights_"""

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        need = ease_memory(data.n_items)
        if need > cfg.max_bytes:
            raise ConfigError(
                f"ease needs about {need / _GIB:.1f} GiB for its {data.n_items} x "
                f"{data.n_items} item matrix, above max_bytes={cfg.max_bytes} "
                f"({cfg.max_bytes / _GIB:.1f} GiB); raise max_bytes, or use item-knn-implicit "
                "or implicit-als for a catalogue this large"
            )
        X = user_items(data, cfg.use_ratings, cfg.half_life_days).astype(np.float64)
        G = (X.T @ X).toarray()
        G[np.diag_indices_from(G)] += cfg.reg
        with threadpool_limits(1, "blas"):
            # P = G^-1 through Cholesky; G is symmetric positive definite (reg > 0)
            P = scipy.linalg.cho_solve(
                scipy.linalg.cho_factor(G, overwrite_a=True, check_finite=False),
                np.eye(data.n_items),
                overwrite_b=True,
                check_finite=False,
            )
        del G
        P /= -np.diag(P)[None, :]
        P[np.diag_indices_from(P)] = 0.0
        # cho_solve answers in Fortran order: C order, so that a row of B is contiguous and the
        # scores of a user read the rows of their items in place (item_scores)
        self._keep_item_item(P, X)
