"""Scores of item-item models, ``x W``, without copying ``W`` (``ease``, ``item-knn-implicit``).

The scores of a user with interaction row ``x`` (sparse: items ``idx``, values ``val``) are the
sum of the rows of ``W`` of the user's items, ``sum_n val[n] W[idx[n], :]``. scipy's product of
a CSR row by a dense ``W`` converts ``W`` whenever the dtypes or the memory order differ (a
float64 row times float32 weights, or Fortran-ordered weights: the whole items x items matrix
copied on every request); these kernels read the rows in place and add them in float32, in the
order of the user's items, so one user's scores are the same bits whether they are computed
alone (serving) or in a block (evaluation, batch).

Compiled without ``fastmath``: no reassociation, the order of the sums is the one written here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, cast

import numba
import numpy as np
import scipy.sparse as sp

from recsys_core.models.base import Capabilities

_PARALLEL_FROM = 16
"""Blocks of fewer users are scored in the calling thread."""


@numba.njit(cache=True, nogil=True)
def _dense_row(idx, val, W, out):  # pragma: no cover - compiled
    for n in range(idx.size):
        v = np.float32(val[n])
        row = idx[n]
        for j in range(out.size):
            out[j] += v * W[row, j]


@numba.njit(cache=True, nogil=True)
def _sparse_row(idx, val, sp_indptr, sp_indices, sp_data, out):  # pragma: no cover - compiled
    for n in range(idx.size):
        v = np.float32(val[n])
        row = idx[n]
        for p in range(sp_indptr[row], sp_indptr[row + 1]):
            out[sp_indices[p]] += v * sp_data[p]


@numba.njit(parallel=True, cache=True, nogil=True)
def _dense_block(users, x_indptr, x_indices, x_data, W, out):  # pragma: no cover - compiled
    for b in numba.prange(users.size):
        u = users[b]
        lo, hi = x_indptr[u], x_indptr[u + 1]
        _dense_row(x_indices[lo:hi], x_data[lo:hi], W, out[b])


@numba.njit(parallel=True, cache=True, nogil=True)
def _sparse_block(
    users, x_indptr, x_indices, x_data, sp_indptr, sp_indices, sp_data, out
):  # pragma: no cover - compiled
    for b in numba.prange(users.size):
        u = users[b]
        lo, hi = x_indptr[u], x_indptr[u + 1]
        _sparse_row(x_indices[lo:hi], x_data[lo:hi], sp_indptr, sp_indices, sp_data, out[b])


def aligned_weights(W: Any) -> Any:
    """``W`` as the kernels read it: C-ordered float32 ndarray, or float32 CSR with int32
    indices (a copy only when ``W`` is not already so: once, when a model is fitted or
    loaded)."""
    if sp.issparse(W):
        # scipy-stubs narrow issparse() to a protocol that csr_matrix() does not take
        S: Any = sp.csr_matrix(cast(Any, W), dtype=np.float32)
        if S.indices.dtype != np.int32 or S.indptr.dtype != np.int32:
            S = sp.csr_matrix(
                (S.data, S.indices.astype(np.int32), S.indptr.astype(np.int32)), shape=S.shape
            )
        return S
    return np.ascontiguousarray(W, dtype=np.float32)


def aligned_user_items(X: Any) -> sp.csr_matrix:
    """The users x items matrix as float32 CSR with int32 indices."""
    out = aligned_weights(sp.csr_matrix(X))
    assert isinstance(out, sp.csr_matrix)
    return out


def row_scores(idx: np.ndarray, val: np.ndarray, W: Any) -> np.ndarray:
    """Scores (float32, one per item) of one interaction row ``(idx, val)``: ``x W``.

    ``W`` must be :func:`aligned_weights` (dense items x items, or CSR).
    """
    out = np.zeros(W.shape[1], np.float32)
    idx = np.asarray(idx, np.int64)
    val = np.asarray(val, np.float32)
    if isinstance(W, sp.csr_matrix):
        _sparse_row(idx, val, W.indptr, W.indices, W.data, out)
    else:
        _dense_row(idx, val, W, out)
    return out


def block_scores(users: np.ndarray, X: Any, W: Any) -> np.ndarray:
    """Scores (float32, users x items) of the rows ``users`` of ``X``, in parallel over users.

    ``X`` must be :func:`aligned_user_items`, ``W`` :func:`aligned_weights`.
    """
    users = np.asarray(users, np.int64)
    out = np.zeros((users.size, W.shape[1]), np.float32)
    if users.size < _PARALLEL_FROM:  # waking the thread pool costs more than a few rows
        for b, u in enumerate(users):
            lo, hi = X.indptr[u], X.indptr[u + 1]
            out[b] = row_scores(X.indices[lo:hi], X.data[lo:hi], W)
        return out
    if isinstance(W, sp.csr_matrix):
        _sparse_block(users, X.indptr, X.indices, X.data, W.indptr, W.indices, W.data, out)
    else:
        _dense_block(users, X.indptr, X.indices, X.data, W, out)
    return out


class ItemItemState:
    """The fitted state and the scores of an item-item family (``ease``, ``item-knn-implicit``),
    a mixin placed before :class:`~recsys_core.models.base.Recommender`: the weights and the
    users x items rows, named by the family's ``item_item_attributes``, kept aligned for the
    kernels above, and the scores ``user_items @ weights``. Declared here for every item-item
    family: it ranks (no ratings), folds in through its item-item weights, and its users x
    items rows (``user_items_``) are per user."""

    capabilities = Capabilities(predicts_ratings=False, fold_in="item-item")
    item_item_attributes: ClassVar[dict[str, str]]
    user_axes: ClassVar[dict[str, int]] = {"user_items_": 0}
    user_items_: sp.csr_matrix
    """users x items interactions (CSR, 1 or the rating) the scores start from"""

    def _keep_item_item(self, weights: Any, user_items: Any) -> None:
        """Store ``weights`` and ``user_items`` as the kernels read them in place."""
        attrs = self.item_item_attributes
        setattr(self, attrs["weights"], aligned_weights(weights))
        setattr(self, attrs["user_items"], aligned_user_items(user_items))

    def _item_item_state(self) -> tuple[Any, Any]:
        attrs = self.item_item_attributes
        return getattr(self, attrs["weights"]), getattr(self, attrs["user_items"])

    def _after_load(self, folder: Path) -> None:
        # models saved before the weights were C-ordered float32 are aligned once, here
        self._keep_item_item(*self._item_item_state())

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        weights, user_items = self._item_item_state()
        return block_scores(u, user_items, weights)
