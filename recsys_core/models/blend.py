"""Blend of several rating models (``blend``): a ridge or a LightGBM stacker.

The Netflix Prize recipe (Töscher, Jahrer & Bell, "The BigChaos solution to the Netflix Grand
Prize", 2009, sections on linear and nonlinear blending; Koren, "The BellKor solution to the
Netflix Grand Prize", 2009): hold out a random part of the training ratings, fit every member on
the rest, fit the stacker on the held-out ratings, then refit every member on all the training
ratings and keep the stacker. With ``folds=k`` (k >= 2) the training ratings are cut in k folds
and each fold is predicted by members fitted on the others (cross-fitting): the stacker learns
from every rating, at the cost of k member fits.

* ``stacker="ridge"`` (the default): a ridge regression of the held-out ratings on the members'
  predictions, with an intercept.
* ``stacker="lightgbm"``: gradient-boosted trees (LightGBM, the ``trees`` extra) on the members'
  predictions plus support features, as BigChaos blended with the number of ratings per user
  and item: each user's and item's rating count (log, scaled to the whole training data), mean
  and variance, from the ratings the members were fitted on (the rest, when training the
  stacker; all of them, when predicting). The trees boost from the ridge blend (its prediction
  is LightGBM's ``init_score``), so they learn its corrections and, with nothing to learn, stay
  near it. Seeded and deterministic (single-threaded); saved as LightGBM's text model
  (``stacker.lgb.txt``, ``Booster.model_to_string``), never pickled.

The members are named in the config with their hyperparameters
(``members=({"model": "als", "params": {"factors": 10}}, ...)``). A saved blend holds its
members in subfolders ``member_0``, ``member_1``, ... (each a saved model of its own); the
weights are the blend's own state.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from recsys_core import extras
from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import ModelConfig
from recsys_core.models.composite import Composite
from recsys_core.models.parts import PartSpec, parts_field, subset
from recsys_core.models.registry import create, get_model_class, register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)


class MemberSpec(PartSpec):
    """One member model: its registry name and hyperparameters."""


def _check_member(spec: MemberSpec) -> MemberSpec:
    klass = get_model_class(spec.model)
    if not klass.predicts_ratings:
        raise ConfigError(f"member {spec.model!r} ranks but does not predict ratings")
    create(spec.model, spec.params)  # validates the member's hyperparameters
    return spec


class BlendConfig(ModelConfig):
    """Hyperparameters of the linear blend."""

    members: tuple[MemberSpec, ...] = parts_field(
        MemberSpec, ("als", "bpmf", "item-knn", "svdpp"), "member models (rating models) and params"
    )
    holdout: float = Field(
        0.1, gt=0, lt=0.5, description="share of ratings held out to blend (folds=1)"
    )
    folds: int = Field(
        1,
        ge=1,
        le=20,
        description="1: one held-out part (holdout); k >= 2: k-fold cross-fitting, every "
        "rating held out once (k member fits each, before the refit on all)",
    )
    reg: float = Field(1.0, ge=0, description="ridge penalty on the blend weights")
    stacker: Literal["ridge", "lightgbm"] = Field(
        "ridge",
        description="ridge: linear blend of the members; lightgbm: boosted trees on the "
        "members' predictions and support features, from the ridge blend (the trees extra)",
    )
    trees: int = Field(300, ge=1, le=10_000, description="lightgbm: boosting rounds")
    learning_rate: float = hp.learning_rate(0.02, what="lightgbm: shrinkage per tree")
    num_leaves: int = Field(7, ge=2, le=1024, description="lightgbm: leaves per tree")
    min_child_samples: int = Field(
        300, ge=1, description="lightgbm: fewest held-out ratings in a leaf"
    )
    seed: int = hp.seed("of the held-out part and of the trees")

    @field_validator("members")
    @classmethod
    def _members_exist(cls, value: tuple[MemberSpec, ...]) -> tuple[MemberSpec, ...]:
        return tuple(_check_member(m) for m in value)


SUPPORT = ("log1p_count", "mean", "var")
"""The support features of a user and of an item, in this order."""
STACKER_FILE = "stacker.lgb.txt"


def support(idx: np.ndarray, rating: np.ndarray, n: int, scale: float = 1.0) -> np.ndarray:
    """Per index (user or item) its rating count (times ``scale``, then ``log1p``), mean and
    variance: ``n x 3``, NaN mean and variance where it has no rating."""
    rating = np.asarray(rating, dtype=np.float64)
    count = np.bincount(idx, minlength=n).astype(np.float64)
    total = np.bincount(idx, rating, n)
    squares = np.bincount(idx, rating * rating, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        var = np.where(count > 0, squares / count - mean * mean, np.nan)
    return np.column_stack([np.log1p(count * scale), mean, np.maximum(var, 0.0)])


def _lookup(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows of ``table`` for indices ``idx``; an unknown index (-1): count 0, NaN mean and
    variance (LightGBM's missing values)."""
    out = np.full((idx.size, table.shape[1]), np.nan)
    out[:, 0] = 0.0
    known = idx >= 0
    out[known] = table[idx[known]]
    return out


def _lightgbm():
    return extras.require("lightgbm", "trees")


