"""Features of (user, candidate item) pairs for a learned ranker (``rerank``).

Candidates are the union of the top ``n`` unseen items of several retrievers. Each pair gets:

* per retriever: its score and its rank among the user's unseen items (``n + 1`` when the item
  is outside its top ``n``), its score relative to the user's (the gap to the user's top score,
  the z-score among the user's candidates, the gap to the next better candidate: raw scores
  shift between the retrievers a ranker learns from and those refitted to serve, these less),
  and how many retrievers proposed the item;
* the item: its share of the interactions, the same with each interaction weighted by its
  recency (``0.5 ** (age / half_life)``), its mean rating, the days since it was first seen;
* the user: interactions and days since the last one;
* item content, where the item metadata has genres or a year in the title: the cosine of the
  item's genres and the user's genre profile, the share of the user's genre mass on the item's
  genres (the user's genre distribution . the item's 0/1 genres), the year, the distance of
  the year to the mean year of the user's items;
* item embeddings, where given (``recsys_core.features.embeddings``): the cosine of the item's
  vector and the mean vector of the user's items.

A missing value (no year, no embedding) is NaN: gradient-boosted trees learn where it goes.
Everything is computed for a block of users at once, from dense score rows (no Python loop over
users or items).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.features.matrix import Interactions

DAY = 86_400
_YEAR = re.compile(r"\((\d{4})\)")

ITEM_FEATURES = ("popularity", "recent_popularity", "item_mean_rating", "item_age_days")
USER_FEATURES = ("user_activity", "user_recency_days")
GENRE_FEATURES = ("genre_match", "genre_share")
YEAR_FEATURES = ("item_year", "year_gap")
EMBEDDING_FEATURES = ("embedding_similarity",)


def item_stats(data: Interactions, half_life_days: float) -> dict[str, np.ndarray]:
    """Item-side arrays of the training interactions (one value per item, float32): the
    interaction share, its recency-weighted form, the shrunk mean rating and the days since the
    item was first seen (NaN: never seen), ages counted from the latest interaction."""
    m = data.known
    i, t, r = data.item_idx[m], data.timestamp[m], data.rating[m].astype(np.float64)
    n = data.n_items
    now = int(t.max()) if t.size else 0
    count = np.bincount(i, minlength=n).astype(np.float64)
    decay = 0.5 ** (np.maximum(now - t, 0) / DAY / half_life_days)
    recent = np.bincount(i, weights=decay, minlength=n)
    mu = float(r.mean()) if r.size else 0.0
    # the mean rating shrunk towards the global mean by 10 ratings' worth (Bayesian average)
    mean = (np.bincount(i, weights=r, minlength=n) + 10.0 * mu) / (count + 10.0)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, i, t)
    age = np.where(count > 0, (now - first) / DAY, np.nan)
    return {
        "popularity": (count / max(1.0, count.sum())).astype(np.float32),
        "recent_popularity": (recent / max(1e-12, recent.sum())).astype(np.float32),
        "item_mean_rating": mean.astype(np.float32),
        "item_age_days": age.astype(np.float32),
    }


def user_stats(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Interactions per user and the time of the user's latest one (seconds; the earliest
    timestamp where a user has none)."""
    m = data.known
    u, t = data.user_idx[m], data.timestamp[m]
    activity = np.bincount(u, minlength=data.n_users).astype(np.float32)
    last = np.full(data.n_users, int(t.min()) if t.size else 0, dtype=np.int64)
    np.maximum.at(last, u, t)
    return activity, last


