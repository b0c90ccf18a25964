"""The ``Recommender`` base class every model family implements.

A model works in index space internally and in raw-id space at its public surface:

* ``fit(data: Interactions)`` learns from ratings mapped to contiguous indices; the base class
  keeps the id vocabularies, the training matrix (to exclude seen items), the item popularity and
  the rating scale, so every model can be saved, served and evaluated the same way;
* ``predict(users, items)`` returns ratings for raw id pairs (a pair with an unknown user or item
  gets the bias baseline fitted beside the model, ``recsys_core.models.fallback``);
* ``recommend(users, k)`` returns the top-k unseen items per user (cold users get the most
  popular items);
* ``save(path)`` / ``Recommender.load(path)`` round-trip the fitted state (npz + json).

Subclasses implement ``_fit``, ``_score_users`` (scores of every item for known users) and, for
rating models, ``_predict_idx``.

What a family can do is declared once on its class, in :attr:`Recommender.capabilities` (roles,
ratings, fold-in, factor scoring, Spark, item metadata), beside ``user_axes`` (its per-user
arrays) and ``factor_attributes`` (where its factors live). Code outside ``recsys_core.models``
reads these declarations; it never tests a model's name nor looks for fitted attributes.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import logging
import sys
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Self, TypeVar, cast, get_args

import numpy as np
import pandas as pd
import pydantic
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from recsys_core.exceptions import ConfigError, ModelCapabilityError, NotFittedError
from recsys_core.features.ids import IdVocab, lookup
from recsys_core.features.matrix import Interactions
from recsys_core.features.titles import item_titles
from recsys_core.models import fallback, manifest
from recsys_core.models.top_k import no_exclusions, top_k, top_k_biased_jobs, top_k_jobs
from recsys_core.models.training import EpochCallback, Training

log = logging.getLogger(__name__)

_STATE_FILE = "state.npz"
_META_FILE = "model.json"


def merged_user_axes(cls: type) -> dict[str, int]:
    """The ``user_axes`` of ``cls`` merged along its class hierarchy (subclasses win)."""
    out: dict[str, int] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get("user_axes", {}))
    return out


@functools.cache
def attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the fitted attributes' annotations in the body of ``cls``
    itself (not its bases), each on one line: an annotation, then its docstring on the next line.
    Read from the class's source, as pydantic's ``use_attribute_docstrings`` reads a model's
    fields; a class without source (defined in a REPL) documents nothing."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
    out: dict[str, str] = {}
    for stmt, after in zip(body, body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.target.id.endswith("_")
            and not stmt.target.id.startswith("_")
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[stmt.target.id] = " ".join(after.value.value.split())
    return out


RANKING = "ranking"
RATING = "rating"
ROLES: tuple[str, ...] = (RANKING, RATING)
"""The serving roles: ``ranking`` (top-k lists) and ``rating`` (``/predict``)."""

FoldIn = Literal["factors", "item-item", "model"]


@dataclass(frozen=True)
class Capabilities:
    """What a model family can do, declared once on its class (``capabilities = ...``).

    Like scikit-learn's estimator tags: the scorer, the Spark engine, the gate, ``recsys models``
    and forget read them, so a new family needs no change anywhere else. The contract suite
    (``tests/recsys_core/models/test_contract.py``) checks every family against its declaration.
    """

    predicts_ratings: bool = True
    """``predict`` gives ratings: the family can fill the rating role (``champion-rating``)."""
    fold_in: FoldIn | None = None
    """How :meth:`Recommender.fold_in` scores a user from items given at request time, and the
    arrays the scorer serves from: ``"factors"`` (a user vector solved against the fixed item
    factors of :meth:`Recommender.factors`), ``"item-item"`` (the user's interaction row times
    the item-item weights of :meth:`Recommender.item_item`), ``"model"`` (the family scores,
    folds in and explains by itself: it overrides :meth:`Recommender.fold_in` and
    :meth:`Recommender.explain_idx`; ``mult-vae``, ``rerank``); ``None``: no fold-in."""
    factor_scores: bool = False
    """Every score is ``mu + b_u + b_i + p_u . q_i`` of :meth:`Recommender.factors` (biases
    zero where the family has none): the exported factor tables rebuild the model."""
    scored_in_spark: bool = False
    """The Spark evaluator can score the family (it rebuilds scores from the factors)."""
    fitted_in_spark: bool = False
    """Spark fits the family: the ``auto`` evaluation engine scores it in Spark too."""
    needs_item_metadata: bool = False
    """``fit`` needs the item metadata (title, genres) beside the interactions."""
    serving_requires: tuple[str, ...] = ()
    """Distributions beyond recsys's core that loading and scoring a saved model imports
    (``rerank``: ``lightgbm``): what the pyfunc environment of a logged model must install
    (:func:`recsys_core.tracking.pyfunc.pip_requirements`)."""

    @property
    def roles(self) -> tuple[str, ...]:
        """The serving roles the family can fill: ranking, and rating if it predicts ratings."""
        return ROLES if self.predicts_ratings else (RANKING,)

    def as_dict(self) -> dict[str, Any]:
        return {
            "roles": list(self.roles),
            "predicts_ratings": self.predicts_ratings,
            "fold_in": self.fold_in,
            "factor_scores": self.factor_scores,
            "scored_in_spark": self.scored_in_spark,
            "fitted_in_spark": self.fitted_in_spark,
            "needs_item_metadata": self.needs_item_metadata,
        }


class ModelReason(NamedTuple):
    """One reason of :meth:`Recommender.explain_idx`: in words, with its weight (in the
    family's own units, larger is stronger) and the user's item it names, if any."""

    text: str
    weight: float
    item: int = -1
    """Index of the user's item the reason names (``-1``: none); the scorer gives its id and
    title."""


@dataclass(frozen=True)
class Factors:
    """A factor model's fitted arrays, ``score = global_bias + user_bias[u] + item_bias[i] +
    user[u] . item[i]`` (float32, C-contiguous; the biases zero where the family has none)."""

    user: np.ndarray
    item: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_bias: float
    biased: bool
    """The family learns biases (an explicit rating model)."""


class ModelConfig(BaseModel):
    """Base of every model's hyperparameters: frozen, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def config_error(model: str, exc: pydantic.ValidationError) -> ConfigError:
    """Turn pydantic's error into a message that names the field and the allowed range."""
    from recsys_core.validation_errors import plain

    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown parameter {field!r}")
        else:
            parts.append(f"{field}={err.get('input')!r}: {plain(str(err['msg']))}")
    return ConfigError(f"invalid hyperparameters for model {model!r}: " + "; ".join(parts))


def build_config(
    config_class: type[ModelConfig], model: str, params: dict[str, Any]
) -> ModelConfig:
    """``params`` (strings are converted to the fields' types) as ``config_class``: the one
    check of a model's hyperparameters (the registry, ``ModelSpec`` and ``__init__`` use it).

    Raises
    ------
    ConfigError
        Unknown parameters (the valid ones listed) or invalid values (field and range named).
    """
    fields = config_class.model_fields
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(repr(u) for u in unknown)} for model {model!r}; "
            f"valid: {', '.join(fields) or '(none)'}"
        )
    try:
        return config_class(**params)
    except pydantic.ValidationError as exc:
        raise config_error(model, exc) from None


