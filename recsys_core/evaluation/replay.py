"""Replay of the next period (prequential evaluation, Vinagre, Jorge and Gama, UMAP 2014).

The model is trained on the rows before a cutoff; the test period is then walked in time order.
Before each test interaction ``(u, i)`` the model is asked for a top-k list for ``u`` given what
``u`` has done so far: the training rows, and the earlier test interactions of ``u``, folded in
as the service folds in a request's ``recent_items`` (:class:`~recsys_core.serving.scorer.Scorer`).
The interaction is scored (hit, rank, rating error), then joins ``u``'s history. The model itself
never changes during the replay, so a user's answers depend only on their own history: the
``j``-th test interaction of every user is one batch (step ``j``), and stepping ``j = 0, 1, ...``
gives each user's answers in that user's time order.

Per interaction, with ``rank`` the 1-based position of ``i`` in the top-k list:

* ``hit_rate@k = 1`` if ``i`` is in the list, else 0;
* ``ndcg@k = 1 / log2(rank + 1)`` on a hit, else 0 (one relevant item: the ideal DCG is 1);
* ``mrr@k = 1 / rank`` on a hit, else 0;
* with one relevant item per answer, ``recall@k`` is the hit, ``precision@k`` the hit over
  ``k`` and ``map@k`` the reciprocal rank (so the gates' metric names hold under replay);
* ``rmse``/``mae`` of the rating predicted for ``(u, i)`` (rating models only). The service
  predicts a rating from the model alone (``Scorer.predict``: no fold-in), and so does the replay:
  a cold user's rating error is the fallback's however much they have revealed.

Items the user already has (training rows or revealed test rows) are never recommended, as in
the service; a repeated interaction with such an item is therefore a miss. An interaction with an
item the model has never seen is a miss and is not folded in (the service ignores unknown ids).

Results are reported overall and by the number of test interactions revealed before the scored
one (buckets ``0``, ``1-4``, ``5-19``, ``20+``), for all users and apart for warm users (rows
before the cutoff) and cold users (none): cold-start and fold-in quality side by side.

How the answers are computed, batch by batch, for each family the Scorer knows:

* ``item-item`` (``ease``, ``item-knn-implicit``): the scores ``x W`` are linear in the user's
  row ``x``, so each user keeps a score row and a revealed item ``j`` new to the row adds
  ``W_j``: one sparse-dense product per step for the whole batch. A cold user with nothing
  revealed gets the popularity list, as in the service;
* ``other`` (no fold-in): the model's own scores for known users, popularity for cold ones;
  revealed items are only excluded, as in the service;
* ``factors``: the user vector is re-solved at every step by ``Scorer.recommend`` itself (one
  small solve per interaction); the steps with nothing revealed are batched;
* ``model`` (``mult-vae``, ``rerank``): as ``factors``, each step with something revealed is
  one ``Scorer.recommend`` request (the model's own fold-in: mult-vae encodes the row, rerank
  folds the user into its retrievers and ranks their candidates); the steps with nothing
  revealed are batched (the model's own scores).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.evaluation.evaluate import EvaluationResult, check_k
from recsys_core.exceptions import ConfigError, DataError
from recsys_core.models.base import Recommender, top_k_rows
from recsys_core.serving.scorer import Scorer

log = logging.getLogger(__name__)

BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("0", 0, 0),
    ("1-4", 1, 4),
    ("5-19", 5, 19),
    ("20+", 20, np.iinfo(np.int64).max),
)
"""Buckets of revealed test interactions: (label, lowest, highest)."""

POPULATIONS = ("all", "warm", "cold")


def bucket_of(revealed: np.ndarray) -> np.ndarray:
    """The bucket label of each count of revealed interactions."""
    revealed = np.asarray(revealed)
    out = np.empty(revealed.shape, dtype=object)
    for label, lo, hi in BUCKETS:
        out[(revealed >= lo) & (revealed <= hi)] = label
    return out


def metric_key(label: str) -> str:
    """A bucket label as MLflow accepts it in a metric name (``20+`` -> ``20_plus``)."""
    return label.replace("+", "_plus")


@dataclass
class ReplayResult:
    """What a replay measured.

    ``metrics`` is flat and MLflow-ready: ``hit_rate_at_10``, ``rmse`` (all interactions),
    ``warm/ndcg_at_10``, ``cold/revealed_1-4/hit_rate_at_10``, ``revealed_0/rmse``, ...;
    ``table`` holds one row per population and bucket (``n`` interactions, ``users``, the
    metrics); ``interactions`` (when kept) one row per scored test interaction.
    """

    metrics: dict[str, float]
    table: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    interactions: pd.DataFrame | None = None

    def as_evaluation(self) -> EvaluationResult:
        """The metrics and counts in the shape of :func:`~recsys_core.evaluation.evaluate`'s
        result, for the flow and the tuning objective under ``split.strategy = replay``."""
        predictions = None
        if self.interactions is not None and "prediction" in self.interactions.columns:
            predictions = self.interactions[["user", "item", "rating", "prediction"]]
        return EvaluationResult(dict(self.metrics), dict(self.counts), predictions)


def replay(
    model: Recommender,
    test: pd.DataFrame,
    *,
    k: int = 10,
    chunk_users: int = 1024,
    keep_interactions: bool = False,
) -> ReplayResult:
    """Replay ``test`` (raw ids, the rows after the cutoff) against fitted ``model``.

    The model's training rows are what it holds (its ``seen_``): train it on the rows before the
    cutoff first. ``chunk_users`` bounds memory (a chunk keeps one score row per user).
    """
    k = check_k(k)
    if test.empty:
        raise ConfigError("the test set is empty; nothing to replay")
    missing = sorted({"user", "item", "timestamp"} - set(test.columns))
    if missing:
        raise DataError(
            f"the test set lacks column(s) {missing!r}; replay needs user, item and "
            "timestamp (and rating for rating models)"
        )
    if chunk_users < 1:
        raise ConfigError(f"chunk_users must be a positive integer, got {chunk_users!r}")
    scorer = Scorer(model)
    # each user's rows in time order (stable: equal timestamps keep the file's order)
    frame = test.reset_index(drop=True)
    order = np.lexsort((frame["timestamp"].to_numpy(), frame["user"].astype(str).to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    user_ids = frame["user"].astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    sizes = np.diff(np.r_[starts, len(frame)])
    revealed = np.arange(len(frame)) - np.repeat(starts, sizes)
    u_all = model.user_vocab_.index(user_ids).astype(np.int64)
    i_all = model.item_vocab_.index(frame["item"]).astype(np.int64)
    kk = min(k, scorer.n_items)
    rank = np.zeros(len(frame), dtype=np.int64)  # 0: not in the list
    for lo in range(0, starts.size, chunk_users):
        hi = min(starts.size, lo + chunk_users)
        _replay_chunk(scorer, starts[lo:hi], sizes[lo:hi], u_all, i_all, user_ids, kk, rank)
    hit = rank > 0
    safe = np.maximum(rank, 1)
    scored = pd.DataFrame(
        {
            "user": user_ids,
            "item": frame["item"].astype(str).to_numpy(),
            "timestamp": frame["timestamp"].to_numpy(),
            "revealed": revealed,
            "bucket": bucket_of(revealed),
            "population": np.where(u_all >= 0, "warm", "cold"),
            "rank": rank,
            f"hit_rate_at_{k}": hit.astype(np.float64),
            f"ndcg_at_{k}": np.where(hit, 1.0 / np.log2(safe + 1.0), 0.0),
            f"mrr_at_{k}": np.where(hit, 1.0 / safe, 0.0),
        }
    )
    # one relevant item per answer: recall is the hit, precision the hit over k, and average
    # precision the reciprocal rank (the names the gates and the batch evaluation use)
    scored[f"recall_at_{k}"] = scored[f"hit_rate_at_{k}"]
    scored[f"precision_at_{k}"] = scored[f"hit_rate_at_{k}"] / k
    scored[f"map_at_{k}"] = scored[f"mrr_at_{k}"]
    if model.predicts_ratings:
        if "rating" not in frame.columns:
            raise DataError(
                "the test set has no rating column; a rating model's replay scores the rating error"
            )
        truth = frame["rating"].to_numpy(dtype=np.float64)
        if not np.isfinite(truth).all():
            raise DataError(
                f"the test set has {int((~np.isfinite(truth)).sum())} rating(s) that "
                "are not finite numbers; drop or fix those rows"
            )
        pred = model.predict_idx(u_all, i_all)
        scored["rating"] = truth
        scored["prediction"] = pred
        scored["sq_error"] = (pred - truth) ** 2
        scored["abs_error"] = np.abs(pred - truth)
    table = _table(scored, k, model.predicts_ratings)
    metrics = _metrics(table)
    counts = {
        "test_rows": int(len(frame)),
        "test_users": int(starts.size),
        "cold_users": int((u_all[starts] < 0).sum()),
        "cold_user_rows": int((u_all < 0).sum()),
        "cold_item_rows": int((i_all < 0).sum()),
    }
    log.info(
        "replayed %d interactions of %d users (%d cold)",
        counts["test_rows"],
        counts["test_users"],
        counts["cold_users"],
    )
    return ReplayResult(metrics, table, counts, scored if keep_interactions else None)


def _replay_chunk(scorer: Scorer, starts, sizes, u_all, i_all, user_ids, k, rank) -> None:
    """Answer every test interaction of one chunk of users, step by step; fills ``rank``."""
    n = starts.size
    u = u_all[starts]
    known = u >= 0
    n_items = scorer.n_items
    # items never to recommend: the training items, then the revealed ones
    banned = np.zeros((n, n_items), dtype=bool)
    if known.any():
        block = scorer.seen_block(u[known]).tocoo()
        banned[np.flatnonzero(known)[block.row], block.col] = True
    item_item = scorer.family == "item-item"
    folds = scorer.can_fold_in and not item_item  # factors, model: a Scorer request each
    base = np.empty((n, n_items), dtype=np.float64)
    if known.any():
        base[known] = scorer.score_block(u[known])
    # item-item cold users score from zero once they have a revealed item; popularity before
    base[~known] = 0.0 if item_item else scorer.popular_scores()[None, :]
    has_recent = np.zeros(n, dtype=bool)
    popular = scorer.popular_scores()
    weights = _item_weights(scorer) if item_item else None
    recent: list[list[int]] = [[] for _ in range(n)]
    recent_set: list[set[int]] = [set() for _ in range(n)]
    for step in range(int(sizes.max())):
        rows = np.flatnonzero(sizes > step)
        pos = starts[rows] + step
        target = i_all[pos]
        solved = rows[has_recent[rows]] if folds else np.empty(0, np.int64)
        batched = rows[~has_recent[rows]] if folds else rows
        if batched.size:
            scores = base[batched]  # a copy (fancy indexing)
            if item_item:
                fallback = ~known[batched] & ~has_recent[batched]
                scores[fallback] = popular[None, :]
            sel = np.isin(rows, batched)
            rank[pos[sel]] = _ranks(scores, banned[batched], target[sel], k)
        for row in solved:  # one Scorer request per interaction: the service's own fold-in
            answer = scorer.recommend(
                user_ids[starts[row]],
                k,
                recent_items=[scorer.item_ids[j] for j in recent[row]],
            )
            p = starts[row] + step
            ids = [scorer.item_index(s.item_id) for s in answer.items]
            rank[p] = ids.index(i_all[p]) + 1 if i_all[p] in ids else 0
        # reveal: known items join the user's history (the service ignores unknown ids)
        ok = target >= 0
        r, t = rows[ok], target[ok]
        if folds:  # the Scorer's recent_items: every known revealed item, once
            for row, item in zip(r.tolist(), t.tolist(), strict=True):
                if item not in recent_set[row]:
                    recent_set[row].add(item)
                    recent[row].append(item)
                    has_recent[row] = True
        new = ~banned[r, t]  # an item already in the row adds nothing to x W
        r, t = r[new], t[new]
        if r.size:
            if item_item:
                base[r] += _rows(weights, t)
            banned[r, t] = True
            has_recent[r] = True


def _ranks(scores: np.ndarray, banned: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """1-based rank of ``target[n]`` in the top-``k`` list of ``scores[n]`` without the
    ``banned`` items; 0 when it is not in the list (banned, cold or ranked below ``k``).

    The rank is 1 + the number of allowed items scored higher, one comparison per item; only a
    row where items tie with the target inside the top ``k`` is ranked through the top-k list
    itself, so that ties fall as the service's lists break them.
    """
    n = np.arange(target.size)
    ok = target >= 0
    safe = np.where(ok, target, 0)
    ok &= ~banned[n, safe]
    st = scores[n, safe][:, None]
    allowed = ~banned
    greater = ((scores > st) & allowed).sum(axis=1)
    equal = ((scores == st) & allowed).sum(axis=1) - 1  # the target itself is allowed
    out = np.where(ok & (greater < k), greater + 1, 0)
    tied = np.flatnonzero(ok & (greater < k) & (equal > 0))
    if tied.size:
        block = np.where(banned[tied], -np.inf, scores[tied])
        top, _ = top_k_rows(block, min(k, block.shape[1]))
        out[tied] = _rank_of(top, target[tied])
    return out


def _rank_of(top: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1-based position of ``target[n]`` in ``top[n]``; 0 when absent (or the item is cold)."""
    match = (top == target[:, None]) & (target[:, None] >= 0)
    return np.where(match.any(axis=1), match.argmax(axis=1) + 1, 0)