def item_content(
    item_ids: np.ndarray, meta: pd.DataFrame | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The items' genres (items x genres, 0/1 float32; None without genres) and years (from
    ``(yyyy)`` in the title, NaN where absent; None without any), aligned with ``item_ids``."""
    if meta is None or "item" not in meta:
        return None, None
    known = meta.drop_duplicates("item", keep="last")
    known = known.set_index(known["item"].astype(str).to_numpy())
    rows = known.reindex(np.asarray(item_ids).astype(str))
    genres = None
    if "genres" in rows:
        split = rows["genres"].fillna("").astype(str).str.get_dummies(sep="|")
        split = split.loc[:, [c for c in split.columns if c.strip()]]
        if split.shape[1]:
            genres = split.to_numpy(dtype=np.float32)
    years = None
    if "title" in rows:
        found = rows["title"].fillna("").astype(str).str.findall(_YEAR)
        y = np.array([float(v[-1]) if v else np.nan for v in found], dtype=np.float32)
        if np.isfinite(y).any():
            years = y
    return genres, years


@dataclass(frozen=True)
class CandidateBlock:
    """The candidates of a block of users and their features (one row per pair, by user)."""

    rows: np.ndarray
    """Position of the pair's user in the block."""
    items: np.ndarray
    """The candidate item (index)."""
    features: np.ndarray
    """Pairs x features, float32 (NaN: missing)."""
    group_sizes: np.ndarray
    """Candidates per user of the block (zero for a user without any)."""


RELATIVE = ("gap", "z", "next_gap")
"""Per retriever, its score relative to the user's other candidates: the gap to the user's top
score, the z-score among the user's candidates, the gap to the next better candidate."""


def feature_names(retrievers: list[str], genres: bool, years: bool, embeddings: bool) -> list[str]:
    """The columns of :func:`candidate_features`, in order."""
    names: list[str] = []
    for r in retrievers:
        names += [f"{r}_score", f"{r}_rank", *(f"{r}_{kind}" for kind in RELATIVE)]
    names += ["retrievers_agreeing", *ITEM_FEATURES, *USER_FEATURES]
    if genres:
        names += GENRE_FEATURES
    if years:
        names += YEAR_FEATURES
    if embeddings:
        names += EMBEDDING_FEATURES
    return names


