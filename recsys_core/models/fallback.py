"""The fallback of rating models: the bias baseline, fitted beside each model.

A rating model asked about a user or an item it has never seen (a new user before fold-in, an
item added after training) has only its global terms to answer with, and they are not always
the best it could give: a blend's weights were fitted on known pairs, a factor model's biases
were learned with its factors. The best answer the training data supports for such a pair is
Koren's baseline estimate ``mu + b_u + b_i`` (Koren, "Factor in the neighbors", TKDD 2010,
section 2.1), the ``bias`` model: so every rating model fits it beside its own state (``fit``;
``fallback_mu_``, ``fallback_user_bias_``, ``fallback_item_bias_``, with ``bias``'s default
shrinkage) and answers every pair with an unknown user or item with it (``predict_idx``). A
model whose fallback is already that answer, or may not be (``dp-als``: its item side is the
private release, and a bias model fitted on the raw ratings would release them without noise),
says so on its class (``Recommender.bias_fallback``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

REG_ITEMS = 10.0
"""Shrinkage of the item biases (Koren's lambda2; ``bias``'s default)."""
REG_USERS = 15.0
"""Shrinkage of the user biases (Koren's lambda3; ``bias``'s default)."""
EPOCHS = 10
"""Alternating least-squares sweeps (``bias``'s default)."""


def fit_biases(
    u: np.ndarray,
    i: np.ndarray,
    rating: np.ndarray,
    n_users: int,
    n_items: int,
    *,
    reg_items: float = REG_ITEMS,
    reg_users: float = REG_USERS,
    epochs: int = EPOCHS,
    on_epoch: Callable[[int, float, float, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(mu, b_u, b_i)`` of ``r ~ mu + b_u + b_i`` by alternating least squares with separate
    shrinkage (Surprise's ``BaselineOnly``); ``on_epoch(epoch, loss, mu, b_u, b_i)`` after each
    sweep. Indices must be known (``>= 0``)."""
    r = np.asarray(rating, dtype=np.float64)
    mu = float(r.mean())
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    n_u = np.bincount(u, minlength=n_users)
    n_i = np.bincount(i, minlength=n_items)
    for epoch in range(1, epochs + 1):
        bi = np.bincount(i, weights=r - mu - bu[u], minlength=n_items) / (reg_items + n_i)
        bu = np.bincount(u, weights=r - mu - bi[i], minlength=n_users) / (reg_users + n_u)
        if on_epoch is not None:
            on_epoch(epoch, float(np.mean((r - mu - bu[u] - bi[i]) ** 2)), mu, bu, bi)
    return mu, bu, bi


def predict(
    mu: float, user_bias: np.ndarray, item_bias: np.ndarray, u: np.ndarray, i: np.ndarray
) -> np.ndarray:
    """``mu + b_u + b_i`` for index pairs (the bias of an unknown index, ``-1``, is zero)."""
    pred = np.full(u.size, float(mu), dtype=np.float64)
    ku, ki = u >= 0, i >= 0
    pred[ku] += user_bias[u[ku]]
    pred[ki] += item_bias[i[ki]]
    return pred
