"""Fold-in: the scores of a user from items given at request time, the model left unchanged.

The two ways a family declares in ``capabilities.fold_in`` (``Recommender.fold_in`` calls them):

* ``"factors"``: the user vector (and bias) solved against the fixed item factors. Explicit
  biased models (sgd-mf, als, svdpp) minimize
  ``sum_i (r_i - mu - b_i - b_u - p.q_i)^2 + reg * n (|p|^2 + b_u^2)`` over the user's training
  ratings and the new items, each new item without a rating counting at the top of the training
  scale. Implicit models solve the ridge regression of 1 on the factors of the items, or, with a
  confidence ``alpha`` (implicit-als), the normal equations
  ``(Q^T Q + alpha Q_S^T Q_S + reg I) p = (1 + alpha) Q_S^T 1`` (Hu, Koren, Volinsky 2008).
* ``"item-item"``: the user's interaction row, with the new items added (value 1, or their
  rating), times the item-item weights: ``sum_i x_i W_i.``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recsys_core.models.base import Recommender

DEFAULT_REG = 0.1
"""Regularization of the solve when the family has no ``reg``/``regularization``."""


def regularization(model: Recommender) -> float:
    """The L2 weight of a factor fold-in: the model's own ``reg`` or ``regularization``."""
    params = model.get_params()
    return float(params.get("reg", params.get("regularization", DEFAULT_REG)))


def history(model: Recommender, user: int) -> tuple[np.ndarray, np.ndarray]:
    """Training items (indices) and their ratings of user index ``user`` (empty when ``-1``)."""
    if user < 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    seen = model.seen_
    lo, hi = seen.indptr[user], seen.indptr[user + 1]
    return seen.indices[lo:hi].astype(np.int64), seen.data[lo:hi]


def factor_user(
    model: Recommender,
    items: np.ndarray,
    ratings: np.ndarray | None = None,
    user: int = -1,
    *,
    alpha: float = 0.0,
) -> tuple[np.ndarray, float]:
    """The folded-in user vector and bias of a factor family (see the module docstring)."""
    f = model.factors()
    hist_idx, hist_val = history(model, user)
    keep = ~np.isin(hist_idx, items)
    idx = np.concatenate([hist_idx[keep], items])
    Qs = f.item[idx].astype(np.float64)
    k = Qs.shape[1]
    reg = regularization(model)
    if f.biased:
        new = (
            np.full(items.size, float(model.rating_scale_[1]))
            if ratings is None
            else np.asarray(ratings, np.float64)
        )
        r = np.concatenate([hist_val[keep], new]).astype(np.float64)
        A = np.hstack([Qs, np.ones((idx.size, 1))])
        t = r - f.global_bias - f.item_bias[idx]
        x = np.linalg.solve(A.T @ A + reg * idx.size * np.eye(k + 1), A.T @ t)
        return x[:k].astype(np.float32), float(x[k])
    if alpha:
        gram = model.__dict__.get("_item_gram")
        if gram is None:
            gram = model.__dict__["_item_gram"] = f.item.T.astype(np.float64) @ f.item
        lhs = gram + alpha * (Qs.T @ Qs) + reg * np.eye(k)
        rhs = (1.0 + alpha) * Qs.sum(axis=0)
    else:
        lhs = Qs.T @ Qs + max(reg, 1e-6) * np.eye(k)
        rhs = Qs.sum(axis=0)
    return np.linalg.solve(lhs, rhs).astype(np.float32), 0.0


def factor_scores(
    model: Recommender,
    items: np.ndarray,
    ratings: np.ndarray | None = None,
    user: int = -1,
    *,
    alpha: float = 0.0,
) -> np.ndarray:
    """Scores of every item for the folded-in user: ``mu + b_u + b_i + Q p``."""
    f = model.factors()
    p, bu = factor_user(model, items, ratings, user, alpha=alpha)
    return f.global_bias + bu + f.item_bias + f.item @ p


def item_item_row(
    model: Recommender, items: np.ndarray, ratings: np.ndarray | None = None, user: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """The interaction row (indices, values) that an item-item family scores: the user's row,
    with the new items added (value 1, or their rating; items already there keep theirs)."""
    _, X = model.item_item()
    if user >= 0:
        lo, hi = X.indptr[user], X.indptr[user + 1]
        idx, val = X.indices[lo:hi].astype(np.int64), X.data[lo:hi]
    else:
        idx, val = np.empty(0, np.int64), np.empty(0, np.float32)
    new = ~np.isin(items, idx)
    added = (
        np.ones(int(new.sum()), np.float32)
        if ratings is None
        else np.asarray(ratings, np.float32)[new]
    )
    return (np.concatenate([idx, items[new]]), np.concatenate([val, added]).astype(np.float32))


def item_item_scores(
    model: Recommender, items: np.ndarray, ratings: np.ndarray | None = None, user: int = -1
) -> np.ndarray:
    """``sum_i x_i W_i.`` over the row of :func:`item_item_row` (a CSR or dense ``W`` alike)."""
    W, _ = model.item_item()
    idx, val = item_item_row(model, items, ratings, user)
    return np.asarray(W[idx].T @ val).ravel()
