"""Id vocabularies: raw string ids <-> contiguous integer indices. They travel with every model."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd


class IdVocab:
    """A frozen mapping from raw ids (strings) to ``0..n-1``.

    Unknown ids map to ``-1``; callers decide what a cold id means (usually a fallback).
    """

    def __init__(self, ids: Iterable) -> None:
        values = pd.Index(
            pd.Series(list(ids) if not isinstance(ids, pd.Index) else ids)
            .astype(str)
            .to_numpy(dtype=object)
        )
        if values.has_duplicates:
            raise ValueError("an id vocabulary cannot hold duplicate ids")
        self._index = values

    @classmethod
    def from_values(cls, values: Iterable) -> IdVocab:
        """Vocabulary of the distinct values, in sorted order (deterministic)."""
        return cls(np.sort(distinct_text(values).to_numpy(dtype=object)))

    def __len__(self) -> int:
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"IdVocab(n={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        return self._index.to_numpy(dtype=object)

    def index(self, ids: Iterable) -> np.ndarray:
        """Indices of ``ids`` (``-1`` where unknown), as int32.

        The rows are factorized first and only the distinct ids are turned into text and looked
        up: at 25M rows of 160K users that is 160K lookups, not 25M string conversions.
        """
        return lookup(self._index, ids)

    def id_of(self, idx: np.ndarray) -> np.ndarray:
        """Raw ids of indices ``idx``; ``None`` where the index is ``-1`` (unknown)."""
        idx = np.asarray(idx, dtype=np.int64)
        # a plain ids[idx] would turn -1 into the last id of the vocabulary
        out = np.full(idx.shape, None, dtype=object)
        ok = idx >= 0
        out[ok] = self.ids[idx[ok]]
        return out

    def to_list(self) -> list[str]:
        return [str(x) for x in self._index]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_list()))

    @classmethod
    def load(cls, path: str | Path) -> IdVocab:
        return cls(json.loads(Path(path).read_text()))


def lookup(index: pd.Index, ids: Iterable) -> np.ndarray:
    """Positions (int32, ``-1`` where absent) of the text of ``ids`` in ``index`` (unique text
    ids): the rows factorized, only the distinct ids turned into text and looked up.

    A categorical ``ids`` (the ids as the Parquet reader gives them, ``categorical_ids``) is
    factorized already: its categories are looked up, and its codes pick the rows' positions.
    """
    if _is_categorical(ids):
        cat = pd.Series(ids).cat
        # one more slot for code -1 (a missing id), looked up as the object path would
        keys = np.empty(len(cat.categories) + 1, dtype=object)
        keys[:-1] = cat.categories.to_numpy(dtype=object)
        keys[-1] = None
        found = index.get_indexer(pd.Index(_as_text(keys))).astype(np.int32)
        return found[cat.codes.to_numpy()]
    codes, uniques = pd.factorize(_values(ids), use_na_sentinel=False)
    found = index.get_indexer(pd.Index(_as_text(uniques))).astype(np.int32)
    return found[codes] if codes.size else np.empty(0, np.int32)


def distinct_text(ids: Iterable) -> pd.Index:
    """The distinct ids of ``ids`` as text, in order of first appearance for plain values (a
    categorical's: in order of its categories). The distinct raw values first (hashing ints or
    strings as they are; a categorical's are its categories in use, read from its codes), then
    their text: one ``str`` per distinct id, not one per row."""
    if _is_categorical(ids):
        return pd.Index(pd.unique(_as_text(observed_categories(ids))), dtype=object)
    return pd.Index(pd.unique(_as_text(pd.unique(_values(ids)))), dtype=object)


def observed_categories(ids: pd.Series | pd.Index | pd.Categorical) -> np.ndarray:
    """The distinct values of a categorical in use by its rows (``None`` among them when a row
    has no value), from its codes: a count per category, not a hash per row."""
    cat = pd.Series(ids).cat
    codes = np.asarray(cat.codes.to_numpy(), dtype=np.int64)
    categories = cat.categories.to_numpy(dtype=object)
    # code -1 (a missing value) counted in the last slot
    used = np.bincount(codes + 1, minlength=categories.size + 1) > 0
    out = categories[used[1:]]
    if used[0]:
        out = np.append(out, np.array([None], dtype=object))
    return out


def _is_categorical(ids: object) -> bool:
    return isinstance(getattr(ids, "dtype", None), pd.CategoricalDtype)


def _values(ids: Iterable) -> np.ndarray | pd.Series:
    """``ids`` as an array or Series pandas can factorize (no copy when they are one)."""
    if isinstance(ids, pd.Series | pd.Index):
        return ids if isinstance(ids, pd.Series) else pd.Series(ids)
    if isinstance(ids, np.ndarray) and ids.ndim == 1:
        return ids
    return pd.Series(list(ids), dtype=object)


def _as_text(values) -> np.ndarray:
    """The ids' text, as the vocabulary stores it (``str`` of each value)."""
    return pd.Series(values, dtype=object).astype(str).to_numpy(dtype=object)
