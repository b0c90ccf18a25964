"""Quarantine: set rows that break a row-level rule aside, with their reason, instead of failing.

Only row-level failures can be quarantined: a null id, rating or timestamp, a rating outside the
scale, a timestamp in the future, and a repeated ``(user, item)`` pair other than its latest
rating (the rows the default duplicates policy, ``latest``, would drop). Table-level failures
(missing or mistyped columns, too few rows, users or items) are left in place for the suite to
fail on. Nothing is dropped silently: every quarantined row is
returned with a ``reason`` column and counted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from recsys_core.validation.rules import ValidationRules

log = logging.getLogger(__name__)

#: Reasons in the order they are assigned: a row breaking several rules gets the first one.
REASONS = (
    "null_user",
    "null_item",
    "null_rating",
    "null_timestamp",
    "rating_out_of_scale",
    "future_timestamp",
    "duplicate",
)

KEY = ("user", "item")


class Quarantined(NamedTuple):
    """What ``quarantine`` returns; unpacks as ``clean, rows, counts``."""

    clean: pd.DataFrame
    """The rows that pass every row-level rule, with a fresh index."""
    rows: pd.DataFrame
    """The rows set aside, with their original index and a ``reason`` column."""
    counts: dict[str, int]
    """Quarantined rows per reason (only reasons that occur), in ``REASONS`` order."""


def is_numeric(col: pd.Series) -> bool:
    """Whether range rules can be applied to ``col`` (numbers, not booleans)."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def row_failures(frame: pd.DataFrame, rules: ValidationRules) -> dict[str, np.ndarray]:
    """Boolean mask per reason of the rows breaking it (duplicates excluded: see ``quarantine``).

    Rules on a missing or non-numeric column are not applied: those are table-level failures.
    ``rules.max_timestamp`` None means now.
    """
    masks: dict[str, np.ndarray] = {}
    for col in ("user", "item", "rating", "timestamp"):
        if col in frame.columns:
            masks[f"null_{col}"] = frame[col].isna().to_numpy()
    if "rating" in frame.columns and is_numeric(frame["rating"]):
        rating = frame["rating"]
        masks["rating_out_of_scale"] = (
            rating.notna() & ~rating.between(rules.rating_min, rules.rating_max)
        ).to_numpy()
    if "timestamp" in frame.columns and is_numeric(frame["timestamp"]):
        masks["future_timestamp"] = (frame["timestamp"] > rules.timestamp_limit()).to_numpy()
    return masks


def quarantine(frame: pd.DataFrame, rules: ValidationRules | None = None) -> Quarantined:
    """Split ``frame`` into the rows that pass the row-level rules and those set aside.

    Parameters
    ----------
    frame
        The interaction table.
    rules
        The thresholds (defaults when None). Among the otherwise valid rows, a repeated
        ``(user, item)`` pair keeps its latest rating (the last one in the data between equal
        timestamps), as the ``latest`` duplicates policy does; the others are quarantined.

    Returns
    -------
    Quarantined
        ``(clean, rows, counts)``: the clean rows, the quarantined rows with a ``reason``
        column, and the number of quarantined rows per reason.
    """
    rules = (rules or ValidationRules()).resolved()
    n = len(frame)
    reason = np.full(n, None, dtype=object)
    for name, mask in row_failures(frame, rules).items():
        reason[mask & (reason == None)] = name  # noqa: E711 - elementwise on an object array
    if all(c in frame.columns for c in (*KEY, "timestamp")):
        free = np.flatnonzero(reason == None)  # noqa: E711
        rows = frame.iloc[free]
        ts = rows["timestamp"]
        # a non-numeric timestamp column fails the table anyway; the data's order decides then
        order = np.argsort(ts.to_numpy() if is_numeric(ts) else np.zeros(len(rows)), kind="stable")
        beaten = rows.iloc[order][list(KEY)].duplicated(keep="last").to_numpy()
        reason[free[order[beaten]]] = "duplicate"
    bad = reason != None  # noqa: E711
    clean = frame.loc[~bad].reset_index(drop=True)
    rows = frame.loc[bad].assign(reason=reason[bad])
    found = pd.Series(reason[bad]).value_counts()
    counts = {r: int(found[r]) for r in REASONS if r in found.index}
    if counts:
        log.warning("quarantined %d of %d row(s): %s", int(bad.sum()), n, counts)
    return Quarantined(clean, rows, counts)


def write_quarantined(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write quarantined rows to Parquet, their original index as a ``row`` column.

    The parent folders are created; returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = rows.rename_axis("row").reset_index() if "row" not in rows.columns else rows
    out.to_parquet(path, index=False)
    return path
