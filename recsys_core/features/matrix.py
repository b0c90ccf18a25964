"""Interactions in index space: coordinate arrays and the users x items CSR matrix."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.features.ids import IdVocab


@dataclass(frozen=True, eq=False)
class Interactions:
    """Ratings mapped to contiguous indices.

    ``user_idx``/``item_idx`` are ``-1`` for ids absent from the vocabularies (cold users/items
    of a test split mapped with the training vocabularies).
    """

    users: IdVocab
    items: IdVocab
    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    item_meta: pd.DataFrame | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        users: IdVocab | None = None,
        items: IdVocab | None = None,
        item_meta: pd.DataFrame | None = None,
    ) -> Interactions:
        """Map a canonical frame; vocabularies are built from it unless given."""
        # `is None`, not `or`: an empty vocabulary is falsy but still a given vocabulary
        users = IdVocab.from_values(frame["user"]) if users is None else users
        items = IdVocab.from_values(frame["item"]) if items is None else items
        return cls(
            users=users,
            items=items,
            user_idx=users.index(frame["user"]),
            item_idx=items.index(frame["item"]),
            rating=frame["rating"].to_numpy(dtype=np.float32),
            timestamp=frame["timestamp"].to_numpy(dtype=np.int64),
            item_meta=item_meta,
        )

    def __len__(self) -> int:
        return int(self.user_idx.size)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def known(self) -> np.ndarray:
        """Mask of rows whose user and item are both in the vocabularies."""
        return (self.user_idx >= 0) & (self.item_idx >= 0)

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """Users x items CSR (float32) of the ratings whose user and item are known.

        A user who rated the same item more than once (at different times) keeps the latest
        rating: ratings are not summed.
        """
        # memory: no per-rating copy when every row is known, and no int64 pair key unless
        # there are repeated pairs (at 25M ratings each int64 temporary costs 200 MB)
        m = self.known
        u, i, r = self.user_idx, self.item_idx, self.rating
        if not m.all():
            u, i, r = u[m], i[m], r[m]
        shape = (self.n_users, self.n_items)
        mat = sp.csr_matrix((r, (u, i)), shape=shape, dtype=np.float32)
        if mat.nnz < u.size:  # scipy summed repeated pairs: keep the latest rating of each
            del mat
            t = self.timestamp if m.all() else self.timestamp[m]
            key = u.astype(np.int64) * max(1, self.n_items) + i
            order = np.lexsort((t, key))  # by pair, then time: the last row of a pair is latest
            last = np.ones(order.size, dtype=bool)
            last[:-1] = key[order][1:] != key[order][:-1]
            keep = order[last]
            mat = sp.csr_matrix((r[keep], (u[keep], i[keep])), shape=shape, dtype=np.float32)
        mat.sort_indices()
        return mat

    @property
    def global_mean(self) -> float:
        return float(self.rating.mean()) if self.rating.size else 0.0

    def to_frame(self) -> pd.DataFrame:
        """Back to raw ids; users and items unknown to the vocabularies come back as ``None``."""
        return pd.DataFrame(
            {
                "user": self.users.id_of(self.user_idx),
                "item": self.items.id_of(self.item_idx),
                "rating": self.rating.astype("float64"),
                "timestamp": self.timestamp,
            }
        )
