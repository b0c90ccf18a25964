"""Online scoring of one request: top-k, fold-in of recent items, similar items, explanations.

A :class:`Scorer` wraps a fitted :class:`~recsys_core.models.base.Recommender` and answers one
user at a time with one matrix-vector product (item-item models: the sum of the weight rows of
the user's items, read in place) and a compiled top-k selection (never a Python loop over
items). What it can do is what the model family declares (``model.capabilities.fold_in``); a
factor model folds a user in with its own ``fold_in`` method:

* ``item-item`` (``ease``: dense ``weights_``; ``item-knn-implicit``: sparse ``similarity_``):
  the scores of a user are ``x W`` for the user's interaction row ``x``; recent items are folded
  in by adding them to ``x``, and an item's explanation is the largest terms ``x_i W_ij``.
* ``factors`` (``sgd-mf``, ``als``, ``svdpp``, ``implicit-als``, ``implicit-bpr``): the scores are
  ``mu + b_u + b_i + p_u . q_i``; recent items are folded in by solving the user vector ``p``
  against the fixed item factors (one regularized least-squares solve,
  ``recsys_core.models.fold_in``), and
  an item's explanation is the user's items nearest to it in factor space (cosine).
* ``model`` (``mult-vae``, ``rerank``): the model scores known users itself, folds recent
  items in with its own ``fold_in`` (no refit) and explains an item with its own
  ``explain_idx`` (mult-vae: the user's items whose removal lowers the item's score most;
  rerank: the features that moved it up); a family that declares the kind needs nothing here.
* ``other`` (k-NN rating models, ``bpmf``, blends, baselines): known users are scored by the
  model itself; recent items cannot be folded in, which every answer says (``fallback`` and
  ``warnings``).

Unknown users without usable recent items get the most popular items (``fallback="popularity"``);
unknown ids in ``recent_items`` or ``exclude`` are ignored and listed in ``warnings``. A Scorer
never changes after it is built, so requests in many threads may share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recsys_core.exceptions import ModelCapabilityError
from recsys_core.models.base import ModelReason, Recommender
from recsys_core.models.item_scores import (
    aligned_user_items,
    aligned_weights,
    block_scores,
    row_scores,
)
from recsys_core.models.top_k import top_k

Family = Literal["item-item", "factors", "model", "other"]

N_REASONS = 3
"""Largest contributions kept per explained item."""


@dataclass(frozen=True)
class Reason:
    """Why an item is in a list: one of the user's items and its contribution, in words."""

    text: str
    item_id: str | None = None
    weight: float | None = None
    title: str | None = None
    """The item's title when the training data had item metadata."""


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reasons: tuple[Reason, ...] | None = None


@dataclass(frozen=True)
class Recommendation:
    """One answer of :meth:`Scorer.recommend`."""

    user_id: str | None
    items: list[ScoredItem]
    fallback: str | None = None
    warnings: list[str] = field(default_factory=list)
    folded_in: int = 0
    """How many recent items were folded into the user's scores."""


@dataclass(frozen=True)
class Prediction:
    """One answer of :meth:`Scorer.predict`; ``fallback`` says which baseline a cold id got."""

    user_id: str
    item_id: str
    rating: float
    fallback: str | None = None