@register("blend")
class Blend(Composite[BlendConfig]):
    """Blend of rating models (ridge or LightGBM) fitted on a held-out part of the data."""

    intercept_: np.float64
    """intercept of the ridge blend"""
    weights_: np.ndarray
    """weight of each member's prediction (members in member_0, member_1, ...); r = intercept_ +
    sum_m weights_[m] r_m (+ the trees' correction with lightgbm)"""
    user_support_: np.ndarray
    """each user's log1p rating count, mean and variance in the training data, users x 3 (features
    of the lightgbm stacker)"""
    item_support_: np.ndarray
    """each item's log1p rating count, mean and variance, items x 3 (features of the lightgbm
    stacker)"""
    user_axes: ClassVar[dict[str, int]] = {"user_support_": 0}

    def __init__(self, config: BlendConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        if self.config.stacker == "lightgbm":
            _lightgbm()  # refused now, naming the extra, rather than after the members' fits

    @classmethod
    def serving_requirements(cls, config: dict[str, Any]) -> tuple[str, ...]:
        """LightGBM where the stacker is trees (the members declare their own)."""
        return ("lightgbm",) if config.get("stacker") == "lightgbm" else ()

    def _n_members(self) -> int:
        return len(self.config.members)

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        if cfg.folds == 1:
            fold = np.where(rng.random(len(data)) < cfg.holdout, 0, -1)
        else:
            fold = rng.integers(0, cfg.folds, len(data))
        fold[~data.known] = -1
        held = fold >= 0
        rest = len(data) - held.sum() if cfg.folds == 1 else held.sum() - held.sum() // cfg.folds
        if held.sum() < 2 or rest < 2:
            raise ConfigError(
                f"the blend's held-out part has {int(held.sum())} of {len(data)} ratings; "
                "use more data or another holdout"
            )
        # every held-out rating predicted by members fitted without its fold
        rows = np.flatnonzero(held)
        feats = np.zeros((rows.size, len(cfg.members)))
        supports = np.zeros((rows.size, 2 * len(SUPPORT)))
        for k in range(cfg.folds):
            mine = fold[rows] == k
            if not mine.any():
                continue
            part = subset(data, fold != k)
            u, i = data.user_idx[rows[mine]], data.item_idx[rows[mine]]
            for n, m in enumerate(cfg.members):
                feats[mine, n] = create(m.model, m.params).fit(part).predict_idx(u, i)
            if cfg.stacker == "lightgbm":
                # counts scaled to the whole training data, which they are read from in serving
                scale = len(data) / len(part)
                supports[mine] = np.column_stack(
                    [
                        _lookup(support(part.user_idx, part.rating, part.n_users, scale), u),
                        _lookup(support(part.item_idx, part.rating, part.n_items, scale), i),
                    ]
                )
        y = data.rating[rows].astype(np.float64)
        X = np.column_stack([np.ones(y.size), feats])
        penalty = cfg.reg * np.eye(X.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        w = np.linalg.solve(X.T @ X + penalty, X.T @ y)
        self.intercept_ = np.float64(w[0])
        self.weights_ = w[1:]
        log.info("blend weights %s (intercept %.3f)", np.round(self.weights_, 3), w[0])
        if cfg.stacker == "lightgbm":
            self._fit_trees(np.column_stack([feats, supports]), y, X @ w)
        # kept with either stacker (a per-user array has a row per user)
        self.user_support_ = support(data.user_idx, data.rating, data.n_users)
        self.item_support_ = support(data.item_idx, data.rating, data.n_items)
        self.members_ = [create(m.model, m.params).fit(data) for m in cfg.members]

    def _fit_trees(self, X: np.ndarray, y: np.ndarray, linear: np.ndarray) -> None:
        """The LightGBM stacker on the held-out ratings, boosting from the ridge blend's
        prediction ``linear`` (LightGBM's ``init_score``): the trees learn its corrections
        from the members' predictions and the pair's support."""
        cfg = self.config
        lgb = _lightgbm()
        params = {
            "objective": "regression",
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_child_samples,
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }
        dataset = lgb.Dataset(X, y, init_score=linear, feature_name=self.feature_names())
        self._booster = lgb.train(params, dataset, cfg.trees)

    def feature_names(self) -> list[str]:
        """The lightgbm stacker's features, in order."""
        members = [f"member_{n}_{m.model}" for n, m in enumerate(self.config.members)]
        return [*members, *[f"user_{f}" for f in SUPPORT], *[f"item_{f}" for f in SUPPORT]]

    def _stacked(self, u: np.ndarray, i: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """The ridge blend of ``preds`` plus the trees' correction."""
        X = np.column_stack([preds, _lookup(self.user_support_, u), _lookup(self.item_support_, i)])
        trees = np.asarray(self._booster.predict(X, num_threads=1), dtype=np.float64)
        return float(self.intercept_) + preds @ self.weights_ + trees

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        folder = super().save(path)
        if self.config.stacker == "lightgbm":
            (folder / STACKER_FILE).write_text(self._booster.model_to_string())
        return folder

    def _after_load(self, folder: Path) -> None:
        super()._after_load(folder)
        if self.config.stacker == "lightgbm":
            text = (folder / STACKER_FILE).read_text()
            self._booster = _lightgbm().Booster(model_str=text)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        if self.config.stacker == "lightgbm":
            preds = np.column_stack([m.predict_idx(u, i) for m in self.members_])
            return self._stacked(u, i, preds)
        out = np.full(u.size, float(self.intercept_))
        for w, member in zip(self.weights_, self.members_, strict=True):
            out += w * member.predict_idx(u, i)
        return out

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        if self.config.stacker == "lightgbm":
            # the members' ratings (their ranking scores may leave out terms that do not
            # change a user's order, which the trees would read as another rating)
            uu = np.repeat(u, self.n_items)
            ii = np.tile(np.arange(self.n_items), u.size)
            preds = np.column_stack([m.predict_idx(uu, ii) for m in self.members_])
            return self._stacked(uu, ii, preds).reshape(u.size, self.n_items)
        out = np.full((u.size, self.n_items), float(self.intercept_))
        for w, member in zip(self.weights_, self.members_, strict=True):
            out += w * member._score_users(u)
        return out