def _item_weights(scorer: Scorer):
    """The item x item weights an item-item model scores with (dense or CSR)."""
    state = vars(scorer.model)
    return state["weights_"] if "weights_" in state else sp.csr_matrix(state["similarity_"])


def _rows(weights: Any, items: np.ndarray) -> np.ndarray:
    """Rows ``items`` of the weights, dense."""
    block: Any = weights[items]
    dense = block.toarray() if hasattr(block, "toarray") else block
    return np.asarray(dense, dtype=np.float64)


def _table(scored: pd.DataFrame, k: int, ratings: bool) -> pd.DataFrame:
    names = [f"{m}_at_{k}" for m in ("hit_rate", "ndcg", "mrr", "recall", "precision", "map")]
    out = []
    for population in POPULATIONS:
        part = scored if population == "all" else scored[scored["population"] == population]
        for label in ["all", *(b[0] for b in BUCKETS)]:
            rows = part if label == "all" else part[part["bucket"] == label]
            rec = {
                "population": population,
                "bucket": label,
                "n": int(len(rows)),
                "users": int(rows["user"].nunique()),
            }
            for name in names:
                rec[name] = float(rows[name].mean()) if len(rows) else np.nan
            if ratings:
                rec["rmse"] = float(np.sqrt(rows["sq_error"].mean())) if len(rows) else np.nan
                rec["mae"] = float(rows["abs_error"].mean()) if len(rows) else np.nan
            out.append(rec)
    return pd.DataFrame(out)


