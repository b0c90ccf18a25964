"""Score a fitted model on a test split: rating metrics and top-k ranking metrics.

``k`` is bounded by a configured maximum (``RECSYS_MAX_K``, 1000 by default): a top-k list
costs ``users x k`` memory. A ``k`` larger than the model's catalogue is accepted here and its
slots beyond the catalogue count as misses (the definitions in ``metrics`` hold); the command
line clips it to the catalogue instead, and says so.

Every metric comes for three populations of test users (``metrics`` module docstring): ``warm``
(at least one row in ``train``), ``cold`` (none) and ``all`` (the plain names), with their sizes
(``warm/users``, ``warm/rows``, ...) and the cold items apart (``cold_items/rows``, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.evaluation import metrics as M
from recsys_core.exceptions import ConfigError, DataError
from recsys_core.features.ids import distinct_text, lookup
from recsys_core.models.base import Recommender
from recsys_core.settings import get_settings

log = logging.getLogger(__name__)


def max_k() -> int:
    """The configured maximum of ``k`` (``RECSYS_MAX_K``); a malformed value is a ConfigError."""
    return get_settings().evaluation.max_k


def check_k(k: int) -> int:
    """``k`` if it is a positive integer no larger than ``max_k()``; ``ConfigError`` otherwise."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    limit = max_k()
    if k > limit:
        raise ConfigError(
            f"k={k!r} is larger than the maximum of {limit} (a top-k list per user costs memory "
            "in proportion to k); use a smaller k, or raise RECSYS_MAX_K"
        )
    return int(k)


@dataclass
class EvaluationResult:
    """Metrics (flat dict, MLflow-ready names such as ``ndcg_at_10``) and counts."""

    metrics: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    recommendations: pd.DataFrame | None = None


def evaluate(
    model: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    k: int = 10,
    relevance_threshold: float | None = None,
    keep_predictions: bool = False,
    keep_recommendations: bool = False,
    ranking: bool = True,
) -> EvaluationResult:
    """Evaluate ``model`` on ``test`` (raw ids); each user's ``train`` items stay out of its list.

    The model may have been trained on other data (a champion re-scored on a new split): all
    mapping goes through the model's own vocabularies. ``ranking=False``: the rating metrics
    and the populations' sizes only, no top-k list is computed (a rating model's RMSE and MAE
    at the cost of its predictions).
    """
    k = check_k(k)
    if not ranking and not model.predicts_ratings:
        raise ConfigError(
            f"model {model.name!r} does not predict ratings: without the ranking metrics it "
            "has none to report; keep the ranking metrics or evaluate a rating model"
        )
    if not ranking and keep_recommendations:
        raise ConfigError("keep_recommendations needs the ranking metrics (ranking=True)")
    if test.empty:
        raise ConfigError("the test set is empty; nothing to evaluate")
    truth_all = test["rating"].to_numpy(dtype=np.float64)
    if not np.isfinite(truth_all).all():
        pos = int(np.flatnonzero(~np.isfinite(truth_all))[0])
        raise DataError(
            f"the test set has {int((~np.isfinite(truth_all)).sum())} rating(s) that are not "
            f"finite numbers, for example {truth_all[pos]!r} for user {test['user'].iloc[pos]!r} "
            f"and item {test['item'].iloc[pos]!r}; metrics would be NaN. Drop or fix those rows"
        )
    out: dict[str, float] = {}
    # the training ids' text once per distinct id (a categorical's codes: nothing per row)
    train_users = distinct_text(train["user"])
    warm_rows = lookup(train_users, test["user"]) >= 0
    cold_item_rows = lookup(distinct_text(train["item"]), test["item"]) < 0
    out.update(population_sizes(test, warm_rows, cold_item_rows))
    u = model.user_vocab_.index(test["user"])
    i = model.item_vocab_.index(test["item"])
    counts = {
        "test_rows": int(len(test)),
        "cold_user_rows": int((u < 0).sum()),
        "cold_item_rows": int((i < 0).sum()),
        "cold_users": int(test.loc[u < 0, "user"].nunique()),
        "cold_items": int(test.loc[i < 0, "item"].nunique()),
    }
    preds = None
    if model.predicts_ratings:
        preds = model.predict_idx(u, i)
        truth = truth_all
        out.update(rating_metrics(preds, truth, warm_rows, cold_item_rows))

    relevant = test
    if relevance_threshold is not None:
        relevant = test[test["rating"] >= relevance_threshold]
    users = pd.unique(relevant["user"].astype(str))
    recs_frame = None
    if ranking and len(users):
        ur = model.user_vocab_.index(users)
        # each ranked user's training items, in the model's item space
        mask = seen_matrix(train, users, model)
        rec_items, rec_scores = model.recommend_idx(ur, k, exclude=mask)
        rel_sets, n_rel = _relevant_sets(relevant, users, model)
        hits = M.hits_matrix(rec_items, rel_sets)
        per_user = M.ranking_metrics(hits, n_rel, k)
        warm_users = train_users.get_indexer(users) >= 0
        everyone = np.ones(len(users), dtype=bool)
        for population, rows in (("all", everyone), ("warm", warm_users), ("cold", ~warm_users)):
            if not rows.any():
                continue  # an empty population has no metric; its size says so
            for name, values in per_user.items():
                out[M.in_population(f"{name}_at_{k}", population)] = float(values[rows].mean())
            out[M.in_population(f"coverage_at_{k}", population)] = M.coverage(
                rec_items[rows], model.n_items
            )
        counts["ranked_users"] = int(len(users))
        if keep_recommendations:
            recs_frame = _recs_frame(users, rec_items, rec_scores, model, k)
    pred_frame = None
    if keep_predictions and preds is not None:
        pred_frame = test[["user", "item", "rating"]].assign(prediction=preds)
    return EvaluationResult(out, counts, pred_frame, recs_frame)


