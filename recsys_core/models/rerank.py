"""Two-stage ranking: candidates from cheap retrievers, re-ranked by LambdaMART (``rerank``).

The industrial recipe (Covington, Adams & Sargin, "Deep neural networks for YouTube
recommendations", RecSys 2016, for the two stages; Burges, "From RankNet to LambdaRank to
LambdaMART: an overview", MSR-TR-2010-82, for the ranker), with LightGBM's ``lambdarank``:

1. **Candidates**: the union of the top ``candidates`` unseen items of each retriever (default
   ``ease``, ``item-knn-implicit``, ``implicit-als``, ``popularity``), each built from the
   registry with its own hyperparameters.
2. **Features** of each (user, candidate) pair (``recsys_core.features.candidates``): every
   retriever's score and rank, and its score relative to the user's (the gap to the user's top
   score, the z-score among the user's candidates, the gap to the next better one), item
   popularity and its recency-weighted form, the item's mean
   rating and age, the user's activity and recency, genre and year features where the item
   metadata has them, and the cosine to the user's items in item embeddings the user provides
   (``item_embeddings``: a Parquet file, ``recsys_core.features.embeddings``).
3. **Training without leakage**: each user's latest interactions (``holdout``, by time) are
   the labels; the retrievers are fitted on the rest, so a label is never something a retriever
   saw. LightGBM's ``lambdarank`` learns from one query group per user and stops early on the
   NDCG@10 of a validation group of users. The trees start from ``base_weight`` times the
   first retriever's z-score (LightGBM's ``init_score``), so they learn corrections to its order
   rather than an order from nothing. The retrievers are then refitted on every training row
   to serve.

Serving scores the candidates of a user with the ranker; the other items score below every
candidate. A new user, or new items at request time, is folded in through the retrievers' own
fold-in (``capabilities.fold_in = "model"``); :meth:`Rerank.explain_idx` names the features
that moved an item up (TreeSHAP, LightGBM's ``pred_contrib``).

Determinism: LightGBM runs with ``num_threads=1``, ``deterministic=True`` and
``force_row_wise=True`` and every random choice comes from ``seed``, so the same data and
configuration give the same trees on any machine (more threads would make the histogram sums,
hence possibly the splits, depend on the thread count). The saved model holds the trees as
LightGBM's own text format (``ranker.txt``) and each retriever in ``member_<n>``: no pickle.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from recsys_core.exceptions import ConfigError
from recsys_core.extras import require
from recsys_core.features import candidates as cf
from recsys_core.features.embeddings import load_item_embeddings
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import Capabilities, ModelConfig, ModelReason
from recsys_core.models.composite import Composite
from recsys_core.models.parts import PartSpec, parts_field, subset
from recsys_core.models.registry import create, get_model_class, register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)

_RANKER_FILE = "ranker.txt"
_IMPORTANCE_PLOT = "feature_importance.png"


RetrieverSpec = PartSpec
"""One retriever: its registry name and hyperparameters."""


class RerankConfig(ModelConfig):
    """Hyperparameters of the two-stage ranker."""

    retrievers: tuple[RetrieverSpec, ...] = parts_field(
        RetrieverSpec,
        ("ease", "item-knn-implicit", "implicit-als", "popularity"),
        "candidate retrievers and their params",
    )
    candidates: int = Field(100, ge=1, le=5000, description="top items taken from each retriever")
    holdout: float = Field(
        0.2, gt=0, lt=0.9, description="share of each user's interactions held out as labels"
    )
    folds: int = Field(
        1,
        ge=1,
        le=10,
        description="label sets the ranker learns from: time order rolls the cut back one "
        "holdout per fold, random order draws a new holdout (retrievers refitted for each)",
    )
    holdout_order: Literal["time", "random"] = Field(
        "time",
        description="time: each user's latest interactions are the labels (the future, as "
        "served); random: a random share of them (as a random evaluation split)",
    )
    min_user_interactions: int = Field(
        5, ge=2, description="users with fewer interactions give no labels"
    )
    max_users: int = Field(
        5000, ge=2, description="most users the ranker learns from (a seeded sample)"
    )
    validation: float = Field(
        0.2, gt=0, lt=1, description="share of those users kept to stop the boosting early"
    )
    objective: Literal["lambdarank", "rank_xendcg"] = Field(
        "lambdarank",
        description="LightGBM's ranking objective: lambdarank (LambdaMART) or rank_xendcg "
        "(cross-entropy NDCG loss, Bruch 2021)",
    )
    n_estimators: int = Field(300, ge=1, le=10_000, description="most boosting rounds")
    early_stopping: int = Field(
        30, ge=1, description="rounds without a better validation NDCG@10 before stopping"
    )
    learning_rate: float = hp.learning_rate(0.05, what="shrinkage of each tree")
    num_leaves: int = Field(7, ge=2, le=1024, description="leaves per tree")
    min_child_samples: int = Field(200, ge=1, description="fewest pairs in a leaf")
    feature_fraction: float = Field(
        0.8, gt=0, le=1, description="share of the features each tree may split on (seeded)"
    )
    base_weight: float = Field(
        0.5,
        ge=0,
        le=100,
        description="the trees start from this weight times the first retriever's z-score "
        "among the user's candidates, and learn corrections to its order (0: from nothing)",
    )
    half_life_days: float = Field(
        30.0, gt=0, description="half-life of the recency-weighted popularity, in days"
    )
    item_embeddings: str | None = Field(
        None,
        description="Parquet file of item_id -> vector (image, text or audio embeddings); "
        "None: no embedding feature",
    )
    seed: int = hp.seed("(user samples, LightGBM)")

    @field_validator("retrievers")
    @classmethod
    def _retrievers_exist(cls, value: tuple[RetrieverSpec, ...]) -> tuple[RetrieverSpec, ...]:
        for spec in value:
            klass = get_model_class(spec.model)
            if klass.capabilities.needs_item_metadata:
                raise ConfigError(
                    f"retriever {spec.model!r} needs item metadata; choose retrievers that "
                    "learn from interactions (ease, item-knn-implicit, implicit-als, popularity)"
                )
            create(spec.model, spec.params)  # validates the retriever's hyperparameters
        return value


def holdout_mask(
    data: Interactions,
    share: float,
    min_interactions: int,
    order: str = "time",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Mask of each user's latest ``share`` of interactions (at least one), for users with at
    least ``min_interactions``; ties in time are broken by row order. ``order="random"``: a
    random ``share`` of each user's interactions instead (``rng`` draws it)."""
    m = data.known
    rows = np.flatnonzero(m)
    u, t = data.user_idx[rows], data.timestamp[rows]
    if order == "random":
        t = (rng or np.random.default_rng(0)).permutation(t.size)
    by_user = np.lexsort((rows, t, u))  # by user, then time, then row
    u_sorted = u[by_user]
    counts = np.bincount(u_sorted, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(by_user.size) - starts[u_sorted]  # position within the user, oldest first
    n_u = counts[u_sorted]
    n_held = np.maximum(1, np.floor(share * n_u)).astype(np.int64)
    held = (n_u >= min_interactions) & (pos >= n_u - n_held)
    out = np.zeros(len(data), dtype=bool)
    out[rows[by_user[held]]] = True
    return out


@register("rerank")
class Rerank(Composite[RerankConfig]):
    """Two-stage ranker: retrievers' candidates re-ranked by LightGBM LambdaMART."""

    capabilities = Capabilities(
        predicts_ratings=False, fold_in="model", serving_requires=("lightgbm",)
    )
    user_axes: ClassVar[dict[str, int]] = {"user_activity_": 0, "user_last_": 0}
    feature_names_: np.ndarray
    """the ranker's features, in column order (ranker.txt holds the trees)"""
    feature_importance_: np.ndarray
    """total gain of each feature over the trees (feature_names_ order)"""
    best_iteration_: np.int64
    """boosting rounds kept (early stopping on validation NDCG@10)"""
    validation_ndcg_: np.float64
    """NDCG@10 of the validation users at the kept round"""
    now_: np.int64
    """latest training timestamp (seconds): ages and recencies count from it"""
    user_activity_: np.ndarray
    """training interactions per user"""
    user_last_: np.ndarray
    """timestamp of each user's latest training interaction"""
    popularity_: np.ndarray
    """each item's share of the training interactions"""
    recent_popularity_: np.ndarray
    """the same, each interaction weighted by 0.5 ** (age / half-life)"""
    item_mean_rating_: np.ndarray
    """each item's mean rating, shrunk to the global mean by 10 ratings"""
    item_age_days_: np.ndarray
    """days from each item's first interaction to now_ (NaN: never seen)"""
    item_genres_: np.ndarray
    """items x genres, 1 where the item metadata lists the genre"""
    item_years_: np.ndarray
    """each item's year from its title (NaN: none)"""
    item_embeddings_: np.ndarray
    """items x dims, the L2-normalized vectors of item_embeddings (zero rows where has_embedding_ is
    false)"""
    has_embedding_: np.ndarray
    """whether item_embeddings gave the item a vector"""

    def _n_members(self) -> int:
        return len(self.config.retrievers)

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: Interactions, training: Training) -> None:
        lgb = require("lightgbm", "trees")
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        self._describe_items(data.items.ids, data)
        feats, ys, sizes, group_users = [], [], [], []
        rest = np.ones(len(data), dtype=bool)
        for fold in range(cfg.folds):
            held = np.zeros(len(data), dtype=bool)
            part = subset(data, rest)
            held[np.flatnonzero(rest)] = holdout_mask(
                part, cfg.holdout, cfg.min_user_interactions, cfg.holdout_order, rng
            )
            if not held.any():
                if fold == 0:
                    raise ConfigError(
                        f"no user has {cfg.min_user_interactions} interactions to hold out "
                        "labels from; lower min_user_interactions or use more data"
                    )
                break
            # the inner stage: retrievers and statistics of the rows before the labels
            inner = subset(data, rest & ~held)
            self.members_ = [create(r.model, r.params).fit(inner) for r in cfg.retrievers]
            self._fit_statistics(inner)
            users = np.unique(data.user_idx[held])
            if users.size > cfg.max_users:
                users = np.sort(rng.choice(users, cfg.max_users, replace=False))
            labels = sp.csr_matrix(
                (np.ones(int(held.sum()), np.float32), (data.user_idx[held], data.item_idx[held])),
                shape=(data.n_users, data.n_items),
            )
            labels.data[:] = 1.0
            block = self._block(users, inner.matrix[users])
            y = np.asarray(labels[users[block.rows], block.items]).ravel().astype(np.float32)
            log.info(
                "rerank fold %d: %d candidate pairs of %d users, %.1f%% of the held-out items "
                "among them",
                fold,
                block.rows.size,
                users.size,
                100.0 * y.sum() / max(1, labels[users].nnz),
            )
            feats.append(block.features)
            ys.append(y)
            sizes.append(block.group_sizes)
            group_users.append(users)
            if cfg.holdout_order == "time":  # the next fold's labels come before these
                rest &= ~held
        X = np.concatenate(feats)
        y = np.concatenate(ys)
        size = np.concatenate(sizes)
        owner = np.concatenate(group_users)
        group = np.repeat(np.arange(size.size), size)
        positive = np.bincount(group, weights=y, minlength=size.size) > 0
        keep = positive & (size > 0)  # a group without a positive teaches nothing
        if keep.sum() < 2:
            raise ConfigError(
                f"only {int(keep.sum())} user(s) have a held-out item among their "
                f"candidates; raise candidates (now {cfg.candidates}) or use more data"
            )
        # validation by user: every group of a validation user is held out of the training
        eligible = np.unique(owner[keep])
        n_val = min(max(1, round(cfg.validation * eligible.size)), eligible.size - 1)
        val = np.isin(owner, rng.choice(eligible, n_val, replace=False))
        if not (keep & ~val).any():
            raise ConfigError("too few users to learn the ranker from; use more data")
        train_rows = np.repeat(keep & ~val, size)
        val_rows = np.repeat(keep & val, size)
        params = {
            "objective": cfg.objective,
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples,
            "feature_fraction": cfg.feature_fraction,
            "seed": cfg.seed,
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        names = self.feature_names_.tolist()
        base = self._base(X)
        train_set = lgb.Dataset(
            X[train_rows],
            y[train_rows],
            group=size[keep & ~val],
            feature_name=names,
            init_score=base[train_rows],
            free_raw_data=True,
        )
        val_set = lgb.Dataset(
            X[val_rows],
            y[val_rows],
            group=size[keep & val],
            init_score=base[val_rows],
            reference=train_set,
        )
        evals: dict[str, Any] = {}
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=cfg.n_estimators,
            valid_sets=[val_set],
            valid_names=["validation"],
            callbacks=[
                lgb.early_stopping(cfg.early_stopping, verbose=False),
                lgb.record_evaluation(evals),
            ],
        )
        curve = evals.get("validation", {}).get("ndcg@10", [])
        for n, value in enumerate(curve, start=1):
            self.history_.append({"epoch": n, "val_ndcg_at_10": float(value)})
        self.best_iteration_ = np.int64(booster.best_iteration or booster.current_iteration())
        self.validation_ndcg_ = np.float64(curve[self.best_iteration_ - 1] if curve else np.nan)
        self._booster = lgb.Booster(
            model_str=booster.model_to_string(num_iteration=int(self.best_iteration_))
        )
        self.feature_importance_ = self._booster.feature_importance("gain").astype(np.float64)
        log.info(
            "rerank: %d trees, validation NDCG@10 %.4f", self.best_iteration_, self.validation_ndcg_
        )
        # the serving stage: every training row
        self.members_ = [create(r.model, r.params).fit(data) for r in cfg.retrievers]
        self._fit_statistics(data)

    def _base(self, features: np.ndarray) -> np.ndarray:
        """The score the trees start from: ``base_weight`` times the first retriever's z-score
        among the user's candidates (the trees learn the corrections to its order)."""
        if self.config.base_weight == 0:
            return np.zeros(len(features))
        col = self.feature_names_.tolist().index(f"{self._retriever_names()[0]}_z")
        return self.config.base_weight * features[:, col].astype(np.float64)

    def _describe_items(self, item_ids: np.ndarray, data: Interactions) -> None:
        """Item content and embeddings (fixed by the catalogue, the same in both stages)."""
        genres, years = cf.item_content(item_ids, data.item_meta)
        if genres is not None:
            self.item_genres_ = genres
        if years is not None:
            self.item_years_ = years
        if self.config.item_embeddings is not None:
            emb = load_item_embeddings(self.config.item_embeddings)
            vectors, has = emb.aligned(item_ids)
            if not has.any():
                raise ConfigError(
                    f"no item id of {self.config.item_embeddings!r} is in the training data "
                    f"(for example {emb.ids[0]!r}); the file's item_id must be the items' ids"
                )
            log.info(
                "rerank: embeddings (%d dims) for %d of %d items", emb.dim, has.sum(), has.size
            )
            self.item_embeddings_ = vectors
            self.has_embedding_ = has
        self.feature_names_ = np.asarray(
            cf.feature_names(
                self._retriever_names(),
                genres=genres is not None,
                years=years is not None,
                embeddings=self.config.item_embeddings is not None,
            ),
            dtype=np.str_,
        )

    def _fit_statistics(self, data: Interactions) -> None:
        stats = cf.item_stats(data, self.config.half_life_days)
        self.popularity_ = stats["popularity"]
        self.recent_popularity_ = stats["recent_popularity"]
        self.item_mean_rating_ = stats["item_mean_rating"]
        self.item_age_days_ = stats["item_age_days"]
        self.user_activity_, self.user_last_ = cf.user_stats(data)
        self.now_ = np.int64(data.timestamp[data.known].max())

    def _retriever_names(self) -> list[str]:
        names = [r.model for r in self.config.retrievers]
        return [n if names.count(n) == 1 else f"{n}#{k}" for k, n in enumerate(names)]

    # ------------------------------------------------------------------ scoring
    def _block(
        self,
        u: np.ndarray,
        history: sp.csr_matrix,
        retriever_scores: list[np.ndarray] | None = None,
        activity: np.ndarray | None = None,
        last: np.ndarray | None = None,
    ) -> cf.CandidateBlock:
        """Candidates and features of users ``u`` (``-1``: a folded-in user whose retriever
        scores are given) whose items are the rows of ``history``."""
        if retriever_scores is None:
            retriever_scores = [
                np.array(m._score_users(u), dtype=np.float64) for m in self.members_
            ]
        hist = sp.csr_matrix(history)
        seen_rows, seen_cols = hist.nonzero()
        for s in retriever_scores:
            s[seen_rows, seen_cols] = -np.inf
        items = {
            "popularity": self.popularity_,
            "recent_popularity": self.recent_popularity_,
            "item_mean_rating": self.item_mean_rating_,
            "item_age_days": self.item_age_days_,
        }
        if activity is None:
            activity = self.user_activity_[u]
        if last is None:
            last = self.user_last_[u]
        return cf.candidate_features(
            retriever_scores,
            self.config.candidates,
            hist,
            activity,
            (int(self.now_) - np.asarray(last, np.float64)) / cf.DAY,
            items,
            genres=getattr(self, "item_genres_", None),
            years=getattr(self, "item_years_", None),
            embeddings=getattr(self, "item_embeddings_", None),
            has_embedding=getattr(self, "has_embedding_", None),
        )

    def _ranked(self, block: cf.CandidateBlock, n_users: int) -> np.ndarray:
        """Users x items scores: the ranker's on the candidates, below them elsewhere."""
        out = np.empty((n_users, self.n_items), dtype=np.float64)
        if block.rows.size == 0:
            out[:] = 0.0
            return out
        pred = self._booster.predict(block.features, num_threads=1) + self._base(block.features)
        # the other items: one score, below every candidate of the block
        out[:] = float(np.min(pred)) - 1.0
        out[block.rows, block.items] = pred
        return out

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.int32)
        block = self._block(u, self.seen_[u])
        return self._ranked(block, u.size)

    # ------------------------------------------------------------------ fold-in
    def _folded_block(
        self, items: np.ndarray, ratings: np.ndarray | None, user: int
    ) -> cf.CandidateBlock:
        items = np.asarray(items, dtype=np.int64)
        scores = []
        for m in self.members_:
            if m.capabilities.fold_in is not None:
                row = m.fold_in(items, ratings, user=user)
            elif user >= 0:
                row = m._score_users(np.array([user], np.int32))[0]
            else:
                row = np.asarray(m._fallback_scores(1))[0]
            scores.append(np.array(row, dtype=np.float64)[None, :])
        hist = sp.csr_matrix(self.seen_[[max(user, 0)]], dtype=np.float32)
        if user < 0:  # a new user: no history of their own
            hist = sp.csr_matrix(hist.multiply(0.0), dtype=np.float32)
            hist.eliminate_zeros()
        new = sp.csr_matrix(
            (np.ones(items.size, np.float32), (np.zeros(items.size, np.int64), items)),
            shape=(1, self.n_items),
        )
        hist = sp.csr_matrix(hist + new)
        added = int(np.setdiff1d(items, self.seen_[user].indices if user >= 0 else []).size)
        activity = np.array([(self.user_activity_[user] if user >= 0 else 0.0) + added])
        return self._block(
            np.array([user]), hist, scores, activity=activity, last=np.array([int(self.now_)])
        )

    def fold_in(
        self, items: np.ndarray, ratings: np.ndarray | None = None, *, user: int = -1
    ) -> np.ndarray:
        """Scores of every item for a user who has just interacted with ``items``: each
        retriever folds the user in its own way (those that cannot score the user as they
        would without the new items), the features count the new items in the user's history
        and the ranker scores the candidates."""
        self._check_fitted()
        return self._ranked(self._folded_block(items, ratings, user), 1)[0]

    # ------------------------------------------------------------------ explanations
    def explain_idx(
        self, items: np.ndarray, *, user: int = -1, recent: np.ndarray | None = None
    ) -> list[tuple[ModelReason, ...]]:
        """Why each of ``items`` ranks where it does for user index ``user`` (with ``recent``
        folded in): the feature groups with the largest positive TreeSHAP contributions
        (``pred_contrib``), in words, with the contribution (in ranker score units)."""
        self._check_fitted()
        recent = np.asarray([] if recent is None else recent, dtype=np.int64)
        if recent.size or user < 0:
            block = self._folded_block(recent, None, user)
        else:
            block = self._block(np.array([user], np.int32), self.seen_[[user]])
        pos = {int(i): n for n, i in enumerate(block.items)}
        contrib = self._booster.predict(block.features, pred_contrib=True, num_threads=1)
        names = self.feature_names_.tolist()
        out: list[tuple[ModelReason, ...]] = []
        for item in np.asarray(items, dtype=np.int64):
            n = pos.get(int(item))
            if n is None:
                out.append(())
                continue
            groups: dict[str, float] = {}
            for f, name in enumerate(names):
                key = _group(name)
                groups[key] = groups.get(key, 0.0) + float(contrib[n, f])
            best = sorted(groups.items(), key=lambda kv: -kv[1])[:3]
            values = dict(zip(names, block.features[n].tolist(), strict=True))
            words = [ModelReason(self._words(k, values), round(w, 6)) for k, w in best if w > 0]
            out.append(tuple(words))
        return out

    def _words(self, group: str, values: dict[str, float]) -> str:
        if group in self._retriever_names():
            rank = values.get(f"{group}_rank", np.inf)
            if rank <= self.config.candidates:
                return f"ranked {int(rank)}{_ordinal(int(rank))} for you by {group}"
            return f"its {group} score"
        return _WORDS.get(group, group.replace("_", " "))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        folder = super().save(path)
        (folder / _RANKER_FILE).write_text(self._booster.model_to_string())
        importance = dict(
            zip(self.feature_names_.tolist(), self.feature_importance_.tolist(), strict=True)
        )
        (folder / "feature_importance.json").write_text(json.dumps(importance, indent=2))
        importance_plot(importance, folder / _IMPORTANCE_PLOT)
        return folder

    def _after_load(self, folder: Path) -> None:
        lgb = require("lightgbm", "trees")
        super()._after_load(folder)
        self._booster = lgb.Booster(model_str=(folder / _RANKER_FILE).read_text())


_WORDS = {
    "retrievers_agreeing": "proposed by several retrievers",
    "popularity": "popular with other users",
    "recent_popularity": "popular lately",
    "item_mean_rating": "rated highly by others",
    "item_age_days": "its time in the catalogue",
    "user": "your activity",
    "genre_match": "matches the genres you like",
    "genre_share": "in the genres you watch most",
    "year": "from the years you like",
    "embedding_similarity": "close to your items in the item embeddings",
}


def _group(feature: str) -> str:
    """The group a feature's contribution is summed into (a retriever's score and rank: one)."""
    for suffix in ("_score", "_rank", "_next_gap", "_gap", "_z"):
        if feature.endswith(suffix):
            return feature[: -len(suffix)]
    if feature in cf.USER_FEATURES:
        return "user"
    if feature in cf.YEAR_FEATURES:
        return "year"
    return feature


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def importance_plot(importance: dict[str, float], path: Path) -> Path:
    """A horizontal bar chart of the features' total gain (the run logs it with the model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(importance, key=importance.__getitem__)
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(names) + 1.2))
    ax.barh(names, [importance[n] for n in names])
    ax.set_xlabel("total gain")
    ax.set_title("rerank: feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