class Scorer:
    """Answers single-user requests from a fitted model (see the module docstring).

    Parameters
    ----------
    model
        A fitted recommender, loaded from the registry or just trained.
    """

    def __init__(self, model: Recommender) -> None:
        model._check_fitted()
        self.model = model
        self.family: Family = model.capabilities.fold_in or "other"
        self.can_fold_in = self.family != "other"
        self.item_ids = model.item_vocab_.ids.astype(str)
        self._user_pos = {u: n for n, u in enumerate(model.user_vocab_.ids.astype(str))}
        self._item_pos = {i: n for n, i in enumerate(self.item_ids)}
        self.n_items = len(self.item_ids)
        seen = sp.csr_matrix(model.seen_)
        seen.sort_indices()
        self._seen = seen
        self._popularity = np.asarray(model.item_popularity_, dtype=np.float64)
        # item titles of the training data's metadata, for explanations in words
        titles = getattr(model, "item_titles_", None)
        self._titles = (
            np.asarray(titles).astype(str)
            if titles is not None and len(titles) == self.n_items
            else None
        )
        # dense ndarray (ease) or CSR (item-knn-implicit), items x items
        self._W: Any = None
        self._X: Any = None  # users x items CSR
        if self.family == "item-item":
            # aligned once here (C-ordered float32): a request reads the rows of its items in
            # place, never a converted copy of the items x items matrix
            weights, user_items = model.item_item()
            self._W = aligned_weights(weights)
            self._X = aligned_user_items(user_items)
        elif self.family == "factors":
            factors = model.factors()
            self._Q, self._P = factors.item, factors.user
            self._mu, self._bi, self._bu = (
                factors.global_bias,
                factors.item_bias,
                factors.user_bias,
            )
            norms = np.linalg.norm(self._Q, axis=1, keepdims=True)
            self._Qn = self._Q / np.maximum(norms, 1e-12)
        else:
            binary = seen.astype(bool).astype(np.float32)
            self._co = sp.csc_matrix(binary)
            self._co_norm = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())

    # ------------------------------------------------------------------ ids
    def user_index(self, user_id: str) -> int:
        """Index of ``user_id`` in the model, ``-1`` when the model has never seen it."""
        return self._user_pos.get(str(user_id), -1)

    def item_index(self, item_id: str) -> int:
        return self._item_pos.get(str(item_id), -1)

    def _items(self, ids: Iterable, what: str, warnings: list[str]) -> np.ndarray:
        pos: list[int] = []
        unknown: list[str] = []
        for raw in ids:
            n = self._item_pos.get(str(raw), -1)
            if n >= 0:
                pos.append(n)
            else:
                unknown.append(str(raw))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            warnings.append(f"unknown item ids in {what} were ignored: {shown}{more}")
        return np.unique(np.asarray(pos, dtype=np.int64))

    # ------------------------------------------------------------------ recommendations
    def recommend(
        self,
        user_id: str | None = None,
        k: int = 10,
        *,
        recent_items: Sequence = (),
        exclude: Sequence = (),
        explain: bool = False,
    ) -> Recommendation:
        """Top-``k`` unseen items for ``user_id`` and/or the items they just interacted with."""
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        warnings: list[str] = []
        uid = None if user_id is None else str(user_id)
        u = -1 if uid is None else self.user_index(uid)
        recent = self._items(recent_items, "recent_items", warnings)
        banned = self._items(exclude, "exclude", warnings)
        fallback = None
        history = self._history(u)
        folded = 0
        if u < 0 and recent.size == 0:
            scores, fallback = self._popularity, "popularity"
        elif recent.size and not self.can_fold_in:
            warnings.append(
                f"model {self.model.name!r} cannot fold in recent_items at request time; "
                "they were only excluded from the list. Serve an item-item (ease, "
                "item-knn-implicit) or factor model (sgd-mf, als, implicit-als) to use them"
            )
            if u >= 0:
                scores, fallback = self._known_scores(u), "recent-items-ignored"
            else:
                scores, fallback = self._popularity, "popularity"
        elif recent.size:
            scores, folded = self._fold_in_scores(u, history, recent), int(recent.size)
        else:
            scores = self._known_scores(u)
        # one copy, in the scores' own precision (a factor model's float32 row stays float32):
        # the exclusions below write into it, never into the model's arrays
        scores = _own_copy(scores)
        drop = np.concatenate([history[0], recent, banned])
        scores[drop] = -np.inf
        top = _top_k(scores, k)
        reasons = None
        if explain:
            reasons = self._explain(top, u, history, recent, fallback, warnings)
        items = [
            ScoredItem(self.item_ids[j], float(scores[j]), None if reasons is None else reasons[n])
            for n, j in enumerate(top)
        ]
        return Recommendation(uid, items, fallback, warnings, folded)

    def score_block(self, u: np.ndarray) -> np.ndarray:
        """Scores (float32) of every item for known user indices ``u``: one matrix product.

        The batch scorer's building block; ``u`` must hold no ``-1``.
        """
        if self.family == "factors":
            out = self._P[u] @ self._Q.T
            out += self._bi[None, :]
            out += (self._mu + self._bu[u])[:, None]
            return out
        if self.family == "item-item":
            return block_scores(u, self._X, self._W)
        return np.asarray(self.model._score_users(np.asarray(u, np.int32)), dtype=np.float32)

    def seen_block(self, u: np.ndarray) -> sp.csr_matrix:
        """The training items of user indices ``u`` (one CSR row each)."""
        return self._seen[u]

    def popular_scores(self) -> np.ndarray:
        return self._popularity

    def _history(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Training items (indices) and their values for user index ``u`` (empty when cold)."""
        if u < 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        lo, hi = self._seen.indptr[u], self._seen.indptr[u + 1]
        return self._seen.indices[lo:hi].astype(np.int64), self._seen.data[lo:hi]

    def _known_scores(self, u: int) -> np.ndarray:
        if self.family == "factors":
            return self._mu + self._bu[u] + self._bi + self._Q @ self._P[u]
        if self.family == "item-item":
            lo, hi = self._X.indptr[u], self._X.indptr[u + 1]
            return row_scores(self._X.indices[lo:hi], self._X.data[lo:hi], self._W)
        return np.asarray(self.model._score_users(np.array([u], dtype=np.int32))[0])

    def _item_row(self, u: int, recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The user's interaction row (indices, values) with ``recent`` added (value 1), read
        from the aligned rows (``recsys_core.models.fold_in.item_item_row`` does the same)."""
        if u >= 0:
            lo, hi = self._X.indptr[u], self._X.indptr[u + 1]
            idx, val = self._X.indices[lo:hi].astype(np.int64), self._X.data[lo:hi]
        else:
            idx, val = np.empty(0, np.int64), np.empty(0, np.float32)
        new = recent[~np.isin(recent, idx)]
        return (
            np.concatenate([idx, new]),
            np.concatenate([val, np.ones(new.size, np.float32)]).astype(np.float32),
        )

    def _fold_in_scores(self, u: int, history, recent: np.ndarray) -> np.ndarray:
        if self.family == "item-item":
            idx, val = self._item_row(u, recent)
            # sum_i x_i W_i. (the rows read in place, a CSR or a dense W alike)
            return row_scores(idx, val, self._W)
        return self.model.fold_in(recent, user=u)

    # ------------------------------------------------------------------ explanations
    def _explain(self, top, u, history, recent, fallback, warnings) -> list[tuple[Reason, ...]]:
        if fallback == "popularity":
            # the number (interactions in the training data) is the reason's weight
            return [
                (Reason("popular with other users", weight=float(self._popularity[j])),)
                for j in top
            ]
        if self.family == "model":
            own = self.model.explain_idx(top, user=u, recent=recent)
            if own is not None:
                return [tuple(self._model_reason(r) for r in reasons) for reasons in own]
        user_items = np.unique(np.concatenate([history[0], recent]))
        if self.family in ("other", "model") or user_items.size == 0:
            warnings.append(f"model {self.model.name!r} gives no per-item explanations")
            return [() for _ in top]
        out = []
        if self.family == "item-item":
            idx, val = self._item_row(u, recent)  # the row the scores came from
            block = _dense(self._W[idx][:, top])
            contrib = block * val[:, None]  # user items x recommended items
            # the weight of a reason: its term x_i W_ij in the item's score
            for n in range(top.size):
                out.append(
                    self._reasons(contrib[:, n], idx, lambda name: f"you interacted with {name}")
                )
            return out
        # the weight of a reason: the factor cosine of the user's item and the recommended one
        sims = self._Qn[user_items] @ self._Qn[top].T  # user items x recommended items
        for n in range(top.size):
            out.append(
                self._reasons(
                    sims[:, n],
                    user_items,
                    lambda name: f"similar to {name}, which you interacted with",
                )
            )
        return out

    def _model_reason(self, reason: ModelReason) -> Reason:
        """A reason of the model's own ``explain_idx``, with the id and title of its item."""
        if reason.item < 0:
            return Reason(reason.text, weight=float(reason.weight))
        title = (self._titles[reason.item] or None) if self._titles is not None else None
        return Reason(reason.text, self.item_ids[reason.item], float(reason.weight), title)

    def item_title(self, item_id: str) -> str | None:
        """The item's title in the training data's metadata (None when unknown)."""
        pos = self._item_pos.get(item_id)
        if self._titles is None or pos is None:
            return None
        return self._titles[pos] or None

    def _reasons(self, col: np.ndarray, items: np.ndarray, words) -> tuple[Reason, ...]:
        """The user's items that contributed most (``col``: their contribution, by position in
        ``items``), positive ones only: in words (the title, else the id), the number in
        ``weight``."""
        best = np.argsort(-col, kind="stable")[:N_REASONS]
        out = []
        for b in best:
            if col[b] <= 0:
                continue
            pos = items[b]
            title = (self._titles[pos] or None) if self._titles is not None else None
            item = self.item_ids[pos]
            out.append(Reason(words(title or f"item {item}"), item, float(col[b]), title))
        return tuple(out)

    # ------------------------------------------------------------------ similar items
    def similar_items(self, item_id: str, k: int = 10) -> list[ScoredItem] | None:
        """The ``k`` items most similar to ``item_id``; ``None`` when the item is unknown.

        item-item models use the item's row of weights, factor models the cosine of the item
        factors, other models the cosine of the co-occurrence in the training data.
        """
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        j = self.item_index(item_id)
        if j < 0:
            return None
        if self.family == "item-item":
            row = self._W[j]
            scores = _own_copy(_dense(row).ravel())  # a row of W read in place: copied once
        elif self.family == "factors":
            scores = self._Qn @ self._Qn[j]  # float32, a new array
        else:
            co = np.asarray((self._co.T @ self._co[:, j]).todense()).ravel().astype(np.float64)
            scores = co / np.maximum(self._co_norm * self._co_norm[j], 1e-12)
            scores[co == 0] = -np.inf
        scores[j] = -np.inf
        return [ScoredItem(self.item_ids[i], float(scores[i])) for i in _top_k(scores, k)]

    # ------------------------------------------------------------------ ratings
    def predict(self, user_id: str, item_id: str) -> Prediction:
        """Predicted rating of one pair; cold ids get the model's baseline, named in
        ``fallback``."""
        if not self.model.predicts_ratings:
            raise ModelCapabilityError(
                f"model {self.model.name!r} ranks items but does not predict ratings; point the "
                "rating alias at a rating model (sgd-mf, als, svdpp, bias, ...)"
            )
        u, i = self.user_index(user_id), self.item_index(item_id)
        rating = float(self.model.predict_idx(np.array([u]), np.array([i]))[0])
        cold = [w for w, n in (("user", u), ("item", i)) if n < 0]
        fallback = f"baseline (unknown {' and '.join(cold)})" if cold else None
        return Prediction(str(user_id), str(item_id), rating, fallback)


def _dense(x: Any) -> np.ndarray:
    """``x`` as a dense array (scipy sparse results and ndarrays alike)."""
    return np.asarray(x.toarray()) if hasattr(x, "toarray") else np.asarray(x)


def _own_copy(scores: Any) -> np.ndarray:
    """A copy of a row of scores that may be written, float32 or float64 as it comes (other
    dtypes, such as integer counts, as float64): no float64 copy of a float32 row."""
    scores = np.asarray(scores)
    dtype = scores.dtype if scores.dtype in (np.float32, np.float64) else np.float64
    return np.array(scores, dtype=dtype)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (fewer when fewer are finite);
    ties go to the lower index, as in the models' own ``recommend``."""
    kk = min(k, scores.size)
    if kk == 0:
        return np.empty(0, np.int64)
    items, _ = top_k(np.asarray(scores)[None, :], kk)
    top = items[0]
    return top[top >= 0]
