"""Item embeddings a user provides: a Parquet file of ``item_id`` -> vector.

The entry point for content of any kind (image, audio or text embeddings computed elsewhere):
``rerank`` turns them into one feature per (user, item), the cosine of the item's vector and the
mean vector of the user's items. Two layouts are read:

* ``item_id`` and one list column (``embedding`` or ``vector``) holding a fixed-length list of
  floats per item;
* ``item_id`` and numeric columns (``e0``, ``e1``, ...), one per dimension, in file order.

The ids are compared as strings, as every id in recsys. Every row must have the same length and
finite values; an id may appear once. Items of the catalogue missing from the file have no
vector (their feature is missing, which the ranker handles), and ids of the file that are not in
the catalogue are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.exceptions import DataError

ID_COLUMN = "item_id"
LIST_COLUMNS = ("embedding", "vector")


@dataclass(frozen=True)
class ItemEmbeddings:
    """Item vectors by id: ``vectors[n]`` is the vector of ``ids[n]`` (float32)."""

    ids: np.ndarray
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def aligned(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The L2-normalized vector of each of ``item_ids`` (a zero row where the file has
        none) and the mask of the items that have one."""
        pos = pd.Index(self.ids).get_indexer(np.asarray(item_ids).astype(str))
        has = pos >= 0
        out = np.zeros((pos.size, self.dim), dtype=np.float32)
        rows = self.vectors[pos[has]]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        out[has] = rows / np.maximum(norms, 1e-12)
        return out, has


def load_item_embeddings(path: str | Path) -> ItemEmbeddings:
    """Read and check an embeddings Parquet file (see the module docstring for its layouts).

    Raises
    ------
    DataError
        The file is missing or unreadable, has no ``item_id`` column, no vector column, rows of
        different lengths, values that are not finite, or repeated ids.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(
            f"item embeddings file {str(file)!r} does not exist; write a Parquet file with an "
            f"{ID_COLUMN!r} column and an 'embedding' list column (see README, rerank)"
        )
    try:
        frame = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise DataError(
            f"item embeddings file {str(file)!r} could not be read as Parquet: {exc}"
        ) from exc
    return embeddings_from_frame(frame, source=str(file))


def embeddings_from_frame(frame: pd.DataFrame, source: str = "the frame") -> ItemEmbeddings:
    """Check a frame of one of the two layouts and return its vectors (see
    :func:`load_item_embeddings`)."""
    if ID_COLUMN not in frame.columns:
        raise DataError(
            f"item embeddings in {source} have no {ID_COLUMN!r} column (columns: "
            f"{list(map(str, frame.columns))!r}); name the item id column {ID_COLUMN!r}"
        )
    if frame.empty:
        raise DataError(f"item embeddings in {source} have no rows")
    ids = frame[ID_COLUMN].astype(str).to_numpy()
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise DataError(
            f"item embeddings in {source} repeat {int(dup.sum())} item id(s), for example "
            f"{ids[dup][0]!r}; keep one vector per item"
        )
    vectors = _vectors(frame, source)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise DataError(
            f"item embeddings in {source} have {int(bad.sum())} vector(s) with values that are "
            f"not finite, for example the one of item {ids[bad][0]!r}; fix or drop them"
        )
    return ItemEmbeddings(ids=ids.astype(np.str_), vectors=vectors)


def _vectors(frame: pd.DataFrame, source: str) -> np.ndarray:
    lists = [c for c in LIST_COLUMNS if c in frame.columns]
    if lists:
        col = frame[lists[0]]
        lengths = col.map(lambda v: -1 if v is None else len(v)).to_numpy()
        if (lengths != lengths[0]).any() or lengths[0] < 1:
            n = (
                int(np.flatnonzero(lengths != lengths[0])[0])
                if (lengths != lengths[0]).any()
                else 0
            )
            raise DataError(
                f"item embeddings in {source}: column {lists[0]!r} must hold vectors of one "
                f"length; item {str(frame[ID_COLUMN].iloc[n])!r} has {int(lengths[n])} values, "
                f"the first item {int(lengths[0])}"
            )
        try:
            return np.stack([np.asarray(v, dtype=np.float32) for v in col])
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"item embeddings in {source}: column {lists[0]!r} must hold numbers ({exc})"
            ) from None
    numeric = [
        c for c in frame.columns if c != ID_COLUMN and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if not numeric:
        raise DataError(
            f"item embeddings in {source} have no vector: add an 'embedding' list column or "
            f"numeric columns (e0, e1, ...) beside {ID_COLUMN!r}; columns: "
            f"{list(map(str, frame.columns))!r}"
        )
    return frame[numeric].to_numpy(dtype=np.float32)
