"""Rating and ranking metrics, each defined here once and tested against hand-computed values.

Definitions (version ``METRICS_VERSION``; logged with every run):

Rating metrics over the test pairs ``T`` with predictions ``p``:

* ``rmse = sqrt(mean((p - r)^2))``; ``mae = mean(|p - r|)``.

Ranking metrics, for each test user ``u`` with relevant set ``Rel_u`` (its test items, optionally
those rated at least a threshold) and top-k list ``L_u`` (training items excluded), then averaged
over the users with at least one relevant item:

* ``precision@k = |L_u & Rel_u| / k`` (k, not the list length: a short list is penalized);
* ``recall@k = |L_u & Rel_u| / |Rel_u|``;
* ``ndcg@k = DCG / IDCG`` with binary gains, ``DCG = sum_{hits at rank j} 1 / log2(j + 1)`` and
  ``IDCG = sum_{j=1}^{min(k, |Rel_u|)} 1 / log2(j + 1)``;
* ``map@k = (1 / min(k, |Rel_u|)) * sum_{hits at rank j} precision@j``;
* ``hit_rate@k = 1`` if ``L_u`` has at least one relevant item, else 0;
* ``coverage@k = |union of L_u| / n_items`` over all evaluated users (catalog coverage).

Relevant items that the model has never seen (cold items) stay in ``Rel_u``: they count against
recall, as they would in production.

Populations. Every metric is computed over three populations of test users, told apart by the
split's training part (not by the model, so that a champion trained on other data is judged on
the same users as the challenger):

* ``warm``: users with at least one training interaction (what a model can personalize for);
* ``cold``: users with none (what the model answers with its fallback);
* ``all``: every test user.

A metric of the ``all`` population keeps its plain name (``rmse``, ``ndcg_at_10``: the names of
earlier runs, thresholds and charts); the others are prefixed (``warm/rmse``, ``cold/ndcg_at_10``).
A population with no test row has no metric (its size, ``cold/users = 0``, says why). Cold
items (never seen in training) are counted apart: ``cold_items/rows``, ``cold_items/share`` and,
for rating models, ``cold_items/rmse`` and ``cold_items/mae``.
"""

from __future__ import annotations

import numpy as np

METRICS_VERSION = "2"  # 2: warm/cold/all populations

_LOWER_IS_BETTER = {"rmse", "mae"}

POPULATIONS = ("warm", "cold", "all")
"""The populations of test users every evaluation reports (see the module docstring)."""


def base_metric(metric: str) -> str:
    """``warm/rmse`` -> ``rmse``: the metric without its population (or namespace) prefix."""
    return metric.rsplit("/", 1)[-1]


def population_of(metric: str) -> str:
    """``warm/rmse`` -> ``warm``; a plain name (``rmse``) is the ``all`` population."""
    head, sep, _ = metric.partition("/")
    return head if sep and head in POPULATIONS else "all"


def in_population(metric: str, population: str) -> str:
    """The name of ``metric`` over ``population``: ``rmse`` -> ``warm/rmse``; ``all`` keeps the
    plain name. A name that already names its population keeps it (``all/rmse`` is ``rmse``)."""
    if population not in POPULATIONS:
        raise ValueError(f"unknown population {population!r}; use one of {POPULATIONS}")
    head, sep, tail = metric.partition("/")
    if sep and head in POPULATIONS:
        return tail if head == "all" else metric
    return metric if population == "all" else f"{population}/{metric}"


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (``rmse``, ``mae``, ``warm/rmse``...)."""
    return base_metric(metric).split("_at_")[0] in _LOWER_IS_BETTER


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return float(np.mean(np.abs(pred - truth)))


def hits_matrix(recommended: np.ndarray, relevant: list[set]) -> np.ndarray:
    """Boolean ``(n_users, k)``: whether each recommended item is relevant to its user."""
    rec = np.asarray(recommended)
    out = np.zeros(rec.shape, dtype=bool)
    for row, rel in enumerate(relevant):
        if rel:
            out[row] = [x in rel for x in rec[row]]
    return out


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user ranking metrics from a hits matrix and the size of each relevant set."""
    hits = np.asarray(hits, dtype=bool)[:, :k]
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    if hits.shape[1] < k:  # pad short lists with misses
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    ranks = np.arange(1, k + 1)
    discounts = 1.0 / np.log2(ranks + 1)
    n_hits = hits.sum(axis=1)
    denom = np.minimum(n_rel, k)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[denom.astype(int)]
    dcg = (hits * discounts).sum(axis=1)
    prec_at_j = np.cumsum(hits, axis=1) / ranks
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": n_hits / k,
            "recall": np.where(n_rel > 0, n_hits / n_rel, 0.0),
            "ndcg": np.where(ideal > 0, dcg / ideal, 0.0),
            "map": np.where(denom > 0, (prec_at_j * hits).sum(axis=1) / denom, 0.0),
            "hit_rate": (n_hits > 0).astype(np.float64),
        }


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one list (``-1`` slots ignored)."""
    rec = np.asarray(recommended).ravel()
    rec = rec[rec >= 0]
    return float(np.unique(rec).size / n_items) if n_items else 0.0
