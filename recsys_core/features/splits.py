"""Train/test splits.

* ``time`` (the default): one global cutoff ``t`` chosen so that ``test_fraction`` of the
  interactions fall after it; train is ``timestamp < t``, test ``timestamp >= t``. Nothing from
  the future leaks into training (Ji et al., "A critical study on data leakage in recommender
  system offline evaluation", TOIS 2023).
* ``random``: a seeded random split of the interactions.
* ``replay``: the ``time`` split's cutoff, and an evaluation that walks the test period in time
  order, folding each user's earlier test interactions in before scoring the next one
  (``recsys_core.evaluation.replay``): the rows are the same, the protocol that scores them is not.
* ``last_k``: per user, the ``k`` latest interactions go to test (leave-last-out). Note that it
  leaks future interactions of other users into training; prefer ``time`` for ranking metrics.

Test users and items never seen in training are kept in the test set and counted; models score
them through their fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.exceptions import ConfigError, DataError


class SplitConfig(BaseModel):
    """How to split interactions into train and test."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["time", "random", "last_k", "replay"] = Field(
        "time",
        description="time: global cutoff; random: seeded; last_k: per-user latest k; "
        "replay: the time cutoff, the test period replayed in time order with fold-in",
    )
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of rows in test")
    last_k: int = Field(1, ge=1, description="test rows per user for strategy=last_k")
    seed: int = Field(42, description="seed of the random split")


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    info: dict


def split(frame: pd.DataFrame, config: SplitConfig | None = None) -> Split:
    """Split a canonical interaction frame."""
    cfg = config or SplitConfig()
    if len(frame) < 2:
        raise DataError(f"cannot split {len(frame)} interaction(s); at least 2 are needed")
    if cfg.strategy in ("time", "replay"):
        train, test, extra = _time_split(frame, cfg.test_fraction)
    elif cfg.strategy == "random":
        rng = np.random.default_rng(cfg.seed)
        mask = rng.random(len(frame)) < cfg.test_fraction
        train, test, extra = frame[~mask], frame[mask], {}
    elif cfg.strategy == "last_k":
        # positions, not index labels: the frame's index may repeat (a concatenation)
        pos = frame.reset_index(drop=True)
        order = pos.sort_values(["user", "timestamp"], kind="stable")
        rank_from_end = order.groupby("user").cumcount(ascending=False).sort_index()
        # users with no more than k rows stay whole in training; a new array, not an in-place
        # update (arrays from to_numpy() are read-only under pandas' copy-on-write)
        sizes = pos.groupby("user")["user"].transform("size").to_numpy()
        mask = (rank_from_end.to_numpy() < cfg.last_k) & (sizes > cfg.last_k)
        train, test, extra = frame[~mask], frame[mask], {}
    else:  # pragma: no cover - pydantic forbids it
        raise ConfigError(f"unknown split strategy {cfg.strategy!r}")
    if train.empty or test.empty:
        raise DataError(
            f"the {cfg.strategy!r} split left {len(train)} training and {len(test)} test rows; "
            "use more data or another test_fraction"
        )
    train = train.reset_index(drop=True)
    test = test.reset_index(drop=True)
    train_users = set(train["user"].unique())
    train_items = set(train["item"].unique())
    info = {
        "strategy": cfg.strategy,
        "n_train": len(train),
        "n_test": len(test),
        "test_users": int(test["user"].nunique()),
        "cold_users": int(len(set(test["user"].unique()) - train_users)),
        "cold_items": int(len(set(test["item"].unique()) - train_items)),
        "cold_user_rows": int((~test["user"].isin(train_users)).sum()),
        "cold_item_rows": int((~test["item"].isin(train_items)).sum()),
        **extra,
    }
    return Split(train, test, info)


def _time_split(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    ts = frame["timestamp"].to_numpy()
    cutoff = int(np.quantile(ts, 1.0 - fraction, method="higher"))
    mask = ts >= cutoff
    if mask.all():  # all timestamps equal: nothing can be held out in time
        raise DataError(
            "the time split needs timestamps that vary; all rows have the same timestamp. "
            "Use split strategy 'random'"
        )
    return frame[~mask], frame[mask], {"cutoff": cutoff}