C = TypeVar("C", bound=ModelConfig)
"""A family's hyperparameters: ``class ALS(BiasedFactors[ALSConfig])``."""


class Recommender(ABC, Generic[C]):
    """Base class of all models (see the module docstring for the contract).

    A family names its hyperparameters' class as its base's parameter
    (``class Bias(Recommender[BiasConfig])``): ``config`` is typed by it, and ``Config`` is set
    to it.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    """The family's hyperparameters' class, from its base's parameter (``__init_subclass__``)."""
    config: C
    capabilities: ClassVar[Capabilities] = Capabilities()
    """What the family can do (see :class:`Capabilities`); declared on each family's class."""
    predicts_ratings: ClassVar[bool] = True
    """``capabilities.predicts_ratings``, copied by ``__init_subclass__`` (never set directly)."""
    bias_fallback: ClassVar[bool] = True
    """Rating models: whether a pair with an unknown user or item is answered by the bias
    baseline fitted beside the model (``recsys_core.models.fallback``) rather than by the
    model's own terms. False where the model's answer is that baseline already, or may not be."""
    fallback_mu_: np.float64
    """mu of the bias baseline that answers pairs with an unknown user or item"""
    fallback_user_bias_: np.ndarray
    """user biases b_u of that baseline, one per user"""
    fallback_item_bias_: np.ndarray
    """item biases b_i of that baseline, one per item"""
    item_titles_: np.ndarray
    """title of each item in the training data's item metadata ('' when unknown; absent without
    metadata): explanations name items by it"""
    factor_attributes: ClassVar[dict[str, str]] = {
        "user_factors": "user_factors_",
        "item_factors": "item_factors_",
        "user_bias": "user_bias_",
        "item_bias": "item_bias_",
        "global_bias": "mu_",
    }
    """Where the family keeps its factors: the fitted attributes exported as
    ``user_factors.parquet``/``item_factors.parquet`` and read by :meth:`factors`."""
    item_item_attributes: ClassVar[dict[str, str]] = {
        "weights": "weights_",
        "user_items": "user_items_",
    }
    """Where an item-item family (``capabilities.fold_in == "item-item"``) keeps its items x items
    weights and its users x items interaction rows: read by :meth:`item_item`."""
    user_axes: ClassVar[dict[str, int]] = {
        "seen_": 0,
        "user_bias_": 0,
        "user_factors_": 0,
        "user_vectors_": 0,
        "fallback_user_bias_": 0,
    }
    """The fitted attributes indexed by user, and the axis of the user (merged along the class
    hierarchy): what :meth:`forget_users` drops. Every per-user array a family stores is here."""
    private_release: ClassVar[frozenset[str] | None] = None
    """The fitted attributes a model's differential-privacy guarantee covers (None: the model
    makes no privacy promise). Every other stored array, scalar and id file is outside it, and
    the saved model's ``MANIFEST`` says so (``recsys_core.models.manifest``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not callable(getattr(cls, "state_docs", None)):
            raise TypeError(
                f"{cls.__name__}: document each fitted attribute by a docstring under its "
                'annotation (mu_: np.float64 then """global mean"""), not in a state_docs dict'
            )
        if "predicts_ratings" in vars(cls):
            raise TypeError(
                f"{cls.__name__}: declare predicts_ratings in its capabilities "
                "(capabilities = Capabilities(predicts_ratings=...)), not alone"
            )
        cls.predicts_ratings = cls.capabilities.predicts_ratings
        for base in vars(cls).get("__orig_bases__", ()):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, ModelConfig):
                    cls.Config = arg

    @classmethod
    def serving_requirements(cls, config: dict[str, Any]) -> tuple[str, ...]:
        """The distributions beyond recsys's core that a saved model of this family with
        ``config`` (its ``model.json`` entry) needs to load and score; members saved in
        subfolders declare their own. Families whose needs depend on the configuration
        override this (``blend`` with the ``lightgbm`` stacker)."""
        del config
        return cls.capabilities.serving_requires

    @classmethod
    def state_docs(cls) -> dict[str, str]:
        """What each fitted attribute holds, written to the ``MANIFEST`` of a saved model: the
        docstrings under the attributes' annotations (:func:`attribute_docs`), merged along the
        class hierarchy, subclasses winning. A family whose state has names known only at fit
        (mult-vae's layers) adds them by overriding this."""
        out: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__.partition(".")[0] not in sys.stdlib_module_names:
                out.update(attribute_docs(klass))  # the families and their mixins
        return out

    @classmethod
    def per_user_arrays(cls) -> dict[str, int]:
        """The fitted attributes indexed by user and the axis of the user (``user_axes``,
        merged along the class hierarchy): what forgetting a user drops."""
        return merged_user_axes(cls)

    # fitted by ``fit`` for every model
    user_vocab_: IdVocab
    item_vocab_: IdVocab
    seen_: sp.csr_matrix
    """users x items ratings of the training data (CSR): the items not to recommend"""
    item_popularity_: np.ndarray
    """training interactions per item: the ranking of cold users"""
    global_mean_: float
    """mean training rating"""
    rating_scale_: np.ndarray
    """[lowest, highest] training rating: predictions are clipped to it"""

    def __init__(self, config: C | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError("pass either a config object or keyword parameters, not both")
        if config is None:
            config = cast(C, build_config(self.Config, self.name or type(self).__name__, params))
        elif not isinstance(config, self.Config):
            raise ConfigError(
                f"model {self.name!r} takes a {self.Config.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.history_: list[dict[str, float]] = []

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as a flat dict (what is logged as run parameters)."""
        return self.config.model_dump()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: Interactions,
        *,
        eval_data: Interactions | None = None,
        callback: EpochCallback | None = None,
    ) -> Self:
        """Learn from ``data``; ``eval_data`` (mapped with the same vocabularies) is only used to
        report a validation curve, ``callback`` is called after each epoch."""
        if len(data) == 0:
            raise ConfigError("cannot fit on an empty interaction set")
        if self.capabilities.needs_item_metadata and data.item_meta is None:
            raise ConfigError(
                f"{self.name} needs item metadata (item, title, genres): train on a source that "
                "has it (a MovieLens release or the synthetic data; a ratings file alone has "
                "none), build the Interactions with item_meta=..., or choose a collaborative model"
            )
        self.user_vocab_ = data.users
        self.item_vocab_ = data.items
        self.seen_ = data.matrix
        self.item_popularity_ = np.bincount(
            data.item_idx[data.item_idx >= 0], minlength=data.n_items
        ).astype(np.float32)
        self.global_mean_ = float(data.rating.mean())
        self.rating_scale_ = np.array([data.rating.min(), data.rating.max()], dtype=np.float64)
        titles = item_titles(data.items.ids, data.item_meta)
        if titles is not None:
            self.item_titles_ = titles
        self.history_ = []
        self.__dict__.pop("_factors_cache", None)
        training = Training(
            self.history_, eval_data=eval_data, rating_scale=self.rating_scale_, callback=callback
        )
        self._fit(data, training)
        if self.predicts_ratings and self.bias_fallback:
            known = data.known
            mu, bu, bi = fallback.fit_biases(
                data.user_idx[known],
                data.item_idx[known],
                data.rating[known],
                data.n_users,
                data.n_items,
            )
            self.fallback_mu_ = np.float64(mu)
            self.fallback_user_bias_ = bu
            self.fallback_item_bias_ = bi
        return self

    @abstractmethod
    def _fit(self, data: Interactions, training: Training) -> None:
        """Learn the model's own state from ``data``; report each epoch to ``training``."""

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "user_vocab_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(data) before predicting"
            )

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.user_vocab_)

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.item_vocab_)

    # ------------------------------------------------------------------ rating prediction
    def predict(self, users: Iterable, items: Iterable) -> np.ndarray:
        """Predicted ratings for raw (user, item) id pairs, clipped to the training scale."""
        self._check_fitted()
        u = self.user_vocab_.index(users)
        i = self.item_vocab_.index(items)
        if u.size != i.size:
            raise ConfigError(f"users and items differ in length: {u.size} != {i.size}")
        return self.predict_idx(u, i)

    def predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Predicted ratings for index pairs (``-1`` = unknown), clipped to the rating scale."""
        self._check_fitted()
        if not self.predicts_ratings:
            raise ModelCapabilityError(
                f"model {self.name!r} ranks items but does not predict ratings; use a rating "
                "model (sgd-mf, als, bias, ...) for RMSE/MAE"
            )
        u, i = np.asarray(u, np.int32), np.asarray(i, np.int32)
        pred = np.asarray(self._predict_idx(u, i), dtype=np.float64)
        cold = (u < 0) | (i < 0)
        # a model saved before the fallback existed keeps its own answer
        if cold.any() and hasattr(self, "fallback_item_bias_"):
            pred = pred.copy()
            pred[cold] = fallback.predict(
                float(self.fallback_mu_),
                self.fallback_user_bias_,
                self.fallback_item_bias_,
                u[cold],
                i[cold],
            )
        return np.clip(pred, self.rating_scale_[0], self.rating_scale_[1])

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        raise ModelCapabilityError(f"model {self.name!r} does not predict ratings")

    # ------------------------------------------------------------------ ranking
    @abstractmethod
    def _score_users(self, u: np.ndarray) -> np.ndarray:
        """Scores of every item for known user indices ``u``: shape ``(len(u), n_items)``."""

    def _fallback_scores(self, n: int) -> np.ndarray:
        """Scores for unknown users: item popularity."""
        return np.broadcast_to(self.item_popularity_, (n, self.n_items))

    def recommend_idx(
        self,
        u: np.ndarray,
        k: int = 10,
        *,
        exclude: sp.csr_matrix | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for user indices ``u`` (``-1`` = cold user).

        ``exclude`` is a CSR matrix with one row per entry of ``u`` whose non-zeros are items
        never to recommend (typically the user's training items). Slots that cannot be filled
        (fewer candidates than ``k``) hold item ``-1`` and score ``-inf``.
        """
        self._check_fitted()
        if k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        u = np.asarray(u, dtype=np.int32)
        n_items = self.n_items
        kk = min(k, n_items)
        out_items = np.full((u.size, k), -1, dtype=np.int64)
        out_scores = np.full((u.size, k), -np.inf, dtype=np.float64)
        if u.size == 0:
            return out_items, out_scores
        ex = no_exclusions(u.size) if exclude is None else sp.csr_matrix(exclude)
        # the selection writes k columns; a k above the catalogue keeps its empty slots
        items_k = out_items if kk == k else np.full((u.size, kk), -1, dtype=np.int64)
        scores_k = out_scores if kk == k else np.full((u.size, kk), -np.inf, np.float64)
        known = np.flatnonzero(u >= 0)
        cold = np.flatnonzero(u < 0)
        if cold.size:  # one popularity row for every cold user, never copied per user
            row = np.asarray(self._fallback_scores(1))[:1]
            top_k_jobs(row, np.zeros(cold.size, np.int64), cold, ex, items_k, scores_k)
        shared = self._shared_scores()
        if shared is not None and known.size:  # one list for everyone, scored once
            top_k_jobs(
                np.asarray(shared)[None, :],
                np.zeros(known.size, np.int64),
                known,
                ex,
                items_k,
                scores_k,
            )
        elif known.size and self.capabilities.factor_scores:
            self._recommend_factors(u, known, ex, items_k, scores_k, batch_size)
        elif known.size:
            for start in range(0, known.size, batch_size):
                dest = known[start : start + batch_size]
                block = np.ascontiguousarray(self._score_users(u[dest]))
                top_k_jobs(block, np.arange(dest.size, dtype=np.int64), dest, ex, items_k, scores_k)
        if kk < k:
            out_items[:, :kk] = items_k
            out_scores[:, :kk] = scores_k
        return out_items, out_scores

    def _recommend_factors(
        self,
        u: np.ndarray,
        known: np.ndarray,
        exclude: sp.csr_matrix,
        items_k: np.ndarray,
        scores_k: np.ndarray,
        batch_size: int,
    ) -> None:
        """The top-k of a factor model's known users ``u[known]`` (``capabilities.
        factor_scores``): the scores of ``factor_scores``, block by block, with one float32
        buffer for every block's dot products (one matrix product, all BLAS threads) and the
        biases added inside the parallel selection, not by passes over the block."""
        f = self.factors()
        n = min(batch_size, known.size)
        buf = np.empty((n, f.item.shape[0]), dtype=np.float32)
        item_t = f.item.T
        for start in range(0, known.size, batch_size):
            dest = known[start : start + batch_size]
            users = u[dest]
            block = buf[: dest.size]
            np.matmul(f.user[users], item_t, out=block)
            if f.biased:
                item_bias = f.item_bias
                row_bias = np.float32(f.global_bias) + f.user_bias[users]
            else:
                item_bias = np.zeros(f.item.shape[0], np.float32)
                row_bias = np.zeros(dest.size, np.float32)
            top_k_biased_jobs(block, item_bias, row_bias, dest, exclude, items_k, scores_k)

    def _shared_scores(self) -> np.ndarray | None:
        """The scores of every known user when they are one row for all (a baseline's), else
        ``None``: ``recommend_idx`` then selects the top-k of that row once per user, without
        scoring users one by one."""
        return None

    def recommend(
        self,
        users: Iterable,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` recommendations for raw user ids as a frame ``user, rank, item, score``.

        ``exclude_seen`` removes the items each user had in the training data; ``exclude`` is an
        optional frame of further ``user, item`` pairs to remove.
        """
        self._check_fitted()
        user_ids = pd.Series(list(users), dtype=object).astype(str).to_numpy()
        u = self.user_vocab_.index(user_ids)
        mask = self.exclusion_matrix(u, user_ids, exclude, exclude_seen=exclude_seen)
        items, scores = self.recommend_idx(u, k, exclude=mask)
        rows = np.repeat(np.arange(u.size), k)
        flat_items = items.ravel()
        valid = flat_items >= 0
        return pd.DataFrame(
            {
                "user": user_ids[rows][valid],
                "rank": np.tile(np.arange(1, k + 1), u.size)[valid],
                "item": self.item_vocab_.ids[flat_items[valid]],
                "score": scores.ravel()[valid],
            }
        )

    def exclusion_matrix(
        self,
        u: np.ndarray,
        user_ids: np.ndarray,
        exclude: pd.DataFrame | None = None,
        *,
        exclude_seen: bool = True,
    ) -> sp.csr_matrix | None:
        """CSR (one row per requested user) of the items to keep out of their lists."""
        parts = []
        if exclude_seen:
            rows = np.where(u >= 0, u, 0)
            seen = self.seen_[rows]
            seen = sp.diags((u >= 0).astype(np.float32)) @ seen  # cold users have no history
            parts.append(seen.astype(bool).astype(np.float32))
        if exclude is not None and len(exclude):
            pos = lookup(pd.Index(user_ids), exclude["user"])
            it = self.item_vocab_.index(exclude["item"])
            ok = (pos >= 0) & (it >= 0)
            parts.append(
                sp.csr_matrix(
                    (np.ones(ok.sum(), np.float32), (pos[ok], it[ok])),
                    shape=(len(user_ids), self.n_items),
                )
            )
        if not parts:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return sp.csr_matrix(out)

    # ------------------------------------------------------------------ fold-in and serving
    def fold_in(
        self, items: np.ndarray, ratings: np.ndarray | None = None, *, user: int = -1
    ) -> np.ndarray:
        """Scores of every item for a user who has just interacted with ``items``.

        ``items`` are item indices, ``ratings`` their values (``None``: plain interactions,
        which explicit models count at the top of the training scale); they are added to the
        training history of user index ``user`` (``-1``: a user the model never saw). The model
        is not changed (implicit's ``recalculate_user``, LensKit's ``new_user_embedding``).
        Families declare how in ``capabilities.fold_in``; a family with another way overrides
        this method.

        Raises
        ------
        ModelCapabilityError
            The family cannot fold a user in (``capabilities.fold_in`` is ``None``).
        """
        self._check_fitted()
        from recsys_core.models import fold_in

        how = self.capabilities.fold_in
        if how is None:
            raise ModelCapabilityError(
                f"model {self.name!r} cannot fold in a user at request time; use an item-item "
                "(ease, item-knn-implicit) or factor model (sgd-mf, als, implicit-als)"
            )
        items = np.asarray(items, dtype=np.int64)
        if how == "factors":
            return fold_in.factor_scores(self, items, ratings, user)
        if how == "item-item":
            return fold_in.item_item_scores(self, items, ratings, user)
        raise ModelCapabilityError(
            f"model {self.name!r} declares fold_in={how!r} but does not override fold_in"
        )

    def explain_idx(
        self, items: np.ndarray, *, user: int = -1, recent: np.ndarray | None = None
    ) -> list[tuple[ModelReason, ...]] | None:
        """A family's own explanations (``capabilities.fold_in == "model"``): for each of
        ``items`` (item indices), its reasons, largest weight first, for user index ``user``
        (``-1``: a user the model never saw) with the item indices ``recent`` folded in;
        ``None``: the family gives none (the scorer says so in its warnings)."""
        return None

    def factors(self) -> Factors:
        """The fitted factors named by ``factor_attributes`` (``capabilities.fold_in ==
        "factors"``), float32 and contiguous, cached on first use.

        Raises
        ------
        ModelCapabilityError
            The family keeps no user and item factors.
        """
        self._check_fitted()
        cached = self.__dict__.get("_factors_cache")
        if cached is not None:
            return cached
        attrs = self.factor_attributes
        user = getattr(self, attrs.get("user_factors", ""), None)
        item = getattr(self, attrs.get("item_factors", ""), None)
        if user is None or item is None:
            raise ModelCapabilityError(f"model {self.name!r} keeps no user and item factors")
        biased = self.predicts_ratings and hasattr(self, attrs.get("item_bias", ""))
        user_bias = getattr(self, attrs["user_bias"]) if biased else np.zeros(len(user))
        item_bias = getattr(self, attrs["item_bias"]) if biased else np.zeros(len(item))
        out = Factors(
            user=np.ascontiguousarray(user, dtype=np.float32),
            item=np.ascontiguousarray(item, dtype=np.float32),
            user_bias=np.asarray(user_bias, np.float32),
            item_bias=np.asarray(item_bias, np.float32),
            global_bias=float(getattr(self, attrs.get("global_bias", ""), 0.0)) if biased else 0.0,
            biased=biased,
        )
        self.__dict__["_factors_cache"] = out
        return out

    def item_item(self) -> tuple[Any, sp.csr_matrix]:
        """An item-item family's weights (items x items, dense or CSR) and users x items rows
        (CSR), named by ``item_item_attributes``.

        Raises
        ------
        ModelCapabilityError
            The family keeps no item-item weights.
        """
        self._check_fitted()
        attrs = self.item_item_attributes
        weights = getattr(self, attrs.get("weights", ""), None)
        rows = getattr(self, attrs.get("user_items", ""), None)
        if weights is None or rows is None:
            raise ModelCapabilityError(f"model {self.name!r} keeps no item-item weights")
        return weights, sp.csr_matrix(rows)

    # ------------------------------------------------------------------ forgetting
    def forget_users(self, users: Iterable) -> int:
        """Drop ``users`` from the fitted state, in place; returns how many the model held.

        Their rows go from every user-indexed attribute (:attr:`user_axes`) and their ids from
        the user vocabulary, so the model answers them as users it never saw (the cold-user
        fallback; fold-in at serving). Item-level state is left as it is. Unknown ids are
        ignored, so forgetting twice changes nothing.
        """
        self._check_fitted()
        idx = self.user_vocab_.index(pd.Series(list(users), dtype=object).astype(str))
        idx = np.unique(idx[idx >= 0])
        if idx.size == 0:
            return 0
        keep = np.ones(len(self.user_vocab_), dtype=bool)
        keep[idx] = False
        self._drop_users(keep)
        self.__dict__.pop("_factors_cache", None)
        self.user_vocab_ = IdVocab(self.user_vocab_.ids[keep])
        return int(idx.size)

    def _drop_users(self, keep: np.ndarray) -> None:
        """Keep only the users where ``keep`` is true in every user-indexed attribute."""
        for attr, axis in self.per_user_arrays().items():
            value = getattr(self, attr, None)
            if value is None:
                continue
            if sp.issparse(value):
                csr = sp.csr_matrix(cast(Any, value))
                setattr(self, attr, sp.csr_matrix(csr[keep] if axis == 0 else csr[:, keep]))
            else:
                setattr(self, attr, np.compress(keep, np.asarray(value), axis=axis))

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        """Fitted attributes to persist: every public attribute ending in ``_``."""
        skip = {"user_vocab_", "item_vocab_", "history_"}
        return {
            k: v
            for k, v in vars(self).items()
            if k.endswith("_") and not k.startswith("_") and k not in skip
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted model into folder ``path`` (created).

        ``state.npz``, ``<name>.npz`` (sparse), ``user_ids.json``, ``item_ids.json`` and
        ``model.json`` are what ``load`` reads; ``MANIFEST.json``, ``MANIFEST.md`` and the
        ``*_factors.parquet`` tables describe and export them for readers outside recsys
        (``recsys_core.models.manifest``).
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}
        scalars: dict[str, Any] = {}
        sparse: dict[str, Any] = {}
        for key, value in self._state().items():
            if sp.issparse(value):
                # scipy-stubs narrow issparse() to a protocol that csr_matrix() does not take
                sparse[key] = sp.csr_matrix(cast(Any, value))
                sp.save_npz(folder / f"{key}.npz", sparse[key])
            elif isinstance(value, np.ndarray):
                arrays[key] = value
            else:
                scalars[key] = value
        np.savez(folder / _STATE_FILE, **arrays)
        self.user_vocab_.save(folder / "user_ids.json")
        self.item_vocab_.save(folder / "item_ids.json")
        meta = {
            "model": self.name,
            "config": self.get_params(),
            "scalars": scalars,
            "sparse": sorted(sparse),
            "history": self.history_,
        }
        (folder / _META_FILE).write_text(json.dumps(meta, indent=2, default=manifest.json_default))
        manifest.write(self, folder, arrays, scalars, sparse, _STATE_FILE)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by ``save`` (the class is looked up in the registry)."""
        from recsys_core.models.registry import get_model_class

        folder = Path(path)
        meta = json.loads((folder / _META_FILE).read_text())
        klass = get_model_class(meta["model"]) if cls is Recommender else cls
        model = klass(**meta["config"])
        model.user_vocab_ = IdVocab.load(folder / "user_ids.json")
        model.item_vocab_ = IdVocab.load(folder / "item_ids.json")
        with np.load(folder / _STATE_FILE, allow_pickle=False) as state:
            for key in state.files:
                setattr(model, key, state[key])
        for key in meta["sparse"]:
            setattr(model, key, sp.csr_matrix(sp.load_npz(folder / f"{key}.npz")))
        for key, value in meta["scalars"].items():
            setattr(model, key, value)
        model.history_ = meta.get("history", [])
        model._after_load(folder)
        return model

    def _after_load(self, folder: Path) -> None:  # noqa: B027 - an optional hook
        """Hook for models that rebuild derived state after loading."""


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best columns (``k <= n_columns``) and their scores, best first; a
    ``-inf`` score (excluded item) comes back as column ``-1``, ties go to the lower column.
    Shared by ``recommend_idx`` and the Spark evaluator, so that both break ties alike."""
    return top_k(scores, k)
