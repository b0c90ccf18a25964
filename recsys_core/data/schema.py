"""The canonical interaction table every source is normalized into.

Columns: ``user`` (string id), ``item`` (string id), ``rating`` (float64), ``timestamp`` (int64,
seconds since the epoch, UTC). Item metadata, when a source has it, is a second table with
``item`` (string id), ``title`` (string) and ``genres`` (``|``-separated string).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys_core.columns import COLUMNS as COLUMNS
from recsys_core.columns import ITEM_COLUMNS as ITEM_COLUMNS
from recsys_core.exceptions import DataError


@dataclass
class Collected:
    """What a source returns: interactions, optional item metadata, and where it came from."""

    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    source: str = ""
    rating_scale: tuple[float, float] = (1.0, 5.0)
    extra: dict = field(default_factory=dict)


def normalize_interactions(
    frame: pd.DataFrame,
    columns: dict[str, str] | None = None,
    *,
    origin: str = "data",
    categorical_ids: bool = False,
) -> pd.DataFrame:
    """Rename, type and order columns into the canonical interaction table.

    Parameters
    ----------
    frame
        The raw table.
    columns
        Mapping canonical name -> column name in ``frame`` (for example ``{"user": "userId"}``).
        Canonical names missing from the mapping are looked up under their own name and a few
        common aliases (``userId``, ``movieId``, ``item_id``, ...).
    origin
        Where the table came from, used in error messages.
    categorical_ids
        The ``user`` and ``item`` columns as pandas categoricals of their text ids (the same
        text as without it) instead of object columns: the integer codes and the vocabulary
        travel with the table, so that the duplicates check, the id vocabularies and the
        evaluation's id mapping read codes instead of hashing every row's string again. A
        Parquet dictionary column keeps its codes; another column is factorized once here.
    """
    columns = dict(columns or {})
    aliases = {
        "user": ("user", "user_id", "userid", "userId", "uid"),
        "item": ("item", "item_id", "itemid", "movieId", "movie_id", "iid"),
        "rating": ("rating", "ratings", "score", "value"),
        "timestamp": ("timestamp", "ts", "time", "datetime"),
    }
    rename = {}
    for canon in COLUMNS:
        if canon in columns:
            src = columns[canon]
            if src not in frame.columns:
                raise DataError(
                    f"column {src!r} (mapped to {canon!r}) is not in {origin}; "
                    f"its columns are {list(map(str, frame.columns))!r}"
                )
            rename[src] = canon
            continue
        for alias in aliases[canon]:
            if alias in frame.columns:
                rename[alias] = canon
                break
    out = frame.rename(columns=rename)
    missing = [c for c in ("user", "item") if c not in out.columns]
    if missing:
        raise DataError(
            f"{origin} has no {' and no '.join(repr(m) for m in missing)} column; its columns are "
            f"{list(map(str, frame.columns))!r}. Map them with a column mapping such as "
            "user=userId,item=movieId,rating=rating,timestamp=timestamp"
        )
    if "rating" not in out.columns:
        # implicit feedback (clicks, purchases): every row is one positive interaction
        out["rating"] = 1.0
    if "timestamp" not in out.columns:
        out["timestamp"] = 0
    # a new frame whose columns are each replaced below: the caller's frame is never written,
    # and no copy of every column is made first
    out = out[list(COLUMNS)]
    as_id = _as_categorical_id if categorical_ids else _as_id
    out["user"] = as_id(out["user"])
    out["item"] = as_id(out["item"])
    out["rating"] = _as_number(out["rating"], "rating", origin).astype("float64")
    ts = out["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        out["timestamp"] = (ts.astype("datetime64[s]").astype("int64")).astype("int64")
    else:
        ts = _as_number(ts, "timestamp", origin)
        out["timestamp"] = ts.fillna(0).astype("int64")
    return out.reset_index(drop=True)


def as_categorical_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (canonical) with its ``user`` and ``item`` columns as categoricals of their
    text ids; a column that is one already is kept as it is."""
    todo = [c for c in ("user", "item") if not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not todo:
        return frame
    return frame.assign(**{c: _as_categorical_id(frame[c]) for c in todo})


def _as_id(col: pd.Series) -> pd.Series:
    if isinstance(col.dtype, pd.CategoricalDtype):
        # the text of each distinct id once, shared by its rows (a Parquet dictionary)
        text = _as_id(pd.Series(col.cat.categories)).to_numpy(dtype=object)
        codes = col.cat.codes.to_numpy()
        with_none = np.empty(text.size + 1, dtype=object)
        with_none[: text.size] = text  # the last slot stays None: code -1 (missing) picks it
        out = with_none[codes]
        return pd.Series(out, index=col.index, dtype=object)
    if pd.api.types.is_float_dtype(col):
        # ids read as float because of missing values: 12.0 -> "12"
        ints = col.astype("Int64")
        return ints.astype("string").astype(object).where(col.notna(), None)
    return col.astype("string").astype(object).where(col.notna(), None)


def _as_categorical_id(col: pd.Series) -> pd.Series:
    """The text ids of ``col`` as a categorical (code -1 where missing): a categorical's codes
    kept, with its categories' text (when that text is unique); any other column factorized
    once."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        text = _as_id(pd.Series(col.cat.categories))
        if text.notna().all() and not text.duplicated().any():
            categories = pd.Index(text.to_numpy(dtype=object), dtype=object)
            return pd.Series(
                pd.Categorical.from_codes(
                    col.cat.codes.to_numpy(), dtype=pd.CategoricalDtype(categories)
                ),
                index=col.index,
            )
    values = _as_id(col)
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))  # None: code -1
    return pd.Series(
        pd.Categorical.from_codes(
            codes, dtype=pd.CategoricalDtype(pd.Index(uniques, dtype=object))
        ),
        index=col.index,
    )


def _as_number(col: pd.Series, name: str, origin: str) -> pd.Series:
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)  # numbers stored as text in a Parquet file
    # booleans convert to 0/1 without complaint; a True rating is a mapping mistake, not a 1
    if pd.api.types.is_bool_dtype(col):
        is_bool = col.notna().to_numpy(dtype=bool)
    elif col.dtype == object:
        is_bool = col.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    else:
        is_bool = np.zeros(len(col), dtype=bool)
    if is_bool.any():
        raise DataError(
            f"column {name!r} of {origin} holds booleans, not numbers: {int(is_bool.sum())} "
            f"value(s), {_example_row(col, is_bool)}. Convert them to numbers in the data, or map "
            f"another column onto {name!r} (--columns {name}=<column>)"
        )
    converted = pd.to_numeric(col, errors="coerce")
    bad = (converted.isna() & col.notna()).to_numpy()
    if bad.any():
        sample = col[bad].head(3).tolist()
        raise DataError(
            f"column {name!r} of {origin} must be numeric; {int(bad.sum())} value(s) are not, "
            f"such as {sample!r}, {_example_row(col, bad)}. Fix those rows, or map the right "
            f"column onto {name!r} (--columns {name}=<column>)"
        )
    return converted


def _example_row(col: pd.Series, bad: np.ndarray) -> str:
    pos = int(np.flatnonzero(bad)[0])
    return f"for example data row {pos + 1} (first data row is 1): {col.iloc[pos]!r}"


def check_rows(frame: pd.DataFrame, scale: tuple[float, float], *, origin: str = "data") -> None:
    """Refuse rows without a user or item id, and ratings that are missing, not finite, or
    outside ``scale`` (inclusive).

    The training flow's validation suite applies the same rules (and can quarantine the rows);
    this is the check for paths without it, such as ``recsys evaluate``.
    """
    for col in ("user", "item"):
        missing = frame[col].isna().to_numpy()
        if missing.any():
            pos = int(np.flatnonzero(missing)[0])
            raise DataError(
                f"column {col!r} of {origin}: {int(missing.sum())} row(s) without a {col} id, for "
                f"example data row {pos + 1} (first data row is 1): "
                f"{frame.iloc[pos][list(COLUMNS)].to_dict()!r}. Drop or repair those rows"
            )
    lo, hi = scale
    rating = frame["rating"].to_numpy(dtype=np.float64)
    problems = (
        ("missing (NaN)", np.isnan(rating)),
        ("not finite (inf)", np.isinf(rating)),
        (
            f"outside the rating scale [{lo!r}, {hi!r}]",
            np.isfinite(rating) & ((rating < lo) | (rating > hi)),
        ),
    )
    for what, bad in problems:
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            row = frame.iloc[pos]
            raise DataError(
                f"column 'rating' of {origin}: {int(bad.sum())} rating(s) {what}, for example data "
                f"row {pos + 1} (first data row is 1): user={row['user']!r}, item={row['item']!r}, "
                f"rating={float(row['rating'])!r}. Ratings must be finite numbers on the scale: "
                "fix or drop those rows, or set the scale to the data's (--rating-min, "
                "--rating-max)"
            )


def normalize_items(frame: pd.DataFrame) -> pd.DataFrame:
    """Item metadata table with ``item``, ``title``, ``genres`` as strings."""
    out = frame.copy()
    for col in ITEM_COLUMNS:
        if col not in out.columns:
            out[col] = ""
    out = out[list(ITEM_COLUMNS)]
    out["item"] = _as_id(out["item"])
    out["title"] = out["title"].fillna("").astype(str)
    out["genres"] = out["genres"].fillna("").astype(str)
    return out.drop_duplicates("item").reset_index(drop=True)


def empty_interactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": pd.Series([], dtype=object),
            "item": pd.Series([], dtype=object),
            "rating": np.array([], dtype="float64"),
            "timestamp": np.array([], dtype="int64"),
        }
    )
