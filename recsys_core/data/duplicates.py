"""The duplicates policy: what one (user, item) pair rated several times becomes.

Every path that reads interactions applies it once, right after reading: ``collect`` (the
training flow) and ``recsys evaluate`` (both files), so that every model sees one rating per
pair, whatever it does with repeated rows internally.

``latest`` (default)
    keep the row with the latest timestamp; between rows with the same timestamp, the one that
    comes last in the data (a later correction of an earlier line).
``mean``
    one row with the mean rating and the latest timestamp.
``refuse``
    raise ``DataError`` naming the first repeated pair and where it occurs.

A pair counts as repeated whatever its timestamps: a rating is the user's opinion of the item,
and two of them are either a correction (``latest``), noise to average (``mean``), or a
problem in the data (``refuse``).
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

import numpy as np
import pandas as pd

from recsys_core.exceptions import ConfigError, DataError

log = logging.getLogger(__name__)

DuplicatesPolicy = Literal["latest", "mean", "refuse"]
POLICIES: tuple[str, ...] = get_args(DuplicatesPolicy)
PAIR = ["user", "item"]


def resolve_duplicates(
    frame: pd.DataFrame, policy: str = "latest", *, origin: str = "the data"
) -> tuple[pd.DataFrame, int]:
    """Apply the duplicates ``policy`` to a canonical interaction table.

    Parameters
    ----------
    frame
        Canonical interactions (``user``, ``item``, ``rating``, ``timestamp``).
    policy
        ``latest``, ``mean`` or ``refuse`` (see the module docstring).
    origin
        Where the table came from, used in the message of ``refuse``.

    Returns
    -------
    tuple
        The table with one row per (user, item) pair, in the order of each pair's first
        occurrence, with a fresh index; and the number of rows removed.
    """
    if policy not in POLICIES:
        raise ConfigError(f"unknown duplicates policy {policy!r}; use one of {', '.join(POLICIES)}")
    categorical = [c for c in PAIR if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if len(categorical) == len(PAIR):
        # ids carried as codes: one int64 key per row, no string hashed
        repeated = _pair_keys(frame).duplicated(keep=False).to_numpy()
    else:
        repeated = frame.duplicated(PAIR, keep=False).to_numpy()
    if not repeated.any():
        return frame, 0
    if categorical:
        # rare (repeated pairs): resolved on the text ids, then the categoricals are rebuilt
        dtypes = {c: frame[c].dtype for c in categorical}
        out, dropped = resolve_duplicates(
            frame.astype({c: object for c in categorical}), policy, origin=origin
        )
        return out.astype(dtypes), dropped
    if policy == "refuse":
        raise DataError(_first_pair_message(frame, repeated, origin))
    n_before = len(frame)
    first_seen = frame.groupby(PAIR, sort=False, dropna=False).ngroup()
    if policy == "latest":
        # the stable sort keeps the data's order between equal timestamps: the last one wins
        out = (
            frame.assign(_pair=first_seen)
            .sort_values("timestamp", kind="stable")
            .drop_duplicates(PAIR, keep="last")
            .sort_values("_pair", kind="stable")
            .drop(columns="_pair")
        )
    else:
        # skipna=False: a null rating stays null, for validation to report, never averaged away
        grouped = frame.groupby(PAIR, sort=False, dropna=False)
        out = pd.DataFrame(
            {
                "rating": grouped["rating"].mean(skipna=False),
                "timestamp": grouped["timestamp"].max(),
            }
        ).reset_index()
        out = out[list(frame.columns)].astype(frame.dtypes.to_dict())
    out = out.reset_index(drop=True)
    dropped = n_before - len(out)
    log.info(
        "duplicates policy %r: %d repeated (user, item) row(s) resolved, %d removed",
        policy,
        int(repeated.sum()),
        dropped,
    )
    return out, dropped


def _pair_keys(frame: pd.DataFrame) -> pd.Series:
    """One int64 per row that is equal for equal (user, item) pairs, from the categoricals'
    codes (a missing id, code -1, is a value of its own)."""
    user = frame["user"].cat.codes.to_numpy().astype(np.int64) + 1
    item = frame["item"].cat.codes.to_numpy().astype(np.int64) + 1
    return pd.Series(user * (len(frame["item"].cat.categories) + 1) + item)


def _first_pair_message(frame: pd.DataFrame, repeated, origin: str) -> str:
    first = frame.loc[repeated].iloc[0]
    same = (frame["user"] == first["user"]) & (frame["item"] == first["item"])
    rows = [int(p) + 1 for p in (same.to_numpy().nonzero()[0])]
    shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
    n_pairs = int(frame.loc[repeated].drop_duplicates(PAIR).shape[0])
    return (
        f"{origin} rates the same (user, item) pair more than once: user {first['user']!r} and "
        f"item {first['item']!r} on data rows {shown} (first data row is 1), and "
        f"{n_pairs - 1} other repeated pair(s). Choose a duplicates policy: 'latest' keeps the "
        "latest rating of each pair, 'mean' averages them (--duplicates on the command line)"
    )