def population_sizes(
    test: pd.DataFrame, warm_rows: np.ndarray, cold_item_rows: np.ndarray
) -> dict[str, float]:
    """Users and rows of each population (``warm/users``, ``cold/rows``, ``all/users``, ...)
    and the cold items (``cold_items/items``, ``cold_items/rows``, ``cold_items/share``), from
    the test rows and their masks: ``warm_rows`` (the row's user has training rows) and
    ``cold_item_rows`` (the row's item has none)."""
    users = test["user"].astype(str)
    n_warm = int(users[warm_rows].nunique())
    n_all = int(users.nunique())
    n_rows = len(test)
    return {
        "all/users": n_all,
        "all/rows": n_rows,
        "warm/users": n_warm,
        "warm/rows": int(warm_rows.sum()),
        "cold/users": n_all - n_warm,
        "cold/rows": int(n_rows - warm_rows.sum()),
        "cold_items/items": int(test["item"].astype(str)[cold_item_rows].nunique()),
        "cold_items/rows": int(cold_item_rows.sum()),
        "cold_items/share": float(cold_item_rows.mean()) if n_rows else 0.0,
    }


def rating_metrics(
    pred: np.ndarray, truth: np.ndarray, warm_rows: np.ndarray, cold_item_rows: np.ndarray
) -> dict[str, float]:
    """``rmse`` and ``mae`` over all rows, the warm and the cold users' rows, and the cold
    items' rows (``cold_items/rmse``); an empty population has none."""
    out = {"rmse": M.rmse(pred, truth), "mae": M.mae(pred, truth)}
    for prefix, rows in (
        ("warm/", warm_rows),
        ("cold/", ~warm_rows),
        ("cold_items/", cold_item_rows),
    ):
        if rows.any():
            out[f"{prefix}rmse"] = M.rmse(pred[rows], truth[rows])
            out[f"{prefix}mae"] = M.mae(pred[rows], truth[rows])
    return out


def _relevant_sets(relevant: pd.DataFrame, users: np.ndarray, model: Recommender):
    """Relevant item indices per user; cold items get unique negative codes (never hit)."""
    item_idx = model.item_vocab_.index(relevant["item"])
    cold = item_idx < 0
    item_idx = item_idx.astype(np.int64)
    # one code per cold item id, so that a repeated (user, cold item) pair counts once
    codes, _ = pd.factorize(relevant["item"].astype(str).to_numpy()[cold])
    item_idx[cold] = -2 - codes
    pos = pd.Index(users).get_indexer(relevant["user"].astype(str))
    grouped = pd.Series(item_idx).groupby(pos)
    sets = [set() for _ in users]
    n_rel = np.zeros(len(users), dtype=np.int64)
    for p, vals in grouped:
        s = set(vals.tolist())
        sets[p] = s
        n_rel[p] = len(s)
    return sets, n_rel


def _recs_frame(users, rec_items, rec_scores, model, k) -> pd.DataFrame:
    rows = np.repeat(np.arange(len(users)), k)
    flat = rec_items.ravel()
    ok = flat >= 0
    return pd.DataFrame(
        {
            "user": np.asarray(users, dtype=object)[rows][ok],
            "rank": np.tile(np.arange(1, k + 1), len(users))[ok],
            "item": model.item_vocab_.ids[flat[ok]],
            "score": rec_scores.ravel()[ok],
        }
    )


def seen_matrix(train: pd.DataFrame, users: np.ndarray, model: Recommender) -> sp.csr_matrix:
    """Rows = ``users``; non-zeros = their training items in the model's item space."""
    pos = lookup(pd.Index(np.asarray(users, dtype=object)), train["user"])
    ok = pos >= 0
    it = model.item_vocab_.index(train["item"][ok] if not ok.all() else train["item"])
    pos = pos[ok]
    known = it >= 0
    if not known.all():
        pos, it = pos[known], it[known]
    # built from the coordinates in one pass (scipy's COO -> CSR: a count per row, no sort of
    # the pairs); a repeated pair is summed, which an exclusion reads as one
    return sp.csr_matrix(
        (np.ones(pos.size, np.float32), (pos, it)), shape=(len(users), model.n_items)
    )