def _metrics(table: pd.DataFrame) -> dict[str, float]:
    """Flat metric names: ``ndcg_at_10``, ``warm/ndcg_at_10``, ``cold/revealed_0/rmse``, ..."""
    out: dict[str, float] = {}
    values = [c for c in table.columns if c not in ("population", "bucket", "n", "users")]
    for rec in table.to_dict("records"):
        if rec["n"] == 0:
            continue
        parts = [] if rec["population"] == "all" else [rec["population"]]
        if rec["bucket"] != "all":
            parts.append(f"revealed_{metric_key(rec['bucket'])}")
        prefix = "/".join(parts)
        for name in values:
            out[f"{prefix}/{name}" if prefix else name] = float(rec[name])
        out[f"{prefix}/n" if prefix else "n"] = float(rec["n"])
    return out


def plot_by_bucket(table: pd.DataFrame, metric: str, path: str | Path) -> Path:
    """Bars of ``metric`` by revealed-interaction bucket, one colour per population."""
    from recsys_core.plotting import pyplot

    if metric not in table.columns:
        names = [c for c in table.columns if c not in ("population", "bucket", "n", "users")]
        raise ConfigError(
            f"no metric {metric!r} in the replay table; available: {', '.join(names)}"
        )
    plt = pyplot()
    labels = [b[0] for b in BUCKETS]
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / len(POPULATIONS)
    for n, population in enumerate(POPULATIONS):
        part = table[(table["population"] == population) & (table["bucket"] != "all")]
        values = [
            part.loc[part["bucket"] == b, metric].squeeze()
            if (part["bucket"] == b).any()
            else np.nan
            for b in labels
        ]
        ax.bar(
            np.arange(len(labels)) + (n - 1) * width,
            np.asarray(values, dtype=float),
            width,
            label=population,
        )
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set_xlabel("test interactions revealed before the scored one")
    ax.set_ylabel(metric)
    ax.set_title(f"Replay: {metric} by revealed interactions")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