def candidate_features(
    scores: list[np.ndarray],
    n_candidates: int,
    history: sp.csr_matrix,
    user_activity: np.ndarray,
    user_recency_days: np.ndarray,
    items: dict[str, np.ndarray],
    genres: np.ndarray | None = None,
    years: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    has_embedding: np.ndarray | None = None,
) -> CandidateBlock:
    """The candidates of a block of users and their features (see the module docstring).

    ``scores`` holds one users x items array per retriever, ``-inf`` on the items never to
    propose (the user's own); ``history`` the users' items (CSR, users x items) the content and
    embedding profiles are built from; ``items`` the arrays of :func:`item_stats`.
    """
    n_users, n_items = scores[0].shape
    n = max(1, min(n_candidates, n_items))
    cand = np.zeros((n_users, n_items), dtype=bool)
    ranks = []
    for s in scores:
        top = (
            # sorted by index first, so that ties rank the same whatever order the CPU's
            # argpartition left them in
            np.sort(np.argpartition(-s, n - 1, axis=1)[:, :n], axis=1)
            if n < n_items
            else np.tile(np.arange(n_items), (n_users, 1))
        )
        top_scores = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        ok = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
        rank = np.full((n_users, n_items), n + 1, dtype=np.float32)
        r_idx = np.broadcast_to(np.arange(n_users)[:, None], top.shape)
        rank[r_idx[ok], top[ok]] = np.broadcast_to(
            np.arange(1, n + 1, dtype=np.float32), top.shape
        )[ok]
        cand[r_idx[ok], top[ok]] = True
        ranks.append(rank)
    rows, cols = np.nonzero(cand)
    cols_feats: list[np.ndarray] = []
    agreeing = np.zeros(rows.size, dtype=np.float32)
    count = np.maximum(np.bincount(rows, minlength=n_users), 1).astype(np.float64)
    for s, rank in zip(scores, ranks, strict=True):
        value = s[rows, cols].astype(np.float64)
        cols_feats.append(value.astype(np.float32))
        r = rank[rows, cols]
        cols_feats.append(r)
        agreeing += r <= n
        cols_feats += _relative(value, rows, cols, s, count)
    cols_feats.append(agreeing)
    cols_feats += [items[name][cols] for name in ITEM_FEATURES]
    cols_feats += [
        np.asarray(user_activity, np.float32)[rows],
        np.asarray(user_recency_days, np.float32)[rows],
    ]
    hist = sp.csr_matrix(history, dtype=np.float32)
    hist.data[:] = 1.0
    if genres is not None:
        counts = np.asarray(hist @ genres)  # the user's items per genre
        profile = counts / np.maximum(np.linalg.norm(counts, axis=1, keepdims=True), 1e-12)
        g = genres[cols]
        g_norm = np.maximum(np.linalg.norm(g, axis=1), 1e-12)
        cols_feats.append(((profile[rows] * g).sum(axis=1) / g_norm).astype(np.float32))
        # the share of the user's genre mass on the item's genres (a distribution . 0/1)
        mass = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
        cols_feats.append((mass[rows] * g).sum(axis=1).astype(np.float32))
    if years is not None:
        has_year = np.isfinite(years).astype(np.float32)
        year_sum = np.asarray(hist @ np.nan_to_num(years)).ravel()
        year_n = np.asarray(hist @ has_year).ravel()
        mean_year = np.where(year_n > 0, year_sum / np.maximum(year_n, 1), np.nan)
        cols_feats.append(years[cols])
        cols_feats.append(np.abs(years[cols] - mean_year[rows]).astype(np.float32))
    if embeddings is not None:
        assert has_embedding is not None
        user_vec = np.asarray(hist @ embeddings)
        norms = np.linalg.norm(user_vec, axis=1, keepdims=True)
        user_vec /= np.maximum(norms, 1e-12)
        sim = (user_vec[rows] * embeddings[cols]).sum(axis=1).astype(np.float32)
        sim[~has_embedding[cols] | (norms.ravel()[rows] == 0)] = np.nan
        cols_feats.append(sim)
    features = np.column_stack(cols_feats).astype(np.float32, copy=False)
    sizes = np.bincount(rows, minlength=n_users)
    return CandidateBlock(rows=rows, items=cols, features=features, group_sizes=sizes)


def _relative(
    value: np.ndarray, rows: np.ndarray, cols: np.ndarray, s: np.ndarray, count: np.ndarray
) -> list[np.ndarray]:
    """A retriever's score of each pair relative to the user's: the gap to the user's top score
    (unseen items), the z-score among the user's candidates and the gap to the next better
    candidate (0 for the best). Raw scores shift between the retrievers the ranker learns from
    and those refitted to serve; these do not."""
    if value.size == 0:
        return [np.empty(0, np.float32)] * len(RELATIVE)
    finite = np.where(np.isfinite(s), s, -np.inf)
    top = finite.max(axis=1)
    ok = np.isfinite(value)
    v = np.where(ok, value, 0.0)
    mean = np.bincount(rows, weights=v, minlength=count.size) / count
    var = np.bincount(rows, weights=v * v, minlength=count.size) / count - mean * mean
    sd = np.sqrt(np.maximum(var, 0.0))
    gap = np.where(ok, value - top[rows], np.nan)
    z = np.where(ok & (sd[rows] > 0), (v - mean[rows]) / np.maximum(sd[rows], 1e-12), 0.0)
    # the next better candidate: sort the pairs by user, then score (best first)
    order = np.lexsort((-v, rows))
    sorted_v = v[order]
    prev = np.empty_like(sorted_v)
    prev[0] = sorted_v[0]
    prev[1:] = sorted_v[:-1]
    first = np.ones(order.size, dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    prev[first] = sorted_v[first]
    next_gap = np.empty_like(v)
    next_gap[order] = prev - sorted_v
    return [
        gap.astype(np.float32),
        z.astype(np.float32),
        np.where(ok, next_gap, np.nan).astype(np.float32),
    ]
