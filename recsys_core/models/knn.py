"""Neighbourhood collaborative filtering: user-based and item-based k-NN.

Rating prediction (``user-knn``, ``item-knn``) is the k-NN-with-baseline predictor of Koren,
"Factor in the neighbors: scalable and accurate collaborative filtering", TKDD 4(1), 2010,
section 2.2 (Surprise's ``KNNBaseline``). For item-based:

    r^_ui = b_ui + sum_{j in N^k(i; u)} s_ij (r_uj - b_uj) / sum_{j in N^k(i; u)} s_ij

where ``b_ui = mu + b_u + b_i`` are the regularized baseline estimates (``bias`` model) and
``N^k(i; u)`` the ``k`` items rated by ``u`` most similar to ``i`` (only positive similarities
count; with fewer than ``min_k`` of them the prediction is the baseline). User-based swaps the
roles of users and items.

Similarities over the co-rating support, shrunk towards zero by ``(n_ij - 1) / (n_ij - 1 +
shrinkage)`` (Koren 2010, eq. 2):

* ``cosine``: of the raw ratings;
* ``pearson``: of the ratings centred on each item's (user's) mean;
* ``pearson_baseline``: of the residuals ``r_ui - b_ui`` (Koren's choice, the default).

All co-rating sums come from one numba pass over the sparse matrix (the work is the sum of the
squared row degrees, a sparse ``X^T X``), and only the ``neighbours`` most similar entities are
kept per item (user): memory is ``n x neighbours``, never ``n x n`` nor users x items.

``item-knn-implicit`` is the item-item top-N model for implicit data (Deshpande & Karypis,
"Item-based top-N recommendation algorithms", TOIS 2004) with the nearest-neighbour models of
the ``implicit`` library as the backend (BM25, TF-IDF or cosine weighting); the pruned item x
item similarity is kept as a sparse matrix, the scores are ``user_items @ similarity``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar, Literal

import numba
import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig, Recommender
from recsys_core.models.baselines import BaselineEstimates
from recsys_core.models.item_scores import ItemItemState
from recsys_core.models.registry import register
from recsys_core.models.training import Training
from recsys_core.models.user_items import user_items

log = logging.getLogger(__name__)


class KNNConfig(ModelConfig):
    """Hyperparameters of k-NN rating prediction (Surprise KNNBaseline's names)."""

    k: int = Field(40, ge=1, le=10_000, description="neighbours used in a prediction")
    min_k: int = Field(1, ge=1, description="fewer positive neighbours: predict the baseline")
    similarity: Literal["cosine", "pearson", "pearson_baseline"] = Field(
        "pearson_baseline", description="similarity measure over co-rating users (items)"
    )
    shrinkage: float = Field(100.0, ge=0, description="shrinks similarities with small support")
    min_support: int = Field(1, ge=1, description="co-ratings needed for a non-zero similarity")
    neighbours: int = Field(
        200, ge=1, le=100_000, description="most similar entities kept per entity (memory)"
    )
    reg_items: float = hp.baseline_reg(10.0, of="item")
    reg_users: float = hp.baseline_reg(15.0, of="user")


class _KNN(BaselineEstimates[KNNConfig]):
    """Shared k-NN rating predictor; ``_item_based`` picks the role of items."""

    _item_based = True
    neighbours_: np.ndarray
    """for each item (item-knn) or user (user-knn), the indices of its most similar items (users),
    by decreasing similarity; -1: empty slot"""
    similarities_: np.ndarray
    """the similarity of each entry of neighbours_"""
    residuals_: sp.csr_matrix
    """residuals r - (mu + b_u + b_i) of the training ratings (CSR): users x items for item-knn,
    items x users for user-knn"""

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        n_targets = data.n_items if self._item_based else data.n_users
        if cfg.k > n_targets:
            what = "items" if self._item_based else "users"
            raise ConfigError(
                f"k={cfg.k} is larger than the {n_targets} {what} of the training data; "
                f"use k <= {n_targets}"
            )
        self._fit_baseline(data, cfg.reg_items, cfg.reg_users)
        R = data.matrix  # users x items, sorted indices
        coo = R.tocoo()
        base = self.mu_ + self.user_bias_[coo.row] + self.item_bias_[coo.col]
        resid = sp.csr_matrix((coo.data - base, (coo.row, coo.col)), shape=R.shape)
        # rows = the "other" side, columns = the entities whose neighbours we compute
        X = _centred(R, cfg.similarity, resid, self._item_based)
        if not self._item_based:
            X = X.T.tocsr()
            resid = resid.T.tocsr()
        X.sort_indices()
        resid.sort_indices()
        self.neighbours_, self.similarities_ = similarity_topk(
            X, cfg.neighbours, cfg.shrinkage, cfg.min_support
        )
        # residuals r - b_ui, rows = other side (users for item-based), sorted indices
        self.residuals_ = sp.csr_matrix(resid, dtype=np.float64)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        base = self._baseline(u, i)
        a, b = (i, u) if self._item_based else (u, i)
        out = np.zeros(u.size)
        self._run(_predict_pairs, (a.astype(np.int64), b.astype(np.int64)), self.residuals_, out)
        return base + out

    def _run(self, kernel: Any, targets: tuple, R: sp.csr_matrix, out: np.ndarray) -> None:
        """``kernel`` on ``targets`` with the arguments every kernel takes after them: the
        residuals ``R`` (CSR), the neighbours, their similarities, ``k`` and ``min_k``."""
        cfg = self.config
        nbr, sim = self.neighbours_, self.similarities_
        kernel(*targets, R.indptr, R.indices, R.data, nbr, sim, cfg.k, cfg.min_k, out)

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        out = np.zeros((u.size, self.n_items))
        if self._item_based:
            self._run(_score_item_based, (u.astype(np.int64),), self.residuals_, out)
        else:
            Rt = getattr(self, "_by_user", None)
            if Rt is None:
                Rt = self._by_user = self.residuals_.T.tocsr()  # users x items
                Rt.sort_indices()
            self._run(_score_user_based, (u.astype(np.int64),), Rt, out)
        return out + self._baseline_scores(u)


@register("item-knn")
class ItemKNN(_KNN):
    """Item-based k-NN with baseline (Koren 2010; Surprise KNNBaseline, user_based=False)."""

    _item_based = True
    user_axes: ClassVar[dict[str, int]] = {"residuals_": 0}


@register("user-knn")
class UserKNN(_KNN):
    """User-based k-NN with baseline (Koren 2010; Surprise KNNBaseline, user_based=True)."""

    _item_based = False
    user_axes: ClassVar[dict[str, int]] = {"residuals_": 1, "neighbours_": 0, "similarities_": 0}

    def _drop_users(self, keep: np.ndarray) -> None:
        # neighbours_ holds user indices: renumber the kept ones, and move the slots of the
        # dropped ones to the end of each row (the kernels stop at the first empty slot)
        new_index = np.where(keep, np.cumsum(keep) - 1, -1).astype(self.neighbours_.dtype)
        nbr = np.where(self.neighbours_ >= 0, new_index[np.maximum(self.neighbours_, 0)], -1)
        sim = np.where(nbr >= 0, self.similarities_, 0).astype(self.similarities_.dtype)
        order = np.argsort(nbr < 0, axis=1, kind="stable")
        self.neighbours_ = np.take_along_axis(nbr, order, axis=1)
        self.similarities_ = np.take_along_axis(sim, order, axis=1)
        super()._drop_users(keep)
        self.__dict__.pop("_by_user", None)  # derived from residuals_


def _centred(
    R: sp.csr_matrix, similarity: str, resid: sp.csr_matrix, item_based: bool
) -> sp.csr_matrix:
    """The users x items values whose (co-support) cosine is the requested similarity."""
    if similarity == "cosine":
        return sp.csr_matrix(R, dtype=np.float64)
    if similarity == "pearson_baseline":
        return resid.copy()
    X = sp.csr_matrix(R, dtype=np.float64)
    coo = X.tocoo()
    axis = 0 if item_based else 1  # mean of each item (column) or user (row)
    sums = np.asarray(X.sum(axis=axis)).ravel()
    counts = np.bincount(coo.col if item_based else coo.row, minlength=sums.size)
    means = sums / np.maximum(counts, 1)
    centre = means[coo.col] if item_based else means[coo.row]
    return sp.csr_matrix((coo.data - centre, (coo.row, coo.col)), shape=R.shape)


def similarity_topk(
    X: sp.csr_matrix, neighbours: int, shrinkage: float = 0.0, min_support: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``neighbours`` co-support cosine similarities between the columns of ``X``.

    Returns ``(index, similarity)``, both ``(n_columns, K)`` with ``K = min(neighbours,
    n_columns - 1)``, sorted by decreasing similarity; empty slots hold index ``-1``.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sort_indices()
    Xt = X.T.tocsr()
    Xt.sort_indices()
    n = X.shape[1]
    K = max(1, min(neighbours, n - 1))
    idx = np.full((n, K), -1, dtype=np.int32)
    sim = np.zeros((n, K), dtype=np.float32)
    with threadpool_limits(1, "blas"):
        _topk_kernel(
            X.indptr,
            X.indices,
            X.data,
            Xt.indptr,
            Xt.indices,
            Xt.data,
            n,
            K,
            float(shrinkage),
            int(min_support),
            numba.get_num_threads() * 8,
            idx,
            sim,
        )
    return idx, sim


@numba.njit(parallel=True, cache=True)
def _topk_kernel(xp, xi, xd, tp, ti, td, n, K, shrinkage, min_support, n_chunks, out_idx, out_sim):
    chunk = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        num = np.zeros(n)
        sqa = np.zeros(n)
        sqb = np.zeros(n)
        cnt = np.zeros(n, dtype=np.int64)
        touched = np.empty(n, dtype=np.int64)
        for a in range(c * chunk, min(n, (c + 1) * chunk)):
            n_t = 0
            for p in range(tp[a], tp[a + 1]):
                row = ti[p]
                xa = td[p]
                for q in range(xp[row], xp[row + 1]):
                    b = xi[q]
                    if b == a:
                        continue
                    xb = xd[q]
                    if cnt[b] == 0:
                        touched[n_t] = b
                        n_t += 1
                    cnt[b] += 1
                    num[b] += xa * xb
                    sqa[b] += xa * xa
                    sqb[b] += xb * xb
            sims = np.empty(n_t)
            for t in range(n_t):
                b = touched[t]
                s = 0.0
                den = sqa[b] * sqb[b]
                if cnt[b] >= min_support and den > 0.0:
                    s = num[b] / np.sqrt(den)
                    if shrinkage > 0.0:
                        s *= (cnt[b] - 1.0) / (cnt[b] - 1.0 + shrinkage)
                sims[t] = s
                num[b] = 0.0
                sqa[b] = 0.0
                sqb[b] = 0.0
                cnt[b] = 0
            if n_t == 0:
                continue
            # ties broken by index, so the result does not depend on the visiting order
            order = np.argsort(touched[:n_t])
            cand = touched[:n_t][order]
            cs = sims[order]
            best = np.argsort(-cs, kind="mergesort")
            m = min(K, n_t)
            for r in range(m):
                out_idx[a, r] = cand[best[r]]
                out_sim[a, r] = cs[best[r]]


@numba.njit(cache=True)
def _find(indices, lo, hi, value):
    """Position of ``value`` in the sorted ``indices[lo:hi]``, or -1."""
    end = hi
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and indices[lo] == value:
        return lo
    return -1


@numba.njit(parallel=True, cache=True)
def _predict_pairs(a, b, rp, ri, rd, nbr, nsim, k, min_k, out):
    """Weighted mean residual of ``a``'s nearest neighbours that ``b`` rated."""
    for n in numba.prange(a.size):
        aa, bb = a[n], b[n]
        out[n] = 0.0
        if aa < 0 or bb < 0:
            continue
        lo, hi = rp[bb], rp[bb + 1]
        used = 0
        num = 0.0
        den = 0.0
        for r in range(nbr.shape[1]):
            j = nbr[aa, r]
            s = nsim[aa, r]
            if j < 0 or s <= 0.0:
                break
            pos = _find(ri, lo, hi, j)
            if pos < 0:
                continue
            num += s * rd[pos]
            den += s
            used += 1
            if used == k:
                break
        if used >= min_k and den > 0.0:
            out[n] = num / den


@numba.njit(parallel=True, cache=True)
def _score_item_based(users, rp, ri, rd, nbr, nsim, k, min_k, out):
    n_items = out.shape[1]
    for n in numba.prange(users.size):
        uu = users[n]
        rated = np.zeros(n_items, dtype=np.bool_)
        resid = np.zeros(n_items)
        for p in range(rp[uu], rp[uu + 1]):
            rated[ri[p]] = True
            resid[ri[p]] = rd[p]
        for i in range(n_items):
            used = 0
            num = 0.0
            den = 0.0
            for r in range(nbr.shape[1]):
                j = nbr[i, r]
                s = nsim[i, r]
                if j < 0 or s <= 0.0:
                    break
                if rated[j]:
                    num += s * resid[j]
                    den += s
                    used += 1
                    if used == k:
                        break
            if used >= min_k and den > 0.0:
                out[n, i] = num / den


@numba.njit(parallel=True, cache=True)
def _score_user_based(users, rp, ri, rd, nbr, nsim, k, min_k, out):
    # rp/ri/rd: users x items residuals; neighbours visited by decreasing similarity, so the
    # first k that rated an item are its top k
    n_items = out.shape[1]
    for n in numba.prange(users.size):
        uu = users[n]
        used = np.zeros(n_items, dtype=np.int64)
        num = np.zeros(n_items)
        den = np.zeros(n_items)
        for r in range(nbr.shape[1]):
            v = nbr[uu, r]
            s = nsim[uu, r]
            if v < 0 or s <= 0.0:
                break
            for p in range(rp[v], rp[v + 1]):
                i = ri[p]
                if used[i] < k:
                    used[i] += 1
                    num[i] += s * rd[p]
                    den[i] += s
        for i in range(n_items):
            if used[i] >= min_k and den[i] > 0.0:
                out[n, i] = num[i] / den[i]


class ItemKNNImplicitConfig(ModelConfig):
    """Hyperparameters of item-item top-N on implicit data."""

    k: int = Field(100, ge=1, le=100_000, description="neighbours kept per item")
    weighting: Literal["bm25", "tfidf", "cosine"] = Field(
        "bm25", description="weighting of the user x item matrix before the item similarity"
    )
    bm25_k1: float = Field(1.2, gt=0, description="BM25 term-frequency saturation")
    bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 length normalization")
    use_ratings: bool = hp.use_ratings()
    half_life_days: float | None = hp.half_life_days()


@register("item-knn-implicit")
class ItemKNNImplicit(ItemItemState, Recommender[ItemKNNImplicitConfig]):
    """Item-item top-N over implicit interactions (implicit's BM25/TF-IDF/cosine k-NN)."""

    item_item_attributes: ClassVar[dict[str, str]] = {
        "weights": "similarity_",
        "user_items": "user_items_",
    }
    similarity_: sp.csr_matrix
    """items x items similarity, pruned to k per item (CSR): scores = user_items_ @ similarity_"""

    def _fit(self, data: Interactions, training: Training) -> None:
        from implicit.nearest_neighbours import (
            BM25Recommender,
            CosineRecommender,
            TFIDFRecommender,
        )

        cfg = self.config
        if cfg.k > data.n_items:
            raise ConfigError(
                f"k={cfg.k} is larger than the {data.n_items} items of the training data; "
                f"use k <= {data.n_items}"
            )
        X = user_items(data, cfg.use_ratings, cfg.half_life_days)
        if cfg.weighting == "bm25":
            backend = BM25Recommender(K=cfg.k, K1=cfg.bm25_k1, B=cfg.bm25_b)
        elif cfg.weighting == "tfidf":
            backend = TFIDFRecommender(K=cfg.k)
        else:
            backend = CosineRecommender(K=cfg.k)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # the BM25/TF-IDF weighting inside implicit hands a COO matrix to its own fit
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            backend.fit(X, show_progress=False)
        S = sp.csr_matrix(backend.similarity, dtype=np.float32)
        if S.shape != (data.n_items, data.n_items):
            raise AssertionError(f"item similarity has shape {S.shape}; expected square items")
        self._keep_item_item(S, X)
