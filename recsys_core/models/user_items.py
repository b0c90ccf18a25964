"""The users x items matrix of implicit-feedback models, in the form ``implicit`` expects.

CSR, float32, sorted indices (``implicit`` issues #167, #576, #608): one entry per observed pair,
``1`` or the rating (``use_ratings``). Shared by ``ease``, ``implicit-als``, ``implicit-bpr`` and
``item-knn-implicit``.

With a half-life ``h`` (days), each entry is also multiplied by ``0.5 ** (age / h)``, ``age`` the
days between the pair's latest interaction and the latest training interaction: the item-item
models (``ease``, ``item-knn-implicit``) then learn their weights mostly from recent behaviour,
and score a user mostly from their recent items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.features.matrix import Interactions

DAY = 86_400
"""Seconds in a day: timestamps are Unix seconds."""


def decay_weights(
    timestamps: np.ndarray,
    half_life_days: float | None,
    window_days: float | None = None,
    now: int | None = None,
) -> np.ndarray:
    """The weight ``0.5 ** (age / half_life)`` of each timestamp (1 without a half-life), 0 past
    the window; ``age`` is counted from ``now`` (default: the latest timestamp)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(0, np.float64)
    ref = int(ts.max()) if now is None else int(now)
    age_days = np.maximum(ref - ts, 0) / DAY
    weights = np.ones(ts.size) if half_life_days is None else 0.5 ** (age_days / half_life_days)
    if window_days is not None:
        weights = np.where(age_days <= window_days, weights, 0.0)
    return weights


def user_items(
    data: Interactions, use_ratings: bool = False, half_life_days: float | None = None
) -> sp.csr_matrix:
    """Users x items CSR float32 with sorted indices: ratings, or ``1`` per observed pair,
    times the recency weight of the pair when ``half_life_days`` is given."""
    X = data.matrix.copy()
    if not use_ratings:
        X.data = np.ones_like(X.data)
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    if half_life_days is not None:
        X = sp.csr_matrix(X.multiply(_recency(data, half_life_days)), dtype=np.float32)
        X.sort_indices()
    return X


def _recency(data: Interactions, half_life_days: float) -> sp.csr_matrix:
    """Users x items: the decay weight of each known pair's latest interaction."""
    m = data.known
    u, i, t = data.user_idx[m], data.item_idx[m], data.timestamp[m]
    key = u.astype(np.int64) * max(1, data.n_items) + i
    order = np.lexsort((t, key))  # by pair, then time: the last row of a pair is its latest
    last = np.ones(order.size, dtype=bool)
    last[:-1] = key[order][1:] != key[order][:-1]
    keep = order[last]
    now = int(data.timestamp.max()) if len(data) else 0
    w = decay_weights(t[keep], half_life_days, now=now).astype(np.float32)
    return sp.csr_matrix((w, (u[keep], i[keep])), shape=(data.n_users, data.n_items))
